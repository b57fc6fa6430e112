"""Forecast errors as Time-Series-Library defines them, and a metric that counts every test window.

TSLib's `MSE(pred, true) = mean((pred - true) ** 2)` and `MAE = mean(|pred - true|)` average over all
windows, horizon steps and variates at once. `ForecastErrors` keeps running sums and a count, so the
result over a loader equals that mean over every window, whatever the batch sizes (a last, smaller
batch weighs by its number of elements, not as one batch among many).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric


def mse(pred, true) -> float:
    """Mean squared error over every element (numpy or torch)."""
    if isinstance(pred, torch.Tensor):
        return float(((pred.double() - true.double()) ** 2).mean())
    return float(np.mean((np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)) ** 2))


def mae(pred, true) -> float:
    """Mean absolute error over every element (numpy or torch)."""
    if isinstance(pred, torch.Tensor):
        return float((pred.double() - true.double()).abs().mean())
    return float(np.mean(np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64))))


class ForecastErrors(Metric):
    """Running MSE and MAE over all elements seen (float64 sums; summed across processes)."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("sse", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sae", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """Add a batch of forecasts and targets of the same shape."""
        if pred.shape != true.shape:
            raise ValueError(f"forecast {tuple(pred.shape)} and target {tuple(true.shape)} shapes differ")
        err = pred.detach().double() - true.detach().double()
        self.sse += (err**2).sum()
        self.sae += err.abs().sum()
        self.count += err.numel()

    def compute(self) -> dict[str, torch.Tensor]:
        """`{"mse": ..., "mae": ...}` over everything seen since the last reset."""
        n = self.count.clamp(min=1).double()
        return {"mse": self.sse / n, "mae": self.sae / n}
