"""Acting with a trained policy in N environments at once: return-to-go bookkeeping and the two context forms.

How returns-to-go are set at inference (the Decision Transformer's conditioning): the first
return-to-go is the *target return* you ask for (raw, in the environment's units); after each
step the reward just received is subtracted, `R_{t+1} = R_t - r_t`, so the model is always told
how much return is still wanted. The model sees `R / return_scale`, states normalised with the
training data's mean and std (stored in the checkpoint), and produces actions in [-1, 1]
(Box, mapped back to the space's bounds) or logits (Discrete, argmax).

Modes:
- "recurrent" (default): each new token goes through the mixers' `step` (KV cache / SSM state);
  nothing is re-run. For attention the cache keeps the last 3K - 1 tokens (see the model's docs).
- "window": the published DT's way: re-run the model on the last K steps every step.
Both give the same actions for the first K steps of an episode.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from polyformer.core.errors import ConfigError

MODES = ("recurrent", "window")


class Actor:
    """Stateful policy for a batch of `batch` episodes run side by side.

    Use: `actor = module.actor(batch, target_return)`, then per environment step
    `actions = actor.act(obs)` and `actor.observe(rewards)`.
    """

    def __init__(self, module, batch: int, target_return: float | list[float], mode: str = "recurrent"):
        if mode not in MODES:
            raise ConfigError(f"acting mode must be one of {MODES}, got '{mode}'")
        self.module, self.net, self.batch = module, module.net, int(batch)
        self.mode = mode if getattr(self.net, "recurrent", False) else "window"
        self.device = next(module.parameters()).device
        spec = module.spec
        self.mean = torch.as_tensor(spec["state_mean"], dtype=torch.float32, device=self.device)
        self.std = torch.as_tensor(spec["state_std"], dtype=torch.float32, device=self.device)
        self.scale = float(spec["return_scale"])
        self.codec = module.codec
        self.K = int(getattr(self.net, "context_len", 1))
        target = np.broadcast_to(np.asarray(target_return, np.float64), (self.batch,))
        self.rtg = target.astype(np.float64).copy()
        self.t = 0
        self.state: Any = self.net.init_state(self.batch, device=self.device) if self.mode == "recurrent" else None
        self.prev_action: torch.Tensor | None = None
        self.hist: dict[str, list[torch.Tensor]] = {"states": [], "actions": [], "rtg": [], "timesteps": []}

    def _norm(self, obs: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(obs, np.float32).reshape(self.batch, -1), device=self.device)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions (environment format) for observations `obs [batch, ...]` at the current step."""
        s = self._norm(obs)
        rtg = torch.as_tensor(self.rtg / self.scale, dtype=torch.float32, device=self.device)[:, None]
        ts = torch.full((self.batch,), self.t, dtype=torch.long, device=self.device)
        if self.mode == "recurrent":
            out, self.state = self.net.step(self.state, rtg, s, ts, self.prev_action)
        else:
            out = self._window(s, rtg, ts)
        model_action = out.argmax(-1) if self.codec.discrete else out
        self.prev_action = model_action
        if self.mode == "window":
            self.hist["actions"][-1] = model_action
        return self.codec.decode(model_action.cpu().numpy())

    def _window(self, s, rtg, ts) -> torch.Tensor:
        h = self.hist
        dummy = (torch.zeros(self.batch, dtype=torch.long, device=self.device) if self.codec.discrete
                 else torch.zeros(self.batch, self.codec.dim, device=self.device))
        h["states"].append(s)
        h["rtg"].append(rtg)
        h["timesteps"].append(ts)
        h["actions"].append(dummy)
        for key in h:
            h[key] = h[key][-self.K:]
        out = self.net(torch.stack(h["states"], 1), torch.stack(h["actions"], 1), torch.stack(h["rtg"], 1),
                       torch.stack(h["timesteps"], 1))
        return out[:, -1]

    def observe(self, rewards: np.ndarray) -> None:
        """Record the rewards of the step just taken: returns-to-go drop by them, time advances."""
        self.rtg = self.rtg - np.asarray(rewards, np.float64).reshape(self.batch)
        self.t += 1


def act_on_history(module, observations, returns_to_go, actions=None, timesteps=None) -> np.ndarray:
    """Stateless acting from histories (like HF's `get_action`): the action for the last step.

    `observations [T, obs]` or `[N, T, obs]` (raw); `returns_to_go [T]` or `[N, T]` (raw: the target
    minus the rewards so far); `actions` the T - 1 (or T, the last ignored) actions taken so far in
    the environment's format; `timesteps` default `0..T-1`. The last K steps are used.
    """
    obs = np.asarray(observations, np.float32)
    single = obs.ndim == 2
    if single:
        obs = obs[None]
    n, t = obs.shape[:2]
    rtg = np.asarray(returns_to_go, np.float64).reshape(n, t)
    codec, dev = module.codec, next(module.parameters()).device
    if codec.discrete:
        acts = np.zeros((n, t), np.int64)
    else:
        acts = np.zeros((n, t, codec.dim), np.float32)
    if actions is not None and len(np.asarray(actions).reshape(n, -1)):
        given = codec.encode(np.asarray(actions).reshape(n, -1, *acts.shape[2:]))
        m = min(given.shape[1], t)
        acts[:, :m] = given[:, :m]
    ts = np.broadcast_to(np.arange(t) if timesteps is None else np.asarray(timesteps).reshape(-1, t), (n, t))
    k = int(getattr(module.net, "context_len", 1))
    mean = np.asarray(module.spec["state_mean"], np.float32)
    std = np.asarray(module.spec["state_std"], np.float32)
    tens = lambda x, dt: torch.as_tensor(np.array(x[:, -k:]), dtype=dt, device=dev)
    with torch.no_grad():
        out = module.net(tens((obs.reshape(n, t, -1) - mean) / std, torch.float32),
                         tens(acts, torch.long if codec.discrete else torch.float32),
                         tens(rtg[..., None] / module.spec["return_scale"], torch.float32),
                         tens(ts, torch.long))[:, -1]
    action = codec.decode((out.argmax(-1) if codec.discrete else out).cpu().numpy())
    return action[0] if single else action
