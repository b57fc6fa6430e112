"""The one interface every token mixer implements (see DESIGN.md, "The core contract")."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

MODES = ("auto", "parallel", "chunk", "recurrent")


class TokenMixer(nn.Module):
    """Base of all token mixers: parallel `forward` for training, recurrent `step` for generation.

    Subclasses set `self.causal`, `self.mode` and `self.backend` (the backend actually used,
    reported by `polyformer doctor` and the training log) and implement the three methods below.
    """

    causal: bool = True
    mode: str = "auto"
    backend: str = "torch"

    def forward(
        self,
        x: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        state: Any = None,
        return_state: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """Mix `x[B, T, D]`; `mask[B, T]` is True at valid tokens. Returns `(y[B, T, D], state | None)`."""
        raise NotImplementedError

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One recurrent step on `x_t[B, 1, D]` from `state`; returns `(y_t[B, 1, D], new_state)`."""
        raise NotImplementedError

    def init_state(self, batch: int, device=None, dtype=None) -> Any:
        """The empty state for a batch of `batch` sequences (KV cache, matrix state or conv + ssm state)."""
        raise NotImplementedError


def check_mode(mode: str) -> str:
    from polyformer.core.errors import ConfigError

    if mode not in MODES:
        raise ConfigError(f"mixer mode must be one of {MODES}, got '{mode}'")
    return mode
