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


# ------------------------------------------------------------------ accelerated backends vs the torch reference

ACCELERATED = {
    "retention": "fla",
    "gla": "fla",
    "deltanet": "fla",
    "gated_deltanet": "fla",
    "mamba": "mamba_ssm",
    "mamba2": "mamba_ssm",
}


def _require_backend(name: str) -> str:
    """The accelerated backend of `name`; the GPU tests are meant to run with the cuda extra installed."""
    backend = ACCELERATED[name]
    assert _backend_importable(name, backend), f"{backend} is not installed: pip install -e '.[cuda]'"
    return backend


def _backend_importable(name: str, backend: str) -> bool:
    if backend == "fla":
        from polyformer.core.ops._linear_common import fla_available

        return fla_available()
    from polyformer.core.mixers.mamba import mamba_ssm_available

    return mamba_ssm_available(name)


@pytest.mark.parametrize("name", sorted(ACCELERATED))
def test_accelerated_backend_matches_torch_outputs_grads_and_state(name):
    backend = _require_backend(name)
    torch.manual_seed(0)
    ref = build_mixer(name, dim=128, hints={"num_heads": 4}, backend="torch").cuda()
    fast = build_mixer(name, dim=128, hints={"num_heads": 4}, backend=backend).cuda()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(2, 300, 128, device="cuda")
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ref, s_ref = ref(xr, return_state=True)
    y_fast, s_fast = fast(xf, return_state=True)
    assert fast.backend == backend and ref.backend == "torch"
    torch.testing.assert_close(y_fast, y_ref, atol=2e-3, rtol=2e-2)
    for key, value in s_ref.items():
        if torch.is_tensor(value):
            torch.testing.assert_close(s_fast[key].float(), value.float(), atol=2e-3, rtol=2e-2, msg=lambda m, key=key: f"state {key}: {m}")
    g = torch.randn_like(y_ref)
    (y_ref * g).sum().backward()
    (y_fast * g).sum().backward()
    torch.testing.assert_close(xf.grad, xr.grad, atol=5e-3, rtol=5e-2)
    for (n, p_ref), p_fast in zip(ref.named_parameters(), fast.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, atol=5e-3, rtol=5e-2, msg=lambda m, n=n: f"{n}: {m}")


@pytest.mark.parametrize("name", sorted(ACCELERATED))
def test_accelerated_prefill_then_steps_matches_full_forward(name):
    backend = _require_backend(name)
    torch.manual_seed(0)
    mixer = build_mixer(name, dim=128, hints={"num_heads": 4}, backend=backend).cuda().eval()
    x = torch.randn(2, 80, 128, device="cuda")
    with torch.no_grad():
        full, _ = mixer(x)
        pre, state = mixer(x[:, :64], return_state=True)
        outs = [pre]
        for t in range(64, 80):
            y_t, state = mixer.step(x[:, t : t + 1], state)
            outs.append(y_t)
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=2e-3, rtol=2e-2)


def test_auto_backend_picks_the_accelerated_kernel_on_cuda():
    for name, backend in ACCELERATED.items():
        mixer = build_mixer(name, dim=64, hints={"num_heads": 4}).cuda()
        mixer(torch.randn(1, 32, 64, device="cuda"))
        expected = backend if _backend_importable(name, backend) else "torch"
        assert mixer.backend == expected, (name, mixer.backend, expected)
