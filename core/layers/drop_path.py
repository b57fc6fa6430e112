"""Stochastic depth (Huang et al., 2016): drop a residual branch per sample during training."""

from __future__ import annotations

import torch
from torch import nn


def drop_path(x: torch.Tensor, p: float = 0.0, training: bool = False) -> torch.Tensor:
    """Zero whole samples of `x[B, ...]` with probability `p` and rescale the rest by 1/(1-p); identity in eval."""
    if p <= 0.0 or not training:
        return x
    keep = 1.0 - p
    noise = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * noise / keep


class DropPath(nn.Module):
    """Module form of `drop_path`, placed on a residual branch."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
