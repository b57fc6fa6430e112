"""ForecastDataModule: a TSLib-style series (CSV, DataFrame or the embedded TMY3 records) as train/val/test windows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from polyformer.core.errors import ConfigError, DataError
from polyformer.timeseries.data.frame import DATE, future_dates, infer_step, read_frame, rows_per_day
from polyformer.timeseries.data.scaler import StandardScaler
from polyformer.timeseries.data.splits import borders, check_window_fits
from polyformer.timeseries.data.timefeatures import n_time_features, time_features
from polyformer.timeseries.data.tmy3 import DEFAULT_SITES, DEFAULT_TARGET, DEFAULT_VARIATES, ensure_tmy3
from polyformer.timeseries.data.windows import LastWindow, WindowDataset

FEATURES = ("M", "S", "MS")


def select_columns(columns: Sequence[str], features: str, target: str | None) -> list[str]:
    """The variates used, in order, as TSLib does: the target moved last (M, MS) or alone (S)."""
    if features not in FEATURES:
        raise ConfigError(f"features must be one of {FEATURES} (M: all->all, S: target->target, MS: all->target), got '{features}'")
    columns = list(columns)
    if features == "M" and (target is None or target not in columns):
        return columns
    if target not in columns:
        raise DataError(
            f"target '{target}' is not a column of the data (columns: {columns[:8]}{'...' if len(columns) > 8 else ''}). "
            f"features={features} needs it; set data.target=<column>."
        )
    if features == "S":
        return [target]
    return [c for c in columns if c != target] + [target]


def check_variates(found: Sequence[str], expected: Sequence[str], where: str = "the data") -> None:
    """Raise a DataError when `found` variates differ from the checkpoint's `expected` ones."""
    if list(found) == list(expected):
        return
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    detail = []
    if missing:
        detail.append(f"missing {missing}")
    if extra:
        detail.append(f"not in the checkpoint {extra}")
    if not detail:
        detail.append(f"in another order: {list(found)} vs {list(expected)}")
    raise DataError(
        f"the checkpoint was trained on {len(expected)} variates {list(expected)}, but {where} has "
        f"{len(found)}: {'; '.join(detail)}. Give a table with exactly the checkpoint's columns (plus `date`)."
    )


