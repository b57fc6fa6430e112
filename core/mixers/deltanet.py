"""DeltaNet token mixers: the delta rule (Yang et al. 2024) and Gated DeltaNet (Yang et al. 2025).

q/k/v projections, short causal convolutions with SiLU on q/k/v (default on, kernel 4), L2-normalised
q and k, a write strength `beta = sigmoid(linear(x))` per head, the (gated) delta rule per head, a
per-head RMSNorm, a swish output gate and an output projection. `gated=True` (or the registered name
"gated_deltanet") adds the Mamba-2-style decay `g = -exp(A_log) * softplus(linear(x) + dt_bias)`.
"""

from __future__ import annotations

import math

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
from polyformer.core.ops.delta_rule import (
    delta_rule,
    delta_rule_step,
    gated_delta_rule,
    gated_delta_rule_step,
)


@register_mixer("deltanet")
class DeltaNetMixer(TokenMixer):
    """DeltaNet (or Gated DeltaNet); state `{"S": [B, H, Dk, Dv], "conv": [B, C, K-1] | None}`."""

    default_gated = False

    def __init__(
        self,
        dim: int,
        *,
        causal: bool = True,
        num_heads: int = 4,
        mode: str = "auto",
        backend: str = "auto",
        gated: bool | None = None,
        expand_k: float = 1.0,
        expand_v: float = 1.0,
        use_short_conv: bool = True,
        conv_size: int = 4,
        use_output_gate: bool = True,
        allow_neg_eigval: bool = False,
        norm_eps: float = 1e-5,
        chunk_size: int = 64,
    ):
        super().__init__()
        self.name = "gated_deltanet" if (self.default_gated if gated is None else gated) else "deltanet"
        self.gated = self.name == "gated_deltanet"
        self.causal, self.mode, self.requested_backend = causal, check_mode(mode), check_backend(backend)
        self.backend = "fla" if backend == "fla" else "torch"
        self.key_dim, self.value_dim = int(dim * expand_k), int(dim * expand_v)
        if self.key_dim % num_heads or self.value_dim % num_heads:
            raise ConfigError(
                f"{self.name}: key dim {self.key_dim} and value dim {self.value_dim} (dim * expand_k / expand_v) "
                f"must be divisible by num_heads={num_heads}"
            )
        self.num_heads, self.chunk_size, self.allow_neg_eigval = num_heads, chunk_size, allow_neg_eigval
        self.head_k, self.head_v = self.key_dim // num_heads, self.value_dim // num_heads
        self.q_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.k_proj = nn.Linear(dim, self.key_dim, bias=False)
        self.v_proj = nn.Linear(dim, self.value_dim, bias=False)
        self.b_proj = nn.Linear(dim, num_heads, bias=False)
        self.conv = ShortConvolution(2 * self.key_dim + self.value_dim, conv_size) if use_short_conv else None
        if self.gated:  # Mamba-2 decay: A in [1, 16], dt log-uniform in [1e-3, 0.1] through softplus
            self.a_proj = nn.Linear(dim, num_heads, bias=False)
            self.A_log = nn.Parameter(torch.empty(num_heads).uniform_(1, 16).log())
            dt = torch.exp(torch.rand(num_heads) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
            self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        self.g_proj = nn.Linear(dim, self.value_dim, bias=False) if use_output_gate else None
        self.o_norm = RMSNorm(self.head_v, eps=norm_eps)
        self.o_proj = nn.Linear(self.value_dim, dim, bias=False)

    def _features(self, x, mask, conv_cache=None, want_cache=False, step=False):
        """q, k (unit norm), v `[B, T, H, D]`, beta `[B, T, H]`, log decay g `[B, T, H]` or None."""
        qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], -1)
        if self.conv is None:
            qkv = F.silu(qkv)
        else:
            qkv, conv_cache = (
                self.conv.step(qkv, conv_cache) if step else self.conv(qkv, mask, conv_cache, want_cache)
            )
        B, T, H = x.shape[0], x.shape[1], self.num_heads
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.value_dim], -1)
        q = F.normalize(q.reshape(B, T, H, self.head_k), dim=-1)
        k = F.normalize(k.reshape(B, T, H, self.head_k), dim=-1)
        v = v.reshape(B, T, H, self.head_v)
        beta = torch.sigmoid(self.b_proj(x).to(acc_dtype(x.dtype))) * (2.0 if self.allow_neg_eigval else 1.0)
        g = None
        if self.gated:
            dt = F.softplus(self.a_proj(x).to(acc_dtype(x.dtype)) + self.dt_bias)
            g = -self.A_log.exp() * dt
        if mask is not None:
            m = mask[..., None]
            k, v, beta = k * m[..., None].to(k.dtype), v * m[..., None].to(v.dtype), beta * m
            g = None if g is None else g * m
        return q, k, v, beta, g, conv_cache

    def _scan(self, q, k, v, beta, g, initial_state=None, want_state=False):
        self.backend = pick_backend(self.requested_backend, q)
        recurrent = self.mode == "recurrent"
        if self.backend == "fla":
            kind = "fused_recurrent" if recurrent else "chunk"
            opts = dict(
                q=q,
                k=k,
                v=v,
                beta=beta.to(q.dtype),
                initial_state=initial_state,
                output_final_state=want_state,
            )
            if g is None:
                return fla_call(f"delta_rule.{kind}_delta_rule", **opts)
            return fla_call(f"gated_delta_rule.{kind}_gated_delta_rule", g=g, **opts)
        opts = dict(initial_state=initial_state, output_final_state=want_state, chunk_size=self.chunk_size)
        opts["mode"] = "recurrent" if recurrent else "chunk"
        if g is None:
            return delta_rule(q, k, v, beta, **opts)
        return gated_delta_rule(q, k, v, g, beta, **opts)

    def _output(self, o, x):
        o = self.o_norm(o)
        if self.g_proj is not None:
            o = o * F.silu(self.g_proj(x)).reshape(o.shape)
        return self.o_proj(o.reshape(*o.shape[:2], self.value_dim))

    def forward(self, x, *, mask=None, state=None, return_state=False):
        if not self.causal:
            no_state_when_bidirectional(self.name, state, return_state)
            o = bidirectional(lambda x_, m_: self._scan(*self._features(x_, m_)[:5])[0], x, mask)
            return self._output(o, x), None
        state = state or {}
        q, k, v, beta, g, conv = self._features(x, mask, state.get("conv"), return_state)
        o, S = self._scan(q, k, v, beta, g, state.get("S"), return_state)
        return self._output(o, x), ({"S": S, "conv": conv} if return_state else None)

    def step(self, x_t, state):
        """One token; the recurrence runs in torch on every backend (it is a few small ops)."""
        if not self.causal:
            raise step_needs_causal(self.name)
        state = state or {}
        q, k, v, beta, g, conv = self._features(x_t, None, state.get("conv"), True, step=True)
        args = (q[:, 0], k[:, 0], v[:, 0])
        if g is None:
            o, S = delta_rule_step(*args, beta[:, 0], state.get("S"))
        else:
            o, S = gated_delta_rule_step(*args, g[:, 0], beta[:, 0], state.get("S"))
        return self._output(o[:, None], x_t), {"S": S, "conv": conv}

    def init_state(self, batch, device=None, dtype=None):
        device = device or self.o_proj.weight.device
        dtype = dtype or self.o_proj.weight.dtype
        S = torch.zeros(
            batch, self.num_heads, self.head_k, self.head_v, device=device, dtype=acc_dtype(dtype)
        )
        conv = None if self.conv is None else self.conv.init_cache(batch, device, dtype)
        return {"S": S, "conv": conv}


@register_mixer("gated_deltanet")
class GatedDeltaNetMixer(DeltaNetMixer):
    """Gated DeltaNet: DeltaNet with a Mamba-2-style decay per head and token (same options)."""

    default_gated = True
