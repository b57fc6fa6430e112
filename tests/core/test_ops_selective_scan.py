"""Mamba's selective scan: the chunked form and the recurrent step held to the naive loop (the definition)."""

import importlib

import pytest
import torch
import torch.nn.functional as F

from polyformer.core.errors import DataError
from polyformer.core.ops.selective_scan import naive_selective_scan, selective_scan, selective_scan_step

# the module itself (polyformer.core.ops re-exports a function of the same name)
ss_mod = importlib.import_module("polyformer.core.ops.selective_scan")

DT = torch.float64
ATOL = 1e-10


def inputs(b=2, T=13, d=8, n=4, groups=None, seed=0, dtype=DT):
    """u, delta, A, B, C, D, z, initial_state, delta_bias (all requiring grad)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    bc = (b, T, n) if groups is None else (b, T, groups, n)
    ts = [r(b, T, d), r(b, T, d), -torch.exp(r(d, n)), r(*bc), r(*bc), r(d), r(b, T, d), r(b, d, n), r(d)]
    return [t.to(dtype).requires_grad_() for t in ts]


def run(fn, ts, use_h0=True, **kw):
    u, delta, A, B, C, D, z, h0, db = ts
    return fn(
        u, delta, A, B, C, D, z, delta_bias=db, delta_softplus=True,
        initial_state=h0 if use_h0 else None, output_final_state=True, **kw,
    )  # fmt: skip


def grads(y, s, ts, seed=1):
    g = torch.Generator().manual_seed(seed)
    wy = torch.randn(y.shape, generator=g, dtype=y.dtype)
    ws = torch.randn(s.shape, generator=g, dtype=s.dtype)
    wanted = [t for t in ts if t.requires_grad]
    return torch.autograd.grad((y * wy).sum() + (s * ws).sum(), wanted, allow_unused=True)


def assert_all_close(a, b, atol=ATOL):
    for i, (x, y) in enumerate(zip(a, b)):
        assert x is not None and y is not None, f"missing gradient #{i}"
        torch.testing.assert_close(x, y, rtol=0, atol=atol, msg=lambda m, i=i: f"tensor #{i}: {m}")


@pytest.mark.parametrize("groups", [None, 2], ids=["B[T,N]", "grouped"])
@pytest.mark.parametrize("use_h0", [False, True], ids=["h0=None", "h0"])
@pytest.mark.parametrize("chunk", [1, 3, 4, 13, 40, None])
def test_chunked_equals_naive_outputs_and_gradients(chunk, use_h0, groups):
    ts = inputs(groups=groups)
    y0, s0 = run(naive_selective_scan, ts, use_h0)
    y1, s1 = run(selective_scan, ts, use_h0, chunk_size=chunk)
    assert y1.shape == (2, 13, 8) and s1.shape == (2, 8, 4)
    assert_all_close([y1, s1], [y0, s0])
    used = ts if use_h0 else ts[:7] + ts[8:]
    assert_all_close(grads(y1, s1, used), grads(y0, s0, used))


def test_step_by_step_equals_naive():
    ts = inputs(groups=2)
    u, delta, A, B, C, D, z, h0, db = ts
    y0, s0 = run(naive_selective_scan, ts)
    state, ys = h0, []
    for t in range(u.shape[1]):
        y_t, state = selective_scan_step(
            u[:, t], delta[:, t], A, B[:, t], C[:, t], D, z[:, t], state, delta_bias=db, delta_softplus=True
        )
        ys.append(y_t)
    y1 = torch.stack(ys, 1)
    assert_all_close([y1, state], [y0, s0])
    assert_all_close(grads(y1, state, ts), grads(y0, s0, ts))


def test_two_pieces_with_state_passing_equal_whole():
    u, delta, A, B, C, D, z, h0, db = inputs(T=17)
    kw = dict(delta_bias=db, delta_softplus=True, output_final_state=True, chunk_size=4)
    y, s = selective_scan(u, delta, A, B, C, D, z, initial_state=h0, **kw)
    cut = 7
    first = (t[:, :cut] for t in (u, delta))
    y1, s1 = selective_scan(*first, A, B[:, :cut], C[:, :cut], D, z[:, :cut], initial_state=h0, **kw)
    rest = (t[:, cut:] for t in (u, delta))
    y2, s2 = selective_scan(*rest, A, B[:, cut:], C[:, cut:], D, z[:, cut:], initial_state=s1, **kw)
    assert_all_close([torch.cat([y1, y2], 1), s2], [y, s])


def test_backward_in_blocks_of_chunks_matches(monkeypatch):
    """Long inputs run in blocks of chunks (forward and backward); force several blocks on a tiny input."""
    ts = inputs(T=23)
    y0, s0 = run(selective_scan, ts, chunk_size=3)
    ref = grads(y0, s0, ts)
    monkeypatch.setattr(ss_mod, "_BLOCK_ELEMENTS", 2 * 8 * 4 * 3 * 2)  # 2 chunks per block
    y1, s1 = run(selective_scan, ts, chunk_size=3)
    assert_all_close([y1, s1], [y0, s0])
    assert_all_close(grads(y1, s1, ts), ref)


def test_gradient_through_output_only_and_final_state_only():
    ts = inputs()
    u, delta, A, B, C = ts[:5]
    kw = dict(delta_softplus=True, output_final_state=True)
    y0, s0 = naive_selective_scan(u, delta, A, B, C, **kw)
    y1, s1 = selective_scan(u, delta, A, B, C, chunk_size=4, **kw)
    grad = lambda out: torch.autograd.grad(out, ts[:5], retain_graph=True, allow_unused=True)
    assert_all_close(grad(y1.sum()), grad(y0.sum()))
    assert_all_close(grad(s1.sum())[:4], grad(s0.sum())[:4])  # (C does not reach the state)
    assert selective_scan(u, delta, A, B, C)[1] is None


def test_zero_delta_steps_are_no_ops():
    """delta = 0 leaves the state as it is: how mixers make padded steps skip."""
    u, delta, A, B, C, D, z, h0, _ = inputs()
    delta = F.softplus(delta.detach())
    delta[:, 5:9] = 0
    y, s = selective_scan(u, delta, A, B, C, initial_state=h0, output_final_state=True, chunk_size=3)
    keep = [*range(5), *range(9, 13)]
    y2, s2 = selective_scan(
        u[:, keep], delta[:, keep], A, B[:, keep], C[:, keep], initial_state=h0, output_final_state=True
    )
    assert_all_close([y[:, keep], s], [y2, s2])


def test_strong_decay_is_stable():
    """Large delta * |A| (decays that underflow to 0 within a chunk) stays finite and equal to the loop."""
    u, delta, A, B, C, D, z, h0, _ = inputs(T=40)
    delta = (delta.detach().abs() * 30).requires_grad_()
    A = (A.detach() * 20).requires_grad_()
    ts = [u, delta, A, B, C, D, z, h0]
    y0, s0 = naive_selective_scan(u, delta, A, B, C, D, z, initial_state=h0, output_final_state=True)
    y1, s1 = selective_scan(u, delta, A, B, C, D, z, initial_state=h0, output_final_state=True, chunk_size=16)
    assert torch.isfinite(y1).all() and torch.isfinite(s1).all()
    assert_all_close([y1, s1], [y0, s0])
    g1 = grads(y1, s1, ts)
    assert all(torch.isfinite(g).all() for g in g1)
    assert_all_close(g1, grads(y0, s0, ts))


def test_bf16_inputs_accumulate_in_float32():
    ts32 = inputs(T=32, d=16, n=8, dtype=torch.float32)
    y32, s32 = run(selective_scan, ts32)
    ts16 = [t.detach().bfloat16() for t in ts32]
    y16, s16 = run(selective_scan, ts16)
    assert y16.dtype == torch.bfloat16 and s16.dtype == torch.float32
    assert torch.isfinite(y16.float()).all()
    rel = (y16.float() - y32).norm() / y32.norm()
    assert rel < 0.03, rel


def test_empty_sequence():
    u, delta, A, B, C, D, z, h0, _ = inputs(T=0)
    y, s = selective_scan(u, delta, A, B, C, D, z, initial_state=h0, output_final_state=True)
    assert y.shape == (2, 0, 8) and torch.equal(s, h0)


def test_bad_shapes_raise_data_errors():
    u, delta, A, B, C, D, z, h0, _ = inputs()
    with pytest.raises(DataError, match="delta"):
        selective_scan(u, delta[:, :5], A, B, C)
    with pytest.raises(DataError, match=r"A must be \[Dm, N\]"):
        selective_scan(u, delta, A[:3], B, C)
    with pytest.raises(DataError, match="B must be"):
        selective_scan(u, delta, A, B[..., :2], C)
    with pytest.raises(DataError, match="groups"):
        selective_scan(u, delta, A, torch.randn(2, 13, 3, 4, dtype=DT), torch.randn(2, 13, 3, 4, dtype=DT))
    with pytest.raises(DataError, match="state"):
        selective_scan(u, delta, A, B, C, initial_state=h0[:, :3])
