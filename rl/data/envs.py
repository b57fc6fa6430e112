"""The environments polyformer.rl knows: gymnasium ids, reference returns, return scales, target returns.

Normalised scores follow D4RL: `100 * (R - R_random) / (R_expert - R_random)`. For the embedded
environments the two reference returns were measured here (mean over 100 episodes, env seeds
10000..10099) with the uniform random policy and the scripted expert of `polyformer.rl.data.policies`
(`python -m polyformer.rl.data.references` re-measures them). For the D4RL MuJoCo tasks they are
D4RL's published constants (d4rl/infos.py: REF_MIN_SCORE / REF_MAX_SCORE), so scores compare with papers.

Any other id registered in gymnasium is accepted for training and evaluation; its normalised
score needs reference returns from the dataset's metadata (`ref_min_score` / `ref_max_score`,
Minari's convention) or from the command line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from polyformer.core.errors import ConfigError


@dataclass(frozen=True)
class EnvInfo:
    """What polyformer.rl needs to know about one environment."""

    key: str
    gym_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    random_return: float | None = None
    expert_return: float | None = None
    return_scale: float = 1.0
    target_returns: tuple[float, ...] = ()
    target_return: float | None = None
    max_episode_steps: int = 1000
    expert: str | None = None
    aliases: tuple[str, ...] = ()
    note: str = ""

    def make(self, **kwargs):
        """A fresh gymnasium environment (with its TimeLimit) for this entry."""
        import gymnasium as gym

        return gym.make(self.gym_id, **{**self.kwargs, **kwargs})

    @property
    def references(self) -> dict[str, float] | None:
        """`{"random": R_random, "expert": R_expert}`, or None where unknown."""
        if self.random_return is None or self.expert_return is None:
            return None
        return {"random": float(self.random_return), "expert": float(self.expert_return)}


EMBEDDED = {
    "LunarLander-v3": EnvInfo(
        key="LunarLander-v3",
        gym_id="LunarLander-v3",
        kwargs={"continuous": False},
        random_return=-186.55,
        expert_return=258.59,
        return_scale=100.0,
        target_returns=(-100.0, 0.0, 100.0, 200.0, 250.0, 300.0),
        target_return=250.0,
        max_episode_steps=1000,
        expert="lunarlander_heuristic",
        aliases=("lunarlander", "lunar_lander", "lunarlander-discrete"),
        note="discrete actions (4); expert: gymnasium's own heuristic controller",
    ),
    "LunarLanderContinuous-v3": EnvInfo(
        key="LunarLanderContinuous-v3",
        gym_id="LunarLander-v3",
        kwargs={"continuous": True},
        random_return=-227.96,
        expert_return=284.15,
        return_scale=100.0,
        target_returns=(-100.0, 0.0, 100.0, 200.0, 250.0, 300.0),
        target_return=280.0,
        max_episode_steps=1000,
        expert="lunarlander_heuristic",
        aliases=("lunarlandercontinuous", "lunarlander-continuous", "lunarlander_continuous"),
        note="LunarLander-v3 with continuous=True (Box(2) actions); expert: gymnasium's heuristic",
    ),
    "Pendulum-v1": EnvInfo(
        key="Pendulum-v1",
        gym_id="Pendulum-v1",
        random_return=-1236.46,
        expert_return=-159.55,
        return_scale=100.0,
        target_returns=(-1000.0, -800.0, -600.0, -400.0, -200.0, -100.0),
        target_return=-150.0,
        max_episode_steps=200,
        expert="pendulum_swingup",
        aliases=("pendulum",),
        note="continuous torque; expert: energy-shaping swing-up + PD balance (polyformer.rl.data.policies)",
    ),
}

# D4RL's reference returns (d4rl/infos.py) and the DT paper's settings for the MuJoCo locomotion tasks.
# D4RL recorded them on gym's mujoco-py v2 environments; gymnasium's v5 environments have the same
# observation and action spaces, so D4RL datasets evaluate on them (scores differ slightly from papers).
D4RL_MUJOCO = {
    "hopper": EnvInfo(
        key="hopper",
        gym_id="Hopper-v5",
        random_return=-20.272305,
        expert_return=3234.3,
        return_scale=1000.0,
        target_returns=(1800.0, 3600.0),
        target_return=3600.0,
        aliases=("Hopper-v2", "Hopper-v3", "Hopper-v4", "Hopper-v5"),
        note="D4RL hopper; evaluated on gymnasium Hopper-v5",
    ),
    "halfcheetah": EnvInfo(
        key="halfcheetah",
        gym_id="HalfCheetah-v5",
        random_return=-280.178953,
        expert_return=12135.0,
        return_scale=1000.0,
        target_returns=(6000.0, 12000.0),
        target_return=12000.0,
        aliases=("HalfCheetah-v2", "HalfCheetah-v3", "HalfCheetah-v4", "HalfCheetah-v5"),
        note="D4RL halfcheetah; evaluated on gymnasium HalfCheetah-v5",
    ),
    "walker2d": EnvInfo(
        key="walker2d",
        gym_id="Walker2d-v5",
        random_return=1.629008,
        expert_return=4592.3,
        return_scale=1000.0,
        target_returns=(2500.0, 5000.0),
        target_return=5000.0,
        aliases=("Walker2d-v2", "Walker2d-v3", "Walker2d-v4", "Walker2d-v5"),
        note="D4RL walker2d; evaluated on gymnasium Walker2d-v5",
    ),
}

KNOWN = {**EMBEDDED, **D4RL_MUJOCO}


def _lookup() -> dict[str, EnvInfo]:
    table = {}
    for info in KNOWN.values():
        for name in (info.key, *info.aliases):
            table[name.lower()] = info
    return table


def env_info(name: str) -> EnvInfo:
    """The EnvInfo of `name`: an embedded key or alias, a D4RL task, or any id gymnasium registers.

    Raises ConfigError for a name gymnasium does not know either, with the closest known names.
    """
    if isinstance(name, EnvInfo):
        return name
    table = _lookup()
    key = str(name).lower()
    for prefix in ("d4rl/", "mujoco/"):
        if key.startswith(prefix):
            key = key[len(prefix):].split("/")[0]
    if key in table:
        return table[key]
    import gymnasium as gym

    if name in gym.registry:
        spec = gym.registry[name]
        return EnvInfo(key=name, gym_id=name, max_episode_steps=spec.max_episode_steps or 1000)
    close = difflib.get_close_matches(key, list(table), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ConfigError(
        f"unknown environment '{name}'. Embedded: {', '.join(EMBEDDED)}; D4RL: {', '.join(D4RL_MUJOCO)}; "
        f"or any id registered in gymnasium.{hint}"
    )


def embedded_env(name: str) -> EnvInfo:
    """Like `env_info`, but only environments with a scripted expert (those `collect` can make data for)."""
    info = env_info(name)
    if info.expert is None:
        raise ConfigError(
            f"no embedded behaviour policies for '{name}': data for it cannot be collected here. "
            f"Collect one of {', '.join(EMBEDDED)}, or train on your own Minari / D4RL files (data=minari / data=d4rl)."
        )
    return info
