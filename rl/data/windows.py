"""Context windows of K steps for sequence policies: (return-to-go, state, action, timestep) per step.

As in the Decision Transformer, a window starts at a uniformly drawn step of the dataset (which is
sampling an episode in proportion to its length, then a start in it) and runs K steps or to the
episode's end. Short windows are padded on the *right*, with `mask` False there: a causal model
never sees padding at a real position, so the same windows serve attention and recurrent mixers.

Models see normalised inputs: `(s - mean) / std`, returns-to-go divided by `return_scale`, Box
actions mapped from the space's bounds to [-1, 1] (what tanh outputs), Discrete actions as indices.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from polyformer.rl.data.episodes import Episode


class ActionCodec:
    """Maps environment actions to model targets and back: Box bounds <-> [-1, 1], Discrete index offset."""

    def __init__(self, spec: dict):
        self.discrete = spec["type"] == "discrete"
        if self.discrete:
            self.n, self.start = int(spec["n"]), int(spec.get("start", 0))
        else:
            self.low = np.asarray(spec["low"], np.float32)
            self.high = np.asarray(spec["high"], np.float32)
            finite = np.isfinite(self.low) & np.isfinite(self.high)
            self.center = np.where(finite, (self.high + self.low) / 2, 0.0).astype(np.float32)
            self.half = np.where(finite, (self.high - self.low) / 2, 1.0).astype(np.float32)

    @property
    def dim(self) -> int:
        """Model-side action size: number of discrete actions, or the Box's flat size."""
        return self.n if self.discrete else int(self.low.size)

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Environment actions [..., A] (or [...] ints) to model space."""
        if self.discrete:
            return np.asarray(actions, np.int64) - self.start
        return ((np.asarray(actions, np.float32) - self.center) / self.half).astype(np.float32)

    def decode(self, actions: np.ndarray) -> np.ndarray:
        """Model-space actions back to the environment's (clipped to the bounds for Box)."""
        if self.discrete:
            return np.asarray(actions, np.int64) + self.start
        out = np.asarray(actions, np.float32) * self.half + self.center
        return np.clip(out, self.low, self.high).astype(np.float32)


def action_space_spec(space) -> dict:
    """A gymnasium Box/Discrete as plain data (stored in checkpoints): type, shape/n, bounds."""
    if hasattr(space, "n"):
        return {"type": "discrete", "n": int(space.n), "start": int(getattr(space, "start", 0))}
    return {"type": "box", "shape": [int(s) for s in space.shape],
            "low": np.asarray(space.low, np.float64).reshape(-1).tolist(),
            "high": np.asarray(space.high, np.float64).reshape(-1).tolist()}


class TrajectoryWindows(Dataset):
    """All K-step windows of a list of episodes, one per start step, as dicts of tensors.

    Item keys: `states [K, S]`, `actions [K, A]` float (Box) or `[K]` long (Discrete),
    `returns_to_go [K, 1]`, `timesteps [K]` long, `mask [K]` bool (False on right padding).
    `stride` > 1 keeps every stride-th start (non-overlapping windows for validation with stride = K).
    """

    def __init__(self, episodes: list[Episode], context_len: int, state_mean, state_std, return_scale: float,
                 codec: ActionCodec, max_timestep: int, stride: int = 1):
        self.K = int(context_len)
        self.codec = codec
        self.max_timestep = int(max_timestep)
        mean, std = np.asarray(state_mean, np.float32), np.asarray(state_std, np.float32)
        self.states = np.concatenate([(e.observations.reshape(len(e), -1) - mean) / std for e in episodes]).astype(np.float32)
        self.actions = np.concatenate([codec.encode(e.actions) for e in episodes])
        if not codec.discrete:
            self.actions = self.actions.reshape(len(self.actions), -1)
        self.rtg = np.concatenate([e.returns_to_go() for e in episodes]).astype(np.float32) / float(return_scale)
        self.timesteps = np.concatenate([np.arange(len(e)) for e in episodes]).clip(max=self.max_timestep - 1)
        lengths = np.array([len(e) for e in episodes])
        ends = np.cumsum(lengths)
        self.episode_end = np.repeat(ends, lengths)
        starts = np.arange(int(ends[-1]))
        if stride > 1:
            offsets = starts - np.repeat(ends - lengths, lengths)
            starts = starts[offsets % stride == 0]
        self.starts = starts

    def __len__(self) -> int:
        return int(len(self.starts))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = int(self.starts[i])
        e = min(s + self.K, int(self.episode_end[s]))
        n = e - s
        pad = self.K - n

        def take(arr, dtype):
            x = torch.as_tensor(arr[s:e], dtype=dtype)
            if pad:
                x = torch.cat([x, torch.zeros((pad, *x.shape[1:]), dtype=dtype)])
            return x

        mask = torch.zeros(self.K, dtype=torch.bool)
        mask[:n] = True
        return {
            "states": take(self.states, torch.float32),
            "actions": take(self.actions, torch.long if self.codec.discrete else torch.float32),
            "returns_to_go": take(self.rtg, torch.float32).unsqueeze(-1),
            "timesteps": take(self.timesteps, torch.long),
            "mask": mask,
        }


def top_episodes(episodes: list[Episode], fraction: float) -> list[Episode]:
    """The best `fraction` of episodes by return (at least one): the data filtered behaviour cloning (%BC) sees."""
    if not 0 < fraction <= 1:
        from polyformer.core.errors import ConfigError

        raise ConfigError(f"top_fraction must be in (0, 1], got {fraction}")
    if fraction >= 1:
        return list(episodes)
    k = max(1, int(round(fraction * len(episodes))))
    order = np.argsort([-e.total_return for e in episodes], kind="stable")
    return [episodes[i] for i in sorted(order[:k])]
