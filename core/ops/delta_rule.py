"""The delta rule (DeltaNet, Schlag et al. 2021; Yang et al. 2024) and its gated form (Gated DeltaNet, Yang et al. 2025).

    S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,        o_t = (scale * q_t) S_t

with `g = 0` for the plain delta rule. Tensors are `[B, T, H, D]`, `beta[B, T, H]` in (0, 1),
`g[B, T, H]` the log decay (<= 0), the state `S` is `[B, H, Dk, Dv]`; k should be L2-normalised by
the caller. `naive_*` are the definitions, `chunk_*` the fast forms (WY representation / UT
transform of Yang et al. 2024), `*_step` one recurrent step on `[B, H, D]` tensors.
Half-precision inputs are computed in float32 (the triangular solve needs it) and cast back.
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
    segsum_exp,
    to_chunks,
)


def _naive(q, k, v, g, beta, scale, initial_state, output_final_state):
    B, T, H, K = q.shape
    dt, at = v.dtype, acc_dtype(q.dtype)
    scale = resolve_scale(scale, K)
    S = init_state(initial_state, B, H, K, v.shape[-1], at, q.device)
    q, k, v, beta = q.to(at), k.to(at), v.to(at), beta.to(at)
    decay = None if g is None else g.to(at).exp()
    outs = []
    for t in range(T):
        if decay is not None:
            S = decay[:, t, :, None, None] * S
        kt = k[:, t]
        err = v[:, t] - torch.einsum("bhk,bhkv->bhv", kt, S)  # what the memory gets wrong about v_t
        S = S + beta[:, t, :, None, None] * kt[..., :, None] * err[..., None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t] * scale, S))
    return torch.stack(outs, 1).to(dt), (S if output_final_state else None)


def naive_delta_rule(q, k, v, beta, *, scale=None, initial_state=None, output_final_state=False):
    """Reference delta rule: a plain loop over time steps (the definition of correctness)."""
    return _naive(q, k, v, None, beta, scale, initial_state, output_final_state)


def naive_gated_delta_rule(q, k, v, g, beta, *, scale=None, initial_state=None, output_final_state=False):
    """Reference gated delta rule: a plain loop over time steps (the definition of correctness)."""
    return _naive(q, k, v, g, beta, scale, initial_state, output_final_state)


def _chunk(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size):
    """Chunked (gated) delta rule.

    Inside a chunk, with G the cumulative log decay and S the entering state, the pseudo-values
    u = U - W S solve (I + L) u = beta*v - beta*exp(G)*k S with L[i, j] = beta_i exp(G_i - G_j) k_i.k_j
    (j < i). One triangular solve per chunk gives U and W for all chunks at once; then
    o = A U + (q exp(G) - A W) S with A = (q k^T) * exp(G_i - G_j) (j <= i), and the state update
    S' = (exp(G_C) I - K_C^T W) S + K_C^T U is the only loop (one batched matmul per chunk).
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    dt, at = q.dtype, acc_dtype(q.dtype)
    scale = resolve_scale(scale, K)
    S = init_state(initial_state, B, H, K, V, at, q.device)
    C = chunk_len(chunk_size, T)
    qc, kc, vc = (to_chunks(x.to(at), C) for x in (q * scale, k, v))  # [B, H, N, C, D]
    bc = to_chunks(beta.to(at), C)[..., None]  # [B, H, N, C, 1]
    N = qc.shape[2]
    incl, strict = causal_mask(C, q.device), causal_mask(C, q.device, -1)
    kk = kc @ kc.transpose(-1, -2)
    qk = qc @ kc.transpose(-1, -2)
    if g is None:
        L = (bc * kk).masked_fill(~strict, 0)
        A = qk.masked_fill(~incl, 0)
        rhs_k, q_dec, k_end, decay_end = bc * kc, qc, kc, None
    else:
        G = to_chunks(g.to(at), C).cumsum(-1)  # [B, H, N, C]
        D = segsum_exp(G, incl)
        L = (bc * kk * D).masked_fill(~strict, 0)
        A = qk * D
        eG = G.exp()[..., None]
        rhs_k, q_dec = bc * kc * eG, qc * eG
        k_end = kc * (G[..., -1:] - G).exp()[..., None]
        decay_end = G[..., -1].exp()  # [B, H, N]
    UW = torch.linalg.solve_triangular(L, torch.cat([bc * vc, rhs_k], -1), upper=False, unitriangular=True)
    U, W = UW.split([V, K], -1)
    o = A @ U
    q_eff = q_dec - A @ W  # [B, H, N, C, K]
    k_end_t = k_end.transpose(-1, -2)
    M = -(k_end_t @ W)  # [B, H, N, K, K]
    eye = torch.eye(K, dtype=at, device=q.device)
    M = M + (eye if decay_end is None else decay_end[..., None, None] * eye)
    inc = k_end_t @ U  # [B, H, N, K, V]
    states, S = [], S.reshape(B * H, K, V)
    for inc_n, M_n in zip(inc.reshape(B * H, N, K, V).unbind(1), M.reshape(B * H, N, K, K).unbind(1)):
        states.append(S)
        S = torch.baddbmm(inc_n, M_n, S)
    o = o + q_eff @ torch.stack(states, 1).reshape(B, H, N, K, V)
    S = S.reshape(B, H, K, V)
    return from_chunks(o.to(dt), T), (S if output_final_state else None)


