"""The GLA token mixer: gated linear attention (Yang et al. 2023), the layer recipe of fla's GatedLinearAttention.

q/k/v projections (keys `expand_k * dim`, values `expand_v * dim`), an optional short convolution,
a low-rank projection for the per-key-dim log decay `logsigmoid(.) / gate_logit_normalizer`, the
GLA recurrence per head, a per-head RMSNorm, a swish output gate and an output projection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.layers.norms import RMSNorm
from polyformer.core.mixers._short_conv import ShortConvolution
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
from polyformer.core.ops.gla import gla, gla_step


@register_mixer("gla")
class GLAMixer(TokenMixer):
    """Gated linear attention; state `{"S": [B, H, Dk, Dv], "conv": [B, C, K-1] | None}`."""

    def __init__(
        self,
        dim: int,
        *,
        causal: bool = True,
        num_heads: int = 4,
        mode: str = "auto",
        backend: str = "auto",
        expand_k: float = 0.5,
        expand_v: float = 1.0,
        gate_low_rank_dim: int = 16,
        gate_logit_normalizer: float = 16.0,
        clamp_min: float | None = None,
        use_short_conv: bool = False,
        conv_size: int = 4,
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
                f"gla: key dim {self.key_dim} and value dim {self.value_dim} (dim * expand_k / expand_v) "
                f"must be divisible by num_heads={num_heads}"
            )
        self.num_heads, self.chunk_size = num_heads, chunk_size
        self.head_k, self.head_v = self.key_dim // num_heads, self.value_dim // num_heads
        self.gate_logit_normalizer, self.clamp_min = gate_logit_normalizer, clamp_min
        self.q_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.k_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.v_proj = nn.Linear(dim, self.value_dim, bias=False)
        self.gk_proj = nn.Sequential(
            nn.Linear(dim, gate_low_rank_dim, bias=False),
            nn.Linear(gate_low_rank_dim, self.key_dim, bias=True),
        )
        self.g_proj = nn.Linear(dim, self.value_dim, bias=False) if use_output_gate else None
        self.conv = ShortConvolution(2 * self.key_dim + self.value_dim, conv_size) if use_short_conv else None
        self.o_norm = RMSNorm(self.head_v, eps=norm_eps)
        self.o_proj = nn.Linear(self.value_dim, dim, bias=False)

    def _features(self, x, mask, conv_cache=None, want_cache=False, step=False):
        """q, k, v `[B, T, H, D]` and log decay gk `[B, T, H, Dk]`; padded positions become no-ops."""
        qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], -1)
        if self.conv is not None:
            qkv, conv_cache = (
                self.conv.step(qkv, conv_cache) if step else self.conv(qkv, mask, conv_cache, want_cache)
            )
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.value_dim], -1)
        gk = F.logsigmoid(self.gk_proj(x).to(acc_dtype(x.dtype))) / self.gate_logit_normalizer
        if self.clamp_min is not None:
            gk = gk.clamp_min(self.clamp_min)
        if mask is not None:
            m = mask[..., None]
            k, v, gk = k * m.to(k.dtype), v * m.to(v.dtype), gk * m.to(gk.dtype)
        B, T, H = x.shape[0], x.shape[1], self.num_heads
        q, k, gk = (t.reshape(B, T, H, self.head_k) for t in (q, k, gk))
        return q, k, v.reshape(B, T, H, self.head_v), gk, conv_cache

    def _scan(self, q, k, v, gk, initial_state=None, want_state=False):
        self.backend = pick_backend(self.requested_backend, q)
        recurrent = self.mode == "recurrent"
        if self.backend == "fla":
            opts = dict(q=q, k=k, v=v, initial_state=initial_state, output_final_state=want_state)
            if recurrent:
                return fla_call("gla.fused_recurrent_gla", gk=gk, **opts)
            return fla_call("gla.chunk_gla", g=gk, **opts)
        mode = "recurrent" if recurrent else "chunk"
        return gla(
            q,
            k,
            v,
            gk,
            initial_state=initial_state,
            output_final_state=want_state,
            chunk_size=self.chunk_size,
            mode=mode,
        )

    def _output(self, o, x):
        o = self.o_norm(o)
        if self.g_proj is not None:
            o = o * F.silu(self.g_proj(x)).reshape(o.shape)
        return self.o_proj(o.reshape(*o.shape[:2], self.value_dim))

    def forward(self, x, *, mask=None, state=None, return_state=False):
        if not self.causal:
            no_state_when_bidirectional("gla", state, return_state)
            o = bidirectional(lambda x_, m_: self._scan(*self._features(x_, m_)[:4])[0], x, mask)
            return self._output(o, x), None
        state = state or {}
        q, k, v, gk, conv = self._features(x, mask, state.get("conv"), return_state)
        o, S = self._scan(q, k, v, gk, state.get("S"), return_state)
        return self._output(o, x), ({"S": S, "conv": conv} if return_state else None)

    def step(self, x_t, state):
        """One token; the recurrence runs in torch on every backend (it is a few small ops)."""
        if not self.causal:
            raise step_needs_causal("gla")
        state = state or {}
        q, k, v, gk, conv = self._features(x_t, None, state.get("conv"), True, step=True)
        o, S = gla_step(q[:, 0], k[:, 0], v[:, 0], gk[:, 0], state.get("S"))
        return self._output(o[:, None], x_t), {"S": S, "conv": conv}

    def init_state(self, batch, device=None, dtype=None):
        device = device or self.o_proj.weight.device
        dtype = dtype or self.o_proj.weight.dtype
        S = torch.zeros(
            batch, self.num_heads, self.head_k, self.head_v, device=device, dtype=acc_dtype(dtype)
        )
        conv = None if self.conv is None else self.conv.init_cache(batch, device, dtype)
        return {"S": S, "conv": conv}
