"""Mamba-2 SSD: the chunked algorithm and the recurrent step held to the naive loop, and to the selective scan."""

import pytest
import torch
import torch.nn.functional as F

from polyformer.core.errors import ConfigError, DataError
from polyformer.core.ops.selective_scan import selective_scan
from polyformer.core.ops.ssd import chunk_ssd, naive_ssd, ssd, ssd_step

DT = torch.float64
ATOL = 1e-10


def inputs(b=2, T=13, H=4, P=3, N=5, G=2, seed=0, dtype=DT):
    """x, dt, A, B, C, D, z, initial_state, dt_bias (all requiring grad)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)
    ts = [
        r(b, T, H, P),
        r(b, T, H),
        -torch.exp(r(H)),
        r(b, T, G, N),
        r(b, T, G, N),
        r(H),
        r(b, T, H, P),
        r(b, H, P, N),
        r(H),
    ]
    return [t.to(dtype).requires_grad_() for t in ts]


def run(fn, ts, use_h0=True, **kw):
    x, dt, A, B, C, D, z, h0, db = ts
    return fn(
        x, dt, A, B, C, D=D, z=z, dt_bias=db, dt_softplus=True,
        initial_state=h0 if use_h0 else None, output_final_state=True, **kw,
    )  # fmt: skip


def grads(y, s, ts, seed=1):
    g = torch.Generator().manual_seed(seed)
    wy = torch.randn(y.shape, generator=g, dtype=y.dtype)
    ws = torch.randn(s.shape, generator=g, dtype=s.dtype)
    return torch.autograd.grad((y * wy).sum() + (s * ws).sum(), ts)


def assert_all_close(a, b, atol=ATOL):
    for i, (x, y) in enumerate(zip(a, b)):
        torch.testing.assert_close(x, y, rtol=0, atol=atol, msg=lambda m, i=i: f"tensor #{i}: {m}")


@pytest.mark.parametrize("G", [1, 2, 4], ids=lambda g: f"G={g}")
@pytest.mark.parametrize("use_h0", [False, True], ids=["h0=None", "h0"])
@pytest.mark.parametrize("chunk", [1, 4, 5, 13, 64])
def test_chunked_equals_naive_outputs_and_gradients(chunk, use_h0, G):
    ts = inputs(G=G)
    y0, s0 = run(naive_ssd, ts, use_h0)
    y1, s1 = run(chunk_ssd, ts, use_h0, chunk_size=chunk)
    assert y1.shape == (2, 13, 4, 3) and s1.shape == (2, 4, 3, 5)
    assert_all_close([y1, s1], [y0, s0])
    used = ts if use_h0 else ts[:7] + ts[8:]
    assert_all_close(grads(y1, s1, used), grads(y0, s0, used))


def test_ssd_is_the_chunked_form():
    ts = inputs()
    assert_all_close(run(ssd, ts, chunk_size=4), run(chunk_ssd, ts, chunk_size=4))


def test_step_by_step_equals_naive():
    ts = inputs()
    x, dt, A, B, C, D, z, h0, db = ts
    y0, s0 = run(naive_ssd, ts)
    state, ys = h0, []
    for t in range(x.shape[1]):
        y_t, state = ssd_step(
            x[:, t], dt[:, t], A, B[:, t], C[:, t], D, z[:, t], state, dt_bias=db, dt_softplus=True
        )
        ys.append(y_t)
    y1 = torch.stack(ys, 1)
    assert_all_close([y1, state], [y0, s0])
    assert_all_close(grads(y1, state, ts), grads(y0, s0, ts))


def test_two_pieces_with_state_passing_equal_whole():
    x, dt, A, B, C, D, z, h0, db = inputs(T=19)
    kw = dict(D=D, dt_bias=db, dt_softplus=True, output_final_state=True, chunk_size=4)
    y, s = ssd(x, dt, A, B, C, z=z, initial_state=h0, **kw)
    c = 6
    y1, s1 = ssd(x[:, :c], dt[:, :c], A, B[:, :c], C[:, :c], z=z[:, :c], initial_state=h0, **kw)
    y2, s2 = ssd(x[:, c:], dt[:, c:], A, B[:, c:], C[:, c:], z=z[:, c:], initial_state=s1, **kw)
    assert_all_close([torch.cat([y1, y2], 1), s2], [y, s])


def test_equals_selective_scan_with_a_scalar_decay_per_head():
    """An SSM with one A per head, written both ways: SSD heads x P channels == selective-scan channels."""
    x, dt, A, B, C, D, z, h0, _ = inputs(T=11, G=2)
    b, T, H, P = x.shape
    N = B.shape[-1]
    dtp = F.softplus(dt)
    y_ssd, s_ssd = ssd(x, dtp, A, B, C, D=D, z=z, initial_state=h0, output_final_state=True, chunk_size=4)
    y_ss, s_ss = selective_scan(
        x.reshape(b, T, H * P), dtp.repeat_interleave(P, -1), A.repeat_interleave(P)[:, None].expand(H * P, N),
        B, C, D.repeat_interleave(P), z.reshape(b, T, H * P),
        initial_state=h0.reshape(b, H * P, N), output_final_state=True, chunk_size=3,
    )  # fmt: skip
    assert_all_close([y_ss.view_as(y_ssd), s_ss.view_as(s_ssd)], [y_ssd, s_ssd])


def test_zero_dt_steps_are_no_ops():
    x, dt, A, B, C, D, z, h0, _ = inputs()
    dt = F.softplus(dt.detach())
    dt[:, 3:8] = 0
    y, s = ssd(x, dt, A, B, C, initial_state=h0, output_final_state=True, chunk_size=4)
    keep = [*range(3), *range(8, 13)]
    y2, s2 = ssd(
        x[:, keep], dt[:, keep], A, B[:, keep], C[:, keep], initial_state=h0, output_final_state=True
    )
    assert_all_close([y[:, keep], s], [y2, s2])


def test_strong_decay_is_stable():
    """Cumulative log decays far below exp's range inside a chunk: finite, and equal to the loop."""
    x, dt, A, B, C, D, z, h0, _ = inputs(T=40)
    dt = (dt.detach().abs() * 40).requires_grad_()
    A = (A.detach() * 30).requires_grad_()
    ts = [x, dt, A, B, C, h0]
    y0, s0 = naive_ssd(x, dt, A, B, C, initial_state=h0, output_final_state=True)
    y1, s1 = chunk_ssd(x, dt, A, B, C, initial_state=h0, output_final_state=True, chunk_size=32)
    assert torch.isfinite(y1).all() and torch.isfinite(s1).all()
    assert_all_close([y1, s1], [y0, s0])
    g1 = grads(y1, s1, ts)
    assert all(torch.isfinite(g).all() for g in g1)
    assert_all_close(g1, grads(y0, s0, ts))


