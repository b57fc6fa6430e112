"""The compiled CPU selective scan against the definition (naive recurrence), and the Mamba mixer on it."""

from __future__ import annotations

import pytest
import torch

from polyformer.core import build_mixer
from polyformer.core.errors import ConfigError
from polyformer.core.ops import naive_selective_scan, selective_scan_cpu

CASES = [  # (batch, T, channels, states, groups, initial state) -- T not a multiple of the 64-step checkpoints
    (2, 37, 8, 4, 1, True),
    (1, 130, 12, 5, 3, False),  # 4 channels per group: one partial SIMD vector per work item
    (2, 200, 16, 16, 2, True),
    (1, 70, 150, 3, 1, True),  # blocks of 64, 64 and 22 channels (a partial last vector)
]
OPTIONS = {  # what the kernel fuses around the scan: D and the silu(z) gate; delta_bias and softplus
    "gate": dict(gate=True, softplus=False),
    "softplus": dict(gate=False, softplus=True),
    "both": dict(gate=True, softplus=True),
}


def _inputs(Bsz, T, Dm, N, G, with_h0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale + shift).requires_grad_()

    u, z = r(Bsz, T, Dm), r(Bsz, T, Dm)
    delta = (torch.rand(Bsz, T, Dm, generator=g, dtype=dtype) * 0.5).requires_grad_()
    A = (-torch.rand(Dm, N, generator=g, dtype=dtype) - 0.5).requires_grad_()
    B, C, D = r(Bsz, T, G, N), r(Bsz, T, G, N), r(Dm)
    h0 = r(Bsz, Dm, N) if with_h0 else None
    return [u, delta, A, B, C, D, z], h0


def _bias(Dm, dtype, seed=1):
    """dt biases around -1, with a few above softplus' threshold (20), where softplus(x) = x."""
    g = torch.Generator().manual_seed(seed)
    bias = torch.randn(Dm, generator=g, dtype=dtype) - 1
    bias[::7] = 21.0
    return bias.requires_grad_()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("option", OPTIONS)
def test_cpu_kernel_matches_the_recurrence_outputs_state_and_grads(case, option):
    gate, softplus = OPTIONS[option]["gate"], OPTIONS[option]["softplus"]
    ins, h0 = _inputs(*case)
    if not gate:
        ins[5] = ins[6] = None  # no D, no z
    bias = _bias(case[2], ins[0].dtype) if softplus else None
    leaves = [t for t in [*ins, bias, h0] if t is not None]
    names = [
        n
        for n, t in zip(["u", "delta", "A", "B", "C", "D", "z", "bias", "h0"], [*ins, bias, h0])
        if t is not None
    ]
    results = []
    for fn in (naive_selective_scan, selective_scan_cpu):
        y, hT = fn(*ins, initial_state=h0, output_final_state=True, delta_bias=bias, delta_softplus=softplus)
        weights = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
        grads = torch.autograd.grad((y * weights).sum() + hT.square().sum(), leaves)
        results.append((y, hT, grads))
    (y0, h0_ref, g0), (y1, h1, g1) = results
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(h1, h0_ref)
    for name, a, b in zip(names, g1, g0):
        torch.testing.assert_close(a, b, msg=lambda m, name=name: f"grad {name}: {m}")


def test_cpu_kernel_grads_of_the_final_state_alone_and_without_grad():
    ins, h0 = _inputs(2, 90, 80, 4, 1, True)
    for fn in (naive_selective_scan, selective_scan_cpu):  # only the state is used: no output gradient
        _, hT = fn(*ins, initial_state=h0, output_final_state=True)
        g = torch.autograd.grad(hT.sum(), [ins[0], ins[1], h0])
        if fn is naive_selective_scan:
            ref = g
    for a, b in zip(g, ref):
        torch.testing.assert_close(a, b)
    with torch.no_grad():  # inference: the forward keeps no checkpoints
        y0, s0 = naive_selective_scan(*ins, initial_state=h0, output_final_state=True)
        y1, s1 = selective_scan_cpu(*ins, initial_state=h0, output_final_state=True)
    torch.testing.assert_close(y1, y0)
    torch.testing.assert_close(s1, s0)


def test_cpu_kernel_half_inputs_compute_in_float32():
    ins, _ = _inputs(1, 64, 32, 8, 1, False, dtype=torch.float32, seed=5)
    half = [t.detach().to(torch.bfloat16) for t in ins]
    ref, ref_state = naive_selective_scan(*half, output_final_state=True)
    out, state = selective_scan_cpu(*half, output_final_state=True)
    assert out.dtype == torch.bfloat16 and state.dtype == torch.float32
    torch.testing.assert_close(out.float(), ref.float(), atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(state, ref_state, atol=1e-4, rtol=1e-4)


def test_cpu_kernel_float32_with_softplus_and_bias_matches():
    ins, _ = _inputs(2, 150, 16, 8, 1, False, dtype=torch.float32, seed=3)
    bias = torch.randn(16)
    ref, _ = naive_selective_scan(*ins, delta_bias=bias, delta_softplus=True)
    out, _ = selective_scan_cpu(*ins, delta_bias=bias, delta_softplus=True)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_mamba_mixer_on_the_cpu_kernel_matches_torch_and_streams():
    torch.manual_seed(0)
    ref = build_mixer("mamba", dim=32, backend="torch").double()
    fast = build_mixer("mamba", dim=32, backend="cpu").double()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, 90, 32, dtype=torch.float64)
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, s_ref = ref(xr, return_state=True)
    y_fast, s_fast = fast(xf, return_state=True)
    assert fast.backend == "cpu" and ref.backend == "torch"
    torch.testing.assert_close(y_fast, y_ref)
    torch.testing.assert_close(s_fast["ssm"], s_ref["ssm"])
    y_ref.square().sum().backward()
    y_fast.square().sum().backward()
    torch.testing.assert_close(xf.grad, xr.grad)
    for (n, a), b in zip(fast.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=lambda m, n=n: f"{n}: {m}")
    # a prefix on the kernel, then the rest from its state, equals the whole sequence
    y_pre, state = fast(x[:, :50], return_state=True)
    y_rest, _ = fast(x[:, 50:], state=state)
    torch.testing.assert_close(torch.cat([y_pre, y_rest], 1), y_ref.detach())


def test_cpu_backend_errors_are_clear():
    with pytest.raises(ConfigError, match="for 'mamba' only"):
        build_mixer("mamba2", dim=32, backend="cpu")
    with pytest.raises(ConfigError, match="recurrent"):
        build_mixer("mamba", dim=32, backend="cpu", mode="recurrent")
