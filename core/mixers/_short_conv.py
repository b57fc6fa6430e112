"""Depthwise causal short convolution with a cache, as used in front of DeltaNet, GLA and Mamba.

`ShortConvolution(dim, kernel_size)` mixes each channel over its last `kernel_size` steps. The cache
is the last `kernel_size - 1` inputs, `[B, dim, kernel_size - 1]`, so a sequence can be processed
whole, in pieces (`forward(..., cache=..., output_final_state=True)`) or one step at a time (`step`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError

ACTIVATIONS = {None: None, "identity": None, "silu": F.silu, "swish": F.silu}


class ShortConvolution(nn.Module):
    """Causal depthwise Conv1d over `[B, T, dim]` inputs, then an optional activation (SiLU by default)."""

    def __init__(self, dim: int, kernel_size: int = 4, activation: str | None = "silu", bias: bool = False):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"ShortConvolution activation must be one of {list(ACTIVATIONS)}, got '{activation}'"
            )
        if kernel_size < 1:
            raise ConfigError(f"ShortConvolution kernel_size must be >= 1, got {kernel_size}")
        self.dim, self.kernel_size, self.activation = dim, kernel_size, activation
        self.weight = nn.Parameter(torch.empty(dim, 1, kernel_size))
        self.bias = nn.Parameter(torch.empty(dim)) if bias else None
        bound = 1 / math.sqrt(kernel_size)  # nn.Conv1d's default initialisation for a depthwise conv
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def _act(self, y: torch.Tensor) -> torch.Tensor:
        fn = ACTIVATIONS[self.activation]
        return y if fn is None else fn(y)

    def init_cache(self, batch: int, device=None, dtype=None) -> torch.Tensor:
        """An empty cache (zeros, as if the sequence were preceded by zero inputs)."""
        return torch.zeros(batch, self.dim, self.kernel_size - 1, device=device, dtype=dtype)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: torch.Tensor | None = None,
        output_final_state: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`x[B, T, dim]` -> `(y[B, T, dim], cache | None)`.

        `mask[B, T]` (True at valid tokens) zeroes padded inputs. With right padding, the returned
        cache holds the last inputs up to each sequence's last valid token, so stepping on from it
        continues that sequence.
        """
        B, T, D = x.shape
        if mask is not None:
            x = x * mask[..., None].to(x.dtype)
        prefix = self.init_cache(B, x.device, x.dtype) if cache is None else cache.to(x.dtype)
        xp = torch.cat([prefix, x.transpose(1, 2)], -1)  # [B, D, K-1+T]
        y = self._act(F.conv1d(xp, self.weight.to(x.dtype), self._bias(x.dtype), groups=D)).transpose(1, 2)
        if not output_final_state:
            return y, None
        W = self.kernel_size - 1
        if mask is None:
            new_cache = xp[..., xp.shape[-1] - W :].contiguous()  # a copy: a view would keep all of xp alive
        else:  # the window that ends at each sequence's last valid token
            idx = mask.long().sum(1)[:, None] + torch.arange(W, device=x.device)
            new_cache = xp.gather(-1, idx[:, None, :].expand(B, D, W))
        return y, new_cache

    def step(self, x_t: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: `x_t[B, 1, dim]`, `cache[B, dim, kernel_size - 1]` (None for zeros) -> `(y_t[B, 1, dim], cache)`."""
        B, _, D = x_t.shape
        prefix = self.init_cache(B, x_t.device, x_t.dtype) if cache is None else cache.to(x_t.dtype)
        window = torch.cat([prefix, x_t.transpose(1, 2)], -1)  # [B, D, K]
        y = (window * self.weight[:, 0].to(x_t.dtype)).sum(-1)
        if self.bias is not None:
            y = y + self.bias.to(x_t.dtype)
        return self._act(y)[:, None, :], window[..., 1:]

    def _bias(self, dtype):
        return None if self.bias is None else self.bias.to(dtype)

    def extra_repr(self) -> str:
        return f"{self.dim}, kernel_size={self.kernel_size}, activation={self.activation}, bias={self.bias is not None}"
