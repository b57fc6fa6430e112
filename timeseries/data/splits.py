"""Train / val / test row ranges with Time-Series-Library's borders.

- `split="ett"` (ETTh1/ETTh2/ETTm1/ETTm2): 12 months train, 4 months val, 4 months test, a month being
  30 days of rows at the data's step (720 rows hourly, 2880 rows at 15 minutes); rows after
  month 20 are not used, as in the reference.
- `split="ratio"` (ECL, Traffic, Weather, your own CSV): the first 70 % train, the last 20 % test,
  the rest val (`train_ratio`, `test_ratio` change the shares).

Val and test start `seq_len` rows early so their first window's lookback reaches back into the
previous split and every target row of a split is forecast.
"""

from __future__ import annotations

from polyformer.core.errors import ConfigError, DataError

SPLITS = ("ratio", "ett")


def borders(
    n_rows: int,
    seq_len: int,
    split: str = "ratio",
    *,
    rows_per_day: int = 24,
    train_ratio: float = 0.7,
    test_ratio: float = 0.2,
) -> dict[str, tuple[int, int]]:
    """`{"train": (start, end), "val": ..., "test": ...}` row ranges (end exclusive) of a series of `n_rows`."""
    if split == "ett":
        month = 30 * rows_per_day
        needed = 20 * month
        if n_rows < needed:
            raise DataError(
                f"split=ett needs 20 months of rows (12 train, 4 val, 4 test; {needed} rows at this step), "
                f"the data has {n_rows}. Use data.split=ratio for other series."
            )
        ends = [12 * month, 16 * month, 20 * month]
    elif split == "ratio":
        if not (0 < train_ratio < 1 and 0 < test_ratio < 1 and train_ratio + test_ratio < 1):
            raise ConfigError(f"train_ratio ({train_ratio}) and test_ratio ({test_ratio}) must be in (0, 1) with room for val")
        num_train = int(n_rows * train_ratio)
        num_test = int(n_rows * test_ratio)
        ends = [num_train, n_rows - num_test, n_rows]
    else:
        raise ConfigError(f"unknown split '{split}'. Known: {', '.join(SPLITS)}")
    starts = [0, max(0, ends[0] - seq_len), max(0, ends[1] - seq_len)]
    return {name: (s, e) for name, s, e in zip(("train", "val", "test"), starts, ends)}


def check_window_fits(ranges: dict[str, tuple[int, int]], seq_len: int, pred_len: int, n_rows: int) -> None:
    """Raise a DataError naming the split that is too short for one `seq_len + pred_len` window."""
    need = seq_len + pred_len
    for name, (start, end) in ranges.items():
        if end - start < need:
            raise DataError(
                f"too few rows: the {name} split has {end - start} rows (of {n_rows} in the series) but one window "
                f"needs seq_len + pred_len = {seq_len} + {pred_len} = {need}. Give a longer series or "
                "smaller data.seq_len / data.pred_len."
            )
