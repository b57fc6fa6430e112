"""Behaviour policies that make the embedded datasets: random, scripted experts, and noisy experts.

Every policy acts on a batch of observations `obs[N, obs_dim]` (one row per environment of a
vectorised collection) and returns a batch of actions in the environment's own format. Policies
with per-episode parameters get `begin_episode(slot, rng)` when environment `slot` starts a new
episode.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from polyformer.core.errors import ConfigError


class Policy:
    """Base of the behaviour policies: `__call__(obs[N, ...], rng) -> actions[N, ...]`."""

    def __init__(self, action_space):
        self.action_space = action_space

    def begin_episode(self, slot: int, rng: np.random.Generator) -> None:
        """Called when environment `slot` starts an episode (per-episode parameters are drawn here)."""

    def __call__(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def random_actions(action_space, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` uniform random actions of a Discrete or Box space, drawn from `rng` (reproducible)."""
    if hasattr(action_space, "n"):
        return rng.integers(0, int(action_space.n), size=n, dtype=np.int64) + int(getattr(action_space, "start", 0))
    low = np.broadcast_to(action_space.low, action_space.shape)
    high = np.broadcast_to(action_space.high, action_space.shape)
    return rng.uniform(low, high, size=(n, *action_space.shape)).astype(np.float32)


def null_actions(action_space, n: int) -> np.ndarray:
    """`n` 'do nothing' actions: action 0 of a Discrete space (LunarLander: no engine), zero of a Box."""
    if hasattr(action_space, "n"):
        return np.full(n, int(getattr(action_space, "start", 0)), dtype=np.int64)
    zero = np.clip(np.zeros(action_space.shape, np.float32), action_space.low, action_space.high)
    return np.broadcast_to(zero, (n, *action_space.shape)).astype(np.float32)


class RandomPolicy(Policy):
    """Uniform random actions (D4RL's 'random' flavour; also the R_random reference)."""

    def __call__(self, obs, rng):
        return random_actions(self.action_space, len(obs), rng)


class LunarLanderExpert(Policy):
    """Gymnasium's own heuristic lander (`gymnasium.envs.box2d.lunar_lander.heuristic`), discrete or continuous."""

    def __init__(self, action_space):
        super().__init__(action_space)
        from gymnasium.envs.box2d.lunar_lander import heuristic

        self._heuristic = heuristic
        self._env = SimpleNamespace(unwrapped=SimpleNamespace(continuous=not hasattr(action_space, "n")))

    def __call__(self, obs, rng):
        actions = [self._heuristic(self._env, o) for o in obs]
        if self._env.unwrapped.continuous:
            return np.asarray(actions, dtype=np.float32)
        return np.asarray(actions, dtype=np.int64)


class PendulumSwingUp(Policy):
    """Expert for Pendulum-v1: energy-shaping swing-up, then PD balance near the top.

    Pendulum-v1 integrates `theta'' = a sin(theta) + b u` with `a = 3g / 2l = 15`, `b = 3 / (m l^2) = 3`
    (theta = 0 is upright). `E = w^2 / 2 + a (cos(theta) - 1)` is 0 at rest upright, and
    `dE/dt = b w u`, so `u = -k E sign(w)` pumps energy in (E < 0 below the top) until the
    pendulum arrives at the top, where a PD law (gains near the LQR solution of the linearised
    system) balances it. Torque saturates at 2, so the pendulum swings a few times first.
    Mean return about -160 over 100 episodes (random: about -1236).
    """

    def __init__(self, action_space, *, gravity: float = 10.0, energy_gain: float = 10.0,
                 kp: float = 12.0, kd: float = 2.5, switch_angle: float = 0.35):
        super().__init__(action_space)
        self.a = 3.0 * gravity / 2.0
        self.max_torque = float(np.max(action_space.high))
        self.energy_gain, self.kp, self.kd, self.switch_angle = energy_gain, kp, kd, switch_angle

    def __call__(self, obs, rng):
        cos, sin, w = obs[:, 0], obs[:, 1], obs[:, 2]
        theta = np.arctan2(sin, cos)
        energy = 0.5 * w**2 + self.a * (cos - 1.0)
        direction = np.where(np.abs(w) < 1e-3, 1.0, np.sign(w))
        pump = np.clip(-self.energy_gain * energy * direction, -self.max_torque, self.max_torque)
        pump = np.where(np.abs(w) < 1e-3, self.max_torque, pump)
        balance = np.clip(-(self.kp * theta + self.kd * w), -self.max_torque, self.max_torque)
        torque = np.where(np.abs(theta) < self.switch_angle, balance, pump)
        return torque[:, None].astype(np.float32)


class NoisyExpert(Policy):
    """An expert whose commands are corrupted with probability `epsilon` per step.

    A corrupted step either drops the command ('do nothing': no engine, zero torque) or replaces it
    with a uniform random action, each with probability one half. Dropped commands make the noise
    systematic rather than zero-mean: a policy with a large epsilon is sluggish, not just jittery,
    which is what a poorly trained agent looks like. `epsilon` is fixed (`medium`) or drawn per
    episode from `epsilons` (the `replay` ladder).
    """

    def __init__(self, expert: Policy, epsilon: float = 0.3, epsilons: list[float] | None = None,
                 weights: list[float] | None = None, drop_prob: float = 0.5):
        super().__init__(expert.action_space)
        self.expert, self.epsilon, self.drop_prob = expert, float(epsilon), float(drop_prob)
        self.epsilons = None if epsilons is None else np.asarray(epsilons, dtype=np.float64)
        self.weights = None
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64)
            self.weights = w / w.sum()
        self.slot_eps: dict[int, float] = {}

    def begin_episode(self, slot, rng):
        self.expert.begin_episode(slot, rng)
        if self.epsilons is not None:
            self.slot_eps[slot] = float(rng.choice(self.epsilons, p=self.weights))

    def episode_epsilon(self, slot: int) -> float:
        """The corruption probability of the episode now running in `slot`."""
        return self.slot_eps.get(slot, self.epsilon)

    def __call__(self, obs, rng):
        n = len(obs)
        actions = self.expert(obs, rng)
        eps = np.array([self.episode_epsilon(i) for i in range(n)])
        corrupt = rng.random(n) < eps
        drop = rng.random(n) < self.drop_prob
        noise = np.where(_expand(drop, actions), null_actions(self.action_space, n), random_actions(self.action_space, n, rng))
        return np.where(_expand(corrupt, actions), noise, actions).astype(actions.dtype)


def _expand(flags: np.ndarray, like: np.ndarray) -> np.ndarray:
    return flags.reshape(flags.shape + (1,) * (like.ndim - 1))


EXPERTS = {"lunarlander_heuristic": LunarLanderExpert, "pendulum_swingup": PendulumSwingUp}


def make_expert(name: str, action_space) -> Policy:
    """The scripted expert registered as `name` for an environment with this action space."""
    if name not in EXPERTS:
        raise ConfigError(f"unknown expert '{name}'; known: {', '.join(EXPERTS)}")
    return EXPERTS[name](action_space)
