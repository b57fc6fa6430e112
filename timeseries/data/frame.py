"""Reading and checking a Time-Series-Library style table: a `date` column plus numeric variates.

A CSV path or a pandas DataFrame is accepted wherever the domain takes data. Every problem (no file,
no date column, unparseable or unordered dates, text columns, missing values) raises `DataError`
with a message that says what is wrong and how to fix it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from polyformer.core.errors import DataError

DATE = "date"


def read_frame(source, date_col: str = DATE) -> pd.DataFrame:
    """A checked copy of `source` (CSV path or DataFrame): `date` (datetime64) first, then float variates."""
    if isinstance(source, pd.DataFrame):
        df, where = source.copy(), "the DataFrame"
    elif isinstance(source, str | Path):
        df, where = _read_csv(Path(source).expanduser()), f"'{source}'"
    else:
        raise DataError(f"data must be a CSV path or a pandas DataFrame, got {type(source).__name__}")
    return check_frame(df, where, date_col)


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            f"no CSV at '{path}'. Pass data.path=<file.csv> (a `date` column plus one column per variate, "
            "as in Time-Series-Library's dataset/ folder)."
        )
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"'{path}' is empty; a forecasting CSV needs a header row and data rows") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"'{path}' is not a readable CSV ({exc})") from exc
    return df


def check_frame(df: pd.DataFrame, where: str = "the data", date_col: str = DATE) -> pd.DataFrame:
    """Validate a table and return it with the date column renamed to `date`, parsed, first."""
    if date_col not in df.columns:
        raise DataError(
            f"{where} has no '{date_col}' column (columns: {list(df.columns)[:8]}). Time-Series-Library CSVs "
            f"start with a `date` column; rename your timestamp column to '{date_col}' or set data.date_col=<name>."
        )
    if len(df) == 0:
        raise DataError(f"{where} has a header but no rows")
    try:
        dates = pd.to_datetime(df[date_col])
    except (ValueError, TypeError) as exc:
        raise DataError(f"{where}: column '{date_col}' does not parse as timestamps ({exc})") from exc
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataError(f"{where}: '{date_col}' is empty or unparseable at row {row}; every row needs a timestamp")
    if len(dates) > 1 and not (dates.diff().iloc[1:] > pd.Timedelta(0)).all():
        row = int(np.flatnonzero((dates.diff().iloc[1:] <= pd.Timedelta(0)).to_numpy())[0]) + 1
        raise DataError(
            f"{where}: timestamps must be strictly increasing, but row {row} ({dates.iloc[row]}) does not come "
            "after the row before it. Sort by date and drop duplicate timestamps."
        )
    values = df.drop(columns=[date_col])
    if values.shape[1] == 0:
        raise DataError(f"{where} has a '{date_col}' column but no variate columns to forecast")
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c]) or pd.api.types.is_bool_dtype(values[c])]
    if bad:
        col = bad[0]
        example = values[col].iloc[0]
        raise DataError(
            f"{where}: column(s) {bad} are not numeric (e.g. {col}={example!r}). Every column except "
            f"'{date_col}' is a variate and must hold numbers; drop or encode the others."
        )
    nan = values.isna().to_numpy()
    if nan.any():
        cols = [c for c, has in zip(values.columns, nan.any(axis=0)) if has]
        row = int(np.flatnonzero(nan.any(axis=1))[0])
        raise DataError(
            f"{where}: {int(nan.sum())} missing value(s) (NaN) in column(s) {cols}, first at row {row}. "
            "Fill them first, e.g. df.interpolate().ffill().bfill()."
        )
    if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
        raise DataError(f"{where}: infinite values in the variates; replace them before forecasting")
    out = values.astype(np.float64)
    out.insert(0, DATE, dates.to_numpy())
    return out.reset_index(drop=True)


def infer_step(dates: pd.Series | pd.DatetimeIndex) -> str:
    """The sampling step of `dates` as a pandas frequency string ('h', '15min', 'D', 'MS', ...).

    Uses `pd.infer_freq` on the last rows when the spacing is regular, else the most common gap.
    """
    index = pd.DatetimeIndex(dates)
    if len(index) < 2:
        raise DataError("at least two timestamps are needed to tell the sampling step")
    tail = index[-min(len(index), 64):]
    if len(tail) >= 3:
        freq = pd.infer_freq(tail)
        if freq:
            return freq
    gap = pd.Series(index[1:] - index[:-1]).mode().iloc[0]
    return pd.tseries.frequencies.to_offset(gap).freqstr


def future_dates(last: pd.Timestamp, step: str, horizon: int) -> pd.DatetimeIndex:
    """The `horizon` timestamps after `last`, spaced by `step`."""
    return pd.date_range(start=pd.Timestamp(last), periods=horizon + 1, freq=step)[1:]


def rows_per_day(step: str) -> int:
    """How many rows one day spans at `step` (1 for daily or coarser data)."""
    try:
        delta = pd.Timedelta(pd.tseries.frequencies.to_offset(step))
    except (ValueError, TypeError):
        return 1
    if delta <= pd.Timedelta(0) or delta >= pd.Timedelta(days=1):
        return 1
    return max(1, int(round(pd.Timedelta(days=1) / delta)))
