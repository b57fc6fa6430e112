"""The core on a CUDA device: every mixer matches its CPU result, bf16 runs, SDPA takes the flash kernel,
and torch.compile of a block matches eager. Run with `pytest -m gpu tests/core/test_cuda.py` on a GPU machine."""

from __future__ import annotations

import copy

import pytest
import torch

from polyformer.core import build_mixer, list_mixers
from polyformer.core.blocks import Block
from polyformer.core.ops import attention

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("name", list_mixers())
@pytest.mark.parametrize("causal", [True, False])
def test_mixer_on_cuda_matches_cpu(name, causal):
    torch.manual_seed(0)
    cpu = build_mixer(name, dim=64, causal=causal, hints={"num_heads": 4}, backend="torch")
    gpu = copy.deepcopy(cpu).cuda()
    x = torch.randn(2, 100, 64)
    y_cpu, _ = cpu(x)
    y_gpu, _ = gpu(x.cuda())
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, atol=2e-4, rtol=2e-3)


@pytest.mark.parametrize("name", list_mixers())
def test_mixer_bf16_on_cuda_is_finite_and_trains(name):
    torch.manual_seed(0)
    mixer = build_mixer(name, dim=64, hints={"num_heads": 4}).cuda().to(torch.bfloat16)
    x = torch.randn(2, 128, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    y, _ = mixer(x)
    y.float().square().mean().backward()
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()
    assert all(p.grad is not None and torch.isfinite(p.grad.float()).all() for p in mixer.parameters() if p.requires_grad)


def test_attention_takes_the_flash_kernel_in_bf16():
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(2, 256, 4, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        o = attention(q, k, v, causal=True)
    assert o.shape == q.shape and torch.isfinite(o.float()).all()


@pytest.mark.parametrize("name", ["attention", "mamba2"])
def test_compiled_block_matches_eager_on_cuda(name):
    torch.manual_seed(0)
    block = Block(64, mixer=name, hints={"num_heads": 4}).cuda()
    x = torch.randn(2, 128, 64, device="cuda")
    y_eager, _ = block(x)
    compiled = torch.compile(block)
    y_comp, _ = compiled(x)
    torch.testing.assert_close(y_comp, y_eager, atol=1e-4, rtol=1e-3)
    y_comp.square().mean().backward()
