"""Retention (RetNet, Sun et al. 2023): linear attention with a scalar decay per head.

    S_t = gamma_t * S_{t-1} + k_t^T v_t,        o_t = (scale * q_t) S_t

Tensors are `[B, T, H, D]`; the state `S` is `[B, H, Dk, Dv]`. `gamma` is the per-head decay `[H]`
in (0, 1], or a per-token decay `[B, T, H]` (a mixer sets it to 1 at padded positions, which then
leave the state untouched). `naive_retention` is the definition, `chunk_retention` the fast form,
`retention_step` one recurrent step on `[B, H, D]` tensors.
"""

from __future__ import annotations

import torch

from polyformer.core.errors import DataError
from polyformer.core.ops._linear_common import (
    acc_dtype,
    causal_mask,
    chunk_len,
    from_chunks,
    init_state,
    resolve_scale,
    scan_states,
    segsum_exp,
    to_chunks,
)


def _log_gamma(gamma: torch.Tensor, B: int, T: int, H: int, dtype: torch.dtype) -> torch.Tensor:
    """Per-token log decay `[B, T, H]` from gamma `[H]` or `[B, T, H]`."""
    if tuple(gamma.shape) not in ((H,), (B, T, H)):
        raise DataError(f"gamma must have shape [H] or [B, T, H] = {[B, T, H]}, got {list(gamma.shape)}")
    return torch.log(gamma.to(dtype)).expand(B, T, H)


def naive_retention(q, k, v, gamma, *, scale=None, initial_state=None, output_final_state=False):
    """Reference retention: a plain loop over time steps (the definition of correctness)."""
    B, T, H, K = q.shape
    at = acc_dtype(q.dtype)
    scale = resolve_scale(scale, K)
    decay = _log_gamma(gamma, B, T, H, at).exp()
    S = init_state(initial_state, B, H, K, v.shape[-1], at, q.device)
    dt = v.dtype
    q, k, v = (x.to(at) for x in (q, k, v))
    outs = []
    for t in range(T):
        S = decay[:, t, :, None, None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    return torch.stack(outs, 1).to(dt), (S if output_final_state else None)


def chunk_retention(
    q, k, v, gamma, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64
):
    """Chunked retention: a decay-masked quadratic form inside each chunk, states passed between chunks.

    All chunks are processed by batched matmuls at once; only the `[B, H, Dk, Dv]` state update
    loops over chunks. Decays are formed as `exp(G_i - G_j)` with j <= i inside the chunk and as
    decays towards the chunk's ends, so no factor exceeds 1. With one decay per head (`gamma[H]`)
    the decay pattern is the same in every chunk and is formed once. Half-precision inputs are
    computed in float32 and cast back.
    """
    B, T, H, K = q.shape
    dt, at = q.dtype, acc_dtype(q.dtype)
    scale = resolve_scale(scale, K)
    S0 = init_state(initial_state, B, H, K, v.shape[-1], at, q.device)
    C = chunk_len(chunk_size, T)
    qc, kc, vc = (to_chunks(x.to(at), C) for x in (q, k, v))  # [B, H, N, C, D]
    N = qc.shape[2]
    lg = _log_gamma(gamma, B, T, H, at)
    per_head = gamma.dim() == 1
    if per_head:  # within-chunk cumulative log decay, [1, H, 1, C], shared by all chunks
        G = (lg[0, 0, :, None] * torch.arange(1, C + 1, device=q.device, dtype=at)).reshape(1, H, 1, C)
    else:
        G = to_chunks(lg, C).cumsum(-1)  # [B, H, N, C]
    G_end = G[..., -1:]
    # intra-chunk: (q k^T * D) v with D[i, j] = scale * exp(G_i - G_j) for j <= i
    o = ((qc @ kc.transpose(-1, -2)) * (segsum_exp(G, causal_mask(C, q.device)) * scale)) @ vc
    # inter-chunk: states entering each chunk, decayed to each query position
    inc = (kc * (G_end - G).exp()[..., None]).transpose(-1, -2) @ vc  # [B, H, N, K, V]
    states, S = scan_states(G_end.exp()[..., None].expand(-1, -1, N, -1, -1), inc, S0)
    o = o + (qc * (G.exp()[..., None] * scale)) @ states
    r = T - (N - 1) * C  # valid steps in the last chunk
    if output_final_state and per_head and r < C:  # the zero-padded steps must not decay the final state
        G_r = G[0, :, 0, :r]  # [H, r]
        k_r = kc[:, :, -1, :r] * (G_r[:, -1:] - G_r).exp()[..., None]
        S = G_r[:, -1].exp()[:, None, None] * states[:, :, -1] + k_r.transpose(-1, -2) @ vc[:, :, -1, :r]
    return from_chunks(o.to(dt), T), (S if output_final_state else None)


def retention_step(q_t, k_t, v_t, gamma, state, *, scale=None):
    """One recurrent step. `q_t, k_t[B, H, Dk]`, `v_t[B, H, Dv]`, `gamma[H]` or `[B, H]`, `state[B, H, Dk, Dv]`
    (None for zeros). Returns `(o_t[B, H, Dv], state)`."""
    B, H, K = q_t.shape
    at = acc_dtype(q_t.dtype)
    scale = resolve_scale(scale, K)
    S = init_state(state, B, H, K, v_t.shape[-1], at, q_t.device)
    g = gamma.to(at).expand(B, H)[..., None, None]
    S = g * S + k_t.to(at)[..., :, None] * v_t.to(at)[..., None, :]
    o = torch.einsum("bhk,bhkv->bhv", q_t.to(at) * scale, S)
    return o.to(q_t.dtype), S


def retention(
    q, k, v, gamma, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64, mode="chunk"
):
    """Retention `(q, k, v [B, T, H, D], gamma [H] | [B, T, H]) -> (o [B, T, H, Dv], final_state | None)`.

    `mode="chunk"` (default) runs `chunk_retention`, `"recurrent"`/`"naive"` the per-step loop.
    """
    if mode in ("recurrent", "naive"):
        return naive_retention(
            q, k, v, gamma, scale=scale, initial_state=initial_state, output_final_state=output_final_state
        )
    return chunk_retention(
        q,
        k,
        v,
        gamma,
        scale=scale,
        initial_state=initial_state,
        output_final_state=output_final_state,
        chunk_size=chunk_size,
    )