class ForecastDataModule(L.LightningDataModule):
    """Windows of a multivariate series for long-term forecasting, with Time-Series-Library's conventions.

    Args:
        path: CSV file (`date` column + variates) or a pandas DataFrame; None uses the embedded TMY3 records.
        data_dir: cache root for the embedded data (`paths.data_dir`).
        sites, variates: which TMY3 sites and fields make the embedded table (see `data.tmy3`).
        split: "ratio" (0.7/0.1/0.2, val/test start seq_len early) or "ett" (12/4/4 months).
        seq_len, label_len, pred_len: lookback, TSLib's decoder start-token length (kept for
            compatibility; the encoder-only models here do not use it), horizon.
        features: "M" (all variates -> all), "S" (target -> target), "MS" (all -> target).
        target: the target column for S/MS (moved last, as TSLib does).
        freq: time-feature frequency (s, t, h, d, b, w, m, q, y or multiples such as 15min).
        time_features: add TSLib `timeF` calendar features (`embed=timeF`); False gives none.
        scale: standardise with a scaler fitted on the training split only.
        batch_size, eval_batch_size, num_workers: loaders; the test loader keeps its last partial batch.

    After `setup("fit")`, `data_spec()` returns what the model needs and the checkpoint keeps (variates,
    scaler, sizes, step); `bind_spec(spec)` before `setup()` reuses a checkpoint's instead of refitting.
    """

    def __init__(
        self,
        path: str | Path | pd.DataFrame | None = None,
        data_dir: str | None = None,
        sites: Sequence[str] = DEFAULT_SITES,
        variates: Sequence[str] = DEFAULT_VARIATES,
        split: str = "ratio",
        seq_len: int = 96,
        label_len: int = 48,
        pred_len: int = 96,
        features: str = "M",
        target: str | None = DEFAULT_TARGET,
        freq: str = "h",
        time_features: bool = True,
        scale: bool = True,
        train_ratio: float = 0.7,
        test_ratio: float = 0.2,
        date_col: str = DATE,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
    ):
        super().__init__()
        if seq_len < 1 or pred_len < 1 or label_len < 0:
            raise ConfigError(f"seq_len and pred_len must be >= 1 and label_len >= 0, got {seq_len}, {pred_len}, {label_len}")
        if features not in FEATURES:
            raise ConfigError(f"features must be one of {FEATURES}, got '{features}'")
        n_time_features(freq)  # validates freq early
        self.path, self.data_dir = path, data_dir
        self.sites, self.variates = list(sites), list(variates)
        self.split, self.train_ratio, self.test_ratio = split, train_ratio, test_ratio
        self.seq_len, self.label_len, self.pred_len = int(seq_len), int(label_len), int(pred_len)
        self.features, self.target, self.freq = features, target, freq
        self.use_time_features, self.scale, self.date_col = bool(time_features), bool(scale), date_col
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self._bound: dict[str, Any] | None = None
        self._frame: pd.DataFrame | None = None
        self.columns: list[str] = []
        self.scaler: StandardScaler | None = None
        self.datasets: dict[str, Any] = {}

    # ----------------------------------------------------------------- source
    def prepare_data(self) -> None:
        """Write the embedded TMY3 CSV into the data root once (no-op for a user's CSV or DataFrame)."""
        if self.path is None:
            self._embedded_path()

    def _embedded_path(self) -> Path:
        if not self.data_dir:
            raise ConfigError("the embedded TMY3 data needs data.data_dir (paths.data_dir) to cache its CSV")
        return ensure_tmy3(self.data_dir, self.sites, self.variates)

    def frame(self) -> pd.DataFrame:
        """The checked table (`date` + variates) this module reads, loaded once."""
        if self._frame is None:
            source = self._embedded_path() if self.path is None else self.path
            self._frame = read_frame(source, self.date_col)
        return self._frame

    def source_name(self) -> str:
        """Where the data comes from, for messages."""
        if self.path is None:
            return "the embedded TMY3 data"
        return "the DataFrame" if isinstance(self.path, pd.DataFrame) else f"'{self.path}'"

    # ----------------------------------------------------------- spec binding
    def bind_spec(self, spec: dict[str, Any]) -> None:
        """Use a checkpoint's learned data (variates, scaler) instead of fitting; checked in `setup()`."""
        self._bound = dict(spec) if spec else None

    def data_spec(self) -> dict[str, Any]:
        """What was learned from the data, as plain values (stored in the checkpoint's hyperparameters)."""
        if not self.columns:
            raise DataError("data_spec() is available after setup(); call dm.setup('fit') first")
        out_cols = self.columns[-1:] if self.features == "MS" else list(self.columns)
        step = self.step
        return {
            "variates": list(self.columns),
            "outputs": out_cols,
            "features": self.features,
            "target": self.target if self.features != "M" else None,
            "freq": self.freq,
            "step": step,
            "period": rows_per_day(step),
            "seq_len": self.seq_len,
            "label_len": self.label_len,
            "pred_len": self.pred_len,
            "enc_in": len(self.columns),
            "c_out": len(out_cols),
            "time_features": self.use_time_features,
            "n_marks": n_time_features(self.freq) if self.use_time_features else 0,
            "scaler": self.scaler.to_dict() if self.scaler is not None else None,
        }

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str | None = None) -> None:
        """Select columns, fit (or reuse) the scaler, and build the windows the stage needs."""
        frame = self.frame()
        columns = select_columns(list(frame.columns[1:]), self.features, self.target)
        if self._bound:
            check_variates(columns, self._bound.get("variates", columns), self.source_name())
        self.columns = columns
        values = frame[columns].to_numpy(dtype=np.float64)
        dates = pd.DatetimeIndex(frame[DATE])
        self.dates = dates
        self.step = (self._bound or {}).get("step") or infer_step(dates)
        if stage == "predict":
            self._setup_predict(values, dates)
            return
        ranges = borders(len(values), self.seq_len, self.split, rows_per_day=rows_per_day(self.step),
                         train_ratio=self.train_ratio, test_ratio=self.test_ratio)
        check_window_fits(ranges, self.seq_len, self.pred_len, len(values))
        self.ranges = ranges
        self.scaler = self._scaler(values[slice(*ranges["train"])])
        scaled = self._scaled(values)
        marks = self._marks(dates)
        for name in ("train", "val", "test"):
            s, e = ranges[name]
            self.datasets[name] = WindowDataset(scaled[s:e], marks[s:e], self.seq_len, self.pred_len)

    def _setup_predict(self, values: np.ndarray, dates: pd.DatetimeIndex) -> None:
        if len(values) < self.seq_len:
            raise DataError(
                f"too few rows: {self.source_name()} has {len(values)} rows but a forecast needs the last "
                f"seq_len = {self.seq_len} rows as its lookback"
            )
        if self.scaler is None:
            if self._bound and self._bound.get("scaler"):
                self.scaler = StandardScaler.from_dict(self._bound["scaler"])
            elif self.scale and not self._bound:
                raise DataError("predicting needs a trained checkpoint's scaler; run it through `polyformer predict`")
        self.datasets["predict"] = LastWindow(self._scaled(values), self._marks(dates), self.seq_len)

    def _scaler(self, train_values: np.ndarray) -> StandardScaler | None:
        if self._bound and "scaler" in self._bound:
            return StandardScaler.from_dict(self._bound["scaler"]) if self._bound["scaler"] else None
        return StandardScaler.fit(train_values) if self.scale else None

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        return self.scaler.transform(values) if self.scaler is not None else values

    def _marks(self, dates: pd.DatetimeIndex) -> np.ndarray:
        if not self.use_time_features:
            return np.zeros((len(dates), 0), dtype=np.float32)
        return time_features(dates, self.freq)

    def future_dates(self, horizon: int | None = None) -> pd.DatetimeIndex:
        """The timestamps after the series' last one that a forecast from its last window covers."""
        return future_dates(self.dates[-1], self.step, horizon or self.pred_len)

    # ---------------------------------------------------------------- loaders
    def _loader(self, name: str, shuffle: bool, drop_last: bool, batch_size: int) -> DataLoader:
        if name not in self.datasets:
            raise DataError(f"no {name} windows: call setup() for that stage first")
        return DataLoader(self.datasets[name], batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        """Shuffled training windows (the last partial batch dropped, as TSLib)."""
        drop = len(self.datasets.get("train", ())) > self.batch_size
        return self._loader("train", True, drop, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        """Every validation window, in order."""
        return self._loader("val", False, False, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        """Every test window, in order: drop_last=False, so no window is left out of the metrics."""
        return self._loader("test", False, False, self.eval_batch_size)

    def predict_dataloader(self) -> DataLoader:
        """The last `seq_len` rows, to forecast past the series' end."""
        return self._loader("predict", False, False, 1)
