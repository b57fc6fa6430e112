"""Mixer-level cases: our registry mixers on `x[B, T, dim]`, against peers with the weights copied across.

Peers are built at the same sizes as ours and loaded with our weights, so the equal-output check
compares the same function; their forward is what a user of that library runs on a CPU:
mambapy's MambaBlock (parallel scan), transformers' MambaMixer / Mamba2Mixer torch paths.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.core.cases_ops import HF_LOOP_MAX_T
from benchmarks.core.common import OURS, PEER, REFERENCE, Built, Group, Impl, Sizes, leaf, seeded

MIXER_KW = {  # our mixers at the benchmark's width (defaults otherwise)
    "attention": {},
    "retention": {},
    "gla": {},
    "deltanet": {},
    "gated_deltanet": {},
    "mamba": {},
    "mamba2": {},
}


def _ours_module(name: str, s: Sizes) -> nn.Module:
    from polyformer.core.mixers import build_mixer

    torch.manual_seed(0)
    m = build_mixer(name, dim=s.dim, causal=True, **MIXER_KW[name])
    return m.train()


def _data(name: str):
    def make(T: int, s: Sizes) -> dict:
        g = seeded(10)
        x = torch.randn(s.batch, T, s.dim, generator=g)
        return {"x": x, "grad_out": torch.randn(s.batch, T, s.dim, generator=g), "mixer": name}

    return make


def _decode_data(T: int, s: Sizes) -> dict:
    """A prefill `x[B, T, dim]` and the next token `x_next[B, 1, dim]` (one seeded sequence of T + 1)."""
    x = torch.randn(s.batch, T + 1, s.dim, generator=seeded(10))
    return {"x": x[:, :T].contiguous(), "x_next": x[:, T:].contiguous()}


def _ours(d: dict, s: Sizes) -> Built:
    m = _ours_module(d["mixer"], s)
    x = leaf(d["x"])
    return Built([x], lambda: m(x)[0], module=m)


def _named(name: str):
    """Our mixer `name` on the group's data, whatever mixer the group is about."""
    return lambda d, s: _ours({**d, "mixer": name}, s)


# ----------------------------------------------------------------------- attention with plain softmax


class PlainSoftmaxAttention(nn.Module):
    """Our attention mixer with SDPA replaced by the plain softmax (`naive_attention`): same weights."""

    def __init__(self, mixer: nn.Module):
        super().__init__()
        self.mixer = mixer

    def forward(self, x):
        from polyformer.core.ops.attention import naive_attention

        b, t, _ = x.shape
        q, k, v = self.mixer._qkv(x)
        o = naive_attention(q, k, v, causal=True)
        return self.mixer.out_proj(o.reshape(b, t, -1))


def _attention_plain(d: dict, s: Sizes) -> Built:
    m = PlainSoftmaxAttention(_ours_module("attention", s))
    x = leaf(d["x"])
    return Built([x], lambda: m(x), module=m)


# ---------------------------------------------------------------------------------------- Mamba peers


def _mamba_sizes(ours: nn.Module) -> dict:
    """d_inner, d_state, dt_rank, d_conv of our Mamba mixer, read from its weights."""
    from benchmarks.core import weights

    return weights.mamba_sizes(ours)


def _mambapy(d: dict, s: Sizes) -> Built:
    from mambapy.mamba import MambaBlock, MambaConfig

    from benchmarks.core import weights

    ours = _ours_module("mamba", s)
    z = _mamba_sizes(ours)
    cfg = MambaConfig(
        d_model=s.dim, n_layers=1, d_state=z["d_state"], expand_factor=z["d_inner"] // s.dim,
        dt_rank=z["dt_rank"], d_conv=z["d_conv"], bias=z["bias"], conv_bias=z["conv_bias"], pscan=True,
    )  # fmt: skip
    peer = MambaBlock(cfg).train()
    weights.copy_mamba(ours, peer)
    x = leaf(d["x"])
    return Built([x], lambda: peer(x), module=peer)


