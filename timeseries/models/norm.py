"""Per-variate instance normalisation of a lookback window (iTransformer's `use_norm`, non-affine RevIN)."""

from __future__ import annotations

import torch


def normalize(x: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`x[B, L, N]` minus each variate's window mean, over its (biased) std; returns `(x_norm, mean, std)`.

    The statistics are detached, as in the reference, so they act as constants of the window.
    """
    mean = x.mean(dim=1, keepdim=True).detach()
    centred = x - mean
    std = torch.sqrt(centred.var(dim=1, keepdim=True, unbiased=False) + eps).detach()
    return centred / std, mean, std


def denormalize(y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Undo `normalize` on a forecast `y[B, H, N]`."""
    return y * std + mean
