"""The Transformer encoder of iTransformer and PatchTST, with any core token mixer in place of attention.

The published models use the original post-norm layer (Time-Series-Library's `EncoderLayer`):

    x = Norm(x + Dropout(Mixer(x)))
    x = Norm(x + Dropout(W2 Dropout(act(W1 x))))

and a final norm after the last layer. Core's `Block` is pre-norm, so this small layer keeps the
published recipe and calls `build_mixer(..., causal=False)` for the token mixer: softmax attention
gives iTransformer / PatchTST, `mamba` the S-Mamba variant, `gla`, `deltanet`, ... their relatives.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.mixers import build_mixer

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


class TokenNorm(nn.Module):
    """LayerNorm over features, or BatchNorm1d over features (PatchTST's choice) for `[B, T, D]` tokens."""

    def __init__(self, dim: int, kind: str = "layer"):
        super().__init__()
        if kind not in ("layer", "batch"):
            raise ConfigError(f"norm must be 'layer' or 'batch', got '{kind}'")
        self.kind = kind
        self.norm = nn.LayerNorm(dim) if kind == "layer" else nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "layer":
            return self.norm(x)
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class EncoderLayer(nn.Module):
    """Post-norm encoder layer: bidirectional token mixer + position-wise feed-forward network."""

    def __init__(
        self,
        d_model: int,
        mixer: Any = "attention",
        *,
        n_heads: int = 8,
        d_ff: int | None = None,
        dropout: float = 0.1,
        activation: str = "gelu",
        norm: str = "layer",
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {sorted(ACTIVATIONS)}, got '{activation}'")
        d_ff = d_ff or 4 * d_model
        self.mixer = build_mixer(mixer, dim=d_model, causal=False, hints={"num_heads": n_heads, "dropout": dropout})
        self.norm1, self.norm2 = TokenNorm(d_model, norm), TokenNorm(d_model, norm)
        self.ff = nn.Sequential(
            nn.Linear(d_model, d_ff), ACTIVATIONS[activation](), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x[B, T, D] -> [B, T, D]`."""
        mixed, _ = self.mixer(x)
        x = self.norm1(x + self.dropout(mixed))
        return self.norm2(x + self.dropout(self.ff(x)))


class Encoder(nn.Module):
    """A stack of `EncoderLayer`s and a final norm."""

    def __init__(self, d_model: int, e_layers: int, mixer: Any = "attention", *, norm: str = "layer", **layer_kw):
        super().__init__()
        if e_layers < 1:
            raise ConfigError(f"e_layers must be >= 1, got {e_layers}")
        self.layers = nn.ModuleList(EncoderLayer(d_model, mixer, norm=norm, **layer_kw) for _ in range(e_layers))
        self.norm = TokenNorm(d_model, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)
