"""Shared bits of the rl tests: tiny training overrides and tiny datasets written in Minari / D4RL layouts."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from polyformer.rl.data.episodes import Episode, OfflineData

# A tiny Decision Transformer on 6 Pendulum episodes: a run takes seconds.
TINY_DT = ["experiment=smoke", "model.embed_dim=16", "model.depth=1", "logger=none"]
TINY_BC = ["experiment=smoke", "model=bc", "model.hidden_dim=16", "logger=none"]


def pendulum_spaces():
    """Pendulum-v1's observation and action spaces."""
    obs = spaces.Box(np.array([-1, -1, -8], np.float32), np.array([1, 1, 8], np.float32))
    return obs, spaces.Box(-2.0, 2.0, (1,), np.float32)


def toy_data(episodes: int = 3, steps: int = 7, seed: int = 0) -> OfflineData:
    """Random Pendulum-shaped episodes (not physical; for format and error tests)."""
    rng = np.random.default_rng(seed)
    obs_space, act_space = pendulum_spaces()
    eps = [
        Episode(
            observations=rng.normal(size=(steps, 3)).astype(np.float32),
            actions=rng.uniform(-2, 2, size=(steps, 1)).astype(np.float32),
            rewards=rng.normal(size=steps).astype(np.float32),
            terminated=bool(i % 2),
            final_observation=rng.normal(size=3).astype(np.float32),
        )
        for i in range(episodes)
    ]
    return OfflineData(eps, obs_space, act_space, env_id="Pendulum-v1")
