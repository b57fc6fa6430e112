"""Blocks and stacks: mixer specs, hybrid layouts, drop path, kwargs routing, prefill + step == full forward."""

import pytest
import torch
from torch import nn

from polyformer.core import Block, ConfigError, MixerStack, TokenMixer, list_mixers
from polyformer.core.blocks import expand_layout
from polyformer.core.layers import RMSNorm, SwiGLU

DT = torch.float64


class DecayMixer(TokenMixer):
    """A tiny causal linear recurrence h_t = a * h_{t-1} + W x_t (pads keep h); a stand-in second mixer."""

    def __init__(self, dim, *, causal=True, mode="auto", backend="auto", decay=0.5):
        super().__init__()
        self.causal, self.decay, self.backend = causal, decay, "torch"
        self.inp, self.out = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x, *, mask=None, state=None, return_state=False):
        h = self.init_state(x.shape[0], x.device, x.dtype) if state is None else state
        u, ys = self.inp(x), []
        for t in range(x.shape[1]):
            new = self.decay * h + u[:, t]
            h = new if mask is None else torch.where(mask[:, t, None], new, h)
            ys.append(h)
        return self.out(torch.stack(ys, 1)), (h if return_state else None)

    def step(self, x_t, state):
        return self.forward(x_t, state=state, return_state=True)

    def init_state(self, batch, device=None, dtype=None):
        return torch.zeros(batch, self.inp.out_features, device=device, dtype=dtype or self.inp.weight.dtype)


def x_of(b=2, t=6, d=32, seed=0):
    return torch.randn(b, t, d, generator=torch.Generator().manual_seed(seed), dtype=DT)


def test_block_specs_and_hints():
    by_name = Block(32, "attention", hints={"num_heads": 4})
    by_dict = Block(32, {"name": "attention", "num_heads": 2, "num_kv_heads": 1}, norm="layernorm", mlp="gelu")
    by_class = Block(32, DecayMixer, mlp=None, hints={"num_heads": 4})  # hint it does not take is dropped
    assert by_name.mixer.num_heads == 4 and isinstance(by_name.norm1, RMSNorm) and isinstance(by_name.mlp, SwiGLU)
    assert by_dict.mixer.num_heads == 2 and by_dict.mixer.num_kv_heads == 1 and isinstance(by_dict.norm1, nn.LayerNorm)
    assert by_class.mlp is None and by_class.norm2 is None
    x = x_of().float()
    for block in (by_name, by_dict, by_class):
        y, state = block(x)
        assert y.shape == x.shape and state is None
    with pytest.raises(ConfigError, match="attention"):
        Block(32, "atention")
    with pytest.raises(ConfigError, match="norm"):
        Block(32, norm="batchnorm")
    with pytest.raises(ConfigError, match="mlp"):
        Block(32, mlp="relu2")


def test_drop_path_only_in_training():
    torch.manual_seed(0)
    block = Block(32, "attention", drop_path=0.5, hints={"num_heads": 4}).double()
    ref = Block(32, "attention", drop_path=0.0, hints={"num_heads": 4}).double()
    ref.load_state_dict(block.state_dict())
    x = x_of(b=16)
    block.eval(), ref.eval()
    assert torch.equal(block(x)[0], ref(x)[0])
    block.train()
    y = block(x)[0]
    assert not torch.allclose(y, ref(x)[0])  # some samples dropped a branch


def test_expand_layout():
    assert expand_layout(4, "mamba2", {"attention": [1, -1]}) == ["mamba2", "attention", "mamba2", "attention"]
    assert expand_layout(2, "x", ["a", {"name": "b"}]) == ["a", {"name": "b"}]
    with pytest.raises(ConfigError, match="layer 4"):
        expand_layout(4, "m", {"attention": [4]})
    with pytest.raises(ConfigError, match="both"):
        expand_layout(4, "m", {"attention": [1], "gla": [1]})
    with pytest.raises(ConfigError, match="depth 3"):
        expand_layout(3, "m", ["attention"])


def test_stack_hybrid_layout_and_kwargs_routing():
    stack = MixerStack(32, 4, mixer=DecayMixer, layout={"attention": [1, 3]}, hints={"num_heads": 4}).double()
    assert stack.mixer_names == ["DecayMixer", "Attention", "DecayMixer", "Attention"]
    assert [layer.drop_path.p for layer in MixerStack(8, 3, drop_path=0.2, hints={"num_heads": 2}).layers] == [0.0, 0.1, 0.2]
    x = x_of()
    bias = torch.zeros(1, 4, 6, 6, dtype=DT)
    bias[..., 0] = -1e4  # hide token 0 from the attention layers only
    y0, _ = stack(x)
    y1, _ = stack(x, attn_bias=bias)
    assert y1.shape == x.shape and not torch.allclose(y0, y1)
    with pytest.raises(ConfigError, match="no mixer"):
        stack(x, grid=(2, 3))


def test_stack_padding_invariance():
    stack = MixerStack(32, 3, mixer=DecayMixer, layout={"attention": [1]}, hints={"num_heads": 4}).double().eval()
    x = x_of()
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    y, _ = stack(x, mask=mask)
    torch.testing.assert_close(y[1:, :4], stack(x[1:, :4])[0], rtol=1e-12, atol=1e-12)


def stack_cases():
    cases = [("attention", None), (DecayMixer, {"attention": [1]})]
    cases += [(name, {"attention": [1]}) for name in list_mixers() if name != "attention"]
    return cases


@pytest.mark.parametrize("mixer,layout", stack_cases(), ids=lambda v: v if isinstance(v, str) else getattr(v, "__name__", "layout"))
def test_stack_prefill_then_step_equals_full_forward(mixer, layout):
    torch.manual_seed(0)
    stack = MixerStack(32, 3, mixer=mixer, layout=layout, hints={"num_heads": 4}).double().eval()
    x = x_of(t=7)
    full, _ = stack(x)
    y, states = stack(x[:, :4], return_state=True)
    outs = [y]
    for t in range(4, 7):
        y_t, states = stack.step(x[:, t : t + 1], states)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-9, atol=1e-9)
    states = stack.init_state(2)
    y0, _ = stack.step(x[:, :1], states)
    torch.testing.assert_close(y0, full[:, :1], rtol=1e-9, atol=1e-9)


def test_gpt2_mlp_drops_out_only_after_the_output_projection():
    from polyformer.core.layers import build_mlp

    vit, gpt2 = build_mlp("gelu", 8, 4.0, dropout=0.5), build_mlp("gpt2", 8, 4.0, dropout=0.5)
    gpt2.load_state_dict(vit.state_dict())  # the same parameters: checkpoints of either load in the other
    x = torch.randn(64, 8)
    torch.manual_seed(0)
    out = gpt2.train()(x)
    torch.manual_seed(0)
    ref = torch.nn.functional.dropout(gpt2.fc2(torch.nn.functional.gelu(gpt2.fc1(x))), 0.5)
    torch.testing.assert_close(out, ref)
    torch.manual_seed(0)
    assert not torch.allclose(vit.train()(x), ref)  # the ViT MLP also drops hidden units
    torch.testing.assert_close(gpt2.eval()(x), vit.eval()(x))
