"""Delta-rule ops (DeltaNet and Gated DeltaNet): chunked WY form and recurrent step against the naive recurrence."""

import pytest
import torch
import torch.nn.functional as F

from polyformer.core.ops.delta_rule import (
    chunk_delta_rule,
    chunk_gated_delta_rule,
    delta_rule,
    delta_rule_step,
    gated_delta_rule,
    gated_delta_rule_step,
    naive_delta_rule,
    naive_gated_delta_rule,
)

TOL = dict(atol=1e-9, rtol=1e-9)
OPS = {  # gated -> (naive, chunk, step, public)
    False: (naive_delta_rule, chunk_delta_rule, delta_rule_step, delta_rule),
    True: (naive_gated_delta_rule, chunk_gated_delta_rule, gated_delta_rule_step, gated_delta_rule),
}
SEQ = ("q", "k", "v", "g", "beta")


def make_inputs(gated, B=2, T=37, H=3, K=8, V=5, init=True, strength=2.0, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, K, generator=gen, dtype=dtype)
    k = F.normalize(torch.randn(B, T, H, K, generator=gen, dtype=dtype), dim=-1)
    v = torch.randn(B, T, H, V, generator=gen, dtype=dtype)
    beta = torch.rand(B, T, H, generator=gen, dtype=dtype)
    g = F.logsigmoid(torch.randn(B, T, H, generator=gen, dtype=dtype)) * strength
    S0 = torch.randn(B, H, K, V, generator=gen, dtype=dtype) if init else None
    inputs = dict(q=q, k=k, v=v, g=g, beta=beta, initial_state=S0)
    if not gated:
        del inputs["g"]
    return inputs


def outputs_and_grads(fn, inputs, seed=1):
    """Outputs, final state and the gradients of a random linear loss w.r.t. every input."""
    leaves = {n: t.clone().requires_grad_() for n, t in inputs.items() if t is not None}
    o, S = fn(**leaves, output_final_state=True)
    gen = torch.Generator().manual_seed(seed)
    loss = (o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum()
    loss = loss + (S * torch.randn(S.shape, generator=gen, dtype=S.dtype)).sum()
    return o.detach(), S.detach(), dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))


def stepper(gated):
    step = OPS[gated][2]

    def run(initial_state, output_final_state, **seqs):
        S, outs = initial_state, []
        for t in range(seqs["q"].shape[1]):
            o_t, S = step(*(seqs[n][:, t] for n in SEQ if n in seqs), S)
            outs.append(o_t)
        return torch.stack(outs, 1), S

    return run


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("chunk_size", [16, 64, 5])
@pytest.mark.parametrize("init", [True, False])
def test_chunk_matches_naive_outputs_and_grads(gated, chunk_size, init):
    naive, chunk = OPS[gated][:2]
    inputs = make_inputs(gated, init=init)
    o_ref, S_ref, g_ref = outputs_and_grads(naive, inputs)
    o, S, grads = outputs_and_grads(lambda **kw: chunk(**kw, chunk_size=chunk_size), inputs)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)
    assert set(grads) == set(g_ref)
    for name in g_ref:
        torch.testing.assert_close(grads[name], g_ref[name], **TOL, msg=lambda m, n=name: f"grad {n}: {m}")


@pytest.mark.parametrize("gated", [False, True])
def test_step_by_step_matches_naive_with_gradients(gated):
    inputs = make_inputs(gated, T=11)
    o_ref, S_ref, g_ref = outputs_and_grads(OPS[gated][0], inputs)
    o, S, grads = outputs_and_grads(stepper(gated), inputs)
    torch.testing.assert_close(o, o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)
    for name in g_ref:
        torch.testing.assert_close(grads[name], g_ref[name], **TOL)


@pytest.mark.parametrize("gated", [False, True])
def test_two_pieces_equal_whole(gated):
    chunk = OPS[gated][1]
    inputs = make_inputs(gated, T=53)
    seqs = {n: t for n, t in inputs.items() if n != "initial_state"}
    o_all, S_all = chunk(**inputs, output_final_state=True, chunk_size=16)
    o1, S1 = chunk(**{n: t[:, :20] for n, t in seqs.items()}, initial_state=inputs["initial_state"],
                   output_final_state=True, chunk_size=16)  # fmt: skip
    o2, S2 = chunk(
        **{n: t[:, 20:] for n, t in seqs.items()}, initial_state=S1, output_final_state=True, chunk_size=16
    )
    torch.testing.assert_close(torch.cat([o1, o2], 1), o_all, **TOL)
    torch.testing.assert_close(S2, S_all, **TOL)


@pytest.mark.parametrize("gated", [False, True])
def test_leading_padding_keeps_state_at_zero(gated):
    """Zero k, v, beta (and g) at leading pads: the valid part sees exactly what it sees unpadded."""
    chunk = OPS[gated][1]
    inputs = make_inputs(gated, B=1, T=30, init=False)
    o_ref, S_ref = chunk(**inputs, output_final_state=True, chunk_size=16)
    padded = {
        n: (F.pad(t, (0, 0) * (t.dim() - 2) + (7, 0)) if t is not None else None) for n, t in inputs.items()
    }
    padded["q"][:, :7] = 1.0  # queries at pads are irrelevant
    o, S = chunk(**padded, output_final_state=True, chunk_size=16)
    torch.testing.assert_close(o[:, 7:], o_ref, **TOL)
    torch.testing.assert_close(S, S_ref, **TOL)


@pytest.mark.parametrize("gated", [False, True])
def test_dispatch_and_final_state_flag(gated):
    naive, chunk, _, public = OPS[gated]
    inputs = make_inputs(gated)
    o_c, S_c = public(**inputs)
    assert S_c is None
    torch.testing.assert_close(o_c, public(**inputs, mode="recurrent")[0], **TOL)
    torch.testing.assert_close(o_c, naive(**inputs)[0], **TOL)


def test_strong_gate_is_stable_in_float32():
    inputs = make_inputs(True, T=150, init=False)
    inputs["g"] = torch.full_like(inputs["g"], -20.0)
    o_ref, _ = naive_gated_delta_rule(**inputs)
    o, S = chunk_gated_delta_rule(
        **{n: t.float() for n, t in inputs.items() if t is not None}, output_final_state=True
    )
    assert torch.isfinite(o).all() and torch.isfinite(S).all()
    torch.testing.assert_close(o.double(), o_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("gated", [False, True])
def test_bfloat16_runs_and_keeps_dtype(gated):
    naive, chunk = OPS[gated][:2]
    inputs = make_inputs(gated, T=40, init=False)
    o_ref, _ = naive(**inputs)
    o, S = chunk(**{n: t.bfloat16() for n, t in inputs.items() if t is not None}, output_final_state=True)
    assert o.dtype == torch.bfloat16 and S.dtype == torch.float32
    torch.testing.assert_close(o.double(), o_ref, atol=0.1, rtol=0.05)
