"""Global mixing over the nodes of each graph with any core token mixer in its bidirectional form.

Softmax attention sees every node of the graph (quadratic in the graph size) and can take additive
structural biases (shortest-path buckets, Graphormer-style); linear mixers (retention, GLA, DeltaNet,
Mamba, Mamba-2) are linear in the number of nodes, so they run on graphs too large for attention. Those
read nodes in sequence: their output depends on the node order (`node_order` in the models picks it).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.mixers import build_mixer
from polyformer.graphs.models.dense import DenseBatch


def takes_attn_bias(mixer: nn.Module) -> bool:
    """Whether a mixer's forward accepts an additive `attn_bias` (softmax attention does)."""
    return "attn_bias" in inspect.signature(mixer.forward).parameters


def mixer_name(spec: str | Mapping[str, Any] | None) -> str | None:
    if spec is None:
        return None
    return str(spec if isinstance(spec, str) else spec.get("name")).lower()


class GlobalMixer(nn.Module):
    """A core mixer over each graph's nodes: `[N, D]` -> dense `[G, T, D]` + mask -> mixer -> `[N, D]`.

    Args:
        dim: node width.
        mixer: a core mixer name or `{"name": ..., **options}`; built with `causal=False`.
        num_heads: offered to the mixer (used by those that have heads).
        attn_dropout: dropout on attention weights, offered to the mixer.
        spd_buckets: if set, a learned per-head bias for each shortest-path distance bucket
            `0..spd_buckets-1` is added to the attention scores (needs softmax attention).
    """

    def __init__(self, dim: int, mixer: str | Mapping[str, Any], num_heads: int = 4, attn_dropout: float = 0.0, spd_buckets: int | None = None):
        super().__init__()
        self.mixer = build_mixer(mixer, dim=dim, causal=False, hints={"num_heads": num_heads, "dropout": attn_dropout})
        self.num_heads = int(getattr(self.mixer, "num_heads", num_heads))
        self.spd_bias = None
        if spd_buckets:
            if not takes_attn_bias(self.mixer):
                raise ConfigError(
                    f"shortest-path attention biases need softmax attention (mixer=attention), not '{mixer_name(mixer)}'"
                )
            self.spd_bias = nn.Embedding(int(spd_buckets), self.num_heads)
            nn.init.zeros_(self.spd_bias.weight)
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None  # [G, H, T, T] in dense order, when kept
        self.last_positions: torch.Tensor | None = None  # each node's dense position, when kept

    def bias_from(self, spd: torch.Tensor | None) -> torch.Tensor | None:
        """`[G, H, T, T]` additive bias from bucketed distances `[G, T, T]` (None without SPD bias)."""
        if self.spd_bias is None or spd is None:
            return None
        return self.spd_bias(spd).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, dense: DenseBatch, spd: torch.Tensor | None = None, attn_bias: torch.Tensor | None = None) -> torch.Tensor:
        xd = dense.to_dense(x)
        if self.keep_attention:
            self.last_positions = dense.pos
        bias = self.bias_from(spd) if attn_bias is None else attn_bias
        y = self.mix(xd, dense.mask, bias)
        return dense.to_sparse(y)

    def mix(self, xd: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Run the mixer on dense rows `[G, T, D]` with key padding `mask`; keeps attention maps if asked."""
        padded = None if bool(mask.all()) else mask  # no padding: the mixers' unmasked fast paths
        if bias is not None:
            y, _ = self.mixer(xd, mask=padded, attn_bias=bias)
        else:
            y, _ = self.mixer(xd, mask=padded)
        if self.keep_attention:
            self.last_attention = attention_weights(self.mixer, xd, mask, bias)
        return y


def kept_attention(model: nn.Module, mixers: list[GlobalMixer], batch, layer: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run `model` on `batch` keeping the attention of `mixers[layer]`: `(weights [G, H, T, T], positions)`."""
    if not mixers:
        raise ConfigError("this model has no global mixer")
    mixer = mixers[layer]
    mixer.keep_attention = True
    try:
        model(batch)
        return mixer.last_attention, mixer.last_positions
    finally:
        mixer.keep_attention = False
        mixer.last_attention = mixer.last_positions = None


@torch.no_grad()
def attention_weights(mixer: nn.Module, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Softmax attention probabilities `[G, H, T, T]` of a core attention mixer on `x[G, T, D]`.

    Uses the mixer's `attention_weights(...)` when core provides one; otherwise recomputes
    `softmax(q k^T / sqrt(d) + bias)` from the mixer's own query/key projection.
    """
    if hasattr(mixer, "attention_weights"):
        return mixer.attention_weights(x, mask=mask, attn_bias=bias)
    if not hasattr(mixer, "_qkv"):
        raise ConfigError(f"attention maps exist only for softmax attention, not {type(mixer).__name__}")
    q, k, _ = mixer._qkv(x)
    group = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(group, dim=2)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(q.shape[-1])
    if bias is not None:
        scores = scores + bias
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return weights * mask[:, None, :, None]
