"""The Mamba and Mamba-2 mixers: the token-mixer contract, padding, bidirectional form, dtypes, backends, init."""

import math

import pytest
import torch
import torch.nn.functional as F

from polyformer.core.errors import ConfigError
from polyformer.core.mixers.mamba import MambaMixer
from polyformer.core.mixers.mamba2 import Mamba2Mixer
from polyformer.core.mixers.registry import build_mixer

DIM, DT, TOL = 32, torch.float64, dict(rtol=1e-9, atol=1e-9)
# small configs that exercise grouping, odd chunking and short convolutions
CONFIGS = {
    "mamba": dict(d_state=8, chunk_size=3),
    "mamba2": dict(d_state=16, headdim=16, ngroups=2, chunk_size=3),
}
CLASSES = {"mamba": MambaMixer, "mamba2": Mamba2Mixer}
NAMES = list(CONFIGS)


def build(name, causal=True, dtype=DT, seed=0, **kw):
    torch.manual_seed(seed)
    return CLASSES[name](DIM, causal=causal, **{**CONFIGS[name], **kw}).to(dtype).eval()


def x_of(b=2, t=11, dtype=DT, seed=1):
    return torch.randn(b, t, DIM, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(
        dtype
    )


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_built_by_name(name):
    m = build_mixer(name, dim=DIM, causal=False)
    assert isinstance(m, CLASSES[name]) and m.causal is False


@pytest.mark.parametrize("name", NAMES)
def test_forward_equals_prefill_then_steps(name):
    m, x = build(name), x_of()
    full, none = m(x)
    assert none is None and full.shape == x.shape
    y, state = m(x[:, :4], return_state=True)
    outs = [y]
    for t in range(4, x.shape[1]):
        y_t, state = m.step(x[:, t : t + 1], state)
        assert y_t.shape == (2, 1, DIM)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), full, **TOL)
    # from init_state, one token at a time
    state, outs = m.init_state(2, dtype=DT), []
    for t in range(x.shape[1]):
        y_t, state = m.step(x[:, t : t + 1], state)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), full, **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_forward_continues_from_a_state(name):
    m, x = build(name), x_of(t=13)
    full, s_full = m(x, return_state=True)
    y1, s1 = m(x[:, :2], return_state=True)  # shorter than the conv window
    y2, s2 = m(x[:, 2:9], state=s1, return_state=True)
    y3, s3 = m(x[:, 9:], state=s2, return_state=True)
    torch.testing.assert_close(torch.cat([y1, y2, y3], 1), full, **TOL)
    for key in ("conv", "ssm"):
        torch.testing.assert_close(s3[key], s_full[key], **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_init_state_shapes(name):
    m = build(name)
    s = m.init_state(3)
    if name == "mamba":
        assert s["conv"].shape == (3, m.d_inner, 3) and s["ssm"].shape == (3, m.d_inner, m.d_state)
    else:
        assert s["conv"].shape == (3, m.conv_dim, 3) and s["ssm"].shape == (3, m.nheads, m.headdim, m.d_state)
    s16 = m.init_state(1, dtype=torch.bfloat16)
    assert s16["conv"].dtype == torch.bfloat16 and s16["ssm"].dtype == torch.float32


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidir"])
@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance(name, causal):
    """A right-padded sequence's valid outputs (and, causal, its state) equal the sequence run alone."""
    m, x = build(name, causal), x_of()
    x[1, 5:] = 1e3 * torch.randn(6, DIM, dtype=DT)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 5:] = False
    y, state = m(x, mask=mask, return_state=causal)
    assert torch.isfinite(y).all()
    alone, s_alone = m(x[1:, :5], return_state=causal)
    torch.testing.assert_close(y[1:, :5], alone, **TOL)
    torch.testing.assert_close(y[:1], m(x[:1])[0], **TOL)
    if causal:  # stepping on from the padded batch's state continues the short sequence
        for key in ("conv", "ssm"):
            torch.testing.assert_close(state[key][1:], s_alone[key], **TOL)
        nxt = x_of(t=1, seed=5)
        torch.testing.assert_close(
            m.step(nxt[1:], {k: v[1:] for k, v in state.items()})[0], m.step(nxt[1:], s_alone)[0], **TOL
        )


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidir"])
@pytest.mark.parametrize("name", NAMES)
def test_recurrent_mode_equals_chunk_mode(name, causal):
    x = x_of()
    chunk = build(name, causal, mode="chunk")
    rec = build(name, causal, mode="recurrent")
    rec.load_state_dict(chunk.state_dict())
    torch.testing.assert_close(rec(x)[0], chunk(x)[0], **TOL)
    assert build(name, causal, mode="parallel")(x)[0].allclose(chunk(x)[0], **TOL)


