"""PatchTST (Nie et al., ICLR 2023): channel-independent Transformer over patches of each variate's window."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.timeseries.models.encoder import Encoder
from polyformer.timeseries.models.norm import denormalize, normalize


class PatchTSTNet(nn.Module):
    """Each variate alone: its window cut into overlapping patches, patches embedded and mixed, a flatten head.

    The window is padded at the end by repeating its last value `stride` times, cut into
    `(seq_len - patch_len) // stride + 2` patches of `patch_len`, each embedded by a linear map plus a
    learned position embedding; a post-norm encoder (BatchNorm as in the paper, any core mixer
    bidirectionally) mixes the patches; the flattened patch tokens map linearly to the horizon.
    All variates share weights (channel independence). `use_norm` is the paper's RevIN without affine.
    """

    def __init__(
        self,
        seq_len: int,
        pred_len: int,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 128,
        n_heads: int = 16,
        e_layers: int = 3,
        d_ff: int = 256,
        dropout: float = 0.2,
        head_dropout: float = 0.0,
        activation: str = "gelu",
        norm: str = "batch",
        use_norm: bool = True,
        mixer: Any = "attention",
    ):
        super().__init__()
        if patch_len < 1 or stride < 1 or patch_len > seq_len + stride:
            raise ConfigError(f"patch_len ({patch_len}) and stride ({stride}) must be >= 1 and fit seq_len ({seq_len})")
        self.patch_len, self.stride, self.use_norm = patch_len, stride, use_norm
        self.num_patches = (seq_len + stride - patch_len) // stride + 1
        self.embed = nn.Linear(patch_len, d_model, bias=False)
        self.position = nn.Parameter(torch.randn(self.num_patches, d_model) * 0.02)
        self.dropout = nn.Dropout(dropout)
        self.encoder = Encoder(d_model, e_layers, mixer, norm=norm, n_heads=n_heads, d_ff=d_ff, dropout=dropout,
                               activation=activation)
        self.head = nn.Sequential(nn.Flatten(start_dim=-2), nn.Linear(self.num_patches * d_model, pred_len),
                                  nn.Dropout(head_dropout))

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        """`x[B, L, N] -> [B, pred_len, N]`."""
        if self.use_norm:
            x, mean, std = normalize(x)
        b, _, n = x.shape
        series = x.transpose(1, 2)  # [B, N, L]
        series = torch.cat([series, series[..., -1:].expand(-1, -1, self.stride)], dim=-1)
        patches = series.unfold(-1, self.patch_len, self.stride)  # [B, N, P, patch_len]
        tokens = self.dropout(self.embed(patches) + self.position)
        tokens = self.encoder(tokens.reshape(b * n, self.num_patches, -1))
        y = self.head(tokens.reshape(b, n, self.num_patches, -1)).transpose(1, 2)
        return denormalize(y, mean, std) if self.use_norm else y
