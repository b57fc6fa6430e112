"""Softmax attention ops: the SDPA path against the naive reference, masks, GQA, windows, KV-cache decoding."""

import pytest
import torch

from polyformer.core.errors import ConfigError, DataError
from polyformer.core.ops.attention import (
    attention,
    attention_step,
    kv_cache_append,
    kv_cache_init,
    naive_attention,
    sdpa_backend,
)

DT = torch.float64


def qkv(b=2, tq=6, tk=6, h=4, hk=4, d=8, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *s: torch.randn(*s, generator=g, dtype=DT).requires_grad_(grad)
    return mk(b, tq, h, d), mk(b, tk, hk, d), mk(b, tk, hk, d)


def key_mask(b, t, lengths):
    return torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]


CASES = {
    "plain": dict(),
    "causal": dict(causal=True),
    "gqa": dict(causal=True, hk=2),
    "mqa": dict(hk=1),
    "window_causal": dict(causal=True, window=2),
    "window_bidir": dict(window=2),
    "window_as_long_as_t": dict(causal=True, window=6),  # a no-op window: the fused path
    "window_one_short": dict(causal=True, window=5),  # only the last query loses a key
    "bias": dict(bias=True),
    "bias_causal_gqa": dict(causal=True, bias=True, hk=2),
    "mask": dict(lengths=[6, 3]),
    "mask_causal_window": dict(causal=True, window=3, lengths=[4, 6]),
    "decode_shape": dict(causal=True, tq=2, tk=6),
    "scale": dict(scale=0.5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sdpa_matches_naive_outputs_and_grads(name):
    c = dict(CASES[name])
    tq, tk = c.pop("tq", 6), c.pop("tk", 6)
    q, k, v = qkv(tq=tq, tk=tk, hk=c.pop("hk", 4), grad=True)
    kw = dict(causal=c.get("causal", False), window=c.get("window"), scale=c.get("scale"))
    if c.get("bias"):
        kw["attn_bias"] = torch.randn(1, 4, tq, tk, dtype=DT, requires_grad=True)
    if "lengths" in c:
        kw["mask"] = key_mask(2, tk, c["lengths"])
    out = attention(q, k, v, **kw)
    ref = naive_attention(q, k, v, **kw)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    leaves = [q, k, v] + ([kw["attn_bias"]] if "attn_bias" in kw else [])
    g_out = torch.autograd.grad(out.square().sum(), leaves)
    g_ref = torch.autograd.grad(ref.square().sum(), leaves)
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_naive_is_softmax_definition():
    q, k, v = qkv(b=1, tq=3, tk=3, h=1, hk=1, d=4)
    scores = (q[0, :, 0] @ k[0, :, 0].T) / 2.0
    scores = scores.masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), float("-inf"))
    ref = torch.softmax(scores, -1) @ v[0, :, 0]
    torch.testing.assert_close(naive_attention(q, k, v, causal=True)[0, :, 0], ref)


def test_causal_is_bottom_right_aligned_for_short_queries():
    q, k, v = qkv(tq=6, tk=6)
    full = attention(q, k, v, causal=True)
    torch.testing.assert_close(attention(q[:, 4:], k, v, causal=True), full[:, 4:], rtol=1e-12, atol=1e-12)


def test_fully_masked_rows_are_zero_not_nan():
    q, k, v = qkv(grad=True)
    mask = key_mask(2, 6, [6, 0])  # second sequence has no valid key
    for fn in (attention, naive_attention):
        o = fn(q, k, v, mask=mask)
        assert torch.isfinite(o).all()
        assert o[1].abs().max() == 0
        grads = torch.autograd.grad(o.sum(), [q, k, v])
        assert all(torch.isfinite(g).all() for g in grads)


def test_left_padding_with_causal_gives_zero_rows():
    q, k, v = qkv()
    mask = torch.tensor([[False, False, True, True, True, True]] * 2)
    o = attention(q, k, v, causal=True, mask=mask)
    assert torch.isfinite(o).all() and o[:, :2].abs().max() == 0
    torch.testing.assert_close(o, naive_attention(q, k, v, causal=True, mask=mask))