@pytest.mark.parametrize("name", NAMES)
def test_causal_ignores_the_future_and_bidirectional_sees_it(name):
    x = x_of()
    x2 = x.clone()
    x2[:, -1] += 1.0
    causal, bidir = build(name, True), build(name, False)
    torch.testing.assert_close(causal(x)[0][:, :-1], causal(x2)[0][:, :-1], rtol=1e-12, atol=1e-12)
    assert (bidir(x)[0][:, 0] - bidir(x2)[0][:, 0]).abs().max() > 1e-6


@pytest.mark.parametrize("name", NAMES)
def test_bidirectional_has_no_recurrent_form(name):
    m, x = build(name, False), x_of()
    with pytest.raises(ConfigError, match="causal=False"):
        m.step(x[:, :1], None)
    with pytest.raises(ConfigError, match="causal=False"):
        m(x, return_state=True)
    with pytest.raises(ConfigError, match="causal=False"):
        m.init_state(2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidir"])
@pytest.mark.parametrize("name", NAMES)
def test_low_precision_forward_is_finite_and_close(name, causal, dtype):
    ref = build(name, causal)(x_of(t=20))[0]
    y, _ = build(name, causal, dtype=dtype)(x_of(t=20, dtype=dtype))
    assert y.shape == (2, 20, DIM) and y.dtype == dtype and torch.isfinite(y.float()).all()
    rel = (y.double() - ref).norm() / ref.norm()
    assert rel < (1e-5 if dtype == torch.float32 else 0.05), rel


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "bidir"])
@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name, causal):
    m = build(name, causal, dtype=torch.float32).train()
    m(x_of(dtype=torch.float32))[0].square().mean().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, f"no gradient reaches {pname}"
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f"bad gradient in {pname}"


@pytest.mark.parametrize("name", NAMES)
def test_backend_selection(name):
    m = build(name)
    m(x_of())
    assert m.backend == "torch" and CLASSES[name].backend_for("cpu") == "torch"
    assert build(name, backend="torch").requested_backend == "torch"
    with pytest.raises(ConfigError, match="backend must be one of"):
        build(name, backend="triton")
    with pytest.raises(ConfigError, match="mode"):
        build(name, mode="sideways")


@pytest.mark.parametrize("name", NAMES)
def test_explicit_mamba_ssm_backend_without_the_package_is_a_config_error(name, monkeypatch):
    import polyformer.core.mixers.mamba as mamba_module

    monkeypatch.setattr(mamba_module, "mamba_ssm_available", lambda name: False)  # as on a machine without it
    with pytest.raises(ConfigError, match=r"pip install 'polyformer\[cuda\]'"):
        build(name, backend="mamba_ssm")


def test_mamba_init_follows_mamba_ssm():
    m = MambaMixer(64, dt_min=1e-3, dt_max=0.1)
    assert m.d_inner == 128 and m.dt_rank == 4 and m.d_state == 16 and m.d_conv == 4
    torch.testing.assert_close(-torch.exp(m.A_log), -torch.arange(1.0, 17).repeat(128, 1))
    torch.testing.assert_close(m.D, torch.ones(128))
    dt = F.softplus(m.dt_proj.bias)
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)
    assert m.dt_proj.weight.abs().max() <= 4**-0.5
    keys = {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias",
            "A_log", "D", "out_proj.weight"}  # fmt: skip
    assert set(m.state_dict()) == keys  # mamba-ssm's names: its checkpoints load
    assert m.x_proj.out_features == 4 + 2 * 16 and m.conv1d.weight.shape == (128, 1, 4)


def test_mamba2_init_and_heads():
    m = Mamba2Mixer(64)
    assert m.d_inner == 128 and m.headdim == 64 and m.nheads == 2 and m.d_state == 64 and m.chunk_size == 64
    A = torch.exp(m.A_log)
    assert A.min() >= 1 - 1e-5 and A.max() <= 16 + 1e-5
    dt = F.softplus(m.dt_bias)
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)
    keys = {
        "in_proj.weight",
        "conv1d.weight",
        "conv1d.bias",
        "dt_bias",
        "A_log",
        "D",
        "norm.weight",
        "out_proj.weight",
    }
    assert set(m.state_dict()) == keys
    assert m.in_proj.out_features == 2 * 128 + 2 * 64 + 2
    # num_heads (a model's hint) sets the heads unless headdim is given explicitly
    assert build_mixer("mamba2", dim=64, hints={"num_heads": 8}).nheads == 8
    assert build_mixer("mamba2", dim=64, headdim=32, hints={"num_heads": 8}).nheads == 4
    with pytest.raises(ConfigError, match="num_heads=3 must divide"):
        Mamba2Mixer(64, num_heads=3)
    with pytest.raises(ConfigError, match="headdim=48"):
        Mamba2Mixer(64, headdim=48)
    with pytest.raises(ConfigError, match="ngroups"):
        Mamba2Mixer(64, num_heads=4, ngroups=3)


def test_mamba_dt_rank_auto_is_ceil_dim_over_16():
    assert MambaMixer(40).dt_rank == math.ceil(40 / 16) and MambaMixer(40, dt_rank=7).dt_rank == 7
