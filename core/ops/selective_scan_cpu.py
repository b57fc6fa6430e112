"""Mamba's selective scan as a compiled CPU kernel: the `selective_scan` op's fast path for CPU tensors.

S6 has a decay per (channel, state), so it has no matmul form: the pure-PyTorch chunked form does the
same element-wise work as the recurrence, in many passes over memory. This kernel
(`csrc/selective_scan_cpu.cpp`) walks the sequence once per block of channels with the states held in
the cache, in parallel over batch rows and channel blocks, and gets its backward pass from per-chunk
state checkpoints. It is compiled with `torch.utils.cpp_extension` on first use (about a minute, once
per machine: the build is cached under `TORCH_EXTENSIONS_DIR`, default `~/.cache/torch_extensions`) and
needs a C++ compiler; `cpu_kernel_available()` says whether it builds here.

`selective_scan_cpu` takes and returns exactly what `selective_scan` does (float32 / float64; half
inputs are computed in float32). Mixers use it with `backend="cpu"`.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

from polyformer.core.errors import ConfigError
from polyformer.core.ops.selective_scan import _finish, _prepare

__all__ = ["selective_scan_cpu", "cpu_kernel_available", "load_cpu_kernel"]

log = logging.getLogger(__name__)
SOURCE = Path(__file__).resolve().parent / "csrc" / "selective_scan_cpu.cpp"
# Vector instructions by what PyTorch detected on this CPU (the build's name carries it, so a cache
# shared between machines never hands a kernel to a CPU without its instructions).
VECTOR_FLAGS = {"AVX2": ["-mavx2", "-mfma"], "AVX512": ["-mavx512f", "-mavx2", "-mfma"]}
CHECKPOINT_EVERY = 64  # steps between the states the forward pass keeps for the backward pass


@functools.cache
def load_cpu_kernel():
    """Compile (first call on a machine) and import the kernel; raises ConfigError when it cannot build."""
    from torch.utils import cpp_extension

    capability = torch.backends.cpu.get_cpu_capability()  # "DEFAULT", "AVX2", "AVX512", ...
    log.info("building polyformer's CPU selective-scan kernel (once per machine, about a minute)")
    try:
        return cpp_extension.load(
            name=f"polyformer_selective_scan_cpu_{capability.lower()}",
            sources=[str(SOURCE)],
            extra_cflags=["-O3", "-fopenmp", "-ffast-math", *VECTOR_FLAGS.get(capability, [])],
            extra_ldflags=["-fopenmp"],
            verbose=os.environ.get("POLYFORMER_VERBOSE_BUILD") == "1",
        )
    except Exception as e:  # no compiler, no ninja, a failed build: all mean "not available here"
        raise ConfigError(
            f"polyformer's CPU selective-scan kernel did not build ({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
            "it needs a C++ compiler (g++ or clang++) and ninja; use backend='torch' instead"
        ) from e


@functools.cache
def cpu_kernel_available() -> bool:
    """True when the CPU kernel builds (or is already built) on this machine."""
    try:
        load_cpu_kernel()
    except ConfigError as e:
        log.warning("%s", e)
        return False
    return True


def _channel_block(Dg: int, rows: int) -> int:
    """Channels per work item: a divisor of the channels per group, at most 32, and small enough to leave
    several items per thread."""
    threads = max(1, torch.get_num_threads())
    limit = max(1, min(32, (rows * Dg) // (4 * threads)))
    return max(b for b in range(1, limit + 1) if Dg % b == 0)


class _CpuScan(torch.autograd.Function):
    """`y_t = C_t . h_t` and the final state (no D / z: those are autograd ops around it)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, h0):
        kernel = load_cpu_kernel()
        blk = _channel_block(u.shape[-1] // B.shape[-2], u.shape[0] * B.shape[-2])
        y, hT, ckpt = kernel.forward(u, delta, A, B, C, h0, blk, CHECKPOINT_EVERY)
        ctx.save_for_backward(u, delta, A, B, C, ckpt)
        ctx.blk, ctx.has_h0 = blk, h0 is not None
        ctx.set_materialize_grads(False)
        return y, hT

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dhT):
        u, delta, A, B, C, ckpt = ctx.saved_tensors
        if dy is None:
            dy = torch.zeros_like(u)
        g_du, g_la, dA, dB, dC, dh0 = load_cpu_kernel().backward(
            u, delta, A, B, C, dy, dhT, ckpt, ctx.has_h0, ctx.blk, CHECKPOINT_EVERY
        )
        du = g_du * delta
        ddelta = g_la.addcmul_(g_du, u)
        return du, ddelta, dA, dB, dC, (dh0 if ctx.has_h0 else None)


def selective_scan_cpu(
    u, delta, A, B, C, D=None, z=None, *, delta_bias=None, delta_softplus=False,
    initial_state=None, output_final_state=False, chunk_size=None,
):  # fmt: skip
    """`selective_scan` on CPU tensors through the compiled kernel (same arguments and results;
    `chunk_size` is accepted and ignored)."""
    if u.device.type != "cpu":
        raise ConfigError(f"selective_scan_cpu runs on CPU tensors, got {u.device}; use selective_scan on {u.device}")
    out_dtype = u.dtype
    u, delta, A, B, C, h0 = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state)
    Bsz, T, Dm = u.shape
    if T == 0:
        final = h0 if h0 is not None else u.new_zeros(Bsz, Dm, A.shape[1])
        return _finish(u.new_zeros(Bsz, 0, Dm), u, D, z, out_dtype), (final if output_final_state else None)
    y, final = _CpuScan.apply(
        u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
        None if h0 is None else h0.contiguous(),
    )  # fmt: skip
    return _finish(y, u, D, z, out_dtype), (final if output_final_state else None)

