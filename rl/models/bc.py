"""Behaviour cloning: an MLP from the current state to the action (the DT paper's BC and %BC baselines)."""

from __future__ import annotations

import torch
from torch import nn

from polyformer.rl.models.heads import ActionHead
from polyformer.rl.models.registry import MODELS


@MODELS.register("bc")
class BCPolicy(nn.Module):
    """`a_t = MLP(s_t)`: ReLU layers with dropout, then a tanh (Box) or logits (Discrete) head.

    It takes the same batch as the Decision Transformer and ignores returns, past actions and
    timesteps, so both train in one harness. %BC is this model trained on the best `top_fraction`
    of the episodes (model=pbc: 10%); the DataModule reads it through the config.
    """

    context_len = 1
    recurrent = False

    def __init__(self, state_dim: int, act_dim: int, discrete: bool = False, hidden_dim: int = 256, depth: int = 2,
                 dropout: float = 0.1, action_tanh: bool = True, top_fraction: float = 1.0):
        super().__init__()
        self.top_fraction = top_fraction  # the share of best episodes trained on; the DataModule applies it
        layers: list[nn.Module] = []
        width = state_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden_dim
        self.body = nn.Sequential(*layers)
        self.head = ActionHead(width, act_dim, discrete, tanh=action_tanh)

    def forward(self, states: torch.Tensor, actions=None, returns_to_go=None, timesteps=None, mask=None) -> torch.Tensor:
        """`states [B, T, S]` -> actions `[B, T, A]` in [-1, 1] (Box) or logits `[B, T, n]` (Discrete)."""
        return self.head(self.body(states))
