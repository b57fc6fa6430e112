"""Models: shapes and gradients over the registry and over every core mixer; baselines and attention maps."""

from __future__ import annotations

import pytest
import torch

from polyformer.core.errors import ConfigError
from polyformer.core.mixers import list_mixers
from polyformer.timeseries.models import MODELS
from polyformer.timeseries.models.dlinear import moving_average

HINTS = {"seq_len": 24, "pred_len": 12, "enc_in": 3, "period": 6}
SMALL = {
    "itransformer": {"d_model": 16, "d_ff": 16, "n_heads": 2, "e_layers": 1},
    "patchtst": {"d_model": 16, "d_ff": 16, "n_heads": 2, "e_layers": 1, "patch_len": 8, "stride": 4},
}


def _build(name, **kw):
    return MODELS.build({"name": name, **SMALL.get(name, {}), **kw}, hints=HINTS)


@pytest.mark.parametrize("name", MODELS.names())
def test_shapes_and_backward(name):
    torch.manual_seed(0)
    model = _build(name)
    x = torch.randn(4, 24, 3, requires_grad=True)
    y = model(x, torch.randn(4, 24, 4))
    assert y.shape == (4, 12, 3) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    params = [p for p in model.parameters() if p.requires_grad]
    if name in ("persistence", "seasonal_naive"):
        assert not params
    else:
        assert params and all(p.grad is not None for p in params)


@pytest.mark.parametrize("mixer", list_mixers())
@pytest.mark.parametrize("name", ["itransformer", "patchtst"])
def test_every_core_mixer_bidirectional(name, mixer):
    model = _build(name, mixer={"name": mixer})
    x = torch.randn(2, 24, 5, requires_grad=True)
    y = model(x, torch.randn(2, 24, 4))
    assert y.shape == (2, 12, 5)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(not layer.mixer.causal for layer in model.encoder.layers)


def test_itransformer_time_features_are_extra_tokens_and_cropped():
    model = _build("itransformer").eval()
    x, marks = torch.randn(2, 24, 3), torch.randn(2, 24, 4)
    assert model.tokens(x, marks).shape == (2, 3 + 4, 16)
    assert model(x, marks).shape == (2, 12, 3)
    no_marks = _build("itransformer", use_marks=False).eval()
    assert no_marks.tokens(x, marks).shape == (2, 3, 16)


def test_use_norm_makes_the_forecast_follow_the_level_and_scale():
    torch.manual_seed(0)
    model = _build("itransformer").eval()
    x = torch.randn(2, 24, 3)
    with torch.no_grad():
        assert torch.allclose(model(3 * x + 7), 3 * model(x) + 7, atol=1e-4)


def test_variates_are_permutation_equivariant_without_time_tokens():
    torch.manual_seed(0)
    model = _build("itransformer").eval()
    x, perm = torch.randn(2, 24, 5), torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        assert torch.allclose(model(x)[..., perm], model(x[..., perm]), atol=1e-5)


def test_attention_maps_are_the_weights_the_mixer_uses():
    torch.manual_seed(0)
    model = _build("itransformer", e_layers=2).eval()
    x, marks = torch.randn(2, 24, 3), torch.randn(2, 24, 4)
    maps = model.attention_maps(x, marks)
    assert len(maps) == 2 and maps[0].shape == (2, 2, 7, 7)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 2, 7), atol=1e-5)
    mixer = model.encoder.layers[0].mixer
    tokens = model.tokens(*model_inputs_normalised(x, marks))
    _, _, v = mixer._qkv(tokens)
    mixed = torch.einsum("bhqk,bkhd->bqhd", maps[0], v).reshape(2, 7, -1)
    assert torch.allclose(mixer.out_proj(mixed), mixer(tokens)[0], atol=1e-5)


def model_inputs_normalised(x, marks):
    from polyformer.timeseries.models.norm import normalize

    return normalize(x)[0], marks


def test_naive_forecasts():
    x = torch.arange(24.0).reshape(1, 24, 1).repeat(1, 1, 2)
    assert _build("persistence")(x)[0, :, 0].tolist() == [23.0] * 12
    # season 6: the last six values 18..23 repeated over the horizon of 12.
    assert _build("seasonal_naive")(x)[0, :, 1].tolist() == [18, 19, 20, 21, 22, 23] * 2
    assert _build("seasonal_naive", season=4)(x)[0, :5, 0].tolist() == [20, 21, 22, 23, 20]
    with pytest.raises(ConfigError, match="season"):
        _build("seasonal_naive", season=48)


def test_dlinear_decomposition_and_init():
    x = torch.randn(2, 24, 3)
    trend = moving_average(x, 5)
    assert trend.shape == x.shape
    assert torch.allclose(trend[:, 10], x[:, 8:13].mean(1), atol=1e-6)
    const = torch.full((1, 24, 3), 2.5)
    assert torch.allclose(_build("dlinear")(const), torch.full((1, 12, 3), 2.5), atol=1e-5)
    individual = _build("dlinear", individual=True)
    assert individual.seasonal_weight.shape == (3, 12, 24)
    assert individual(x).shape == (2, 12, 3)


def test_patchtst_patches():
    model = _build("patchtst")
    assert model.num_patches == (24 - 8) // 4 + 2
