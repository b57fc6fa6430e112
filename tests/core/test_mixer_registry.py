"""The mixer contract, checked for every registered mixer (whatever `list_mixers()` holds when this runs)."""

import pytest
import torch

import polyformer.core  # noqa: F401  (registers every mixer)
from polyformer.core import Block, ConfigError, build_mixer, list_mixers

DIM, HINTS = 32, {"num_heads": 4}
NAMES = list_mixers()
DT = torch.float64


def build(name, causal=True, dtype=DT, **kw):
    torch.manual_seed(0)
    return build_mixer(name, dim=DIM, causal=causal, hints=HINTS, **kw).to(dtype).eval()


def x_of(b=2, t=7, dtype=DT, seed=1):
    return torch.randn(b, t, DIM, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def test_registry_has_attention():
    assert "attention" in NAMES


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidir"])
@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_backend(name, causal):
    m = build(name, causal)
    assert m.causal is causal
    y, state = m(x_of())
    assert y.shape == (2, 7, DIM) and state is None and torch.isfinite(y).all()
    assert isinstance(m.backend, str) and m.backend


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidir"])
@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name, causal):
    m = build(name, causal, dtype=torch.float32).train()
    m(x_of(dtype=torch.float32))[0].square().mean().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
        assert p.grad.abs().sum() > 0, f"{name}: zero gradient in {pname}"


@pytest.mark.parametrize("name", NAMES)
def test_bf16_close_to_fp32(name):
    m32 = build(name, dtype=torch.float32)
    m16 = build(name, dtype=torch.bfloat16)
    x = x_of(dtype=torch.float32)
    y32, y16 = m32(x)[0], m16(x.bfloat16())[0]
    assert y16.dtype == torch.bfloat16 and torch.isfinite(y16).all()
    rel = (y16.float() - y32).norm() / y32.norm()
    assert rel < 0.05, f"{name}: bf16 output differs from fp32 by {rel:.3f} (relative norm)"


@pytest.mark.parametrize("name", NAMES)
def test_prefill_then_step_equals_full_forward(name):
    m, x = build(name), x_of()
    full, _ = m(x)
    y, state = m(x[:, :4], return_state=True)
    outs = [y]
    for t in range(4, 7):
        y_t, state = m.step(x[:, t : t + 1], state)
        assert y_t.shape == (2, 1, DIM)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-9, atol=1e-9)
    # from the empty state, token by token
    state, outs = m.init_state(2, dtype=DT), []
    for t in range(7):
        y_t, state = m.step(x[:, t : t + 1], state)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidir"])
@pytest.mark.parametrize("name", NAMES)
def test_padding_mask_invariance(name, causal):
    """Valid outputs of a right-padded sequence equal those of the sequence alone, whatever the pads hold."""
    m, x = build(name, causal), x_of()
    x[1, 4:] = 1e3 * torch.randn(3, DIM, dtype=DT)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    y, _ = m(x, mask=mask)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[1:, :4], m(x[1:, :4])[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(y[:1], m(x[:1])[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_causal_ignores_future_bidirectional_sees_it(name):
    x = x_of()
    x2 = x.clone()
    x2[:, -1] += 1.0
    causal, bidir = build(name, True), build(name, False)
    torch.testing.assert_close(causal(x)[0][:, :-1], causal(x2)[0][:, :-1], rtol=1e-12, atol=1e-12)
    assert (bidir(x)[0][:, 0] - bidir(x2)[0][:, 0]).abs().max() > 1e-6, f"{name}: bidirectional form ignores the future"


def test_unknown_name_and_option_are_config_errors():
    with pytest.raises(ConfigError, match="attention") as err:
        build_mixer("no_such_mixer", dim=DIM)
    assert all(n in str(err.value) for n in NAMES)
    for name in NAMES:
        with pytest.raises(ConfigError, match="no_such_option"):
            build_mixer(name, dim=DIM, no_such_option=1)


def compile_names():
    linear = [n for n in ("gla", "retention", "deltanet", "mamba2", "mamba") if n in NAMES][:1]
    return ["attention"] + linear


@pytest.mark.slow
@pytest.mark.parametrize("name", compile_names())
def test_torch_compile_block_forward_backward(name):
    """Inductor compile of a Block (C++ codegen on CPU: tens of seconds on 2 cores)."""
    torch._dynamo.reset()
    block = Block(DIM, name, hints=HINTS)
    x = x_of(t=8, dtype=torch.float32)
    ref = block(x)[0]
    y = torch.compile(block)(x)[0]
    y.square().mean().backward()
    torch.testing.assert_close(y, ref, rtol=1e-4, atol=1e-4)
    assert all(p.grad is not None for p in block.parameters())


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n != "attention" else []) for n in compile_names()]
)
def test_dynamo_captures_block(name):
    """Dynamo tracing + AOT autograd (no codegen) of a Block, forward and backward: a graph-capture check
    (~10 s for attention on a loaded 2-core machine; chunked linear mixers unroll and take longer)."""
    torch._dynamo.reset()
    block = Block(DIM, name, hints=HINTS)
    x = x_of(t=8, dtype=torch.float32)
    y = torch.compile(block, backend="aot_eager")(x)[0]
    y.square().mean().backward()
    torch.testing.assert_close(y, block(x)[0], rtol=1e-5, atol=1e-5)


def test_doctor_reports_every_mixer():
    from polyformer.core.doctor import backend_report, environment_report

    rows = {r["mixer"]: r for r in backend_report()}
    assert sorted(rows) == NAMES
    for row in rows.values():
        assert row["cpu"] and not row["cpu"].startswith("error"), row
        assert row["cuda"] and not row["cuda"].startswith("error"), row
        assert set(row["accelerated"]) == {"mamba_ssm", "causal_conv1d", "fla", "triton"}
    env = environment_report()
    assert env["torch"] == torch.__version__.split("+")[0] and env["python"]
