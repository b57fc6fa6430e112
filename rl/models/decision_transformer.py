"""The Decision Transformer (Chen et al., 2021) on polyformer's causal MixerStack, with any token mixer.

Per step t three tokens, each embedded by its own layer, plus a learned embedding of the
timestep t added to all three, then LayerNorm:

    R_t (return-to-go, Linear) , s_t (state, Linear) , a_t (action, Linear or Embedding)

interleaved as (R_1, s_1, a_1, R_2, s_2, a_2, ...) and mixed by a causal stack; the action a_t is
predicted from the output at s_t's token (it has seen R_<=t, s_<=t, a_<t). Box actions go
through tanh (targets in [-1, 1], MSE), Discrete ones are logits (cross-entropy).

Acting has two forms (see `polyformer.rl.acting`):
- "window": re-run the last K steps each step, as the published code does;
- "recurrent": feed each new token through the mixers' `step` (a KV cache for attention, O(1)
  state for SSMs) and never re-run the context. For attention the cache is bounded: the mixer is
  built with `window = 3K - 1` tokens (a no-op on training windows, where every state token
  already sees its whole window), so the state token of step t attends to the same 3K - 1 tokens
  as in a K-step re-run; the difference is that cached deeper-layer keys were themselves computed
  with context further back. Within the first K steps both forms give identical actions. An SSM
  carries its state over the whole episode (Decision-Mamba style).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polyformer.core.blocks import MixerStack
from polyformer.rl.models.heads import ActionEmbedding, ActionHead
from polyformer.rl.models.registry import MODELS


@MODELS.register("dt")
class DecisionTransformerNet(nn.Module):
    """Decision Transformer policy network.

    Args:
        state_dim, act_dim, discrete: from the data (act_dim = number of actions when discrete).
        context_len: K, steps of context (3K tokens).
        embed_dim, depth, num_heads: width, layers and heads (paper: 128, 3, 1).
        mixer: the token mixer, a registry name or dict (`mixer=mamba` gives a Decision-Mamba agent).
        layout: hybrid layout for the stack (e.g. `{"attention": [2]}`), see core.blocks.
        max_timestep: size of the timestep embedding (the environment's episode limit).
        dropout: after the embeddings and in the blocks (paper: 0.1).
        mlp, mlp_ratio, norm: block MLP and norm (GPT-2: gpt2 = GELU MLP with dropout after it, 4, layernorm).
        bounded_cache: give attention mixers `window = 3K - 1` so the KV cache of recurrent acting
            stays K steps long.
        action_tanh: tanh on Box actions (the paper's choice).
    """

    recurrent = True

    def __init__(
        self,
        state_dim: int,
        act_dim: int,
        discrete: bool = False,
        context_len: int = 20,
        embed_dim: int = 128,
        depth: int = 3,
        num_heads: int = 1,
        mixer: Any = "attention",
        layout: Any = None,
        max_timestep: int = 1000,
        dropout: float = 0.1,
        mlp: str = "gpt2",
        mlp_ratio: float = 4.0,
        norm: str = "layernorm",
        bounded_cache: bool = True,
        action_tanh: bool = True,
    ):
        super().__init__()
        self.state_dim, self.act_dim, self.discrete = state_dim, act_dim, discrete
        self.context_len, self.max_timestep, self.embed_dim = int(context_len), int(max_timestep), embed_dim
        self.embed_time = nn.Embedding(self.max_timestep, embed_dim)
        self.embed_return = nn.Linear(1, embed_dim)
        self.embed_state = nn.Linear(state_dim, embed_dim)
        self.embed_action = ActionEmbedding(act_dim, embed_dim, discrete)
        self.embed_ln = nn.LayerNorm(embed_dim)
        self.drop = nn.Dropout(dropout)
        hints = {"num_heads": num_heads}
        if bounded_cache:
            hints["window"] = 3 * self.context_len - 1
        self.stack = MixerStack(embed_dim, depth, mixer=mixer, layout=layout, causal=True, mlp=mlp,
                                mlp_ratio=mlp_ratio, norm=norm, dropout=dropout, hints=hints)
        self.head = ActionHead(embed_dim, act_dim, discrete, tanh=action_tanh)

    # ---- embeddings ----------------------------------------------------------------------------
    def _time(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.embed_time(timesteps.long().clamp(0, self.max_timestep - 1))

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.embed_ln(x))

    def embed_return_token(self, rtg: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """`rtg [B, T, 1]`, `timesteps [B, T]` -> R tokens `[B, T, D]`."""
        return self._finish(self.embed_return(rtg) + self._time(timesteps))

    def embed_state_token(self, states: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """`states [B, T, S]` -> s tokens `[B, T, D]`."""
        return self._finish(self.embed_state(states) + self._time(timesteps))

    def embed_action_token(self, actions: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """`actions [B, T, A]` or `[B, T]` (Discrete) -> a tokens `[B, T, D]`."""
        return self._finish(self.embed_action(actions) + self._time(timesteps))

    def tokens(self, states, actions, returns_to_go, timesteps) -> torch.Tensor:
        """The interleaved sequence `(R_1, s_1, a_1, ..., R_T, s_T, a_T)`: `[B, 3T, D]`."""
        b, t = states.shape[:2]
        r = self.embed_return_token(returns_to_go, timesteps)
        s = self.embed_state_token(states, timesteps)
        a = self.embed_action_token(actions, timesteps)
        return torch.stack([r, s, a], dim=2).reshape(b, 3 * t, self.embed_dim)

    # ---- parallel form (training, window acting) -----------------------------------------------
    def forward(self, states, actions, returns_to_go, timesteps, mask=None) -> torch.Tensor:
        """Action predictions at every step: `[B, T, A]` in [-1, 1] (Box) or logits `[B, T, n]`.

        `mask` (True at real steps) is accepted for the common interface; windows are padded on the
        right, so a causal stack never lets padding reach a real step and the mask is not needed.
        """
        # The last action token reaches no state token (the stack is causal), so it is left out: the
        # same predictions for 3K - 1 tokens, which also makes a `window = 3K - 1` cache a no-op here.
        h, _ = self.stack(self.tokens(states, actions, returns_to_go, timesteps)[:, :-1])
        return self.head(h[:, 1::3])

    # ---- recurrent form (step acting) ----------------------------------------------------------
    def init_state(self, batch: int, device=None, dtype=None) -> list:
        """The stack's empty per-layer state (KV caches / SSM states) for `batch` episodes."""
        return self.stack.init_state(batch, device=device, dtype=dtype)

    def step(self, state: list, rtg: torch.Tensor, obs: torch.Tensor, timestep: torch.Tensor,
             prev_action: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        """Feed one environment step's tokens through the mixers' recurrent form; predict its action.

        `rtg [B, 1]`, `obs [B, S]` (normalised), `timestep [B]`; `prev_action` (`[B, A]` or `[B]`)
        is the previous step's action token, fed first (None at t = 0). Returns
        `(action [B, A] or logits [B, n], new state)`.
        """
        tokens = []
        if prev_action is not None:
            prev = prev_action[:, None] if self.discrete else prev_action[:, None, :]
            tokens.append(self.embed_action_token(prev, (timestep - 1).clamp(min=0)[:, None]))
        tokens.append(self.embed_return_token(rtg[:, None, :], timestep[:, None]))
        tokens.append(self.embed_state_token(obs[:, None, :], timestep[:, None]))
        h = None
        for x in tokens:
            h, state = self.stack.step(x, state)
        return self.head(h[:, 0]), state
