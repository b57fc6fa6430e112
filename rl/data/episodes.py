"""In-memory offline data: a list of episodes plus spaces and metadata, with the checks every reader runs.

`Episode.observations[t]` is the state the action `actions[t]` was taken in (T rows); the state
after the last action, when the source has it, is `final_observation`. Minari stores T + 1
observations per episode; D4RL stores T (plus `next_observations` in some files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from polyformer.core.errors import DataError


@dataclass
class Episode:
    """One trajectory: states, actions, rewards, and whether it ended in a terminal state."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool = False
    final_observation: np.ndarray | None = None
    seed: int | None = None

    def __len__(self) -> int:
        return int(len(self.rewards))

    @property
    def total_return(self) -> float:
        """Undiscounted return of the episode."""
        return float(np.sum(self.rewards, dtype=np.float64))

    def returns_to_go(self) -> np.ndarray:
        """`rtg[t] = sum(rewards[t:])` (undiscounted, as in the Decision Transformer), float32 [T]."""
        return np.cumsum(self.rewards[::-1].astype(np.float64))[::-1].astype(np.float32).copy()


@dataclass
class OfflineData:
    """Episodes of one environment with its spaces and the dataset's metadata (ids, reference returns)."""

    episodes: list[Episode]
    observation_space: Any
    action_space: Any
    env_id: str | None = None
    dataset_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def discrete(self) -> bool:
        """True for a Discrete action space (cross-entropy), False for a Box (tanh + MSE)."""
        return hasattr(self.action_space, "n")

    @property
    def observation_dim(self) -> int:
        return int(np.prod(self.observation_space.shape))

    @property
    def action_dim(self) -> int:
        """Number of discrete actions, or the size of a Box action."""
        return int(self.action_space.n) if self.discrete else int(np.prod(self.action_space.shape))

    @property
    def num_steps(self) -> int:
        return int(sum(len(e) for e in self.episodes))

    def returns(self) -> np.ndarray:
        """Each episode's return, float64 [num_episodes]."""
        return np.array([e.total_return for e in self.episodes], dtype=np.float64)

    def references(self) -> dict[str, float] | None:
        """Reference returns from the metadata (Minari's `ref_min_score` / `ref_max_score`), if any."""
        lo, hi = self.metadata.get("ref_min_score"), self.metadata.get("ref_max_score")
        if lo is None or hi is None:
            return None
        return {"random": float(lo), "expert": float(hi)}

    def subset(self, indices) -> OfflineData:
        """The same dataset restricted to the episodes at `indices`."""
        return OfflineData([self.episodes[i] for i in indices], self.observation_space, self.action_space,
                           self.env_id, self.dataset_id, dict(self.metadata))

    def state_stats(self, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature mean and std of all states (std floored at `eps`), as in the DT's state normalisation."""
        states = np.concatenate([e.observations.reshape(len(e), -1) for e in self.episodes]).astype(np.float64)
        return states.mean(0).astype(np.float32), np.maximum(states.std(0), eps).astype(np.float32)


def validate(data: OfflineData, source: str) -> OfflineData:
    """Fail early on data a model cannot learn from: no episodes, empty episodes, NaN/inf, wrong shapes.

    `source` names the file or dataset in the messages.
    """
    if not data.episodes:
        raise DataError(f"{source} holds no episodes. Collect or point at a dataset with at least one episode.")
    obs_shape = tuple(data.observation_space.shape)
    for i, ep in enumerate(data.episodes):
        where = f"{source}, episode {i}"
        if len(ep) == 0:
            raise DataError(f"{where} is empty (0 steps). Remove it or re-collect the dataset.")
        if len(ep.observations) != len(ep) or len(ep.actions) != len(ep):
            raise DataError(
                f"{where}: {len(ep.observations)} observations, {len(ep.actions)} actions and "
                f"{len(ep.rewards)} rewards; each step needs one of each"
            )
        if tuple(ep.observations.shape[1:]) != obs_shape:
            raise DataError(f"{where}: observations have shape {ep.observations.shape[1:]}, the observation space {obs_shape}")
        for name, arr in (("observations", ep.observations), ("actions", ep.actions), ("rewards", ep.rewards)):
            if np.issubdtype(np.asarray(arr).dtype, np.floating) and not np.all(np.isfinite(arr)):
                bad = int(np.argmax(~np.isfinite(np.asarray(arr).reshape(len(arr), -1)).all(1)))
                raise DataError(f"{where}: {name} contain NaN or inf (first at step {bad}). Clean or drop this episode.")
        if data.discrete:
            acts = np.asarray(ep.actions)
            start = int(getattr(data.action_space, "start", 0))
            if acts.ndim != 1 or acts.min() < start or acts.max() >= start + data.action_space.n:
                raise DataError(f"{where}: discrete actions must be integers in [{start}, {start + data.action_space.n}), "
                                f"got shape {acts.shape} range [{acts.min()}, {acts.max()}]")
        elif tuple(np.asarray(ep.actions).shape[1:]) != tuple(data.action_space.shape):
            raise DataError(f"{where}: actions have shape {np.asarray(ep.actions).shape[1:]}, the action space {tuple(data.action_space.shape)}")
    return data


def check_spaces(data: OfflineData, env, source: str) -> None:
    """Raise DataError unless the dataset's observation and action spaces are the environment's."""
    problems = []
    if tuple(data.observation_space.shape) != tuple(env.observation_space.shape):
        problems.append(f"observations {tuple(data.observation_space.shape)} vs {tuple(env.observation_space.shape)}")
    d_disc, e_disc = hasattr(data.action_space, "n"), hasattr(env.action_space, "n")
    if d_disc != e_disc:
        kinds = ("discrete" if d_disc else "continuous", "discrete" if e_disc else "continuous")
        problems.append(f"actions are {kinds[0]} in the data but {kinds[1]} in the environment")
    elif d_disc and int(data.action_space.n) != int(env.action_space.n):
        problems.append(f"{data.action_space.n} vs {env.action_space.n} discrete actions")
    elif not d_disc and tuple(data.action_space.shape) != tuple(env.action_space.shape):
        problems.append(f"actions {tuple(data.action_space.shape)} vs {tuple(env.action_space.shape)}")
    if problems:
        env_id = getattr(getattr(env, "spec", None), "id", "the environment")
        raise DataError(
            f"{source} does not fit {env_id}: {'; '.join(problems)} (dataset vs environment). "
            "Pick the environment the data was collected in (data.env=...) or another dataset."
        )
