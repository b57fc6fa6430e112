"""ForecastModule: MSE training, TSLib metrics on scaled data and in original units, and `forecast()`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from polyformer.core.errors import DataError
from polyformer.core.training.optim import build_optimization
from polyformer.timeseries.data.datamodule import check_variates
from polyformer.timeseries.data.frame import DATE, future_dates, infer_step, read_frame
from polyformer.timeseries.data.scaler import StandardScaler
from polyformer.timeseries.data.timefeatures import time_features
from polyformer.timeseries.metrics import ForecastErrors
from polyformer.timeseries.models import MODELS

HINT_KEYS = ("seq_len", "pred_len", "enc_in", "period")


class ForecastModule(L.LightningModule):
    """A registered forecaster trained on MSE of the scaled series, as in Time-Series-Library.

    Args:
        model: model config, `{"name": "itransformer", "d_model": 128, ...}` (see `models.MODELS`).
        optim: optimizer config for `build_optimization` (`{"name": "adam", "lr": 1e-4, ...}`).
        data: `ForecastDataModule.data_spec()`: variates, scaler, sizes, step; stored in the checkpoint.

    Logged: `train/loss`; `val/mse`, `val/mae`; `test/mse`, `test/mae` on the scaled data (the numbers
    papers report) and `test/mse_orig`, `test/mae_orig` in the data's own units. Metrics are sums over
    every element of every window divided by their count, so every test window counts equally.
    With `features=MS` the model sees all variates and the loss and metrics use the target only.

    Models without parameters (persistence, seasonal naive) get no optimizer, skip their training steps
    and are fitted in one epoch (validation still runs, so the usual checkpoint is written).
    """

    def __init__(self, model: dict | None = None, optim: dict | None = None, data: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        spec = dict(data or {})
        model = dict(model or {"name": "itransformer"})
        hints = {k: spec[k] for k in HINT_KEYS if k in spec}
        self.net = MODELS.build(model, hints=hints)
        self.outputs = list(spec.get("outputs") or spec.get("variates") or [])
        self.n_out = int(spec.get("c_out") or len(self.outputs) or 0)
        scaler = spec.get("scaler")
        full = StandardScaler.from_dict(scaler) if scaler else None
        self.out_scaler = full.select(range(len(full.mean) - self.n_out, len(full.mean))) if full and self.n_out else None
        self.val_errors, self.test_errors, self.test_errors_orig = ForecastErrors(), ForecastErrors(), ForecastErrors()

    # ------------------------------------------------------------------ core
    @property
    def trainable(self) -> bool:
        """Whether the model has parameters to learn (False for the naive forecasts)."""
        return any(p.requires_grad for p in self.net.parameters())

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled lookback `x[B, seq_len, N]` -> scaled forecast of the output variates `[B, pred_len, c_out]`."""
        y = self.net(x, x_mark)
        return y[..., -self.n_out:] if self.n_out else y

    def _pred_true(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        pred = self(batch["x"], batch.get("x_mark"))
        true = batch["y"][..., -pred.shape[-1]:]
        return pred, true

    def configure_optimizers(self):
        """The optimizer and schedule from `optim`; None for a model with no parameters."""
        return build_optimization(self, self.hparams.optim)

    def on_fit_start(self) -> None:
        if not self.trainable and self.trainer.fit_loop.max_epochs != 0:
            self.trainer.fit_loop.max_epochs = 1  # nothing to learn: one epoch, so validation and checkpoints run

    def training_step(self, batch, batch_idx):
        if not self.trainable:
            return None
        pred, true = self._pred_true(batch)
        loss = F.mse_loss(pred, true)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(pred))
        return loss

    def validation_step(self, batch, batch_idx) -> None:
        pred, true = self._pred_true(batch)
        self.val_errors.update(pred, true)

    def on_validation_epoch_end(self) -> None:
        errors = self.val_errors.compute()
        self.log("val/mse", errors["mse"].float(), prog_bar=True)
        self.log("val/mae", errors["mae"].float())
        self.val_errors.reset()

    def test_step(self, batch, batch_idx) -> None:
        pred, true = self._pred_true(batch)
        self.test_errors.update(pred, true)
        if self.out_scaler is not None:
            self.test_errors_orig.update(self.out_scaler.inverse_transform(pred.double()),
                                         self.out_scaler.inverse_transform(true.double()))
        else:
            self.test_errors_orig.update(pred, true)

    def on_test_epoch_end(self) -> None:
        for suffix, metric in (("", self.test_errors), ("_orig", self.test_errors_orig)):
            errors = metric.compute()
            self.log(f"test/mse{suffix}", errors["mse"].float())
            self.log(f"test/mae{suffix}", errors["mae"].float())
            metric.reset()

    def predict_step(self, batch, batch_idx) -> torch.Tensor:
        """Forecast in original units, `[B, pred_len, c_out]`."""
        return self._to_original(self(batch["x"], batch.get("x_mark")))

    def _to_original(self, y: torch.Tensor) -> torch.Tensor:
        return self.out_scaler.inverse_transform(y.double()).float() if self.out_scaler is not None else y

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def forecast(self, data, *, end=None) -> pd.DataFrame:
        """Forecast `pred_len` steps past the end of `data`, in the data's own units.

        Args:
            data: a DataFrame (or CSV path) with a `date` column and the checkpoint's variates (extra
                columns are ignored), or an array `[T, N]` of the variates in the checkpoint's order.
                Only the last `seq_len` rows are used.
            end: for an array, the timestamp of its last row (needed when the model uses time
                features; without it the result is indexed by `step` 1..pred_len).

        Returns a DataFrame with `date` (the future timestamps, at the data's inferred step) and one
        column per forecast variate.
        """
        spec = self.hparams.data or {}
        values, dates = self._input(data, end)
        seq_len = int(spec["seq_len"])
        if len(values) < seq_len:
            raise DataError(f"too few rows: a forecast needs the last seq_len = {seq_len} rows, got {len(values)}")
        values = values[-seq_len:]
        if spec.get("scaler"):
            values = StandardScaler.from_dict(spec["scaler"]).transform(values)
        x = torch.as_tensor(values, dtype=torch.float32, device=self.device)[None]
        x_mark = None
        if spec.get("n_marks"):
            if dates is None:
                raise DataError("this model uses time features: give a DataFrame with a `date` column, or end=<timestamp>")
            x_mark = torch.as_tensor(time_features(dates[-seq_len:], spec["freq"]), device=self.device)[None]
        was_training = self.training
        self.eval()
        y = self._to_original(self(x, x_mark))[0].cpu().numpy().astype(np.float64)
        self.train(was_training)
        out = pd.DataFrame(y, columns=self.outputs or None)
        if dates is None:
            out.insert(0, "step", np.arange(1, len(out) + 1))
            return out
        step = infer_step(dates) if len(dates) >= 3 else spec.get("step")
        out.insert(0, DATE, future_dates(dates[-1], step, len(out)))
        return out

    def _input(self, data, end) -> tuple[np.ndarray, pd.DatetimeIndex | None]:
        spec = self.hparams.data or {}
        variates = list(spec.get("variates") or [])
        if isinstance(data, pd.DataFrame | str | Path):
            frame = read_frame(data)
            found = [c for c in variates if c in frame.columns]
            check_variates(found, variates, "the forecast input")
            return frame[variates].to_numpy(dtype=np.float64), pd.DatetimeIndex(frame[DATE])
        values = np.asarray(data, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or (variates and values.shape[1] != len(variates)):
            raise DataError(f"an array input must be [T, {len(variates)}] (the variates {variates}), got {values.shape}")
        if not np.isfinite(values).all():
            raise DataError("the forecast input has NaN or infinite values; fill them first")
        dates = None
        if end is not None:
            dates = pd.date_range(end=pd.Timestamp(end), periods=len(values), freq=spec.get("step") or "h")
        return values, dates

    def write_predictions(self, outputs: list[Any], datamodule, output_dir: Path) -> list[Path]:
        """Write `forecast.csv`: the horizon past the data's last timestamp, `date` + variates, original units."""
        if not outputs:
            return []
        y = torch.cat([o for o in outputs], dim=0)[-1].cpu().numpy().astype(np.float64)
        frame = pd.DataFrame(y, columns=self.outputs or None)
        frame.insert(0, DATE, datamodule.future_dates(len(frame)))
        path = Path(output_dir) / "forecast.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False)
        tmp.replace(path)
        return [path]


class ITransformer(ForecastModule):
    """`ForecastModule` under the name downstream users look for.

    `ITransformer.load_from_checkpoint(path).forecast(df)` restores any timeseries checkpoint (its model is
    whatever it was trained with); `ITransformer(data=dm.data_spec())` builds an iTransformer by default.
    """

    def __init__(self, model: dict | None = None, optim: dict | None = None, data: dict | None = None):
        super().__init__(model=model or {"name": "itransformer"}, optim=optim, data=data)
