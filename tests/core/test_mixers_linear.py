"""Linear-attention mixers (retention, GLA, DeltaNet, Gated DeltaNet) against the token-mixer contract."""

import pytest
import torch

import polyformer.core.mixers.deltanet
import polyformer.core.mixers.gla
import polyformer.core.mixers.retention  # noqa: F401  (registers the mixers)
from polyformer.core.errors import ConfigError
from polyformer.core.mixers import build_mixer, list_mixers
from polyformer.core.mixers.deltanet import DeltaNetMixer
from polyformer.core.ops import _linear_common as linear_common

TOL = dict(atol=1e-10, rtol=1e-10)
DIM, T = 16, 21
CONFIGS = {
    "retention": ("retention", {}),
    "retention-norope": ("retention", {"use_rope": False}),
    "gla": ("gla", {}),
    "gla-conv": ("gla", {"use_short_conv": True}),
    "deltanet": ("deltanet", {}),
    "deltanet-noconv": ("deltanet", {"use_short_conv": False}),
    "gated_deltanet": ("gated_deltanet", {}),
}
MAIN = ["retention", "gla", "gla-conv", "deltanet", "gated_deltanet"]  # the configurations every test runs


def build(config, causal=True, dtype=torch.float64, **kw):
    name, options = CONFIGS[config]
    torch.manual_seed(0)
    mixer = build_mixer(name, dim=DIM, causal=causal, num_heads=2, chunk_size=8, **options, **kw)
    return mixer.to(dtype)


def inputs(B=2, length=T, dtype=torch.float64, seed=1):
    return torch.randn(B, length, DIM, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def assert_states_close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if a[key] is None:
            assert b[key] is None
        else:
            torch.testing.assert_close(a[key], b[key], **TOL, msg=lambda m, k=key: f"state[{k}]: {m}")


def pick(state, i):
    return {k: (None if v is None else v[i : i + 1]) for k, v in state.items()}


@pytest.mark.parametrize("config", CONFIGS)
def test_prefill_then_steps_equals_forward(config):
    mixer, x = build(config), inputs()
    y, _ = mixer(x)
    y_pre, state = mixer(x[:, :9], return_state=True)
    outs = [y_pre]
    for t in range(9, T):
        y_t, state = mixer.step(x[:, t : t + 1], state)
        assert y_t.shape == (2, 1, DIM)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), y, **TOL)


@pytest.mark.parametrize("config", MAIN)
def test_steps_from_init_state_and_pieces_equal_forward(config):
    mixer, x = build(config), inputs()
    y, final = mixer(x, return_state=True)
    state, outs = mixer.init_state(2, dtype=torch.float64), []
    for t in range(T):
        y_t, state = mixer.step(x[:, t : t + 1], state)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), y, **TOL)
    assert_states_close(state, final)
    y1, s1 = mixer(x[:, :12], return_state=True)
    y2, s2 = mixer(x[:, 12:], state=s1, return_state=True)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, **TOL)
    assert_states_close(s2, final)


@pytest.mark.parametrize("config", CONFIGS)
def test_padding_mask_invariance_and_state(config):
    mixer, x = build(config), inputs()
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1, 13:] = False
    x_pad = x.clone()
    x_pad[1, 13:] = 50.0  # garbage in the padding must not leak
    y, state = mixer(x_pad, mask=mask, return_state=True)
    y0, s0 = mixer(x[:1], return_state=True)
    y1, s1 = mixer(x[1:, :13], return_state=True)
    torch.testing.assert_close(y[:1], y0, **TOL)
    torch.testing.assert_close(y[1:, :13], y1, **TOL)
    assert_states_close(pick(state, 0), s0)
    assert_states_close(pick(state, 1), s1)
    # generation continues each sequence from its own last valid token
    nxt = inputs(length=1, seed=2)
    y_t, _ = mixer.step(nxt, state)
    torch.testing.assert_close(y_t[1:], mixer.step(nxt[1:], s1)[0], **TOL)
    torch.testing.assert_close(y_t[:1], mixer.step(nxt[:1], s0)[0], **TOL)


