"""Positional encodings: RoPE (1D, 2D), ALiBi, sinusoidal and learned absolute tables, table resampling.

Rotary embeddings act on per-head tensors `x[B, T, H, D]` (the layout of `polyformer.core.ops.attention`)
with the rotate-half convention (GPT-NeoX / LLaMA): the pair `(x[i], x[i + D/2])` turns by angle
`position * base^(-2i/D)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError, DataError


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """`[x1, x2] -> [-x2, x1]` over the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `x[B, T, H, D]` by `cos, sin` of shape `[T, D]` or `[B, T, D]`."""
    cos = cos.to(x.dtype).unsqueeze(-2)
    sin = sin.to(x.dtype).unsqueeze(-2)
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """1D rotary position embedding (Su et al., 2021) with a cos/sin table cached per device.

    `forward(x, offset=0)` rotates `x[B, T, H, D]` at positions `offset + arange(T)`; `offset` is an int
    (whole batch, served from the cache) or a LongTensor `[B]` (one start per sequence, e.g. decoding
    after a padded prefill). `positions=` gives explicit positions `[T]` or `[B, T]` instead.
    Angles are always float32 (the table is no buffer, so `model.to(bfloat16)` cannot degrade it);
    both paths give bit-identical values.
    """

    def __init__(self, dim: int, *, base: float = 10000.0, max_len: int = 2048):
        super().__init__()
        if dim % 2:
            raise ConfigError(f"rotary embedding needs an even head dim, got {dim}")
        self.dim, self.base, self.max_len = dim, base, max_len
        self._inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self._cache: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`cos, sin [..., D]` (float32) for integer `positions[...]`."""
        angles = positions.to(torch.float32)[..., None] * self._inv_freq.to(positions.device)
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos(), angles.sin()

    def _table(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self._cache.get(device, (None, None))
        if cos is None or cos.shape[0] < length:
            size = max(length, self.max_len, 0 if cos is None else 2 * cos.shape[0])
            cos, sin = self.cos_sin(torch.arange(size, device=device))
            self._cache[device] = (cos, sin)
        return cos, sin

    def forward(self, x: torch.Tensor, offset: int | torch.Tensor = 0, positions: torch.Tensor | None = None) -> torch.Tensor:
        t = x.shape[1]
        if positions is None and isinstance(offset, torch.Tensor):
            positions = offset.to(x.device)[:, None] + torch.arange(t, device=x.device)
        if positions is not None:
            cos, sin = self.cos_sin(positions.to(x.device))
        else:
            cos, sin = self._table(offset + t, x.device)
            cos, sin = cos[offset : offset + t], sin[offset : offset + t]
        return apply_rotary(x, cos, sin)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base}"


