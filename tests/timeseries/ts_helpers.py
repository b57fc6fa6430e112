"""Tiny series and config overrides shared by the timeseries tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_frame(n: int = 400, freq: str = "h", start: str = "2020-01-01", seed: int = 0) -> pd.DataFrame:
    """Three hourly variates with a daily cycle, a trend and noise; `OT` is the target, last."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    daily = np.sin(2 * np.pi * t / 24)
    return pd.DataFrame({
        "date": pd.date_range(start, periods=n, freq=freq),
        "load": 10 + 3 * daily + 0.01 * t + 0.2 * rng.standard_normal(n),
        "temp": 20 + 5 * np.roll(daily, 3) + 0.3 * rng.standard_normal(n),
        "OT": 50 + 8 * daily + 0.5 * rng.standard_normal(n),
    })



SIZES = {
    "itransformer": ["model.d_model=16", "model.d_ff=16", "model.n_heads=2", "model.e_layers=1"],
    "patchtst": ["model.d_model=16", "model.d_ff=16", "model.n_heads=2", "model.e_layers=1",
                 "model.patch_len=8", "model.stride=4"],
}


def tiny_overrides(csv_path, *extra: str, model: str = "itransformer") -> list[str]:
    """A seconds-long training run of `model` on `csv_path` (small sizes for the models that have them)."""
    return [
        "data=csv",
        f"data.path={csv_path}",
        "data.seq_len=24",
        "data.label_len=12",
        "data.pred_len=12",
        "data.batch_size=32",
        f"model={model}",
        *SIZES.get(model, []),
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=3",
        "trainer.accelerator=cpu",
        "++trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "logger=none",
        *extra,
    ]
