"""Multi-head softmax self-attention as a token mixer ("attention"): GQA/MQA, qk-norm, RoPE 1D/2D, window."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from polyformer.core.errors import ConfigError, DataError
from polyformer.core.layers.norms import RMSNorm
from polyformer.core.layers.positional import RotaryEmbedding, RotaryEmbedding2D
from polyformer.core.mixers.base import TokenMixer, check_mode
from polyformer.core.mixers.registry import register_mixer
from polyformer.core.ops.attention import (
    attention,
    attention_probs,
    attention_step,
    kv_cache_append,
    kv_cache_init,
)

ROPES = ("none", "1d", "2d")


@register_mixer("attention")
class Attention(TokenMixer):
    """Multi-head self-attention over `F.scaled_dot_product_attention`.

    Args:
        dim: model width.
        causal: causal (decoder) or bidirectional (encoder) attention.
        mode: only the parallel form exists ("auto" or "parallel").
        backend: "auto" or "torch"; `self.backend` is "torch-sdpa".
        num_heads: query heads (default `max(1, dim // 64)`).
        num_kv_heads: key/value heads, `num_heads` by default; fewer gives GQA, 1 gives MQA.
        head_dim: per-head width (default `dim // num_heads`).
        fused_qkv: one projection for q, k, v (True) or separate q and kv projections.
        qk_norm: RMSNorm on queries and keys per head (stabilises large learning rates).
        rope: "none", "1d" (sequence positions) or "2d" (row/column of image patches).
        rope_base: RoPE frequency base (default 10000 for 1D, 100 for 2D).
        grid_size: (h, w) patch grid for 2D RoPE; can also be given to `forward(grid_size=...)`.
        num_prefix_tokens: leading tokens (CLS, registers) that 2D RoPE leaves unrotated.
        window: sliding-window size (each token sees `window` keys back, and forward if bidirectional).
        bias: biases in the projections.
        dropout: dropout on the attention weights (training only).

    `forward` also takes `attn_bias` (additive `[B|1, H|1, T, T]`, e.g. ALiBi or Graphormer biases)
    and `grid_size`. The recurrent state is a KV cache (see `polyformer.core.ops.attention`).
    """

    def __init__(
        self,
        dim: int,
        *,
        causal: bool = True,
        mode: str = "auto",
        backend: str = "auto",
        num_heads: int | None = None,
        num_kv_heads: int | None = None,
        head_dim: int | None = None,
        fused_qkv: bool = True,
        qk_norm: bool = False,
        rope: str = "none",
        rope_base: float | None = None,
        grid_size: Sequence[int] | None = None,
        num_prefix_tokens: int = 0,
        window: int | None = None,
        bias: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if check_mode(mode) not in ("auto", "parallel"):
            raise ConfigError(f"attention has only the parallel form; use mode='auto' or 'parallel', not '{mode}'")
        if backend not in ("auto", "torch"):
            raise ConfigError(f"attention runs on torch SDPA only; use backend='auto' or 'torch', not '{backend}'")
        num_heads = num_heads or max(1, dim // 64)
        num_kv_heads = num_kv_heads or num_heads
        if head_dim is None and dim % num_heads:
            raise ConfigError(f"attention dim ({dim}) must be divisible by num_heads ({num_heads}), or set head_dim")
        if num_heads % num_kv_heads:
            raise ConfigError(f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})")
        if rope not in ROPES:
            raise ConfigError(f"unknown rope '{rope}'. Known: {', '.join(ROPES)}")
        if window is not None and window < 1:
            raise ConfigError(f"attention window must be a positive int or None, got {window}")
        self.dim, self.causal, self.mode, self.backend = dim, causal, "parallel", "torch-sdpa"
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = head_dim or dim // num_heads
        self.window, self.dropout, self.rope_kind = window, dropout, rope
        self.grid_size = tuple(grid_size) if grid_size is not None else None
        q_out, kv_out = num_heads * self.head_dim, num_kv_heads * self.head_dim
        if fused_qkv:
            self.qkv = nn.Linear(dim, q_out + 2 * kv_out, bias=bias)
        else:
            self.q_proj = nn.Linear(dim, q_out, bias=bias)
            self.kv_proj = nn.Linear(dim, 2 * kv_out, bias=bias)
        self.out_proj = nn.Linear(q_out, dim, bias=bias)
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else None
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else None
        if rope == "1d":
            self.rope = RotaryEmbedding(self.head_dim, base=rope_base or 10000.0)
        elif rope == "2d":
            self.rope = RotaryEmbedding2D(self.head_dim, base=rope_base or 100.0, num_prefix_tokens=num_prefix_tokens)
        else:
            self.rope = None

    @classmethod
    def backend_for(cls, device: str) -> str:
        """The backend on `device` ("cpu" / "cuda"): always torch SDPA, which picks its own kernel."""
        return "torch-sdpa"

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q_out, kv_out = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        if hasattr(self, "qkv"):
            q, k, v = self.qkv(x).split([q_out, kv_out, kv_out], dim=-1)
        else:
            q = self.q_proj(x)
            k, v = self.kv_proj(x).chunk(2, dim=-1)
        q = q.view(b, t, self.num_heads, self.head_dim)
        k = k.view(b, t, self.num_kv_heads, self.head_dim)
        v = v.view(b, t, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return q, k, v

    def _rotate(self, q, k, offset, grid_size):
        if self.rope_kind == "1d":
            return self.rope(q, offset), self.rope(k, offset)
        if self.rope_kind == "2d":
            grid = grid_size or self.grid_size
            if grid is None:
                raise ConfigError("attention with rope='2d' needs grid_size=(h, w) in the constructor or forward")
            return self.rope(q, grid), self.rope(k, grid)
        return q, k

    def forward(
        self,
        x: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        state: dict | None = None,
        return_state: bool = False,
        attn_bias: torch.Tensor | None = None,
        grid_size: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, dict | None]:
        """Attend over `x[B, T, D]`; with `state` (a KV cache) continue a causal sequence from it."""
        if (state is not None or return_state) and not self.causal:
            raise ConfigError("bidirectional attention (causal=False) has no recurrent state; build it with causal=True")
        b, t, _ = x.shape
        q, k, v = self._qkv(x)
        if state is None:
            q, k = self._rotate(q, k, 0, grid_size)
            o = attention(
                q, k, v, causal=self.causal, mask=mask, attn_bias=attn_bias, window=self.window,
                dropout_p=self.dropout if self.training else 0.0,
            )
            if return_state:
                cache = kv_cache_init(b, self.num_kv_heads, self.head_dim, device=x.device, dtype=k.dtype)
                state = kv_cache_append(cache, k, v, mask, window=self.window)
        else:
            if attn_bias is not None:
                raise DataError("attn_bias cannot be combined with a KV cache state; decode without attn_bias")
            q, k = self._rotate(q, k, state["pos"], grid_size)
            o, state = attention_step(q, k, v, state, mask=mask, window=self.window)
        y = self.out_proj(o.reshape(b, t, -1))
        if mask is not None:
            y = y.masked_fill(~mask[..., None], 0.0)
        return y, (state if return_state else None)

    @torch.no_grad()
    def attention_weights(
        self,
        x: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        attn_bias: torch.Tensor | None = None,
        grid_size: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """The weights `[B, heads, T, T]` this layer puts on each token of `x[B, T, D]` (for inspection)."""
        q, k, _ = self._qkv(x)
        q, k = self._rotate(q, k, 0, grid_size)
        return attention_probs(q, k, causal=self.causal, mask=mask, attn_bias=attn_bias, window=self.window)

    def step(self, x_t: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        """Decode one token `x_t[B, 1, D]` against the KV cache `state`."""
        if not self.causal:
            raise ConfigError("bidirectional attention (causal=False) cannot step token by token; build it with causal=True")
        return self.forward(x_t, state=state, return_state=True)

    def init_state(self, batch: int, device=None, dtype=None) -> dict:
        """An empty KV cache."""
        w = self.out_proj.weight
        return kv_cache_init(batch, self.num_kv_heads, self.head_dim, device=device or w.device, dtype=dtype or w.dtype)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, heads={self.num_heads}, kv_heads={self.num_kv_heads}, causal={self.causal}, "
            f"rope={self.rope_kind}, window={self.window}, backend={self.backend}"
        )