@pytest.mark.parametrize("config", MAIN)
def test_recurrent_mode_equals_chunk_mode(config):
    x = inputs()
    y_chunk, s_chunk = build(config, mode="chunk")(x, return_state=True)
    y_rec, s_rec = build(config, mode="recurrent")(x, return_state=True)
    torch.testing.assert_close(y_rec, y_chunk, **TOL)
    assert_states_close(s_rec, s_chunk)
    torch.testing.assert_close(build(config, mode="parallel")(x)[0], y_chunk, **TOL)


@pytest.mark.parametrize("config", MAIN)
def test_bidirectional_sees_the_future_and_ignores_padding(config):
    mixer, x = build(config, causal=False), inputs()
    y, state = mixer(x)
    assert state is None
    x2 = x.clone()
    x2[:, 11] += 1.0
    y2, _ = mixer(x2)
    assert (y2[:, 10] - y[:, 10]).abs().max() > 1e-6, "position 10 must depend on token 11"
    assert (y2[:, 12] - y[:, 12]).abs().max() > 1e-6, "position 12 must depend on token 11"
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1, 13:] = False
    x_pad = x.clone()
    x_pad[1, 13:] = 50.0
    y_pad, _ = mixer(x_pad, mask=mask)
    torch.testing.assert_close(y_pad[:1], y[:1], **TOL)
    torch.testing.assert_close(y_pad[1:, :13], mixer(x[1:, :13])[0], **TOL)
    with pytest.raises(ConfigError, match="causal=False"):
        mixer.step(x[:, :1], None)
    with pytest.raises(ConfigError, match="causal=False"):
        mixer(x, return_state=True)


@pytest.mark.parametrize("config", MAIN)
def test_causal_output_ignores_the_future(config):
    mixer, x = build(config), inputs()
    x2 = x.clone()
    x2[:, 11] += 1.0
    y, y2 = mixer(x)[0], mixer(x2)[0]
    torch.testing.assert_close(y2[:, :11], y[:, :11], **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("config", MAIN)
@pytest.mark.parametrize("causal", [True, False])
def test_float32_and_bfloat16_forward(config, dtype, causal):
    mixer = build(config, causal=causal, dtype=dtype)
    x = inputs(length=40, dtype=dtype)
    y, _ = mixer(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.isfinite(y).all()
    assert mixer.backend == "torch"
    if dtype == torch.float32:
        y.square().mean().backward()
        grads = [p.grad for p in mixer.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("config", CONFIGS)
def test_fla_backend_without_fla_raises(config, monkeypatch):
    monkeypatch.setattr(linear_common, "fla_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'polyformer\[cuda\]'"):
        build(config, backend="fla")


def test_fla_backend_needs_cuda_input_and_auto_stays_on_torch_for_cpu(monkeypatch):
    monkeypatch.setattr(linear_common, "fla_available", lambda: True)
    x = inputs()
    with pytest.raises(ConfigError, match="CUDA"):
        build("gla", backend="fla")(x)
    mixer = build("gla", backend="auto")
    mixer(x)
    assert mixer.backend == "torch"


def test_registry_names_gated_flag_and_bad_configs():
    assert {"retention", "gla", "deltanet", "gated_deltanet"} <= set(list_mixers())
    assert build_mixer("deltanet", dim=DIM, gated=True).gated
    assert not build_mixer("gated_deltanet", dim=DIM, gated=False).gated
    assert isinstance(build_mixer("gated_deltanet", dim=DIM), DeltaNetMixer)
    assert build_mixer("gla", dim=DIM, hints={"num_heads": 8, "unrelated": 1}).num_heads == 8
    with pytest.raises(ConfigError, match="num_heads"):
        build_mixer("gla", dim=DIM, num_heads=3)
    with pytest.raises(ConfigError, match="mode"):
        build_mixer("retention", dim=DIM, mode="fast")
    with pytest.raises(ConfigError, match="backend"):
        build_mixer("deltanet", dim=DIM, backend="cuda")
