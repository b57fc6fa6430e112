"""ShortConvolution: causal depthwise conv with a cache; whole == pieces == step by step; padding."""

import pytest
import torch
import torch.nn.functional as F

from polyformer.core.errors import ConfigError
from polyformer.core.mixers._short_conv import ShortConvolution

TOL = dict(atol=1e-12, rtol=1e-12)


def conv(dim=6, kernel_size=4, **kw):
    torch.manual_seed(0)
    return ShortConvolution(dim, kernel_size, **kw).double()


def reference(m, x):
    """y_t = act(sum_i w[i] * x_{t - K + 1 + i} + b), with zeros before the sequence."""
    K, T = m.kernel_size, x.shape[1]
    xp = F.pad(x, (0, 0, K - 1, 0))
    y = sum(xp[:, i : i + T] * m.weight[:, 0, i] for i in range(K))
    if m.bias is not None:
        y = y + m.bias
    return F.silu(y) if m.activation in ("silu", "swish") else y


@pytest.mark.parametrize("kw", [{}, {"bias": True}, {"activation": None}, {"kernel_size": 1}])
def test_forward_matches_reference(kw):
    m = conv(**kw)
    x = torch.randn(2, 11, 6, dtype=torch.float64)
    y, cache = m(x)
    assert cache is None
    torch.testing.assert_close(y, reference(m, x), **TOL)


@pytest.mark.parametrize("kernel_size", [1, 2, 4])
def test_pieces_and_steps_equal_whole(kernel_size):
    m = conv(kernel_size=kernel_size, bias=True)
    x = torch.randn(2, 13, 6, dtype=torch.float64)
    y_all, c_all = m(x, output_final_state=True)
    y1, c1 = m(x[:, :5], output_final_state=True)
    y2, c2 = m(x[:, 5:], cache=c1, output_final_state=True)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y_all, **TOL)
    torch.testing.assert_close(c2, c_all, **TOL)
    assert c_all.shape == (2, 6, kernel_size - 1)
    cache, outs = None, []
    for t in range(13):
        y_t, cache = m.step(x[:, t : t + 1], cache)
        outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), y_all, **TOL)
    torch.testing.assert_close(cache, c_all, **TOL)


def test_padding_mask_gives_cache_at_last_valid_token():
    m = conv()
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    x_noisy = x.clone()
    x_noisy[1, 6:] = 100.0  # whatever sits in the padding must not matter
    y, cache = m(x_noisy, mask=mask, output_final_state=True)
    y_alone, cache_alone = m(x[1:, :6], output_final_state=True)
    torch.testing.assert_close(y[1, :6], y_alone[0], **TOL)
    torch.testing.assert_close(cache[1], cache_alone[0], **TOL)
    torch.testing.assert_close(cache[0], m(x[:1], output_final_state=True)[1][0], **TOL)
    # short valid length (< kernel - 1): the window reaches into the zero prefix
    mask[1, 2:] = False
    _, cache = m(x_noisy, mask=mask, output_final_state=True)
    torch.testing.assert_close(cache[1], m(x[1:, :2], output_final_state=True)[1][0], **TOL)


def test_gradients_flow_and_dtypes():
    m = ShortConvolution(8, 4)
    x = torch.randn(2, 5, 8, requires_grad=True)
    y, _ = m(x)
    y.sum().backward()
    assert x.grad is not None and m.weight.grad is not None
    y16, c16 = m.to(torch.bfloat16)(x.detach().bfloat16(), output_final_state=True)
    assert y16.dtype == torch.bfloat16 and c16.dtype == torch.bfloat16


def test_bad_arguments_raise():
    with pytest.raises(ConfigError, match="activation"):
        ShortConvolution(4, 4, activation="gelu")
    with pytest.raises(ConfigError, match="kernel_size"):
        ShortConvolution(4, 0)


def test_prefill_cache_owns_only_its_last_columns():
    """The cache after a prefill must not be a view that keeps the whole [B, dim, T + K - 1] buffer alive."""
    m = conv()
    _, cache = m(torch.randn(2, 50, 6, dtype=torch.float64), output_final_state=True)
    assert cache.shape == (2, 6, 3)
    assert cache.untyped_storage().nbytes() == cache.numel() * cache.element_size()
