"""Mamba's selective scan as a compiled CPU kernel: the `selective_scan` op's fast path for CPU tensors.

S6 has a decay per (channel, state), so it has no matmul form: the pure-PyTorch chunked form does the
same element-wise work as the recurrence, in many passes over memory. This kernel
(`csrc/selective_scan_cpu.cpp`) walks the sequence once per block of channels with the states held in
the cache, SIMD over channels (ATen's `at::vec::Vectorized`), in parallel over batch rows and channel
blocks, with the softplus of delta, `D u` and the `silu(z)` gate fused in; its backward pass comes from
per-chunk state checkpoints. It is compiled with `torch.utils.cpp_extension` on first use (about a
minute, once per machine and kernel version: the build is cached under `TORCH_EXTENSIONS_DIR`, default
`~/.cache/torch_extensions`, under a name that carries a hash of the source) and needs a C++ compiler;
`cpu_kernel_available()` says whether it builds here.

`selective_scan_cpu` takes and returns exactly what `selective_scan` does (float32 / float64; half
inputs are computed in float32). Mixers use it with `backend="cpu"`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

import torch
from torch.autograd.function import once_differentiable

from polyformer.core.errors import ConfigError, DataError
from polyformer.core.ops.selective_scan import _prepare

__all__ = ["selective_scan_cpu", "cpu_kernel_available", "load_cpu_kernel"]

log = logging.getLogger(__name__)
SOURCE = Path(__file__).resolve().parent / "csrc" / "selective_scan_cpu.cpp"
# SIMD by what PyTorch detected on this CPU: the kernel is written with ATen's `at::vec::Vectorized`,
# whose width and intrinsics follow these macros (the same flags torch.compile's C++ code uses).
VECTOR_FLAGS = {
    "AVX2": ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
    "AVX512": [
        "-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx512bw", "-mfma", "-mf16c",
        "-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512",
    ],
}  # fmt: skip
CHECKPOINT_EVERY = 64  # steps between the states the forward pass keeps for the backward pass
CHANNEL_BLOCK = 64  # channels per work item (a multiple of every SIMD width)


def _build_name(capability: str, cflags: list[str]) -> str:
    """The extension's name: the CPU capability (a cache shared between machines never hands a kernel to
    a CPU without its instructions) and a hash of the source and flags (an edited kernel is rebuilt,
    never a stale build reused)."""
    digest = hashlib.sha1(SOURCE.read_bytes() + " ".join(cflags).encode()).hexdigest()[:10]
    return f"polyformer_selective_scan_cpu_{capability.lower()}_{digest}"


@functools.cache
def load_cpu_kernel():
    """Compile (first call on a machine) and import the kernel; raises ConfigError when it cannot build."""
    from torch.utils import cpp_extension

    capability = torch.backends.cpu.get_cpu_capability()  # "DEFAULT", "AVX2", "AVX512", ...
    cflags = ["-O3", "-fopenmp", *VECTOR_FLAGS.get(capability, [])]
    log.info("building polyformer's CPU selective-scan kernel (once per machine, about a minute)")
    try:
        return cpp_extension.load(
            name=_build_name(capability, cflags),
            sources=[str(SOURCE)],
            extra_cflags=cflags,
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


class _CpuScan(torch.autograd.Function):
    """The whole op, `y = (C . h + D u) * silu(z)` with `dt = softplus(delta + bias)` and the final
    state, in one forward and one backward kernel call (D, z, bias optional)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, bias, h0, softplus):
        kernel = load_cpu_kernel()
        chunk = CHECKPOINT_EVERY if any(ctx.needs_input_grad) else 0  # no checkpoints when no backward pass can follow
        y, hT, ckpt = kernel.forward(u, delta, A, B, C, D, z, bias, softplus, h0, CHANNEL_BLOCK, chunk)
        ctx.save_for_backward(u, delta, A, B, C, D, z, bias, ckpt)
        ctx.softplus, ctx.has_h0 = softplus, h0 is not None
        ctx.set_materialize_grads(False)
        return y, hT

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dhT):
        u, delta, A, B, C, D, z, bias, ckpt = ctx.saved_tensors
        dy = torch.zeros_like(u) if dy is None else dy.contiguous()
        dhT = None if dhT is None else dhT.contiguous()  # e.g. the expanded ones of hT.sum()
        du, ddelta, dA, dB, dC, dD, dz, dbias, dh0 = load_cpu_kernel().backward(
            u, delta, A, B, C, D, z, bias, ctx.softplus, dy, dhT, ckpt, ctx.has_h0, CHANNEL_BLOCK, CHECKPOINT_EVERY
        )
        return du, ddelta, dA, dB, dC, dD, dz, dbias, dh0, None


def _check_extras(u, delta_bias):
    """What `_prepare` checks for the arguments it is not given here (the kernel applies them itself)."""
    Dm = u.shape[-1]
    if delta_bias is not None and tuple(delta_bias.shape) != (Dm,):
        raise DataError(f"selective_scan: delta_bias must be [Dm] = [{Dm}], got {tuple(delta_bias.shape)}")


def selective_scan_cpu(
    u, delta, A, B, C, D=None, z=None, *, delta_bias=None, delta_softplus=False,
    initial_state=None, output_final_state=False, chunk_size=None,
):  # fmt: skip
    """`selective_scan` on CPU tensors through the compiled kernel (same arguments and results;
    `chunk_size` is accepted and ignored)."""
    if u.device.type != "cpu":
        raise ConfigError(f"selective_scan_cpu runs on CPU tensors, got {u.device}; use selective_scan on {u.device}")
    out_dtype = u.dtype
    _check_extras(u, delta_bias)
    # shapes, grouped B/C and the accumulation dtype; bias, softplus, D and z are applied by the kernel
    u, delta, A, B, C, h0 = _prepare(u, delta, A, B, C, D, z, None, False, initial_state)
    Bsz, T, Dm = u.shape
    if T == 0:
        final = h0 if h0 is not None else u.new_zeros(Bsz, Dm, A.shape[1])
        return u.new_zeros(Bsz, 0, Dm).to(out_dtype), (final if output_final_state else None)
    ct = u.dtype

    def prep(t):
        return None if t is None else t.to(ct).contiguous()

    y, final = _CpuScan.apply(
        u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(), C.contiguous(),
        prep(D), prep(z), prep(delta_bias), prep(h0), bool(delta_softplus),
    )  # fmt: skip
    return y.to(out_dtype), (final if output_final_state else None)