class RotaryEmbedding2D(nn.Module):
    """2D RoPE for a grid of image patches: the first half of the head dim turns with the row index,
    the second half with the column index (axial RoPE as in RoPE-ViT, default base 100).

    `forward(x[B, N, H, D], grid=(h, w))` with `N == h * w` tokens in row-major order. The first
    `num_prefix_tokens` tokens (e.g. a CLS token) are left unrotated.
    """

    def __init__(self, dim: int, *, base: float = 100.0, num_prefix_tokens: int = 0):
        super().__init__()
        if dim % 4:
            raise ConfigError(f"2D rotary embedding needs a head dim divisible by 4, got {dim}")
        self.num_prefix_tokens = num_prefix_tokens
        self.rope = RotaryEmbedding(dim // 2, base=base, max_len=64)

    def forward(self, x: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        h, w = (int(g) for g in grid)
        n = self.num_prefix_tokens
        if x.shape[1] != n + h * w:
            raise DataError(f"2D RoPE: {x.shape[1]} tokens do not fit a {h}x{w} grid plus {n} prefix token(s)")
        rows = torch.arange(h, device=x.device).repeat_interleave(w)
        cols = torch.arange(w, device=x.device).repeat(h)
        body = x[:, n:]
        xr, xc = body.chunk(2, dim=-1)
        body = torch.cat([self.rope(xr, positions=rows), self.rope(xc, positions=cols)], dim=-1)
        return torch.cat([x[:, :n], body], dim=1) if n else body


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Per-head ALiBi slopes (Press et al., 2022): a geometric series, interleaved for non-powers of two."""

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    closest = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_two(closest)
    if closest < num_heads:
        slopes += power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(num_heads: int, tq: int, tk: int | None = None, *, device=None, dtype=None) -> torch.Tensor:
    """Additive ALiBi bias `[1, H, Tq, Tk]` = `-slope * |i - j|`, queries aligned to the end of the keys.

    Symmetric in distance, so it serves causal (combine with `causal=True`) and bidirectional attention.
    """
    tk = tq if tk is None else tk
    qpos = torch.arange(tk - tq, tk, device=device)[:, None]
    kpos = torch.arange(tk, device=device)[None, :]
    dist = (qpos - kpos).abs().to(torch.float32)
    bias = -alibi_slopes(num_heads).to(device)[:, None, None] * dist
    return bias[None].to(dtype or torch.float32)


def sinusoidal_embedding(positions: torch.Tensor, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Fixed sinusoidal encoding (Vaswani et al., 2017) `[..., dim]`: sines then cosines."""
    half = dim // 2
    freqs = torch.exp(-math.log(base) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    angles = positions.to(torch.float32)[..., None] * freqs
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, dim % 2))


class SinusoidalPositionalEmbedding(nn.Module):
    """Adds the fixed sinusoidal encoding to `x[B, T, D]` at positions `offset + arange(T)`."""

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.dim, self.base = dim, base

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        positions = torch.arange(offset, offset + x.shape[1], device=x.device)
        return x + sinusoidal_embedding(positions, self.dim, self.base).to(x.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned table `[num_positions, D]` to `x[B, T, D]` at positions `offset + arange(T)`."""

    def __init__(self, num_positions: int, dim: int, init_std: float = 0.02):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_positions, dim) * init_std)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        n = self.weight.shape[0]
        if offset + x.shape[1] > n:
            raise DataError(
                f"sequence of {offset + x.shape[1]} positions is longer than the learned table ({n}); "
                "build the model with a larger max length or resize the table with interpolate_pos_embed"
            )
        return x + self.weight[offset : offset + x.shape[1]].to(x.dtype)


def interpolate_pos_embed(
    table: torch.Tensor,
    new_size: int | Sequence[int],
    *,
    old_size: int | Sequence[int] | None = None,
    num_prefix_tokens: int = 0,
    mode: str | None = None,
    antialias: bool = True,
) -> torch.Tensor:
    """Resample an absolute position table to a new length (int) or grid `(h, w)`, as timm does for ViTs.

    `table` is `[N, D]` or `[1, N, D]` with `num_prefix_tokens` leading rows (CLS, registers) kept as
    they are; the rest is a sequence of length `old_size` (default: all of it) or a row-major grid of
    shape `old_size` (default: square). Modes default to "linear" (1D) and "bicubic" (2D); the
    computation runs in float32 and returns the table's dtype and layout.
    """
    squeeze = table.ndim == 2
    t = table[None] if squeeze else table
    if t.ndim != 3 or t.shape[0] != 1:
        raise DataError(f"position table must be [N, D] or [1, N, D], got {tuple(table.shape)}")
    prefix, body = t[:, :num_prefix_tokens], t[:, num_prefix_tokens:]
    n, dim = body.shape[1], body.shape[2]
    two_d = not isinstance(new_size, int)
    if two_d:
        new_size = tuple(int(s) for s in new_size)
        if old_size is None:
            side = int(math.isqrt(n))
            if side * side != n:
                raise DataError(f"cannot infer a square grid from {n} positions; pass old_size=(h, w)")
            old_size = (side, side)
        old_size = tuple(int(s) for s in old_size)
        if old_size[0] * old_size[1] != n:
            raise DataError(f"old_size {old_size} does not match the table's {n} positions")
        grid = body.float().reshape(1, *old_size, dim).permute(0, 3, 1, 2)
        mode = mode or "bicubic"
        aa = antialias and mode in ("bilinear", "bicubic")
        grid = F.interpolate(grid, size=new_size, mode=mode, antialias=aa, align_corners=False if mode != "nearest" else None)
        body = grid.permute(0, 2, 3, 1).reshape(1, new_size[0] * new_size[1], dim)
    else:
        if old_size is not None and int(old_size) != n:
            raise DataError(f"old_size {old_size} does not match the table's {n} positions")
        mode = mode or "linear"
        seq = F.interpolate(body.float().transpose(1, 2), size=new_size, mode=mode, align_corners=False if mode != "nearest" else None)
        body = seq.transpose(1, 2)
    out = torch.cat([prefix.float(), body], dim=1).to(table.dtype)
    return out[0] if squeeze else out
