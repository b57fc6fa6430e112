"""Untrained reference forecasts: persistence (last value) and seasonal naive (last season repeated).

They have no parameters. `ForecastModule` gives them no optimizer and skips their training steps, and
fits them in one epoch whatever `trainer.max_epochs` says, so they run through the same train / eval /
predict commands and checkpoints as the learned models.
"""

from __future__ import annotations

import torch
from torch import nn

from polyformer.core.errors import ConfigError


class PersistenceNet(nn.Module):
    """Every future step equals the window's last value."""

    def __init__(self, pred_len: int):
        super().__init__()
        self.pred_len = pred_len

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        """`x[B, L, N] -> [B, pred_len, N]`."""
        return x[:, -1:, :].expand(-1, self.pred_len, -1).clone()


class SeasonalNaiveNet(nn.Module):
    """Step `h` of the horizon repeats the value one season earlier: `y[T + h] = x[T + h - k * season]`.

    Args:
        seq_len, pred_len: lookback and horizon (the season must fit in the lookback).
        season: season length in rows; None takes `period` from the data (one day of rows,
            24 for hourly data, 96 at 15 minutes; 1 for daily or coarser data).
    """

    def __init__(self, seq_len: int, pred_len: int, season: int | None = None, period: int = 24):
        super().__init__()
        self.season = int(season or period)
        if not 1 <= self.season <= seq_len:
            raise ConfigError(
                f"seasonal_naive needs 1 <= season ({self.season}) <= seq_len ({seq_len}); "
                "set model.season=<rows> or a longer data.seq_len"
            )
        self.pred_len = pred_len
        index = torch.arange(pred_len) % self.season + (seq_len - self.season)
        self.register_buffer("index", index, persistent=False)

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        """`x[B, L, N] -> [B, pred_len, N]`."""
        return x[:, self.index, :]