def test_bias_with_inf_rows():
    q, k, v = qkv()
    bias = torch.zeros(2, 1, 6, 6, dtype=DT)
    bias[0, 0, 1] = float("-inf")
    bias[1, 0, :, 3] = float("-inf")
    o = attention(q, k, v, attn_bias=bias)
    assert torch.isfinite(o).all() and o[0, 1].abs().max() == 0
    torch.testing.assert_close(o, naive_attention(q, k, v, attn_bias=bias), rtol=1e-10, atol=1e-10)
    # -inf on key 3 equals masking key 3
    m = torch.ones(2, 6, dtype=torch.bool)
    m[1, 3] = False
    torch.testing.assert_close(o[1], attention(q, k, v, mask=m)[1], rtol=1e-10, atol=1e-10)


def test_bf16_fast_path_close_to_fp64_reference():
    q, k, v = qkv()
    out = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal=True)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), naive_attention(q, k, v, causal=True), rtol=0.05, atol=0.05)


def test_bad_inputs():
    q, k, v = qkv()
    with pytest.raises(DataError, match="bool"):
        attention(q, k, v, mask=torch.ones(2, 6))
    with pytest.raises(ConfigError, match="multiple"):
        attention(*qkv(h=4, hk=3))
    with pytest.raises(DataError, match=r"\[B, T, H, D\]"):
        attention(q[0], k[0], v[0])


@pytest.mark.parametrize("window", [None, 2])
@pytest.mark.parametrize("hk", [4, 2])
def test_kv_cache_decode_equals_full_causal(window, hk):
    q, k, v = qkv(tq=7, tk=7, hk=hk)
    full = attention(q, k, v, causal=True, window=window)
    cache = kv_cache_init(2, hk, 8, dtype=DT)
    o3, cache = attention_step(q[:, :3], k[:, :3], v[:, :3], cache, window=window)  # chunked prefill
    outs = [o3]
    for t in range(3, 7):
        o, cache = attention_step(q[:, t : t + 1], k[:, t : t + 1], v[:, t : t + 1], cache, window=window)
        outs.append(o)
        if window is not None:
            assert cache["k"].shape[1] <= window
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-12, atol=1e-12)
    assert cache["pos"].tolist() == [7, 7]


def test_kv_cache_after_padded_prefill():
    """Right-padded prefill, then decoding: each sequence continues from its own length."""
    q, k, v = qkv(tq=6, tk=6)
    lengths = [4, 2]
    cache = kv_cache_append(kv_cache_init(2, 4, 8, dtype=DT), k[:, :4], v[:, :4], key_mask(2, 4, lengths))
    assert cache["pos"].tolist() == lengths
    o, cache = attention_step(q[:, 4:5], k[:, 4:5], v[:, 4:5], cache)
    for i, n in enumerate(lengths):
        idx = list(range(n)) + [4]
        ref = attention(q[i : i + 1, idx], k[i : i + 1, idx], v[i : i + 1, idx], causal=True)[:, -1:]
        torch.testing.assert_close(o[i : i + 1], ref, rtol=1e-12, atol=1e-12)


def test_sdpa_backend_reports_a_kernel():
    q, k, v = qkv()
    name = sdpa_backend(q.float(), k.float(), v.float(), causal=True)
    assert isinstance(name, str) and name


def test_window_is_a_band():
    q, k, v = qkv()
    i, j = torch.arange(6)[:, None], torch.arange(6)[None, :]
    causal_band = (j <= i) & (i - j < 3)
    torch.testing.assert_close(
        attention(q, k, v, causal=True, window=3), attention(q, k, v, mask=causal_band.expand(2, 6, 6)), rtol=1e-12, atol=1e-12
    )
    torch.testing.assert_close(
        attention(q, k, v, window=3), attention(q, k, v, mask=((i - j).abs() < 3).expand(2, 6, 6)), rtol=1e-12, atol=1e-12
    )


# ------------------------------------------------------------------ the "attention" mixer's options