def _hf_mamba(use_mambapy: bool):
    def build(d: dict, s: Sizes) -> Built:
        from transformers import MambaConfig
        from transformers.models.mamba.modeling_mamba import MambaMixer

        from benchmarks.core import weights

        ours = _ours_module("mamba", s)
        z = _mamba_sizes(ours)
        cfg = MambaConfig(
            hidden_size=s.dim, state_size=z["d_state"], expand=z["d_inner"] // s.dim, conv_kernel=z["d_conv"],
            time_step_rank=z["dt_rank"], use_bias=z["bias"], use_conv_bias=z["conv_bias"], num_hidden_layers=1,
            use_mambapy=use_mambapy,
        )  # fmt: skip
        peer = MambaMixer(cfg, layer_idx=0).train()
        weights.copy_mamba(ours, peer)
        x = leaf(d["x"])
        return Built([x], lambda: peer(x), module=peer)

    return build


def _hf_mamba2(d: dict, s: Sizes) -> Built:
    from transformers import Mamba2Config
    from transformers.models.mamba2.modeling_mamba2 import Mamba2Mixer

    from benchmarks.core import weights

    ours = _ours_module("mamba2", s)
    z = weights.mamba2_sizes(ours)
    cfg = Mamba2Config(
        hidden_size=s.dim, state_size=z["d_state"], num_heads=z["nheads"], head_dim=z["headdim"],
        n_groups=z["ngroups"], expand=z["d_inner"] // s.dim, conv_kernel=z["d_conv"], chunk_size=z["chunk_size"],
        use_bias=z["bias"], use_conv_bias=z["conv_bias"], num_hidden_layers=1, layer_norm_epsilon=z["norm_eps"],
        time_step_limit=(0.0, float("inf")),
    )  # fmt: skip
    peer = Mamba2Mixer(cfg, layer_idx=0).train()
    weights.copy_mamba2(ours, peer)
    x = leaf(d["x"])
    return Built([x], lambda: peer(x), module=peer)


# --------------------------------------------------------------------------------------------- groups

HF, MAMBAPY = ("transformers",), ("mambapy",)
# every registered mixer (tests/core/test_benchmark_smoke.py checks this against the registry)
STATE_MIXERS = ("attention", "retention", "gla", "deltanet", "gated_deltanet", "mamba", "mamba2")


def _ours_impl(name: str) -> Impl:
    return Impl("ours", f"polyformer {name} mixer", OURS, _ours)


MIXER_GROUPS = (
    Group(
        "mixer", "attention", _data("attention"),
        (
            Impl("ours", "polyformer attention mixer (SDPA)", OURS, _ours),
            Impl("plain", "same mixer, plain softmax attention", REFERENCE, _attention_plain),
        ),
        linear=False,
    ),
    Group("mixer", "retention", _data("retention"), (_ours_impl("retention"),)),
    Group("mixer", "gla", _data("gla"), (_ours_impl("gla"),)),
    Group("mixer", "deltanet", _data("deltanet"), (_ours_impl("deltanet"),)),
    Group(
        "mixer", "mamba", _data("mamba"),
        (
            _ours_impl("mamba"),
            Impl("mambapy", "mambapy MambaBlock (parallel scan)", PEER, _mambapy, None, MAMBAPY),
            Impl("hf-torch", "transformers MambaMixer torch path (loop)", PEER, _hf_mamba(False), HF_LOOP_MAX_T, HF),
            Impl("hf-mambapy", "transformers MambaMixer use_mambapy=True", PEER, _hf_mamba(True), None, HF + MAMBAPY),
        ),
    ),
    Group(
        "mixer", "mamba2", _data("mamba2"),
        (
            _ours_impl("mamba2"),
            Impl("hf-torch", "transformers Mamba2Mixer torch path", PEER, _hf_mamba2, None, HF),
        ),
    ),
    # every mixer in one process at the longest T, repetitions interleaved: the long-context comparison
    Group(
        "mixer", "long_context", _data("attention"),
        (
            Impl("attention", "attention mixer (SDPA)", OURS, _named("attention")),
            Impl("attention-plain", "attention mixer, plain softmax", REFERENCE, _attention_plain),
            *(Impl(n, f"{n} mixer", OURS, _named(n)) for n in ("retention", "gla", "deltanet", "mamba", "mamba2")),
        ),
        linear=False, only_T=(8192,), same_function=False, memory=False,
    ),
    # every registered mixer: the bytes of the state it carries for generation after a prefill of T
    # tokens (attention: its KV cache) and the time of one `step` from it, interleaved in one process
    Group(
        "mixer", "state", _decode_data,
        tuple(Impl(n, f"{n} mixer", OURS, _named(n)) for n in STATE_MIXERS),
        linear=False, same_function=False, memory=False, mode="decode",
    ),
)  # fmt: skip