def chunk_delta_rule(
    q, k, v, beta, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64
):
    """Chunked delta rule (WY representation): batched matmuls and triangular solves over all chunks."""
    return _chunk(q, k, v, None, beta, scale, initial_state, output_final_state, chunk_size)


def chunk_gated_delta_rule(
    q, k, v, g, beta, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64
):
    """Chunked gated delta rule (WY representation with decay-masked chunk matrices)."""
    return _chunk(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size)


def _step(q_t, k_t, v_t, g_t, beta_t, state, scale):
    B, H, K = q_t.shape
    at = acc_dtype(q_t.dtype)
    scale = resolve_scale(scale, K)
    S = init_state(state, B, H, K, v_t.shape[-1], at, q_t.device)
    if g_t is not None:
        S = g_t.to(at).exp()[..., None, None] * S
    k_t = k_t.to(at)
    err = v_t.to(at) - torch.einsum("bhk,bhkv->bhv", k_t, S)
    S = S + beta_t.to(at)[..., None, None] * k_t[..., :, None] * err[..., None, :]
    o = torch.einsum("bhk,bhkv->bhv", q_t.to(at) * scale, S)
    return o.to(q_t.dtype), S


def delta_rule_step(q_t, k_t, v_t, beta_t, state, *, scale=None):
    """One delta-rule step. `q_t, k_t[B, H, Dk]`, `v_t[B, H, Dv]`, `beta_t[B, H]`, `state[B, H, Dk, Dv]`
    (None for zeros). Returns `(o_t[B, H, Dv], state)`."""
    return _step(q_t, k_t, v_t, None, beta_t, state, scale)


def gated_delta_rule_step(q_t, k_t, v_t, g_t, beta_t, state, *, scale=None):
    """One gated delta-rule step; as `delta_rule_step` with the log decay `g_t[B, H]`."""
    return _step(q_t, k_t, v_t, g_t, beta_t, state, scale)


def delta_rule(
    q, k, v, beta, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64, mode="chunk"
):
    """Delta rule `(q, k, v [B, T, H, D], beta [B, T, H]) -> (o [B, T, H, Dv], final_state | None)`.

    `mode="chunk"` (default) runs `chunk_delta_rule`, `"recurrent"`/`"naive"` the per-step loop.
    """
    if mode in ("recurrent", "naive"):
        return _naive(q, k, v, None, beta, scale, initial_state, output_final_state)
    return _chunk(q, k, v, None, beta, scale, initial_state, output_final_state, chunk_size)


def gated_delta_rule(
    q, k, v, g, beta, *, scale=None, initial_state=None, output_final_state=False, chunk_size=64, mode="chunk"
):
    """Gated delta rule `(q, k, v, g [B, T, H], beta [B, T, H]) -> (o, final_state | None)`; modes as `delta_rule`."""
    if mode in ("recurrent", "naive"):
        return _naive(q, k, v, g, beta, scale, initial_state, output_final_state)
    return _chunk(q, k, v, g, beta, scale, initial_state, output_final_state, chunk_size)
