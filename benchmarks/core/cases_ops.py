"""Op-level cases: our chunked op vs our naive recurrence vs peers' pure-PyTorch references.

Every op is measured on `[batch, time, heads, dim]` inputs; peers that use another layout get their
own leaf tensors in that layout (so no transpose is timed) and their outputs are moved back to ours
before the equal-output check. Scales are the same everywhere (`head_dim ** -0.5`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmarks.core.common import OURS, PEER, REFERENCE, Built, Group, Impl, Sizes, leaf, seeded

NAIVE_MAX_T = 2048  # per-step loops: measured up to here, n/a beyond (never extrapolated)
# transformers' Mamba torch path indexes one step of full [B, D, T, N] tensors per loop iteration; the
# backward of each index writes a full-size gradient, so its backward is O(T^2) (x4 per doubling of T:
# 0.10 s, 0.37 s, 1.7 s at T = 64, 128, 256 for one selective scan here). Measured up to T = 512.
HF_LOOP_MAX_T = 512
# fla's naive_retention materialises [B, H, T, T] decays as exp2((i - j) * log2(gamma)) for all (i, j)
# and masks j > i after the exp: past T ~ 2800 those overflow to inf and inf * 0 gives NaN outputs
# (fla 0.6, any dtype, since it casts to float32). Measured up to T = 2048 only.
QUADRATIC_PEER_MAX_T = 2048


def _op(name: str):
    """`polyformer.core.ops.<module>` imported lazily (ops may be added while the benchmark is written)."""
    import importlib

    return importlib.import_module(f"polyformer.core.ops.{name}")


def fla_naive(op: str):
    """fla's pure-PyTorch reference module `fla.ops.<op>.naive`.

    These files depend on torch (and einops) only, so they are loaded on their own: importing the
    `fla` package itself imports every fla layer and model (about 20 s here). Falls back to the
    normal import if a file ever needs the rest of fla.
    """
    import importlib
    import importlib.util
    import sys

    name, alias = f"fla.ops.{op}.naive", f"_fla_naive_{op}"
    for loaded in (name, alias):
        if loaded in sys.modules:
            return sys.modules[loaded]
    try:
        root = importlib.util.find_spec("fla").submodule_search_locations[0]
        spec = importlib.util.spec_from_file_location(alias, f"{root}/ops/{op}/naive.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[spec.name] = module
        return module
    except Exception:
        return importlib.import_module(name)


def _fast(module, op: str):
    """The fast form of an op: `chunk_<op>` where the module defines it, else the public `<op>`."""
    return getattr(module, f"chunk_{op}", None) or getattr(module, op)


def _bthd(s: Sizes, T: int, g: torch.Generator, d: int | None = None) -> torch.Tensor:
    return torch.randn(s.batch, T, s.heads, d or s.head_dim, generator=g)


# ------------------------------------------------------------------------------------------- attention


def _attention_data(T: int, s: Sizes) -> dict:
    g = seeded(0)
    q, k, v = (_bthd(s, T, g) for _ in range(3))
    return {"q": q, "k": k, "v": v, "grad_out": _bthd(s, T, g)}


def _attention_sdpa(d: dict, s: Sizes) -> Built:
    from polyformer.core.ops.attention import attention

    q, k, v = leaf(d["q"]), leaf(d["k"]), leaf(d["v"])
    return Built([q, k, v], lambda: attention(q, k, v, causal=True))


def _attention_plain(d: dict, s: Sizes) -> Built:
    from polyformer.core.ops.attention import naive_attention

    q, k, v = leaf(d["q"]), leaf(d["k"]), leaf(d["v"])
    return Built([q, k, v], lambda: naive_attention(q, k, v, causal=True))


# ------------------------------------------------------------------------------------------- retention


def _retention_gamma(H: int) -> torch.Tensor:
    """RetNet's per-head decays `1 - 2^(-5 - h)` (the ones fla's naive_retention hard-codes)."""
    return 1 - torch.pow(2.0, -5.0 - torch.arange(H, dtype=torch.float32))


def _retention_data(T: int, s: Sizes) -> dict:
    g = seeded(1)
    q, k, v = (_bthd(s, T, g) for _ in range(3))
    return {"q": q, "k": k, "v": v, "gamma": _retention_gamma(s.heads), "grad_out": _bthd(s, T, g)}


def _retention_ours(naive: bool):
    def build(d: dict, s: Sizes) -> Built:
        mod = _op("retention")
        fn = mod.naive_retention if naive else _fast(mod, "retention")
        kw = {} if naive else {"chunk_size": s.chunk}
        q, k, v = leaf(d["q"]), leaf(d["k"]), leaf(d["v"])
        return Built([q, k, v], lambda: fn(q, k, v, d["gamma"], **kw)[0])

    return build


def _retention_fla(d: dict, s: Sizes) -> Built:
    naive_retention = fla_naive("retention").naive_retention

    q, k, v = (leaf(d[n].transpose(1, 2).contiguous()) for n in "qkv")  # fla's naive: [B, H, T, D]
    return Built([q, k, v], lambda: naive_retention(q, k, v).transpose(1, 2), probe=lambda: q.grad.transpose(1, 2))


# ------------------------------------------------------------------------------------------------- GLA


def _gla_data(T: int, s: Sizes) -> dict:
    g = seeded(2)
    q, k, v = (_bthd(s, T, g) for _ in range(3))
    gk = F.logsigmoid(_bthd(s, T, g)) / 16  # fla's gate recipe: logsigmoid(.) / gate_logit_normalizer
    return {"q": q, "k": k, "v": v, "gk": gk, "grad_out": _bthd(s, T, g)}


def _gla_ours(naive: bool):
    def build(d: dict, s: Sizes) -> Built:
        mod = _op("gla")
        fn = mod.naive_gla if naive else _fast(mod, "gla")
        kw = {} if naive else {"chunk_size": s.chunk}
        q, k, v, gk = (leaf(d[n]) for n in ("q", "k", "v", "gk"))
        return Built([q, k, v, gk], lambda: fn(q, k, v, gk, **kw)[0])

    return build


def _gla_fla(d: dict, s: Sizes) -> Built:
    naive_recurrent_gla = fla_naive("gla").naive_recurrent_gla  # fla >= 0.2: [B, T, H, D] like ours

    q, k, v, gk = (leaf(d[n]) for n in ("q", "k", "v", "gk"))
    return Built([q, k, v, gk], lambda: naive_recurrent_gla(q, k, v, gk)[0])


# ------------------------------------------------------------------------------------------ delta rule


def _delta_data(T: int, s: Sizes) -> dict:
    g = seeded(3)
    q, k, v = (_bthd(s, T, g) for _ in range(3))
    k = F.normalize(k, dim=-1)  # the caller L2-normalises k
    beta = torch.rand(s.batch, T, s.heads, generator=g) * 0.9 + 0.05
    return {"q": q, "k": k, "v": v, "beta": beta, "grad_out": _bthd(s, T, g)}


def _delta_ours(naive: bool):
    def build(d: dict, s: Sizes) -> Built:
        mod = _op("delta_rule")
        fn = mod.naive_delta_rule if naive else _fast(mod, "delta_rule")
        kw = {} if naive else {"chunk_size": s.chunk}
        q, k, v, beta = (leaf(d[n]) for n in ("q", "k", "v", "beta"))
        return Built([q, k, v, beta], lambda: fn(q, k, v, beta, **kw)[0])

    return build


def _delta_fla(which: str):
    def build(d: dict, s: Sizes) -> Built:
        fla_dr = fla_naive("delta_rule")
        # fla's naive delta rule: [B, H, T, D] tensors, beta [B, H, T]
        q, k, v, beta = (leaf(d[n].transpose(1, 2).contiguous()) for n in ("q", "k", "v", "beta"))
        if which == "recurrence":
            fn = lambda: fla_dr.delta_rule_recurrence(q, k, v, beta)[0].transpose(1, 2)
        else:
            fn = lambda: fla_dr.delta_rule_chunkwise(q, k, v, beta, chunk_size=s.chunk)[0].transpose(1, 2)
        return Built([q, k, v, beta], fn, probe=lambda: q.grad.transpose(1, 2))

    return build


# -------------------------------------------------------------------------------------- selective scan


def _ss_data(T: int, s: Sizes) -> dict:
    """Mamba's S6 inputs: `delta` before softplus with the dt bias of Mamba's init, S4D-real `A`."""
    g = seeded(4)
    Dm, N = s.d_inner, s.d_state
    dt = torch.exp(torch.rand(Dm, generator=g) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
    return {
        "u": torch.randn(s.batch, T, Dm, generator=g),
        "delta": torch.randn(s.batch, T, Dm, generator=g) * 0.5,
        "delta_bias": dt + torch.log(-torch.expm1(-dt)),  # inverse softplus of dt
        "A": -torch.arange(1, N + 1, dtype=torch.float32).repeat(Dm, 1),
        "B": torch.randn(s.batch, T, N, generator=g),
        "C": torch.randn(s.batch, T, N, generator=g),
        "D": torch.ones(Dm),
        "z": torch.randn(s.batch, T, Dm, generator=g),
        "grad_out": torch.randn(s.batch, T, Dm, generator=g),
    }


_SS_LEAVES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _ss_ours(naive: bool, compiled: bool = False):
    def build(d: dict, s: Sizes) -> Built:
        mod = _op("selective_scan")
        fn = mod.naive_selective_scan if naive else _fast(mod, "selective_scan")
        if compiled:
            fn = _op("selective_scan_cpu").selective_scan_cpu
        u, delta, A, B, C, D, z, bias = (leaf(d[n]) for n in _SS_LEAVES)
        return Built(
            [u, delta, A, B, C, D, z, bias],
            lambda: fn(u, delta, A, B, C, D, z, delta_bias=bias, delta_softplus=True)[0],
        )

    return build


def _ss_mambapy(d: dict, s: Sizes) -> Built:
    """mambapy's parallel (Blelloch) scan, as its MambaBlock.ssm calls it (softplus and gate around it)."""
    from mambapy.mamba import MambaBlock

    u, delta, A, B, C, D, z, bias = (leaf(d[n]) for n in _SS_LEAVES)

    def fn():
        dt = F.softplus(delta + bias)
        return MambaBlock.selective_scan(None, u, dt, A, B, C, D) * F.silu(z)

    return Built([u, delta, A, B, C, D, z, bias], fn)


