"""Normalisation layers: RMSNorm and `build_norm(name, dim)`."""

from __future__ import annotations

import torch
from torch import nn

from polyformer.core.errors import ConfigError

NORMS = ("rmsnorm", "layernorm", "none")


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich, 2019), computed in float32 for bf16/fp16 inputs."""

    def __init__(self, dim: int, eps: float = 1e-6, elementwise_affine: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if elementwise_affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        y = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        return y * self.weight if self.weight is not None else y

    def extra_repr(self) -> str:
        return f"dim={None if self.weight is None else self.weight.numel()}, eps={self.eps}"


def build_norm(name: str | None, dim: int, eps: float = 1e-6) -> nn.Module:
    """`"rmsnorm"`, `"layernorm"` or `"none"` (identity) over the last dimension `dim`."""
    key = "none" if name is None else str(name).lower()
    if key == "rmsnorm":
        return RMSNorm(dim, eps=eps)
    if key == "layernorm":
        return nn.LayerNorm(dim, eps=eps)
    if key == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm '{name}'. Known: {', '.join(NORMS)}")
