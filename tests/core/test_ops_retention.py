"""Retention ops: the chunked form and the recurrent step against the naive recurrence (outputs and gradients)."""

import pytest
import torch

from polyformer.core.ops.retention import chunk_retention, naive_retention, retention, retention_step

TOL = dict(atol=1e-9, rtol=1e-9)


def make_inputs(B=2, T=37, H=3, K=8, V=5, per_token=False, init=True, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, T, H, K, generator=g, dtype=dtype) for _ in range(2))
    v = torch.randn(B, T, H, V, generator=g, dtype=dtype)
    shape = (B, T, H) if per_token else (H,)
    gamma = 0.5 + 0.5 * torch.rand(shape, generator=g, dtype=dtype)
    S0 = torch.randn(B, H, K, V, generator=g, dtype=dtype) if init else None
    return dict(q=q, k=k, v=v, gamma=gamma, initial_state=S0)


def outputs_and_grads(fn, inputs, seed=1):
    """Outputs, final state and the gradients of a random linear loss w.r.t. every input."""
    leaves = {n: t.clone().requires_grad_() for n, t in inputs.items() if t is not None}
    o, S = fn(**leaves, output_final_state=True)
    g = torch.Generator().manual_seed(seed)
    loss = (o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum()
    loss = loss + (S * torch.randn(S.shape, generator=g, dtype=S.dtype)).sum()
    return o.detach(), S.detach(), dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))


@pytest.mark.parametrize("chunk_size", [16, 64, 5])
@pytest.mark.parametrize("init", [True, False])
@pytest.mark.parametrize("per_token", [False, True])
def test_chunk_matches_naive_outputs_and_grads(chunk_size, init, per_token):
    inputs = make_inputs(init=init, per_token=per_token)
    o_ref, S_ref, g_ref = outputs_and_grads(naive_retention, inputs)
    o, S, grads = outputs_and_grads(lambda **kw: chunk_retention(**kw, chunk_size=chunk_size), inputs)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)
    assert set(grads) == set(g_ref)
    for name in g_ref:
        torch.testing.assert_close(grads[name], g_ref[name], **TOL, msg=lambda m, n=name: f"grad {n}: {m}")


def test_step_by_step_matches_naive_with_gradients():
    inputs = make_inputs(T=11)

    def stepped(q, k, v, gamma, initial_state, output_final_state):
        S, outs = initial_state, []
        for t in range(q.shape[1]):
            o_t, S = retention_step(q[:, t], k[:, t], v[:, t], gamma, S)
            outs.append(o_t)
        return torch.stack(outs, 1), S

    o_ref, S_ref, g_ref = outputs_and_grads(naive_retention, inputs)
    o, S, grads = outputs_and_grads(stepped, inputs)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)
    for name in g_ref:
        torch.testing.assert_close(grads[name], g_ref[name], **TOL)


def test_step_takes_per_batch_gamma():
    inputs = make_inputs(T=6, per_token=True)
    o_ref, S_ref = naive_retention(**inputs, output_final_state=True)
    S, outs = inputs["initial_state"], []
    for t in range(6):
        o_t, S = retention_step(*(inputs[n][:, t] for n in ("q", "k", "v", "gamma")), S)
        outs.append(o_t)
    torch.testing.assert_close(torch.stack(outs, 1), o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)


def test_two_pieces_equal_whole():
    inputs = make_inputs(T=53)
    o_all, S_all = chunk_retention(**inputs, output_final_state=True, chunk_size=16)
    seqs = {n: inputs[n] for n in ("q", "k", "v")}
    o1, S1 = chunk_retention(
        **{n: t[:, :20] for n, t in seqs.items()}, gamma=inputs["gamma"],
        initial_state=inputs["initial_state"], output_final_state=True, chunk_size=16,
    )  # fmt: skip
    o2, S2 = chunk_retention(
        **{n: t[:, 20:] for n, t in seqs.items()}, gamma=inputs["gamma"],
        initial_state=S1, output_final_state=True, chunk_size=16,
    )  # fmt: skip
    torch.testing.assert_close(torch.cat([o1, o2], 1), o_all, **TOL)
    torch.testing.assert_close(S2, S_all, **TOL)


def test_gamma_one_at_padding_leaves_state_untouched():
    inputs = make_inputs(B=1, T=30, per_token=True)
    _, S_ref = naive_retention(**{**inputs, **{n: inputs[n][:, :20] for n in ("q", "k", "v", "gamma")}},
                               output_final_state=True)  # fmt: skip
    padded = dict(inputs)
    for n in ("k", "v"):
        padded[n] = inputs[n].clone()
        padded[n][:, 20:] = 0
    padded["gamma"] = inputs["gamma"].clone()
    padded["gamma"][:, 20:] = 1.0
    _, S = chunk_retention(**padded, output_final_state=True, chunk_size=16)
    torch.testing.assert_close(S, S_ref, **TOL)


def test_dispatch_and_final_state_flag():
    inputs = make_inputs()
    o_c, S_c = retention(**inputs)
    assert S_c is None
    o_r, _ = retention(**inputs, mode="recurrent")
    torch.testing.assert_close(o_c, o_r, **TOL)


def test_small_gamma_is_stable_in_float32():
    inputs = make_inputs(T=150, init=False)
    inputs["gamma"] = torch.full_like(inputs["gamma"], 1e-3)
    o_ref, _ = naive_retention(**inputs)
    as32 = {n: t.float() for n, t in inputs.items() if t is not None}
    o, S = chunk_retention(**as32, output_final_state=True)
    assert torch.isfinite(o).all() and torch.isfinite(S).all()
    torch.testing.assert_close(o.double(), o_ref, atol=1e-4, rtol=1e-4)


def test_bfloat16_runs_and_keeps_dtype():
    inputs = make_inputs(T=40, init=False)
    o_ref, _ = naive_retention(**inputs)
    half = {n: t.bfloat16() for n, t in inputs.items() if t is not None}
    o, S = chunk_retention(**half, output_final_state=True)
    assert o.dtype == torch.bfloat16 and S.dtype == torch.float32
    torch.testing.assert_close(o.double(), o_ref, atol=0.1, rtol=0.05)


def test_bad_gamma_shape_raises():
    inputs = make_inputs()
    inputs["gamma"] = inputs["gamma"][:2]
    with pytest.raises(ValueError, match="gamma"):
        chunk_retention(**inputs)
