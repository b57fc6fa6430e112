"""The retention token mixer: RetNet's multi-scale retention (Sun et al. 2023).

q/k/v projections (keys `expand_k * dim`, values `expand_v * dim`), rotary positions on q and k
(`use_rope`), a fixed decay per head `gamma_h = 1 - 2^(-5 - h)`, the retention recurrence, a
per-head RMSNorm, a swish output gate and an output projection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.layers.norms import RMSNorm
from polyformer.core.mixers.base import TokenMixer, check_mode
from polyformer.core.mixers.registry import register_mixer
from polyformer.core.ops._linear_common import (
    acc_dtype,
    bidirectional,
    check_backend,
    fla_call,
    no_state_when_bidirectional,
    pick_backend,
    step_needs_causal,
)
from polyformer.core.ops.retention import retention, retention_step


def rotary(x: torch.Tensor, pos: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding (rotate-half form) of `x[B, T, H, D]` at positions `pos[B, T]`."""
    half = x.shape[-1] // 2
    at = acc_dtype(x.dtype)
    inv_freq = base ** (-torch.arange(half, device=x.device, dtype=at) / half)
    angle = (pos.to(at)[..., None] * inv_freq)[:, :, None, :]  # [B, T, 1, half]
    cos, sin = angle.cos().to(x.dtype), angle.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)


@register_mixer("retention")
class RetentionMixer(TokenMixer):
    """Multi-scale retention; state `{"S": [B, H, Dk, Dv], "pos": [B] next position}`."""

    def __init__(
        self,
        dim: int,
        *,
        causal: bool = True,
        num_heads: int = 4,
        mode: str = "auto",
        backend: str = "auto",
        expand_k: float = 1.0,
        expand_v: float = 2.0,
        use_rope: bool = True,
        rope_base: float = 10000.0,
        use_output_gate: bool = True,
        norm_eps: float = 1e-5,
        chunk_size: int = 64,
    ):
        super().__init__()
        self.causal, self.mode, self.requested_backend = causal, check_mode(mode), check_backend(backend)
        self.backend = "fla" if backend == "fla" else "torch"
        self.key_dim, self.value_dim = int(dim * expand_k), int(dim * expand_v)
        if self.key_dim % num_heads or self.value_dim % num_heads:
            raise ConfigError(
                f"retention: key dim {self.key_dim} and value dim {self.value_dim} (dim * expand_k / expand_v) "
                f"must be divisible by num_heads={num_heads}"
            )
        self.num_heads, self.chunk_size = num_heads, chunk_size
        self.head_k, self.head_v = self.key_dim // num_heads, self.value_dim // num_heads
        if use_rope and self.head_k % 2:
            raise ConfigError(f"retention: use_rope needs an even head key dim, got {self.head_k}")
        self.use_rope, self.rope_base = use_rope, rope_base
        self.q_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.k_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.v_proj = nn.Linear(dim, self.value_dim, bias=False)
        self.g_proj = nn.Linear(dim, self.value_dim, bias=False) if use_output_gate else None
        self.o_norm = RMSNorm(self.head_v, eps=norm_eps)
        self.o_proj = nn.Linear(self.value_dim, dim, bias=False)

    def log_gamma(self, device, dtype=torch.float32) -> torch.Tensor:
        """log of the per-head decays 1 - 2^(-5 - h); at least float32 (bf16 would round them to 1)."""
        h = torch.arange(self.num_heads, device=device, dtype=torch.float64)
        return torch.log1p(-torch.exp2(-5.0 - h)).to(acc_dtype(dtype))

    def _features(self, x, mask, pos0=None):
        """q, k, v `[B, T, H, D]` with rotary positions from `pos0[B]`, and the log decays."""
        B, T, H = x.shape[0], x.shape[1], self.num_heads
        q = self.q_proj(x).reshape(B, T, H, self.head_k)
        k = self.k_proj(x).reshape(B, T, H, self.head_k)
        v = self.v_proj(x).reshape(B, T, H, self.head_v)
        if self.use_rope:
            pos = torch.arange(T, device=x.device)[None, :] + (0 if pos0 is None else pos0[:, None])
            q, k = rotary(q, pos, self.rope_base), rotary(k, pos, self.rope_base)
        g = self.log_gamma(x.device, x.dtype)  # [H]; per token [B, T, H] (0 at pads) under a mask
        if mask is not None:
            m = mask[:, :, None, None]
            k, v, g = k * m.to(k.dtype), v * m.to(v.dtype), g * mask[..., None]
        return q, k, v, g

    def _scan(self, q, k, v, g, initial_state=None, want_state=False):
        self.backend = pick_backend(self.requested_backend, q)
        recurrent = self.mode == "recurrent"
        if self.backend == "fla":
            name = "simple_gla.fused_recurrent_simple_gla" if recurrent else "simple_gla.chunk_simple_gla"
            g = g.expand(*q.shape[:3])
            return fla_call(
                name, q=q, k=k, v=v, g=g, initial_state=initial_state, output_final_state=want_state
            )
        return retention(
            q, k, v, g.exp(), initial_state=initial_state, output_final_state=want_state,
            chunk_size=self.chunk_size, mode="recurrent" if recurrent else "chunk",
        )  # fmt: skip

    def _output(self, o, x):
        o = self.o_norm(o)
        if self.g_proj is not None:
            o = o * F.silu(self.g_proj(x)).reshape(o.shape)
        return self.o_proj(o.reshape(*o.shape[:2], self.value_dim))

    def forward(self, x, *, mask=None, state=None, return_state=False):
        if not self.causal:
            no_state_when_bidirectional("retention", state, return_state)
            o = bidirectional(lambda x_, m_: self._scan(*self._features(x_, m_))[0], x, mask)
            return self._output(o, x), None
        state = state or {}
        pos0 = state.get("pos")
        o, S = self._scan(*self._features(x, mask, pos0), state.get("S"), return_state)
        if not return_state:
            return self._output(o, x), None
        n = torch.full((x.shape[0],), x.shape[1], device=x.device) if mask is None else mask.long().sum(1)
        return self._output(o, x), {"S": S, "pos": n if pos0 is None else pos0 + n}

    def step(self, x_t, state):
        """One token; the recurrence runs in torch on every backend (it is a few small ops)."""
        if not self.causal:
            raise step_needs_causal("retention")
        state = state or {}
        pos0 = state.get("pos")
        q, k, v, g = self._features(x_t, None, pos0)
        o, S = retention_step(q[:, 0], k[:, 0], v[:, 0], g.exp(), state.get("S"))
        pos = torch.ones(x_t.shape[0], dtype=torch.long, device=x_t.device) + (0 if pos0 is None else pos0)
        return self._output(o[:, None], x_t), {"S": S, "pos": pos}

    def init_state(self, batch, device=None, dtype=None):
        device = device or self.o_proj.weight.device
        dtype = dtype or self.o_proj.weight.dtype
        S = torch.zeros(
            batch, self.num_heads, self.head_k, self.head_v, device=device, dtype=acc_dtype(dtype)
        )
        return {"S": S, "pos": torch.zeros(batch, dtype=torch.long, device=device)}
