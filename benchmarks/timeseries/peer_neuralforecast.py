"""Side by side with neuralforecast's iTransformer (optional bench extra) on the same split, scaling and size.

Both models see the same standardised series (our scaler, fitted on the training rows), the same
0.7/0.1/0.2 split, lookback 96 / horizon 96, d_model = d_ff = 128, 2 layers, 8 heads, dropout 0.1,
use_norm, MSE loss, lr 1e-3, 32 windows per step and the same number of optimizer steps.
neuralforecast's iTransformer takes no calendar tokens, so our side of the comparison is the
`iTransformer (attention)` row retrained with `model.use_marks=false`.
Reported: test MSE ratio (ours / theirs, <= 1.02 is "no worse within 2 %") and training throughput
ratio (ours / theirs in windows per second, >= 1 is "at least equal").
"""

from __future__ import annotations

import importlib.util
import time


def compare_with_neuralforecast(rows, epochs, common, compose, out) -> tuple[dict | None, str]:
    """A table row for neuralforecast's iTransformer and a note with the ratios, or (None, why skipped)."""
    if importlib.util.find_spec("neuralforecast") is None:
        return None, ("neuralforecast is not installed, so the side-by-side with its iTransformer was skipped "
                      "(`pip install neuralforecast`, then rerun this command).")
    import numpy as np
    import pandas as pd
    from hydra.utils import instantiate
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MSE
    from neuralforecast.models import iTransformer

    from polyformer.core.training import runner

    cfg = compose([*common, "model=itransformer", "model.use_marks=false", f"trainer.max_epochs={epochs}"], out / "ours")
    start = time.perf_counter()
    ours = runner.train(cfg)
    ours_seconds = time.perf_counter() - start

    dm = instantiate(cfg.data, _convert_="all")
    dm.prepare_data()
    dm.setup("fit")
    frame = dm.frame()
    scaled = dm.scaler.transform(frame[dm.columns].to_numpy())
    n_rows, n_series = scaled.shape
    (_, train_end), (_, val_end), _ = dm.ranges["train"], dm.ranges["val"], dm.ranges["test"]
    long = pd.DataFrame({
        "unique_id": np.repeat(dm.columns, n_rows),
        "ds": np.tile(frame["date"].to_numpy(), n_series),
        "y": scaled.T.reshape(-1),
    })
    steps_per_epoch = len(dm.datasets["train"]) // dm.batch_size
    max_steps = steps_per_epoch * epochs
    model = iTransformer(
        h=dm.pred_len, input_size=dm.seq_len, n_series=n_series, hidden_size=128, n_heads=8, e_layers=2, d_ff=128,
        dropout=0.1, use_norm=True, loss=MSE(), max_steps=max_steps, learning_rate=1e-3, batch_size=n_series,
        windows_batch_size=dm.batch_size, scaler_type="identity", val_check_steps=steps_per_epoch,
        random_seed=42, accelerator="cpu", enable_progress_bar=False, logger=False,
    )
    nf = NeuralForecast(models=[model], freq=dm.step)
    start = time.perf_counter()
    cv = nf.cross_validation(df=long, val_size=val_end - train_end, test_size=n_rows - val_end, n_windows=None,
                             step_size=1)
    theirs_seconds = time.perf_counter() - start
    err = cv["iTransformer"].to_numpy() - cv["y"].to_numpy()
    std = dict(zip(dm.columns, dm.scaler.std))
    err_orig = err * cv["unique_id"].map(std).to_numpy()
    theirs = {
        "model": "neuralforecast iTransformer (no time tokens)",
        "overrides": [],
        "test/mse": float(np.mean(err**2)),
        "test/mae": float(np.mean(np.abs(err))),
        "test/mse_orig": float(np.mean(err_orig**2)),
        "test/mae_orig": float(np.mean(np.abs(err_orig))),
        "val/mse": float("nan"),
        "params": int(sum(p.numel() for p in model.parameters())),
        "epochs": epochs,
        "seconds": round(theirs_seconds, 1),
        "train_samples_per_sec": max_steps * dm.batch_size / theirs_seconds,
    }
    ours_rate = float(ours.get("perf/epoch_samples_per_sec", float("nan")))
    mse_ratio = float(ours["test/mse"]) / theirs["test/mse"]
    note = (
        f"neuralforecast side by side (both without time tokens): our test MSE {float(ours['test/mse']):.4f} vs "
        f"theirs {theirs['test/mse']:.4f}, ratio {mse_ratio:.3f} (<= 1.02 wanted); training throughput "
        f"{ours_rate:.0f} vs {theirs['train_samples_per_sec']:.0f} windows/s, ratio "
        f"{ours_rate / theirs['train_samples_per_sec']:.2f} (>= 1 wanted; theirs includes predicting the test "
        f"windows, {theirs_seconds:.0f} s in all vs our {ours_seconds:.0f} s)."
    )
    return theirs, note
