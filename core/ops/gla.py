"""Gated linear attention (GLA, Yang et al. 2023): linear attention with a data-dependent decay per key dim.

    S_t = diag(exp(gk_t)) S_{t-1} + k_t^T v_t,        o_t = (scale * q_t) S_t

Tensors are `[B, T, H, D]`, `gk[B, T, H, Dk]` is the log decay (<= 0), the state `S` is
`[B, H, Dk, Dv]`. `naive_gla` is the definition, `chunk_gla` the fast form, `gla_step` one
recurrent step on `[B, H, D]` tensors.
"""

from __future__ import annotations

import torch

from polyformer.core.ops._linear_common import (
    acc_dtype,
    causal_mask,
    chunk_len,
    from_chunks,
    init_state,
    resolve_scale,
    scan_states,
    to_chunks,
)

SUB_CHUNK = 16  # sub-chunk length for strong decays
LOG_SPAN = 30.0  # a block whose decay spans at most exp(30) is computed with factorised decays


def naive_gla(q, k, v, gk, *, scale=None, initial_state=None, output_final_state=False):
    """Reference GLA: a plain loop over time steps (the definition of correctness)."""
    B, T, H, K = q.shape
    dt, at = v.dtype, acc_dtype(q.dtype)
    scale = resolve_scale(scale, K)
    S = init_state(initial_state, B, H, K, v.shape[-1], at, q.device)
    q, k, v, decay = q.to(at), k.to(at), v.to(at), gk.to(at).exp()
    outs = []
    for t in range(T):
        S = decay[:, t, :, :, None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    return torch.stack(outs, 1).to(dt), (S if output_final_state else None)


def _sub_len(C: int) -> int:
    for c in (SUB_CHUNK, 8):
        if C % c == 0 and c < C:
            return c
    return C


def _span(G: torch.Tensor) -> float:
    """Largest decay (in log units) from a block's first step to its last, over all blocks and dims."""
    return float((G[..., 0, :] - G[..., -1, :]).detach().max()) if G.numel() else 0.0


def _diag_blocks(q, k, v, G, exact: bool):
    """`(q k^T * exp(G_i - G_j), j <= i) @ v` for each block `[..., c, D]` on its own.

    Factorised with the block's first step as reference (q factors <= 1, k factors <= exp(span)),
    or, when the span is too large for that, with the exact element-wise `[c, c, Dk]` decays.
    """
    mask = causal_mask(q.shape[-2], q.device)
    if exact:
        diff = (G[..., :, None, :] - G[..., None, :, :]).masked_fill(~mask[..., None], float("-inf"))
        A = (q[..., :, None, :] * k[..., None, :, :] * diff.exp()).sum(-1)
    else:
        ref = G[..., :1, :]
        A = (q * (G - ref).exp()) @ (k * (ref - G).exp()).transpose(-1, -2)
        A = A.masked_fill(~mask, 0)
    return A @ v


def chunk_gla(q, k, v, gk, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64):
    """Chunked GLA: batched matmuls over all chunks, a loop over chunks only for the state.

    Numerically safe for any decay strength. Between chunks only decays towards later positions
    (<= 1) appear. Inside a chunk whose decay spans at most exp(LOG_SPAN), one factorised quadratic
    form is used; for stronger decays the chunk is split into sub-chunks: block (I, J), J < I, takes
    the end of sub-chunk J as reference so both factors are <= 1, and diagonal sub-chunks are
    factorised too or, for extreme decays, formed element-wise (exact, as fla's kernels do).
    Half-precision inputs are computed in float32 and cast back.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    dt, at = q.dtype, acc_dtype(q.dtype)
    scale = resolve_scale(scale, K)
    S0 = init_state(initial_state, B, H, K, V, at, q.device)
    C = chunk_len(chunk_size, T)
    qc, kc, vc = (to_chunks(x.to(at), C) for x in (q * scale, k, v))  # [B, H, N, C, D]
    G = to_chunks(gk.to(at), C).cumsum(-2)  # [B, H, N, C, K], within-chunk cumulative log decay
    N = G.shape[2]
    G_end = G[..., -1:, :]

    # inter-chunk: k decayed to the chunk end feeds the state; q sees the entering state decayed by G
    inc = (kc * (G_end - G).exp()).transpose(-1, -2) @ vc  # [B, H, N, K, V]
    states, S = scan_states(G_end.exp().transpose(-1, -2), inc, S0)
    o = (qc * G.exp()) @ states

    # intra-chunk
    c = C if _span(G) <= LOG_SPAN else _sub_len(C)
    ns = C // c
    blocks = (B, H, N, ns, c)
    qs, ks, Gs = qc.view(*blocks, K), kc.view(*blocks, K), G.view(*blocks, K)
    o_diag = _diag_blocks(qs, ks, vc.view(*blocks, V), Gs, exact=_span(Gs) > LOG_SPAN)
    o = o + o_diag.reshape(B, H, N, C, V)
    if ns > 1:  # sub-chunk pairs J < I, reference point at the end of sub-chunk J
        G_ref = Gs[..., -1, :]  # [B, H, N, ns, K]
        k_ref = (ks * (G_ref[..., None, :] - Gs).exp()).transpose(-1, -2)  # [B, H, N, ns, K, c]
        later = torch.arange(C, device=q.device) // c > torch.arange(ns, device=q.device)[:, None]  # [J, i]
        dq = (G[..., None, :, :] - G_ref[..., :, None, :]).masked_fill(~later[..., None], float("-inf"))
        A_off = (qc[..., None, :, :] * dq.exp()) @ k_ref  # [B, H, N, J, C, c]
        o = o + A_off.permute(0, 1, 2, 4, 3, 5).reshape(B, H, N, C, C) @ vc
    return from_chunks(o.to(dt), T), (S if output_final_state else None)


def gla_step(q_t, k_t, v_t, gk_t, state, *, scale=None):
    """One recurrent step. `q_t, k_t, gk_t[B, H, Dk]`, `v_t[B, H, Dv]`, `state[B, H, Dk, Dv]` (None for
    zeros). Returns `(o_t[B, H, Dv], state)`."""
    B, H, K = q_t.shape
    at = acc_dtype(q_t.dtype)
    scale = resolve_scale(scale, K)
    S = init_state(state, B, H, K, v_t.shape[-1], at, q_t.device)
    S = gk_t.to(at).exp()[..., None] * S + k_t.to(at)[..., :, None] * v_t.to(at)[..., None, :]
    o = torch.einsum("bhk,bhkv->bhv", q_t.to(at) * scale, S)
    return o.to(q_t.dtype), S


def gla(
    q, k, v, gk, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64, mode="chunk"
):
    """GLA `(q, k, v [B, T, H, D], gk [B, T, H, Dk]) -> (o [B, T, H, Dv], final_state | None)`.

    `mode="chunk"` (default) runs `chunk_gla`, `"recurrent"`/`"naive"` the per-step loop.
    """
    if mode in ("recurrent", "naive"):
        return naive_gla(
            q, k, v, gk, scale=scale, initial_state=initial_state, output_final_state=output_final_state
        )
    return chunk_gla(
        q,
        k,
        v,
        gk,
        scale=scale,
        initial_state=initial_state,
        output_final_state=output_final_state,
        chunk_size=chunk_size,
    )