def test_single_group_given_as_b_t_n():
    x, dt, A, B, C, *_ = inputs(G=1)
    a = ssd(x, dt, A, B, C, chunk_size=4)[0]
    b = ssd(x, dt, A, B[:, :, 0], C[:, :, 0], chunk_size=4)[0]
    assert_all_close([a], [b])


def test_bf16_inputs_accumulate_in_float32():
    ts32 = inputs(T=40, H=4, P=8, N=16, dtype=torch.float32)
    y32, s32 = run(ssd, ts32, chunk_size=16)
    y16, s16 = run(ssd, [t.detach().bfloat16() for t in ts32], chunk_size=16)
    assert y16.dtype == torch.bfloat16 and s16.dtype == torch.float32
    rel = (y16.float() - y32).norm() / y32.norm()
    assert rel < 0.03, rel


def test_empty_sequence():
    x, dt, A, B, C, D, z, h0, _ = inputs(T=0)
    y, s = ssd(x, dt, A, B, C, D=D, z=z, initial_state=h0, output_final_state=True)
    assert y.shape == (2, 0, 4, 3) and torch.equal(s, h0)


def test_bad_inputs_raise():
    x, dt, A, B, C, D, z, h0, _ = inputs(G=2)
    with pytest.raises(ConfigError, match="multiple of the B/C groups"):
        ssd(x, dt, A, torch.randn(2, 13, 3, 5, dtype=DT), torch.randn(2, 13, 3, 5, dtype=DT))
    with pytest.raises(DataError, match="dt must be"):
        ssd(x, dt[..., :2], A, B, C)
    with pytest.raises(DataError, match="A must be"):
        ssd(x, dt, A[:2], B, C)
    with pytest.raises(DataError, match="state"):
        ssd(x, dt, A, B, C, initial_state=h0[..., :2])
    with pytest.raises(ConfigError, match="chunk_size"):
        ssd(x, dt, A, B, C, chunk_size=0)