VARIANTS = {
    "gqa_rope_qknorm": dict(num_heads=4, num_kv_heads=2, rope="1d", qk_norm=True),
    "mqa_window_rope": dict(num_heads=4, num_kv_heads=1, rope="1d", window=3),
    "separate_proj_bias": dict(num_heads=2, fused_qkv=False, bias=True, head_dim=8),
}


def mixer(**kw):
    from polyformer.core import build_mixer

    torch.manual_seed(0)
    return build_mixer("attention", dim=16, **kw).double().eval()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_attention_mixer_variants_prefill_step(name):
    m = mixer(**VARIANTS[name])
    x = torch.randn(2, 7, 16, dtype=DT)
    full, _ = m(x)
    y, state = m(x[:, :3], return_state=True)
    outs = [y]
    for t in range(3, 7):
        y, state = m.step(x[:, t : t + 1], state)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-10, atol=1e-10)


def test_attention_mixer_decodes_after_padded_prefill():
    m = mixer(num_heads=2, rope="1d")
    x = torch.randn(2, 6, 16, dtype=DT)
    mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 2 + [False] * 4])
    y, state = m(x, mask=mask, return_state=True)
    assert y[0, 4:].abs().max() == 0 and y[1, 2:].abs().max() == 0  # padded rows are zero
    nxt = torch.randn(2, 1, 16, dtype=DT)
    y_t, _ = m.step(nxt, state)
    for i, n in enumerate([4, 2]):
        ref, _ = m(torch.cat([x[i : i + 1, :n], nxt[i : i + 1]], 1))
        torch.testing.assert_close(y_t[i : i + 1], ref[:, -1:], rtol=1e-10, atol=1e-10)


def test_attention_mixer_bidirectional_rope2d_and_bias():
    m = mixer(num_heads=2, causal=False, rope="2d", num_prefix_tokens=1)
    x = torch.randn(2, 1 + 6, 16, dtype=DT)
    y, _ = m(x, grid_size=(2, 3))
    assert y.shape == x.shape and m.backend == "torch-sdpa"
    bias = torch.zeros(1, 2, 7, 7, dtype=DT)
    bias[..., 3] = float("-inf")
    x2 = x.clone()
    x2[:, 3] += 1.0
    y1, y2 = m(x, grid_size=(2, 3), attn_bias=bias)[0], m(x2, grid_size=(2, 3), attn_bias=bias)[0]
    others = [0, 1, 2, 4, 5, 6]  # no query sees token 3, so only row 3 changes
    torch.testing.assert_close(y1[:, others], y2[:, others], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(y1[:, 3], y2[:, 3])
    with pytest.raises(ConfigError, match="grid_size"):
        m(x)
    with pytest.raises(ConfigError, match="causal=True"):
        m.step(x[:, :1], m.init_state(2))


def test_attention_mixer_bad_options():
    with pytest.raises(ConfigError, match="divisible"):
        mixer(num_heads=3)
    with pytest.raises(ConfigError, match="multiple"):
        mixer(num_heads=4, num_kv_heads=3)
    with pytest.raises(ConfigError, match="rope"):
        mixer(rope="3d")
    with pytest.raises(ConfigError, match="parallel"):
        mixer(mode="recurrent")
    with pytest.raises(ConfigError, match="torch"):
        mixer(backend="triton")


def test_attention_weights_reproduce_the_mixer_output():
    from polyformer.core.mixers import Attention

    torch.manual_seed(0)
    mixer = Attention(16, num_heads=2, causal=True).double()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    mask = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    w = mixer.attention_weights(x, mask=mask)
    assert w.shape == (2, 2, 7, 7)
    torch.testing.assert_close(w[1, :, :5].sum(-1), torch.ones(2, 5, dtype=torch.float64))
    assert torch.all(w.triu(1) == 0)  # causal: no weight on the future
    _, _, v = mixer._qkv(x)
    o = torch.einsum("bhqk,bkhd->bqhd", w, v).reshape(2, 7, 16)
    y = mixer.out_proj(o).masked_fill(~mask[..., None], 0.0)
    torch.testing.assert_close(y, mixer(x, mask=mask)[0])