def _ss_hf(d: dict, s: Sizes) -> Built:
    """transformers' torch path of Mamba's selective scan (a per-step loop; channel-first layout)."""
    from transformers.models.mamba.modeling_mamba import mamba_selective_scan

    cf = lambda x: leaf(x.transpose(1, 2).contiguous())
    u, delta, B, C, z = (cf(d[n]) for n in ("u", "delta", "B", "C", "z"))
    A, D, bias = leaf(d["A"]), leaf(d["D"]), leaf(d["delta_bias"])
    fn = lambda: mamba_selective_scan(u, delta, A, B, C, D, z, delta_bias=bias, delta_softplus=True).transpose(1, 2)
    return Built([u, delta, A, B, C, D, z, bias], fn, probe=lambda: u.grad.transpose(1, 2))


# ------------------------------------------------------------------------------------------------- SSD


def _ssd_data(T: int, s: Sizes) -> dict:
    """Mamba-2's SSD inputs: x `[B, T, H, P]`, dt `[B, T, H]` (after softplus), A `[H]` < 0, B/C `[B, T, 1, N]`."""
    g = seeded(5)
    H, P, N = s.ssd_heads, s.ssd_head_dim, s.ssd_state
    dt_bias = torch.exp(torch.rand(H, generator=g) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
    return {
        "x": torch.randn(s.batch, T, H, P, generator=g),
        "dt": F.softplus(torch.randn(s.batch, T, H, generator=g) * 0.5 + torch.log(torch.expm1(dt_bias))),
        "A": -torch.arange(1, H + 1, dtype=torch.float32),
        "B": torch.randn(s.batch, T, 1, N, generator=g),
        "C": torch.randn(s.batch, T, 1, N, generator=g),
        "grad_out": torch.randn(s.batch, T, H, P, generator=g),
    }


def _ssd_ours(naive: bool):
    def build(d: dict, s: Sizes) -> Built:
        mod = _op("ssd")
        fn = mod.naive_ssd if naive else _fast(mod, "ssd")
        kw = {} if naive else {"chunk_size": s.chunk}
        x, dt, A, B, C = (leaf(d[n]) for n in ("x", "dt", "A", "B", "C"))
        return Built([x, dt, A, B, C], lambda: fn(x, dt, A, B, C, **kw)[0])

    return build


def _ssd_hf(d: dict, s: Sizes) -> Built:
    """transformers' torch path of Mamba-2's chunked SSD (`mamba2_chunk_scan`, chunk 256 as in its config)."""
    from transformers.models.mamba2.modeling_mamba2 import mamba2_chunk_scan

    x, dt, A, B, C = (leaf(d[n]) for n in ("x", "dt", "A", "B", "C"))
    return Built([x, dt, A, B, C], lambda: mamba2_chunk_scan(x, dt, A, B, C, chunk_size=256))


# --------------------------------------------------------------------------------------------- groups

FLA, MAMBAPY, HF = ("fla",), ("mambapy",), ("transformers",)

OP_GROUPS = (
    Group(
        "op", "attention", _attention_data,
        (
            Impl("sdpa", "polyformer attention (SDPA, causal)", OURS, _attention_sdpa),
            Impl("plain", "polyformer naive_attention (plain softmax)", REFERENCE, _attention_plain),
        ),
        linear=False,
    ),
    Group(
        "op", "retention", _retention_data,
        (
            Impl("chunk", "polyformer chunk_retention", OURS, _retention_ours(False)),
            Impl("naive", "polyformer naive_retention (recurrence)", REFERENCE, _retention_ours(True), NAIVE_MAX_T),
            Impl("fla-naive", "fla naive_retention (quadratic)", PEER, _retention_fla, QUADRATIC_PEER_MAX_T, FLA),
        ),
    ),
    Group(
        "op", "gla", _gla_data,
        (
            Impl("chunk", "polyformer chunk_gla", OURS, _gla_ours(False)),
            Impl("naive", "polyformer naive_gla (recurrence)", REFERENCE, _gla_ours(True), NAIVE_MAX_T),
            Impl("fla-recurrent", "fla naive_recurrent_gla", PEER, _gla_fla, NAIVE_MAX_T, FLA),
        ),
    ),
    Group(
        "op", "delta_rule", _delta_data,
        (
            Impl("chunk", "polyformer chunk_delta_rule", OURS, _delta_ours(False)),
            Impl("naive", "polyformer naive_delta_rule (recurrence)", REFERENCE, _delta_ours(True), NAIVE_MAX_T),
            Impl("fla-recurrence", "fla delta_rule_recurrence", PEER, _delta_fla("recurrence"), NAIVE_MAX_T, FLA),
            Impl("fla-chunkwise", "fla delta_rule_chunkwise", PEER, _delta_fla("chunkwise"), None, FLA),
        ),
    ),
    Group(
        "op", "selective_scan", _ss_data,
        (
            Impl("chunk", "polyformer selective_scan (chunked)", OURS, _ss_ours(False)),
            Impl("naive", "polyformer naive_selective_scan (recurrence)", REFERENCE, _ss_ours(True), NAIVE_MAX_T),
            # ours too (backend="cpu"), compared with the chunked form like the others
            Impl("cpu-kernel", "polyformer selective_scan_cpu (compiled CPU kernel)", OURS, _ss_ours(False, True)),
            Impl("mambapy-pscan", "mambapy selective_scan (parallel scan)", PEER, _ss_mambapy, None, MAMBAPY),
            Impl("hf-torch", "transformers mamba_selective_scan (torch loop)", PEER, _ss_hf, HF_LOOP_MAX_T, HF),
        ),
    ),
    Group(
        "op", "ssd", _ssd_data,
        (
            Impl("chunk", "polyformer chunk_ssd", OURS, _ssd_ours(False)),
            Impl("naive", "polyformer naive_ssd (recurrence)", REFERENCE, _ssd_ours(True), NAIVE_MAX_T),
            Impl("hf-torch", "transformers mamba2_chunk_scan (torch)", PEER, _ssd_hf, None, HF),
        ),
    ),
)  # fmt: skip
