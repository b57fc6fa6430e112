"""Shared pieces of the linear-attention ops (retention, GLA, delta rule) and of their mixers.

Layout conventions used by every op here: sequences are `[B, T, H, D]`; inside the chunked forms
they are moved to `[B, H, N, C, D]` (N chunks of C steps, the last one zero-padded); the matrix
state is `[B, H, Dk, Dv]`. Decays are accumulated in `acc_dtype(x.dtype)` (float32 for half inputs),
and the recurrent state lives in that dtype too.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from polyformer.core.errors import ConfigError, DataError

BACKENDS = ("auto", "torch", "fla")
FLA_INSTALL_HINT = "install the GPU extras with: pip install 'polyformer[cuda]'"


def acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype decays and states are accumulated in: float32 for bf16/fp16, else the input dtype."""
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def resolve_scale(scale: float | None, dk: int) -> float:
    """The query scale: `dk ** -0.5` unless given."""
    return dk**-0.5 if scale is None else float(scale)


def chunk_len(chunk_size: int, T: int) -> int:
    """The chunk length used for a sequence of `T` steps: `chunk_size`, or less for short sequences."""
    if int(chunk_size) < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size}")
    return max(1, min(int(chunk_size), -(-T // 16) * 16))


def to_chunks(x: torch.Tensor, C: int) -> torch.Tensor:
    """`[B, T, H, ...]` -> `[B, H, N, C, ...]`, zero-padding T up to a multiple of C."""
    x = x.movedim(1, 2)
    B, H, T = x.shape[:3]
    pad = -T % C
    if pad:
        x = F.pad(x, (0, 0) * (x.dim() - 3) + (0, pad))
    return x.reshape(B, H, (T + pad) // C, C, *x.shape[3:]).contiguous()


def from_chunks(x: torch.Tensor, T: int) -> torch.Tensor:
    """`[B, H, N, C, D]` -> `[B, T, H, D]`, dropping the padding."""
    B, H, N, C, D = x.shape
    return x.reshape(B, H, N * C, D)[:, :, :T].transpose(1, 2)


def init_state(initial_state, B, H, dk, dv, dtype, device) -> torch.Tensor:
    """`initial_state` cast to `dtype`, or zeros `[B, H, dk, dv]`; its shape is checked."""
    if initial_state is None:
        return torch.zeros(B, H, dk, dv, dtype=dtype, device=device)
    if tuple(initial_state.shape) != (B, H, dk, dv):
        raise DataError(
            f"initial_state must have shape [B, H, Dk, Dv] = {[B, H, dk, dv]}, got {list(initial_state.shape)}; "
            "pass the final_state of a previous call on the same batch and heads"
        )
    return initial_state.to(dtype)


def scan_states(decay: torch.Tensor, inc: torch.Tensor, S0: torch.Tensor):
    """Chunk-level state passing `S_{n+1} = decay_n * S_n + inc_n` (a loop over chunks only).

    `decay[B, H, N, Dk|1, 1]`, `inc[B, H, N, Dk, Dv]`. Returns the states entering each chunk,
    stacked as `[B, H, N, Dk, Dv]`, and the state after the last chunk.
    """
    states, S = [], S0
    for inc_n, decay_n in zip(inc.unbind(2), decay.unbind(2)):  # unbind: one backward node, not N
        states.append(S)
        S = torch.addcmul(inc_n, decay_n, S)
    return torch.stack(states, 2), S


def causal_mask(C: int, device, diagonal: int = 0) -> torch.Tensor:
    """Boolean `[C, C]` mask, True where key j <= query i (+ `diagonal`)."""
    return torch.ones(C, C, dtype=torch.bool, device=device).tril(diagonal)


def segsum_exp(G: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`exp(G[..., i] - G[..., j])` where `mask[i, j]`, else 0; never overflows because masked
    entries are set to -inf before the exponential (G is a non-increasing cumulative log decay)."""
    diff = G[..., :, None] - G[..., None, :]
    return diff.masked_fill(~mask, float("-inf")).exp()


# ---------------------------------------------------------------- backends (for the mixers)


@functools.lru_cache(maxsize=1)
def fla_available() -> bool:
    """True when flash-linear-attention (`fla`) imports."""
    try:
        import fla.ops  # noqa: F401
    except Exception:  # ImportError, or a broken triton install
        return False
    return True


def check_backend(backend: str) -> str:
    """Validate a mixer's `backend` argument at construction; `fla` must be importable."""
    if backend not in BACKENDS:
        raise ConfigError(f"mixer backend must be one of {BACKENDS}, got '{backend}'")
    if backend == "fla" and not fla_available():
        raise ConfigError(
            f"backend='fla' needs flash-linear-attention, which is not installed; {FLA_INSTALL_HINT}"
        )
    return backend


FLA_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def pick_backend(requested: str, x: torch.Tensor) -> str:
    """The backend used for input `x`: for "auto", fla's Triton kernels only for CUDA input in a dtype
    they take (fp16/bf16/fp32) with fla importable, else torch."""
    if requested == "torch":
        return "torch"
    if requested == "fla":
        if not x.is_cuda:
            raise ConfigError(
                f"backend='fla' runs Triton kernels on CUDA only, but the input is on {x.device}; "
                "use backend='torch' or 'auto'"
            )
        return "fla"
    return "fla" if (x.is_cuda and x.dtype in FLA_DTYPES and fla_available()) else "torch"


def fla_call(name: str, **kwargs):
    """Call `fla.ops.<name>` (e.g. "gla.chunk_gla") with `[B, T, H, D]` tensors, by keyword only
    (fla's positional order differs between ops, e.g. fused_recurrent_gated_delta_rule(q, k, v, g, gk, gv, beta))."""
    import importlib

    module, fn = name.rsplit(".", 1)
    return getattr(importlib.import_module(f"fla.ops.{module}"), fn)(**kwargs)


def bidirectional(run, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Non-causal form: `run(x, mask)` on the sequence plus `run` on the time-reversed sequence.

    With right padding and pads that leave the state untouched, flipping the whole padded tensor
    is exact: the pads then lead and keep the state at zero until the first valid token.
    """
    fwd = run(x, mask)
    bwd = run(x.flip(1), None if mask is None else mask.flip(1)).flip(1)
    return fwd + bwd


def no_state_when_bidirectional(name: str, state, return_state: bool) -> None:
    """A bidirectional (causal=False) mixer has no recurrent state; asking for one is a config error."""
    if state is not None or return_state:
        raise ConfigError(
            f"mixer '{name}' was built with causal=False (bidirectional): it has no recurrent state, so "
            "state=/return_state=True are not available; build it with causal=True for streaming or generation"
        )


def step_needs_causal(name: str) -> ConfigError:
    """The error `step()` raises on a bidirectional mixer."""
    return ConfigError(
        f"mixer '{name}' was built with causal=False (bidirectional): every output depends on future tokens, "
        "so it cannot be run step by step; build it with causal=True to use step()"
    )
