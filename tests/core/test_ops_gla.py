"""GLA ops: the chunked form and the recurrent step against the naive recurrence (outputs and gradients)."""

import pytest
import torch
import torch.nn.functional as F

from polyformer.core.ops.gla import chunk_gla, gla, gla_step, naive_gla

TOL = dict(atol=1e-9, rtol=1e-9)


def make_inputs(B=2, T=37, H=3, K=8, V=5, strength=1.0, init=True, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, T, H, K, generator=g, dtype=dtype) for _ in range(2))
    v = torch.randn(B, T, H, V, generator=g, dtype=dtype)
    gk = F.logsigmoid(torch.randn(B, T, H, K, generator=g, dtype=dtype) + 1.0) * strength
    S0 = torch.randn(B, H, K, V, generator=g, dtype=dtype) if init else None
    return dict(q=q, k=k, v=v, gk=gk, initial_state=S0)


def outputs_and_grads(fn, inputs, seed=1):
    """Outputs, final state and the gradients of a random linear loss w.r.t. every input."""
    leaves = {n: t.clone().requires_grad_() for n, t in inputs.items() if t is not None}
    o, S = fn(**leaves, output_final_state=True)
    g = torch.Generator().manual_seed(seed)
    loss = (o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum()
    loss = loss + (S * torch.randn(S.shape, generator=g, dtype=S.dtype)).sum()
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return o.detach(), S.detach(), dict(zip(leaves, grads))


@pytest.mark.parametrize("chunk_size", [16, 64, 5])
@pytest.mark.parametrize("init", [True, False])
def test_chunk_matches_naive_outputs_and_grads(chunk_size, init):
    inputs = make_inputs(init=init)
    o_ref, S_ref, g_ref = outputs_and_grads(naive_gla, inputs)
    o, S, grads = outputs_and_grads(lambda **kw: chunk_gla(**kw, chunk_size=chunk_size), inputs)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)
    assert set(grads) == set(g_ref)
    for name in g_ref:
        torch.testing.assert_close(grads[name], g_ref[name], **TOL, msg=lambda m, n=name: f"grad {n}: {m}")


@pytest.mark.parametrize("strength", [0.05, 1.0, 5.0, 60.0])
def test_chunk_all_intra_paths_match_naive(strength):
    """Mild decays take the single-block path, medium ones sub-chunks, extreme ones the element-wise path."""
    inputs = make_inputs(T=100, strength=strength)
    o_ref, S_ref, g_ref = outputs_and_grads(naive_gla, inputs)
    o, S, grads = outputs_and_grads(lambda **kw: chunk_gla(**kw, chunk_size=64), inputs)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)
    for name in g_ref:
        torch.testing.assert_close(grads[name], g_ref[name], **TOL)


def test_step_by_step_matches_naive():
    inputs = make_inputs()
    o_ref, S_ref = naive_gla(**inputs, output_final_state=True)
    S, outs = inputs["initial_state"], []
    for t in range(inputs["q"].shape[1]):
        o_t, S = gla_step(*(inputs[n][:, t] for n in ("q", "k", "v", "gk")), S)
        outs.append(o_t)
    torch.testing.assert_close(torch.stack(outs, 1), o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)


def test_step_gradients_match_naive():
    inputs = make_inputs(T=9)

    def stepped(q, k, v, gk, initial_state, output_final_state):
        S, outs = initial_state, []
        for t in range(q.shape[1]):
            o_t, S = gla_step(q[:, t], k[:, t], v[:, t], gk[:, t], S)
            outs.append(o_t)
        return torch.stack(outs, 1), S

    o_ref, S_ref, g_ref = outputs_and_grads(naive_gla, inputs)
    o, S, grads = outputs_and_grads(stepped, inputs)
    for name in g_ref:
        torch.testing.assert_close(grads[name], g_ref[name], **TOL)


def test_two_pieces_equal_whole():
    inputs = make_inputs(T=53)
    o_all, S_all = chunk_gla(**inputs, output_final_state=True, chunk_size=16)
    seqs = {n: inputs[n] for n in ("q", "k", "v", "gk")}
    first = {n: t[:, :20] for n, t in seqs.items()}
    o1, S1 = chunk_gla(**first, initial_state=inputs["initial_state"], output_final_state=True, chunk_size=16)
    rest = {n: t[:, 20:] for n, t in seqs.items()}
    o2, S2 = chunk_gla(**rest, initial_state=S1, output_final_state=True, chunk_size=16)
    torch.testing.assert_close(torch.cat([o1, o2], 1), o_all, **TOL)
    torch.testing.assert_close(S2, S_all, **TOL)


def test_dispatch_and_final_state_flag():
    inputs = make_inputs()
    o_c, S_c = gla(**inputs)
    assert S_c is None
    o_r, _ = gla(**inputs, mode="recurrent")
    torch.testing.assert_close(o_c, o_r, **TOL)
    torch.testing.assert_close(o_c, chunk_gla(**inputs)[0], atol=0, rtol=0)


@pytest.mark.parametrize("decay", [-5.0, -50.0])
def test_strong_decay_is_stable_in_float32(decay):
    inputs = make_inputs(T=150, init=False)
    inputs["gk"] = torch.full_like(inputs["gk"], decay) + 0.1 * torch.randn_like(inputs["gk"])
    o_ref, _ = naive_gla(**inputs)
    as32 = {n: t.float() for n, t in inputs.items() if t is not None}
    o, S = chunk_gla(**as32, output_final_state=True, chunk_size=64)
    assert torch.isfinite(o).all() and torch.isfinite(S).all()
    torch.testing.assert_close(o.double(), o_ref, atol=1e-4, rtol=1e-4)


def test_bfloat16_runs_and_keeps_dtype():
    inputs = make_inputs(T=40, init=False)
    o_ref, _ = naive_gla(**inputs)
    half = {n: t.bfloat16() for n, t in inputs.items() if t is not None}
    o, S = chunk_gla(**half, output_final_state=True)
    assert o.dtype == torch.bfloat16 and S.dtype == torch.float32
    assert torch.isfinite(o).all()
    torch.testing.assert_close(o.double(), o_ref, atol=0.1, rtol=0.05)


def test_bad_initial_state_shape_raises():
    inputs = make_inputs()
    inputs["initial_state"] = inputs["initial_state"][:, :1]
    with pytest.raises(ValueError, match="initial_state"):
        chunk_gla(**inputs)
