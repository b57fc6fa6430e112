"""Attention weights of an encoder's softmax-attention mixers, recomputed from the tokens each layer saw.

The fast path (SDPA) never materialises the weights, so they are recomputed on demand: each layer's
mixer input is captured with a forward pre-hook during one ordinary forward pass, then
`softmax(q k^T / sqrt(head_dim))` is formed from the mixer's own query/key projections.
"""

from __future__ import annotations

import torch
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.mixers import Attention


def attention_weights(mixer: Attention, x: torch.Tensor) -> torch.Tensor:
    """Bidirectional attention weights `[B, heads, T, T]` of `mixer` on its input `x[B, T, D]`."""
    if not isinstance(mixer, Attention):
        raise ConfigError(f"attention maps exist for the 'attention' mixer only, not {type(mixer).__name__}")
    return mixer.attention_weights(x)


@torch.no_grad()
def encoder_attention(model: nn.Module, layers: nn.ModuleList, *inputs) -> list[torch.Tensor]:
    """Run `model(*inputs)` once and return every layer's attention weights, first layer first."""
    captured: list[torch.Tensor] = []
    hooks = [layer.mixer.register_forward_pre_hook(lambda _m, args: captured.append(args[0])) for layer in layers]
    try:
        model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return [attention_weights(layer.mixer, x) for layer, x in zip(layers, captured)]
