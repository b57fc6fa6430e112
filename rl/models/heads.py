"""Action embeddings and heads shared by the policies: Box actions (tanh) and Discrete actions (logits)."""

from __future__ import annotations

import torch
from torch import nn


class ActionEmbedding(nn.Module):
    """Discrete action indices through an nn.Embedding, Box actions ([-1, 1]) through a Linear."""

    def __init__(self, act_dim: int, dim: int, discrete: bool):
        super().__init__()
        self.discrete = discrete
        self.embed = nn.Embedding(act_dim, dim) if discrete else nn.Linear(act_dim, dim)

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        """`[B, T]` long (Discrete) or `[B, T, A]` float (Box) -> `[B, T, dim]`."""
        return self.embed(actions.long() if self.discrete else actions)


class ActionHead(nn.Module):
    """Hidden `[..., dim]` -> Box actions in [-1, 1] (tanh, as the published DT) or Discrete logits."""

    def __init__(self, dim: int, act_dim: int, discrete: bool, tanh: bool = True):
        super().__init__()
        self.discrete = discrete
        self.proj = nn.Linear(dim, act_dim)
        self.squash = nn.Tanh() if (tanh and not discrete) else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.squash(self.proj(h))
