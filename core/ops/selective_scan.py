"""Mamba's selective scan (S6), in pure PyTorch: the definition, a fast chunked form and one recurrent step.

The recurrence, per batch row b, channel d and state n (tensors are batch-first)::

    h_t = exp(delta_t[d] * A[d, n]) * h_{t-1} + delta_t[d] * B_t[n] * u_t[d]
    y_t[d] = sum_n C_t[n] * h_t[d, n] + D[d] * u_t[d]          then  y *= silu(z)  if z is given

- `u`, `delta`, `z`: `[B, T, Dm]`; `A`: `[Dm, N]` (real, negative); `D`: `[Dm]`.
- `B`, `C`: `[B, T, N]`, or grouped `[B, T, G, N]` with `Dm % G == 0` (channel d reads group
  `d // (Dm // G)`, as in mamba-ssm).
- the state `h` is `[B, Dm, N]`; `initial_state` / `final_state` have that shape.
- `delta_bias[Dm]` is added to `delta` and then `softplus` applied when `delta_softplus=True`
  (mamba-ssm's `selective_scan_fn` semantics). A step with `delta = 0` is a no-op: that is how the
  mixers make padded positions leave the state untouched.
- Half-precision inputs are computed in float32; the output has the input's dtype and the final
  state is float32 (float64 inputs stay float64 throughout).

`selective_scan` is the training form. The sequence is cut into chunks of `L` steps (default about
`sqrt(T / 32)`, at least 8), and the chunks are scanned *together*: a Python loop over the `L`
positions of a chunk, each step a few in-place ops over all chunks at once, from a zero state, also
keeping `E_l = prod_{s <= l} exp(delta_s A)` (the response to a unit initial state; every factor is
<= 1, so nothing overflows). Then the chunks' incoming states are passed on chunk by chunk (a loop over
`[B, Dm, N]` states), and each chunk's outputs get `C_l . (E_l * h_in)`. That is `O(sqrt(T))` Python
steps instead of `T`, on tensors big enough to keep the CPU busy. The backward pass is written by
hand the same way (the adjoint scan runs backwards from exact chunk-end adjoints; decays and states
are recomputed rather than stored), so memory between forward and backward is
`O(B T Dm + B (T / L) Dm N)`. Long inputs are processed in blocks of chunks so that no temporary
exceeds `_BLOCK_ELEMENTS` elements.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from polyformer.core.errors import DataError

__all__ = ["selective_scan", "naive_selective_scan", "selective_scan_step"]

# Largest [B, chunks, L, Dm, N] block of decays / states the forward (one buffer) and backward (two)
# passes hold at once, in elements; longer inputs are processed in blocks of chunks.
_BLOCK_ELEMENTS = 1 << 24


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def _log_floor(dtype: torch.dtype) -> float:
    """Cumulative (in-chunk) decays are clamped below at `exp(floor)` (about 2e-19 in float32, 1e-154 in
    float64): smaller decays are negligible next to the dtype's precision, and the clamp keeps them out
    of the denormal range, where arithmetic is slow on many CPUs."""
    return 0.5 * math.log(torch.finfo(dtype).tiny)


def _auto_chunk(T: int) -> int:
    """Chunk length for `T` steps: about `sqrt(T / 32)`, at least 8. Few in-chunk steps of large ops (the
    loop over chunks works on small `[B, Dm, N]` states and is cheap); measured best on 2 CPU cores."""
    return max(1, min(T, max(8, math.ceil(math.sqrt(T / 32)))))


def _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state, step=False):
    """Check shapes; return float tensors in the accumulation dtype, B/C grouped `[..., G, N]`."""
    name = "selective_scan_step" if step else "selective_scan"
    lead = u.shape[:-1]  # (B, T) or (B,)
    if u.dim() != (2 if step else 3):
        want = "[B, Dm]" if step else "[B, T, Dm]"
        raise DataError(f"{name}: u must be {want}, got {tuple(u.shape)}")
    Dm = u.shape[-1]
    if delta.shape != u.shape:
        raise DataError(f"{name}: delta must have u's shape {tuple(u.shape)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != Dm:
        raise DataError(f"{name}: A must be [Dm, N] = [{Dm}, N], got {tuple(A.shape)}")
    N = A.shape[1]
    if B.dim() == len(lead) + 1:
        B = B.unsqueeze(-2)
    if C.dim() == len(lead) + 1:
        C = C.unsqueeze(-2)
    G = B.shape[-2]
    for t, nm in ((B, "B"), (C, "C")):
        if tuple(t.shape) != (*lead, G, N):
            raise DataError(
                f"{name}: {nm} must be {[*lead, N]} or grouped {[*lead, 'G', N]} (N = A.shape[1]), got {tuple(t.shape)}"
            )
    if Dm % G:
        raise DataError(f"{name}: Dm={Dm} channels cannot be split into G={G} groups of B/C")
    if D is not None and tuple(D.shape) != (Dm,):
        raise DataError(f"{name}: D must be [Dm] = [{Dm}], got {tuple(D.shape)}")
    if z is not None and z.shape != u.shape:
        raise DataError(f"{name}: z must have u's shape {tuple(u.shape)}, got {tuple(z.shape)}")
    if delta_bias is not None and tuple(delta_bias.shape) != (Dm,):
        raise DataError(f"{name}: delta_bias must be [Dm] = [{Dm}], got {tuple(delta_bias.shape)}")
    if initial_state is not None and tuple(initial_state.shape) != (u.shape[0], Dm, N):
        raise DataError(
            f"{name}: the state must be [B, Dm, N] = {[u.shape[0], Dm, N]}, got {tuple(initial_state.shape)}"
        )
    ct = _acc_dtype(u.dtype)
    delta = delta.to(ct)
    if delta_bias is not None:
        delta = delta + delta_bias.to(ct)
    if delta_softplus:
        delta = F.softplus(delta)
    h0 = None if initial_state is None else initial_state.to(ct)
    return u.to(ct), delta, A.to(ct), B.to(ct), C.to(ct), h0


def _finish(y, u, D, z, out_dtype):
    """`y + D u`, gated by `silu(z)`, in the accumulation dtype; cast to the output dtype."""
    if D is not None:
        y = y + u * D.to(y.dtype)
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)


# ---------------------------------------------------------------------------------------------- reference


def naive_selective_scan(
    u, delta, A, B, C, D=None, z=None, *, delta_bias=None, delta_softplus=False,
    initial_state=None, output_final_state=False, chunk_size=None,
):  # fmt: skip
    """The definition: a plain loop over time steps (slow; the reference every fast form is tested against).

    Same arguments and results as `selective_scan` (`chunk_size` is accepted and ignored).
    """
    out_dtype = u.dtype
    u, delta, A, B, C, h = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state)
    Bsz, T, Dm = u.shape
    G, N = B.shape[-2:]
    Dg = Dm // G  # channel d reads B/C group d // Dg
    h = u.new_zeros(Bsz, G, Dg, N) if h is None else h.reshape(Bsz, G, Dg, N)
    A = A.view(G, Dg, N)
    ys = []
    # unbind: one backward node per input instead of a full-size zero gradient for every indexed step
    for u_t, delta_t, B_t, C_t in zip(u.unbind(1), delta.unbind(1), B.unbind(1), C.unbind(1)):
        delta_t, u_t = delta_t.view(Bsz, G, Dg, 1), u_t.view(Bsz, G, Dg, 1)
        h = torch.exp(delta_t * A) * h + delta_t * u_t * B_t[:, :, None, :]
        ys.append((h * C_t[:, :, None, :]).sum(-1).reshape(Bsz, Dm))
    y = torch.stack(ys, 1) if ys else u.new_zeros(Bsz, 0, Dm)
    return _finish(y, u, D, z, out_dtype), (h.reshape(Bsz, Dm, N) if output_final_state else None)


def selective_scan_step(
    u_t, delta_t, A, B_t, C_t, D=None, z_t=None, state=None, *, delta_bias=None, delta_softplus=False
):
    """One recurrent step: `u_t, delta_t, z_t [B, Dm]`, `B_t, C_t [B, N] | [B, G, N]`, `state [B, Dm, N]`
    (None for zeros) -> `(y_t [B, Dm], new_state [B, Dm, N])`."""
    out_dtype = u_t.dtype
    u_t, delta_t, A, B_t, C_t, h = _prepare(
        u_t, delta_t, A, B_t, C_t, D, z_t, delta_bias, delta_softplus, state, step=True
    )
    Bsz, Dm = u_t.shape
    G, N = B_t.shape[-2:]
    if h is None:
        h = u_t.new_zeros(Bsz, Dm, N)
    h4 = h.reshape(Bsz, G, Dm // G, N)
    dA = torch.exp(delta_t[..., None] * A).view(Bsz, G, Dm // G, N)
    du = (delta_t * u_t).view(Bsz, G, Dm // G, 1)
    h4 = dA * h4 + du * B_t[:, :, None, :]
    y = (h4 @ C_t[..., None]).reshape(Bsz, Dm)
    return _finish(y, u_t, D, z_t, out_dtype), h4.reshape(Bsz, Dm, N)


# ---------------------------------------------------------------------------------------------- chunked


class _ChunkScan(torch.autograd.Function):
    """`y_t = C_t . h_t` and the final state for `T = nc * L` steps (no D / z; those are autograd ops).

    Inside, states are kept transposed, `[B, nc, G, N, Dg]` (channels innermost, so every elementwise
    op runs over long contiguous rows); per-step views come from one `unbind` each.
    """

    @staticmethod
    def forward(ctx, u, delta, A, B, C, h0, L):
        Bsz, T, Dm = u.shape
        G, N = B.shape[-2:]
        Dg, nc = Dm // G, T // L
        At = A.view(G, Dg, N).transpose(1, 2).contiguous()  # [G, N, Dg]
        views = (
            delta.view(Bsz, nc, L, G, 1, Dg),
            (delta * u).view(Bsz, nc, L, G, 1, Dg),
            B.view(Bsz, nc, L, G, N, 1),
            C.view(Bsz, nc, L, G, 1, N),
        )
        H = u.new_zeros(Bsz, G, N, Dg) if h0 is None else h0.view(Bsz, G, Dg, N).transpose(-1, -2)
        step = _chunks_per_block(Bsz * L * Dm * N, nc)
        ys, h_in = [], []
        for c_lo in range(0, nc, step):  # blocks of chunks, first block first; H flows from block to block
            cs = slice(c_lo, min(nc, c_lo + step))
            y_blk, h_in_blk, H = _forward_block(*(v[:, cs] for v in views), At, H)
            ys.append(y_blk)
            h_in.append(h_in_blk)
        h_in = torch.cat(h_in, 1)
        ctx.save_for_backward(u, delta, At, B, C, h_in)
        ctx.L, ctx.has_h0 = L, h0 is not None
        ctx.set_materialize_grads(False)
        return torch.cat(ys, 1).view(Bsz, T, Dm), H.transpose(-1, -2).reshape(Bsz, Dm, N)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dH):
        u, delta, At, B, C, h_in = ctx.saved_tensors
        L = ctx.L
        Bsz, T, Dm = u.shape
        G, N = B.shape[-2:]
        Dg, nc = Dm // G, T // L
        if dy is None:
            dy = u.new_zeros(Bsz, T, Dm)
        views = (
            delta.view(Bsz, nc, L, G, 1, Dg),
            (delta * u).view(Bsz, nc, L, G, 1, Dg),
            dy.contiguous().view(Bsz, nc, L, G, 1, Dg),
            B.view(Bsz, nc, L, G, N, 1),
            C.view(Bsz, nc, L, G, N, 1),
        )
        # dLoss/dh at the last step of the chunks after the current block (starts from the final state's grad)
        g_next = (
            u.new_zeros(Bsz, G, N, Dg) if dH is None else dH.to(u.dtype).view(Bsz, G, Dg, N).transpose(-1, -2)
        )
        step = _chunks_per_block(Bsz * L * Dm * N, nc)
        parts, dA = [], torch.zeros_like(At)
        for c_hi in range(nc, 0, -step):  # blocks of chunks, last block first
            cs = slice(max(0, c_hi - step), c_hi)
            grads, g_next = _backward_block(*(v[:, cs] for v in views), At, h_in[:, cs], g_next)
            dA += grads[-1]
            parts.append(grads[:-1])
        g_du, g_la, dB, dC = (torch.cat(p[::-1], 1) for p in zip(*parts))
        g_du, g_la = g_du.view(Bsz, T, Dm), g_la.view(Bsz, T, Dm)
        du_grad = g_du * delta
        ddelta = g_la.addcmul_(g_du, u)
        dA = dA.transpose(1, 2).reshape(Dm, N)
        dh0 = g_next.transpose(-1, -2).reshape(Bsz, Dm, N) if ctx.has_h0 else None
        return du_grad, ddelta, dA, dB.view(B.shape), dC.view(C.shape), dh0, None


def _chunks_per_block(per_chunk: int, nc: int) -> int:
    return max(1, min(nc, _BLOCK_ELEMENTS // max(per_chunk, 1)))


def _forward_block(d5, du5, B5, C5, At, H):
    """Forward through a block of chunks entered with state `H[B, G, N, Dg]`.

    Returns `(y[B, nb, L, G, 1, Dg], h_in[B, nb, G, N, Dg], H after the block)`: (1) every chunk from a
    zero state, all chunks at once, keeping E_l = prod_{s <= l} a_s (the response to a unit initial
    state); (2) the chunks' incoming states, one chunk after the other; (3) h_l += E_l * h_in and
    y_l = C_l . h_l for the whole block at once.
    """
    Bsz, nb, L, G, _, Dg = d5.shape
    N = At.shape[1]
    tiny = math.exp(_log_floor(d5.dtype))
    d_s, du_s, B_s, C_s = (t.unbind(2) for t in (d5, du5, B5, C5))
    a = d5.new_empty(Bsz, nb, G, N, Dg)
    hb, E = d5.new_empty(Bsz, nb, L, G, N, Dg), d5.new_empty(Bsz, nb, L, G, N, Dg)
    h_s, E_s = hb.unbind(2), E.unbind(2)
    for l in range(L):
        # a_l = exp(delta_l A);  h_l = a_l h_{l-1} + delta_l u_l B_l;  E_l = a_l E_{l-1}
        torch.mul(d_s[l], At, out=a).exp_()
        if l == 0:
            torch.mul(du_s[0], B_s[0], out=h_s[0])
            E_s[0].copy_(a)
        else:
            torch.mul(h_s[l - 1], a, out=h_s[l]).addcmul_(du_s[l], B_s[l])
            torch.mul(E_s[l - 1], a, out=E_s[l]).clamp_(min=tiny)
    h_in = d5.new_empty(Bsz, nb, G, N, Dg)
    for c in range(nb):  # H_in[c + 1] = E_L[c] * H_in[c] + h_end[c]
        h_in[:, c] = H
        H = torch.addcmul(h_s[L - 1][:, c], E_s[L - 1][:, c], H)
    y = C5 @ hb.addcmul_(E, h_in[:, :, None])  # [B, nb, L, G, 1, N] @ [B, nb, L, G, N, Dg]
    return y, h_in, H


def _backward_block(d5, du5, dy5, B5, C5, At, h_in, g_next):
    """Backward through a block of chunks given dLoss/dh at its last step from later steps (`g_next`).

    Returns `(g_du, g_la, dB, dC, dA)` for the block (g_du = dLoss/d(delta u), g_la = sum_n dLoss/d(delta A) A)
    and dLoss/dh entering the block.
    """
    Bsz, nb, L, G, _, Dg = d5.shape
    N = At.shape[1]
    tiny = math.exp(_log_floor(d5.dtype))
    d_s, du_s, dy_s, B_s, C_s = (t.unbind(2) for t in (d5, du5, dy5, B5, C5))
    # forward again: decays a_l and states h_l of every step (the block's only [.., L, N, Dg] buffers),
    # and S = sum_l E_l * (dy_l C_l), E_l = prod_{s <= l} a_s: what the block's outputs send to its first state
    ab = d5.new_empty(Bsz, nb, L, G, N, Dg)
    hb = torch.empty_like(ab)
    a_s, h_s = ab.unbind(2), hb.unbind(2)
    E, S, tmp = (d5.new_empty(Bsz, nb, G, N, Dg) for _ in range(3))
    S.zero_()
    prev = h_in
    for l in range(L):
        torch.mul(d_s[l], At, out=a_s[l]).exp_()
        torch.mul(prev, a_s[l], out=h_s[l]).addcmul_(du_s[l], B_s[l])
        prev = h_s[l]
        E.copy_(a_s[l]) if l == 0 else E.mul_(a_s[l]).clamp_(min=tiny)
        S.addcmul_(torch.mul(E, dy_s[l], out=tmp), C_s[l])
    # dLoss/dh at each chunk's last step from later chunks: g_out[c] = S[c + 1] + E[c + 1] * g_out[c + 1]
    g_out = torch.empty_like(S)
    for c in reversed(range(nb)):
        g_out[:, c] = g_next
        g_next = torch.addcmul(S[:, c], E[:, c], g_next)
    # the adjoint scan, last step first, with every gradient read off as it passes
    g = g_out
    dA = torch.zeros_like(E)
    g_du, g_la, dB = [], [], []
    dC = hb @ dy5.transpose(-1, -2)  # [.., L, G, N, 1]
    for l in reversed(range(L)):
        if l < L - 1:
            g.mul_(a_s[l + 1])
        g.addcmul_(dy_s[l], C_s[l])
        dB.append(g @ du_s[l].transpose(-1, -2))  # [.., N, 1]
        g_du.append(B_s[l].transpose(-1, -2) @ g)  # [.., 1, Dg]
        t = torch.mul(g, a_s[l], out=tmp).mul_(h_s[l - 1] if l > 0 else h_in)  # dLoss / d(delta_l A)
        dA.addcmul_(t, d_s[l])
        g_la.append(t.mul_(At).sum(-2, keepdim=True))
    grads = [torch.stack(x[::-1], 2) for x in (g_du, g_la, dB)] + [dC]
    return (*grads, dA.sum((0, 1))), g_next


def selective_scan(
    u, delta, A, B, C, D=None, z=None, *, delta_bias=None, delta_softplus=False,
    initial_state=None, output_final_state=False, chunk_size=None,
):  # fmt: skip
    """Selective scan (mamba-ssm's `selective_scan_fn`, batch-first), chunked for speed.

    Returns `(y [B, T, Dm], final_state [B, Dm, N] | None)`; see the module docstring for shapes.
    `chunk_size` is the chunk length L (default about `sqrt(T / 32)`, at least 8); any value gives the
    same result and need not divide T (the tail is padded with no-op steps).
    """
    out_dtype = u.dtype
    u, delta, A, B, C, h0 = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus, initial_state)
    Bsz, T, Dm = u.shape
    N = A.shape[1]
    if T == 0:
        final = h0 if h0 is not None else u.new_zeros(Bsz, Dm, N)
        return _finish(u.new_zeros(Bsz, 0, Dm), u, D, z, out_dtype), (final if output_final_state else None)
    L = _auto_chunk(T) if chunk_size is None else max(1, min(int(chunk_size), T))
    pad = -T % L
    uu, dd, BB, CC = u, delta, B, C
    if pad:  # delta = 0 and u = 0: the padded steps leave the state as it is
        uu, dd = F.pad(u, (0, 0, 0, pad)), F.pad(delta, (0, 0, 0, pad))
        BB, CC = F.pad(B, (0, 0, 0, 0, 0, pad)), F.pad(C, (0, 0, 0, 0, 0, pad))
    y, final = _ChunkScan.apply(
        uu.contiguous(), dd.contiguous(), A.contiguous(), BB.contiguous(), CC.contiguous(),
        None if h0 is None else h0.contiguous(), L,
    )  # fmt: skip
    return _finish(y[:, :T], u, D, z, out_dtype), (final if output_final_state else None)
