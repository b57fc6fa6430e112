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


class NullPolicy(Policy):
    """Always 'do nothing' (engines off, zero torque): a lazy snapshot of a learner."""

    def __call__(self, obs, rng):
        return null_actions(self.action_space, len(obs))


class LunarLanderVariant(LunarLanderExpert):
    """Gymnasium's heuristic fed a distorted observation: a systematically poor pilot.

    `drifter`: attitude (angle, angular velocity) reads zero, so it never corrects its tilt;
    `hoverer`: altitude reads 0.4 too low, so it hovers above the pad and rarely settles.
    """

    def __init__(self, action_space, variant: str = "drifter"):
        super().__init__(action_space)
        if variant not in ("drifter", "hoverer"):
            raise ConfigError(f"unknown LunarLander variant '{variant}'")
        self.variant = variant

    def __call__(self, obs, rng):
        seen = np.array(obs, dtype=np.float32, copy=True)
        if self.variant == "drifter":
            seen[:, 4:6] = 0.0
        else:
            seen[:, 1] -= 0.4
        return super().__call__(seen, rng)


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
    """An expert whose commands are corrupted with probability `epsilon` per step (D4RL-style 'medium').

    A corrupted step either drops the command ('do nothing': no engine, zero torque) or replaces it
    with a uniform random action, with probabilities `drop_prob` and `1 - drop_prob`.
    """

    def __init__(self, expert: Policy, epsilon: float = 0.3, drop_prob: float = 0.5):
        super().__init__(expert.action_space)
        self.expert, self.epsilon, self.drop_prob = expert, float(epsilon), float(drop_prob)

    def begin_episode(self, slot, rng):
        self.expert.begin_episode(slot, rng)

    def __call__(self, obs, rng):
        n = len(obs)
        actions = self.expert(obs, rng)
        corrupt = rng.random(n) < self.epsilon
        drop = rng.random(n) < self.drop_prob
        noise = np.where(_expand(drop, actions), null_actions(self.action_space, n), random_actions(self.action_space, n, rng))
        return np.where(_expand(corrupt, actions), noise, actions).astype(actions.dtype)


class PendulumDamper(Policy):
    """Brakes the swing (`u = -2 w`, saturated): holds the pendulum down, the worst snapshot."""

    def __call__(self, obs, rng):
        limit = float(np.max(self.action_space.high))
        return np.clip(-2.0 * obs[:, 2:3], -limit, limit).astype(np.float32)


class PendulumPumpOnly(PendulumSwingUp):
    """Energy pumping without the balance controller: reaches the top, then falls over and swings again."""

    def __init__(self, action_space):
        super().__init__(action_space, switch_angle=0.0)


class MixturePolicy(Policy):
    """Each episode follows one policy drawn from `policies` with probabilities `weights` (a replay buffer of snapshots)."""

    def __init__(self, policies: list[Policy], weights: list[float]):
        super().__init__(policies[0].action_space)
        self.policies = policies
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum()
        self.slot_policy: dict[int, int] = {}

    def begin_episode(self, slot, rng):
        k = int(rng.choice(len(self.policies), p=self.weights))
        self.slot_policy[slot] = k
        self.policies[k].begin_episode(slot, rng)

    def __call__(self, obs, rng):
        chosen = np.array([self.slot_policy.get(i, 0) for i in range(len(obs))])
        actions = None
        for k in np.unique(chosen):
            out = self.policies[k](obs, rng)
            if actions is None:
                actions = np.zeros_like(out)
            actions[chosen == k] = out[chosen == k]
        return actions


def _expand(flags: np.ndarray, like: np.ndarray) -> np.ndarray:
    return flags.reshape(flags.shape + (1,) * (like.ndim - 1))


EXPERTS = {"lunarlander_heuristic": LunarLanderExpert, "pendulum_swingup": PendulumSwingUp}

# Named behaviour policies (besides "expert" and "noisy<eps>"), used by the replay recipes.
POLICIES = {
    "random": RandomPolicy,
    "null": NullPolicy,
    "lunarlander_drifter": lambda space: LunarLanderVariant(space, "drifter"),
    "lunarlander_hoverer": lambda space: LunarLanderVariant(space, "hoverer"),
    "pendulum_damper": PendulumDamper,
    "pendulum_pump": PendulumPumpOnly,
}


def make_expert(name: str, action_space) -> Policy:
    """The scripted expert registered as `name` for an environment with this action space."""
    if name not in EXPERTS:
        raise ConfigError(f"unknown expert '{name}'; known: {', '.join(EXPERTS)}")
    return EXPERTS[name](action_space)


def make_policy(name: str, expert: str, action_space, drop_prob: float = 0.5) -> Policy:
    """A behaviour policy by name: "expert", "noisy<eps>" (e.g. "noisy0.5"), or one of POLICIES."""
    if name == "expert":
        return make_expert(expert, action_space)
    if name.startswith("noisy"):
        return NoisyExpert(make_expert(expert, action_space), epsilon=float(name[5:]), drop_prob=drop_prob)
    if name not in POLICIES:
        raise ConfigError(f"unknown behaviour policy '{name}'; known: expert, noisy<eps>, {', '.join(POLICIES)}")
    return POLICIES[name](action_space)
