"""Mamba-2's state-space duality (SSD) in pure PyTorch: the definition, the chunked algorithm and one step.

The recurrence, per batch row b and head h (tensors are batch-first)::

    H_t = exp(dt_t[h] * A[h]) * H_{t-1} + dt_t[h] * outer(x_t[h], B_t[g(h)])       H_t: [P, N]
    y_t[h] = H_t @ C_t[g(h)] + D[h] * x_t[h]          then  y *= silu(z)  if z is given

- `x`, `z`: `[B, T, H, P]`; `dt`: `[B, T, H]`; `A`: `[H]` (one negative scalar per head);
  `D`: `[H]` (or `[H, P]`).
- `B`, `C`: `[B, T, G, N]` with `H % G == 0`: head h reads group `h // (H // G)` (grouped heads,
  like grouped-query attention); `[B, T, N]` is read as one group.
- the state is `[B, H, P, N]` (mamba-ssm's layout); `initial_state` / `final_state` have that shape.
- `dt_bias[H]` is added to `dt`, then `softplus` applied when `dt_softplus=True` (mamba-ssm's
  `mamba_chunk_scan_combined` semantics). A step with `dt = 0` is a no-op (how mixers skip padding).
- Half-precision inputs are computed in float32; the output has the input's dtype and the final
  state is float32 (float64 inputs stay float64).

`chunk_ssd` is the algorithm of Dao & Gu (2024, "Transformers are SSMs", section 6): cut the
sequence into chunks of `chunk_size` steps; (1) inside a chunk the SSM is a masked quadratic form
`(C B^T * exp(segsum(dt A))) @ (dt x)`, (2) each chunk's end state from a zero start is a matmul, (3) a
short recurrence over chunks passes the states on, (4) each chunk's incoming state reaches its
outputs through `C`. Every exponent is a difference of cumulative log-decays taken with the later
step first, masked to -inf above the diagonal before `exp`, so nothing can overflow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from polyformer.core.errors import ConfigError, DataError

__all__ = ["ssd", "chunk_ssd", "naive_ssd", "ssd_step"]


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def _log_floor(dtype: torch.dtype) -> float:
    """Chunk-level log-decays (to a chunk's end, across chunks, from a chunk's start) are clamped here
    before `exp` (about -43 in float32, -354 in float64): smaller decays are negligible next to the
    dtype's precision, and the clamp keeps them out of the denormal range, where arithmetic is slow on
    many CPUs."""
    return 0.5 * math.log(torch.finfo(dtype).tiny)


def _prepare(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_state, step=False):
    """Check shapes; return `x, dt, A, B, C, state` in the accumulation dtype with B/C as `[..., G, N]`."""
    name = "ssd_step" if step else "ssd"
    lead = x.shape[:-2]  # (B, T) or (B,)
    if x.dim() != (3 if step else 4):
        raise DataError(f"{name}: x must be {'[B, H, P]' if step else '[B, T, H, P]'}, got {tuple(x.shape)}")
    H, P = x.shape[-2:]
    if tuple(dt.shape) != (*lead, H):
        raise DataError(f"{name}: dt must be {[*lead, H]}, got {tuple(dt.shape)}")
    if tuple(A.shape) != (H,):
        raise DataError(f"{name}: A must be [H] = [{H}] (one scalar per head), got {tuple(A.shape)}")
    if B.dim() == len(lead) + 1:
        B = B.unsqueeze(-2)
    if C.dim() == len(lead) + 1:
        C = C.unsqueeze(-2)
    if B.dim() != len(lead) + 2 or B.shape[:-2] != lead or C.shape != B.shape:
        raise DataError(
            f"{name}: B and C must both be {[*lead, 'G', 'N']}, got {tuple(B.shape)} and {tuple(C.shape)}"
        )
    G, N = B.shape[-2:]
    if H % G:
        raise ConfigError(f"{name}: the number of heads ({H}) must be a multiple of the B/C groups ({G})")
    if D is not None and tuple(D.shape) not in ((H,), (H, P)):
        raise DataError(f"{name}: D must be [H] or [H, P] = [{H}, {P}], got {tuple(D.shape)}")
    if z is not None and z.shape != x.shape:
        raise DataError(f"{name}: z must have x's shape {tuple(x.shape)}, got {tuple(z.shape)}")
    if dt_bias is not None and tuple(dt_bias.shape) != (H,):
        raise DataError(f"{name}: dt_bias must be [H] = [{H}], got {tuple(dt_bias.shape)}")
    if initial_state is not None and tuple(initial_state.shape) != (x.shape[0], H, P, N):
        raise DataError(
            f"{name}: the state must be [B, H, P, N] = {[x.shape[0], H, P, N]}, got {tuple(initial_state.shape)}"
        )
    ct = _acc_dtype(x.dtype)
    dt = dt.to(ct)
    if dt_bias is not None:
        dt = dt + dt_bias.to(ct)
    if dt_softplus:
        dt = F.softplus(dt)
    h0 = None if initial_state is None else initial_state.to(ct)
    return x.to(ct), dt, A.to(ct), B.to(ct), C.to(ct), h0


def _finish(y, x, D, z, out_dtype):
    """`y + D x`, gated by `silu(z)`, in the accumulation dtype; cast to the output dtype."""
    if D is not None:
        D = D.to(y.dtype)
        y = y + x * (D[:, None] if D.dim() == 1 else D)
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)


# ---------------------------------------------------------------------------------------------- reference


def naive_ssd(
    x, dt, A, B, C, *, D=None, z=None, dt_bias=None, dt_softplus=False,
    initial_state=None, output_final_state=False, chunk_size=64,
):  # fmt: skip
    """The definition: a plain loop over time steps (slow; the reference `chunk_ssd` is tested against).

    Same arguments and results as `ssd` (`chunk_size` is accepted and ignored).
    """
    out_dtype = x.dtype
    x, dt, A, B, C, h = _prepare(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_state)
    Bsz, T, H, P = x.shape
    G, N = B.shape[-2:]
    Hg = H // G  # head h reads B/C group h // Hg
    h = x.new_zeros(Bsz, G, Hg, P, N) if h is None else h.reshape(Bsz, G, Hg, P, N)
    ys = []
    # unbind: one backward node per input instead of a full-size zero gradient for every indexed step
    for x_t, dt_t, B_t, C_t in zip(x.unbind(1), dt.unbind(1), B.unbind(1), C.unbind(1)):
        decay = torch.exp(dt_t * A).view(Bsz, G, Hg, 1, 1)
        dx = (dt_t[:, :, None] * x_t).view(Bsz, G, Hg, P, 1)
        h = decay * h + dx * B_t[:, :, None, None, :]
        ys.append((h * C_t[:, :, None, None, :]).sum(-1).view(Bsz, H, P))
    y = torch.stack(ys, 1) if ys else x.new_zeros(Bsz, 0, H, P)
    return _finish(y, x, D, z, out_dtype), (h.reshape(Bsz, H, P, N) if output_final_state else None)


def ssd_step(x_t, dt_t, A, B_t, C_t, D=None, z_t=None, state=None, *, dt_bias=None, dt_softplus=False):
    """One recurrent step: `x_t, z_t [B, H, P]`, `dt_t [B, H]`, `B_t, C_t [B, G, N] | [B, N]`,
    `state [B, H, P, N]` (None for zeros) -> `(y_t [B, H, P], new_state [B, H, P, N])`."""
    out_dtype = x_t.dtype
    x_t, dt_t, A, B_t, C_t, h = _prepare(
        x_t, dt_t, A, B_t, C_t, D, z_t, dt_bias, dt_softplus, state, step=True
    )
    Bsz, H, P = x_t.shape
    G, N = B_t.shape[-2:]
    h = x_t.new_zeros(Bsz, H, P, N) if h is None else h
    # heads as [G, H/G] so each group's B/C broadcasts over its heads without copies
    h5 = h.reshape(Bsz, G, H // G, P, N)
    decay = torch.exp(dt_t * A).view(Bsz, G, H // G, 1, 1)
    dx = (dt_t[..., None] * x_t).view(Bsz, G, H // G, P, 1)
    h5 = decay * h5 + dx * B_t[:, :, None, None, :]
    # (an elementwise product, not a matmul: matmul over the broadcast head dim takes a slow CPU path)
    y = (h5 * C_t[:, :, None, None, :]).sum(-1).reshape(Bsz, H, P)
    return _finish(y, x_t, D, z_t, out_dtype), h5.reshape(Bsz, H, P, N)


# ---------------------------------------------------------------------------------------------- chunked


def chunk_ssd(
    x, dt, A, B, C, *, D=None, z=None, dt_bias=None, dt_softplus=False,
    initial_state=None, output_final_state=False, chunk_size=64,
):  # fmt: skip
    """SSD, chunked (Dao & Gu 2024): quadratic inside chunks, a recurrence over chunk states between them.

    Same arguments and results as `naive_ssd`; `chunk_size` need not divide T (the tail chunk is
    padded with no-op steps, dt = 0).
    """
    if int(chunk_size) < 1:
        raise ConfigError(f"ssd: chunk_size must be a positive integer, got {chunk_size}")
    out_dtype = x.dtype
    x, dt, A, B, C, h0 = _prepare(x, dt, A, B, C, D, z, dt_bias, dt_softplus, initial_state)
    Bsz, T, H, P = x.shape
    G, N = B.shape[-2:]
    Hg = H // G
    if T == 0:
        final = h0 if h0 is not None else x.new_zeros(Bsz, H, P, N)
        return _finish(x.new_zeros(Bsz, 0, H, P), x, D, z, out_dtype), (final if output_final_state else None)
    L = min(int(chunk_size), T)
    pad = -T % L
    nc = (T + pad) // L
    Xdt = x * dt[..., None]
    la = dt * A  # log decay of every step, <= 0
    Bp, Cp = B, C
    if pad:  # dt = 0 and x = 0: the padded steps leave the state as it is
        Xdt, la = F.pad(Xdt, (0, 0, 0, 0, 0, pad)), F.pad(la, (0, 0, 0, pad))
        Bp, Cp = F.pad(B, (0, 0, 0, 0, 0, pad)), F.pad(C, (0, 0, 0, 0, 0, pad))
    # chunked layouts: heads as [G, Hg]; steps of a chunk next to the feature dims they multiply
    X6 = Xdt.view(Bsz, nc, L, G, Hg, P).permute(0, 1, 3, 4, 2, 5)  # [B, nc, G, Hg, L, P]
    acs = la.view(Bsz, nc, L, G, Hg).permute(0, 1, 3, 4, 2).cumsum(-1)  # [B, nc, G, Hg, L]
    B5 = Bp.view(Bsz, nc, L, G, N).transpose(2, 3)  # [B, nc, G, L, N]
    C5 = Cp.view(Bsz, nc, L, G, N).transpose(2, 3)

    # 1. inside each chunk: y_i = sum_{j <= i} (C_i . B_j) exp(acs_i - acs_j) dt_j x_j
    # exp(segsum): differences of cumulative log decays, later step first (<= 0 on and below the
    # diagonal), set to -inf above it before exp, so nothing can overflow
    causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
    decay = (acs[..., :, None] - acs[..., None, :]).masked_fill_(~causal, float("-inf")).exp_()
    CB = C5 @ B5.transpose(-1, -2)  # [B, nc, G, L, L], shared by the heads of a group
    Y = (CB[:, :, :, None] * decay) @ X6  # [B, nc, G, Hg, L, P]

    # 2. each chunk's end state from a zero start: sum_j exp(acs_last - acs_j) dt_j x_j B_j^T
    floor = _log_floor(acs.dtype)
    to_end = torch.exp((acs[..., -1:] - acs).clamp_min(floor))  # [B, nc, G, Hg, L]
    Xe = (X6 * to_end[..., None]).transpose(-1, -2).reshape(Bsz, nc, G, Hg * P, L)
    states = (Xe @ B5).view(Bsz, nc, G, Hg, P, N)

    # 3. pass states across chunks: S_in[c + 1] = exp(acs_last[c]) S_in[c] + states[c]
    chunk_decay = acs[..., -1].clamp_min(floor).exp()[..., None, None]  # [B, nc, G, Hg, 1, 1]
    S = x.new_zeros(Bsz, G, Hg, P, N) if h0 is None else h0.reshape(Bsz, G, Hg, P, N)
    s_in = []
    for st_c, dec_c in zip(states.unbind(1), chunk_decay.unbind(1)):
        s_in.append(S)
        S = torch.addcmul(st_c, dec_c, S)
    s_in = torch.stack(s_in, 1)  # [B, nc, G, Hg, P, N]

    # 4. incoming state to outputs: y_i += exp(acs_i) C_i . S_in  (all heads of a group in one matmul)
    S_cols = s_in.permute(0, 1, 2, 5, 3, 4).reshape(Bsz, nc, G, N, Hg * P)
    Y_off = (C5 @ S_cols).view(Bsz, nc, G, L, Hg, P).transpose(3, 4)  # [B, nc, G, Hg, L, P]
    Y = Y.addcmul_(Y_off, acs.clamp_min(floor).exp()[..., None])

    y = Y.permute(0, 1, 4, 2, 3, 5).reshape(Bsz, nc * L, H, P)[:, :T]
    final = S.reshape(Bsz, H, P, N)
    return _finish(y, x, D, z, out_dtype), (final if output_final_state else None)


def ssd(
    x, dt, A, B, C, *, D=None, z=None, dt_bias=None, dt_softplus=False,
    initial_state=None, output_final_state=False, chunk_size=64,
):  # fmt: skip
    """Mamba-2 SSD, the training form (`chunk_ssd`): returns `(y [B, T, H, P], final_state [B, H, P, N] | None)`.

    See the module docstring for shapes and semantics.
    """
    return chunk_ssd(
        x, dt, A, B, C, D=D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus,
        initial_state=initial_state, output_final_state=output_final_state, chunk_size=chunk_size,
    )  # fmt: skip
