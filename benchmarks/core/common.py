"""Building blocks of the benchmark cases: sizes, implementations, groups and the equal-output check."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

OURS, REFERENCE, PEER = "ours", "reference", "peer"


@dataclass(frozen=True)
class Sizes:
    """Shapes shared by every case (fp32, CPU)."""

    batch: int = 1
    dim: int = 256  # mixer width
    heads: int = 4  # op heads (retention, GLA, delta rule, attention)
    head_dim: int = 64  # op head dim, keys and values
    d_inner: int = 512  # selective_scan channels (Mamba: expand 2 x dim)
    d_state: int = 16  # selective_scan state per channel (Mamba default)
    ssd_heads: int = 8  # ssd heads (Mamba-2: d_inner / 64)
    ssd_head_dim: int = 64
    ssd_state: int = 64  # ssd state (B/C width)
    chunk: int = 64  # chunk length of our chunked ops


@dataclass
class Built:
    """One implementation ready to run: leaf inputs, optional module, and a forward in the group's layout."""

    leaves: list[torch.Tensor]
    fn: Callable[[], torch.Tensor]
    module: nn.Module | None = None
    probe: Callable[[], torch.Tensor] | None = None  # after backward: a gradient in the group's layout

    def zero_grad(self) -> None:
        for t in self.leaves:
            t.grad = None
        if self.module is not None:
            self.module.zero_grad(set_to_none=True)

    def fwd_bwd(self, grad_out: torch.Tensor) -> torch.Tensor:
        """Forward, then backward with the fixed output gradient; gradients are reset first."""
        self.zero_grad()
        out = self.fn()
        out.backward(grad_out)
        return out

    def grad(self) -> torch.Tensor:
        return self.probe() if self.probe is not None else self.leaves[0].grad


@dataclass(frozen=True)
class Impl:
    """One implementation of a group: ours, a reference (the definition) or a peer library."""

    name: str  # short key, unique in its group
    label: str  # what it is, for the tables
    role: str  # OURS | REFERENCE | PEER
    build: Callable[[dict, Sizes], Built]
    max_T: int | None = None  # longest sequence measured (per-step loops, quadratic memory)
    requires: tuple[str, ...] = ()  # modules that must import (peers)

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.requires)

    def runs_at(self, T: int) -> bool:
        return self.max_T is None or T <= self.max_T


@dataclass(frozen=True)
class Group:
    """Implementations of one op or mixer, measured side by side on the same data."""

    kind: str  # "op" | "mixer"
    name: str
    make_data: Callable[[int, Sizes], dict]  # seeded inputs (no grad) + "grad_out"
    impls: tuple[Impl, ...] = field(default_factory=tuple)
    linear: bool = True  # linear in T (compared with softmax attention at the longest T)
    only_T: tuple[int, ...] | None = None  # measured at these T only (when they are in the run)
    same_function: bool = True  # False: different functions side by side (no equal-output check)
    memory: bool = True  # False: peak memory is taken from the per-mixer groups instead
    mode: str = "train"  # "train": forward+backward (runner.timing_case); "decode": prefill + step (runner.decode_case)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def impl(self, name: str) -> Impl:
        return next(i for i in self.impls if i.name == name)


def leaf(x: torch.Tensor) -> torch.Tensor:
    """A fresh leaf copy of `x` that requires grad."""
    return x.detach().clone().requires_grad_(True)


def compare(out: torch.Tensor, ref: torch.Tensor, rtol: float = 1e-3, atol_rel: float = 1e-4) -> dict:
    """Max abs / relative difference of `out` against `ref`; ok when allclose(rtol, atol = atol_rel * max|ref|)."""
    out, ref = out.detach().double(), ref.detach().double()
    if out.shape != ref.shape:
        return {"ok": False, "max_abs_diff": float("nan"), "rel_diff": float("nan"), "error": "shape mismatch"}
    diff = (out - ref).abs().max().item()
    scale = ref.abs().max().item()
    ok = bool(torch.allclose(out, ref, rtol=rtol, atol=atol_rel * max(scale, 1e-12)))
    return {"ok": ok, "max_abs_diff": diff, "rel_diff": diff / max(scale, 1e-30)}


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
