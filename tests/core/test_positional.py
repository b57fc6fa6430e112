"""Positional encodings: RoPE's relative property (1D, 2D), decoding offsets, ALiBi, tables and resampling."""

import math

import pytest
import torch

from polyformer.core.errors import DataError
from polyformer.core.layers.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    RotaryEmbedding2D,
    SinusoidalPositionalEmbedding,
    alibi_bias,
    alibi_slopes,
    interpolate_pos_embed,
    sinusoidal_embedding,
)

DT = torch.float64


def rotated_dot(rope, q, k, pq, pk):
    """q . k after rotating q to position pq and k to position pk."""
    rq = rope(q, positions=torch.tensor([pq]))
    rk = rope(k, positions=torch.tensor([pk]))
    return (rq * rk).sum()


def test_rope_dot_depends_only_on_offset():
    rope = RotaryEmbedding(16, base=100.0)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16, generator=g, dtype=DT), torch.randn(1, 1, 1, 16, generator=g, dtype=DT)
    for delta in (0, 1, 5):
        ref = rotated_dot(rope, q, k, 10 + delta, 10)
        for start in (0, 3, 40):
            torch.testing.assert_close(rotated_dot(rope, q, k, start + delta, start), ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(rotated_dot(rope, q, k, 1, 0), rotated_dot(rope, q, k, 2, 0))


def test_rope_preserves_norm_and_position_zero_is_identity():
    rope = RotaryEmbedding(8)
    x = torch.randn(2, 5, 3, 8, dtype=DT)
    y = rope(x)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y[:, 0], x[:, 0])


def test_rope_offset_paths_agree_bitwise():
    """Cached table (int offset), per-sequence offsets (tensor) and explicit positions give the same values."""
    rope = RotaryEmbedding(8, max_len=4)
    x = torch.randn(2, 3, 2, 8, dtype=DT)
    cached = rope(x, offset=5)  # grows the cache past max_len
    per_seq = rope(x, offset=torch.tensor([5, 5]))
    explicit = rope(x, positions=torch.arange(5, 8))
    assert torch.equal(cached, per_seq) and torch.equal(cached, explicit)
    full = rope(torch.cat([torch.zeros(2, 5, 2, 8, dtype=DT), x], 1))
    assert torch.equal(full[:, 5:], cached)


def test_rope_survives_module_dtype_cast():
    rope = RotaryEmbedding(8)
    x = torch.randn(1, 4, 1, 8)
    ref = rope(x)
    rope.to(torch.bfloat16)
    assert torch.equal(rope(x), ref)


def test_rope_2d_shape_prefix_and_relative_property():
    rope = RotaryEmbedding2D(16, num_prefix_tokens=1)
    x = torch.randn(2, 1 + 3 * 4, 2, 16, dtype=DT)
    y = rope(x, grid=(3, 4))
    assert y.shape == x.shape
    assert torch.equal(y[:, 0], x[:, 0])  # CLS token is not rotated
    with pytest.raises(DataError, match="grid"):
        rope(x, grid=(4, 4))
    # the dot product between two patches depends on (row, col) offsets only
    plain = RotaryEmbedding2D(16)
    q = torch.randn(1, 1, 1, 16, dtype=DT).expand(1, 16, 1, 16)
    k = torch.randn(1, 1, 1, 16, dtype=DT).expand(1, 16, 1, 16)
    rq, rk = plain(q, grid=(4, 4))[0, :, 0], plain(k, grid=(4, 4))[0, :, 0]
    at = lambda r, c: r * 4 + c
    torch.testing.assert_close((rq[at(1, 2)] * rk[at(0, 1)]).sum(), (rq[at(3, 3)] * rk[at(2, 2)]).sum())
    assert not torch.allclose((rq[at(1, 2)] * rk[at(0, 1)]).sum(), (rq[at(1, 2)] * rk[at(1, 1)]).sum())


def test_alibi_slopes_and_bias():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    s6 = alibi_slopes(6)
    assert s6.shape == (6,) and torch.all(s6 > 0)
    torch.testing.assert_close(s6[:4], alibi_slopes(4))
    torch.testing.assert_close(s6[4:], alibi_slopes(8)[0::2][:2])
    bias = alibi_bias(4, 5)
    assert bias.shape == (1, 4, 5, 5)
    assert torch.all(bias.diagonal(dim1=-2, dim2=-1) == 0)
    torch.testing.assert_close(bias[0, 0, 4, 1], -alibi_slopes(4)[0] * 3)
    torch.testing.assert_close(alibi_bias(4, 2, 5), bias[:, :, 3:])  # decode rows align to the end


def test_sinusoidal_and_learned():
    e = sinusoidal_embedding(torch.arange(4), 6)
    assert e.shape == (4, 6)
    torch.testing.assert_close(e[1, 0], torch.tensor(math.sin(1.0)))
    torch.testing.assert_close(e[:, 3:], torch.cos(torch.arange(4.0)[:, None] * e.new_tensor([1, 10000 ** (-1 / 3), 10000 ** (-2 / 3)])))
    x = torch.zeros(1, 3, 6)
    torch.testing.assert_close(SinusoidalPositionalEmbedding(6)(x, offset=1)[0], e[1:])
    pe = LearnedPositionalEmbedding(4, 6)
    assert torch.equal(pe(x, offset=1)[0], pe.weight[1:4].detach())
    with pytest.raises(DataError, match="interpolate_pos_embed"):
        pe(x, offset=2)


def test_interpolate_pos_embed_2d():
    table = torch.randn(1, 1 + 4 * 4, 8)
    same = interpolate_pos_embed(table, (4, 4), num_prefix_tokens=1)
    torch.testing.assert_close(same, table)  # same size is the identity
    big = interpolate_pos_embed(table, (6, 8), num_prefix_tokens=1)
    assert big.shape == (1, 1 + 48, 8) and torch.equal(big[:, 0], table[:, 0])
    const = torch.ones(16, 3)
    torch.testing.assert_close(interpolate_pos_embed(const, (7, 5)), torch.ones(35, 3))
    # a smooth field survives up- then down-sampling closely
    r, c = torch.meshgrid(torch.linspace(0, 1, 8), torch.linspace(0, 1, 8), indexing="ij")
    smooth = torch.stack([torch.sin(r + c), torch.cos(r - 2 * c)], -1).reshape(64, 2)
    back = interpolate_pos_embed(interpolate_pos_embed(smooth, (16, 16)), (8, 8))
    err = (back - smooth).abs().reshape(8, 8, 2)
    assert err.max() < 3e-2 and err[2:-2, 2:-2].max() < 2e-3  # edges suffer most, as in timm
    with pytest.raises(DataError, match="square"):
        interpolate_pos_embed(torch.randn(10, 4), (4, 4))


def test_interpolate_pos_embed_1d():
    table = torch.randn(10, 4, dtype=DT)
    torch.testing.assert_close(interpolate_pos_embed(table, 10), table)
    out = interpolate_pos_embed(table, 20)
    assert out.shape == (20, 4) and out.dtype == DT
    # with align_corners=False, upsampling by 2 puts new points a quarter step either side of the old ones
    torch.testing.assert_close(out[3], (0.75 * table[1] + 0.25 * table[2]), rtol=1e-6, atol=1e-6)
