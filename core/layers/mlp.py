"""Feed-forward layers: GELU MLP (ViT and GPT-2 dropout placements), SwiGLU, and `build_mlp(name, dim, hidden_ratio, dropout)`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError

MLPS = ("gelu", "gpt2", "swiglu", "none")


class MLP(nn.Module):
    """Linear -> GELU -> Linear, the ViT / GPT-2 feed-forward, with dropout on its output.

    `hidden_dropout=True` (ViT, timm) also drops out inside the wide hidden layer; GPT-2 (and so HF's
    Decision Transformer) does not, which also saves a mask over the 4x-wide activations per layer.
    """

    def __init__(self, dim: int, hidden_dim: int, *, dropout: float = 0.0, bias: bool = True, hidden_dropout: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.fc2 = nn.Linear(hidden_dim, dim, bias=bias)
        self.drop = nn.Dropout(dropout)
        self.hidden_drop = nn.Dropout(dropout if hidden_dropout else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.hidden_drop(F.gelu(self.fc1(x)))))


class SwiGLU(nn.Module):
    """Gated feed-forward `W3 (silu(W1 x) * W2 x)` (Shazeer, 2020), with W1 and W2 fused in one Linear."""

    def __init__(self, dim: int, hidden_dim: int, *, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.fc12 = nn.Linear(dim, 2 * hidden_dim, bias=bias)
        self.fc3 = nn.Linear(hidden_dim, dim, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.fc12(x).chunk(2, dim=-1)
        return self.drop(self.fc3(self.drop(F.silu(gate) * value)))


def build_mlp(name: str | None, dim: int, hidden_ratio: float = 4.0, dropout: float = 0.0) -> nn.Module | None:
    """`"gelu"` (hidden = ratio * dim; dropout inside and after, ViT style), `"gpt2"` (the same MLP with
    dropout only after it, as GPT-2), `"swiglu"` (hidden = 2/3 * ratio * dim, rounded up to a multiple of 8,
    so both have about the same parameter count) or `"none"` / None (no MLP: returns None)."""
    key = "none" if name is None else str(name).lower()
    if key == "gelu":
        return MLP(dim, int(round(hidden_ratio * dim)), dropout=dropout)
    if key == "gpt2":
        return MLP(dim, int(round(hidden_ratio * dim)), dropout=dropout, hidden_dropout=False)
    if key == "swiglu":
        hidden = int(2 * hidden_ratio * dim / 3)
        return SwiGLU(dim, -(-hidden // 8) * 8, dropout=dropout)
    if key == "none":
        return None
    raise ConfigError(f"unknown mlp '{name}'. Known: {', '.join(MLPS)}")
