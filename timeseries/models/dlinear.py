"""DLinear (Zeng et al., AAAI 2023): moving-average trend + remainder, one linear map of the window each."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from polyformer.core.errors import ConfigError


def moving_average(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Moving average of `x[B, L, N]` along time, ends padded by repeating the edge values (length kept)."""
    front, back = (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2
    padded = torch.cat([x[:, :1].expand(-1, front, -1), x, x[:, -1:].expand(-1, back, -1)], dim=1)
    return F.avg_pool1d(padded.transpose(1, 2), kernel_size=kernel, stride=1).transpose(1, 2)


class DLinearNet(nn.Module):
    """Series decomposition, then `Linear(seq_len, pred_len)` on the trend and on the remainder, summed.

    Args:
        seq_len, pred_len: lookback and horizon.
        enc_in: number of variates (used when `individual`).
        moving_avg: trend kernel (25 in the paper).
        individual: one pair of linear maps per variate instead of shared ones.

    The weights start as a uniform average of the window (`1 / seq_len`), as in the reference.
    """

    def __init__(self, seq_len: int, pred_len: int, enc_in: int = 1, moving_avg: int = 25, individual: bool = False):
        super().__init__()
        if moving_avg < 1:
            raise ConfigError(f"moving_avg must be >= 1, got {moving_avg}")
        self.kernel, self.individual = moving_avg, individual
        channels = enc_in if individual else 1
        init = torch.full((channels, pred_len, seq_len), 1.0 / seq_len)
        self.seasonal_weight = nn.Parameter(init.clone())
        self.trend_weight = nn.Parameter(init.clone())
        self.seasonal_bias = nn.Parameter(torch.zeros(channels, pred_len))
        self.trend_bias = nn.Parameter(torch.zeros(channels, pred_len))

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        """`x[B, L, N] -> [B, pred_len, N]`."""
        trend = moving_average(x, self.kernel)
        seasonal = x - trend
        out = self._linear(seasonal, self.seasonal_weight, self.seasonal_bias)
        return out + self._linear(trend, self.trend_weight, self.trend_bias)

    def _linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        # x[B, L, N], weight[C, H, L] with C in {1, N}
        return torch.einsum("bln,nhl->bhn", x, weight.expand(x.shape[-1], -1, -1)) + bias.expand(x.shape[-1], -1).T
