"""Collect offline datasets by rolling behaviour policies in gymnasium, D4RL style, into Minari's layout.

Flavours (per environment, like D4RL's):

- `random`: uniform random actions.
- `medium`: the scripted expert with its commands corrupted with probability `medium_epsilon`
  (a noisy expert reaching roughly half the expert's normalised score).
- `expert`: the scripted expert.
- `replay`: a mixed-quality set like the replay buffer of an improving learner: each episode
  follows one behaviour policy drawn from a list of snapshots of graded quality (uniform random,
  engines off / zero torque, systematically poor controllers, noisy experts, the expert),
  weighted towards the poor end. Poor and good snapshots act differently in the same states, so
  behaviour cloning averages them, while a return-conditioned policy can pick the good ones.

A dataset is made once under `<data_dir>/rl/minari` and reused. Its id carries the recipe's
digest (`polyformer/pendulum/replay-<digest>-v<RECIPE_VERSION>`) and its metadata the whole
recipe, so a changed recipe (episodes, seed, noise, code version) makes a new entry instead of
silently reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from polyformer.core.errors import ConfigError
from polyformer.rl.data.envs import EnvInfo, embedded_env
from polyformer.rl.data.episodes import Episode, OfflineData
from polyformer.rl.data.policies import (
    MixturePolicy,
    NoisyExpert,
    Policy,
    RandomPolicy,
    make_expert,
    make_policy,
)

log = logging.getLogger("polyformer.rl")

RECIPE_VERSION = 1
FLAVOURS = ("random", "medium", "expert", "replay")

# Per-environment collection defaults: episodes per flavour, the noise of `medium`, and the
# behaviour policies of `replay` with their weights (names of polyformer.rl.data.policies.make_policy).
DEFAULTS: dict[str, dict[str, Any]] = {
    "LunarLander-v3": {
        "episodes": 200, "medium_epsilon": 0.5,
        "replay": {"random": 3, "null": 2, "lunarlander_drifter": 2, "lunarlander_hoverer": 1,
                   "noisy0.5": 2, "noisy0.2": 1, "expert": 1},
    },
    "LunarLanderContinuous-v3": {
        "episodes": 200, "medium_epsilon": 0.5,
        "replay": {"random": 3, "null": 2, "lunarlander_drifter": 2, "lunarlander_hoverer": 1,
                   "noisy0.5": 2, "noisy0.2": 1, "expert": 1},
    },
    "Pendulum-v1": {
        "episodes": 200, "medium_epsilon": 0.5,
        "replay": {"random": 3, "null": 2, "pendulum_damper": 2, "pendulum_pump": 2,
                   "noisy0.5": 2, "noisy0.2": 1, "expert": 1},
    },
}


def data_root(data_dir: str | Path) -> Path:
    """Where polyformer keeps its Minari datasets under the data root: `<data_dir>/rl/minari`."""
    return Path(data_dir).expanduser() / "rl" / "minari"


def recipe(env: str, flavour: str, episodes: int | None = None, seed: int = 0, num_envs: int = 8,
           medium_epsilon: float | None = None) -> dict[str, Any]:
    """The full, plain description of a dataset to collect; its digest names the dataset."""
    info = embedded_env(env)
    if flavour not in FLAVOURS:
        raise ConfigError(f"unknown flavour '{flavour}'; choose one of {', '.join(FLAVOURS)}")
    defaults = DEFAULTS[info.key]
    out: dict[str, Any] = {
        "version": RECIPE_VERSION,
        "env": info.key,
        "flavour": flavour,
        "episodes": int(episodes or defaults["episodes"]),
        "seed": int(seed),
        "num_envs": int(num_envs),
    }
    if out["episodes"] < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if flavour == "medium":
        out["epsilon"] = float(defaults["medium_epsilon"] if medium_epsilon is None else medium_epsilon)
    if flavour == "replay":
        out["policies"] = dict(defaults["replay"])
    if flavour in ("medium", "replay"):
        out["drop_prob"] = 0.5
    return out


def dataset_id(spec: dict[str, Any]) -> str:
    """`polyformer/<env>/<flavour>-<digest>-v<version>` for a recipe (a valid Minari id)."""
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    env = spec["env"].split("-v")[0].lower()
    return f"polyformer/{env}/{spec['flavour']}-{digest}-v{spec['version']}"


def behaviour_policy(info: EnvInfo, spec: dict[str, Any], action_space) -> Policy:
    """The policy a recipe rolls: random, the expert, or a noisy expert."""
    if spec["flavour"] == "random":
        return RandomPolicy(action_space)
    expert = make_expert(info.expert, action_space)
    if spec["flavour"] == "expert":
        return expert
    if spec["flavour"] == "medium":
        return NoisyExpert(expert, epsilon=spec["epsilon"], drop_prob=spec["drop_prob"])
    names = list(spec["policies"])
    policies = [make_policy(name, info.expert, action_space, drop_prob=spec["drop_prob"]) for name in names]
    return MixturePolicy(policies, [spec["policies"][n] for n in names])


def episode_seed(seed: int, index: int) -> int:
    """The reset seed of episode `index` of a collection with base `seed` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def run_episodes(info: EnvInfo, policy: Policy, episodes: int, *, seed: int = 0, num_envs: int = 8) -> list[Episode]:
    """Roll `policy` for `episodes` episodes on `num_envs` environments stepped side by side.

    The policy sees one batch of observations per step (all slots; finished slots are refilled
    with the next episode). Episode `k` is reset with `episode_seed(seed, k)`; the result is in
    episode order and reproducible for a given (seed, num_envs).
    """
    n = max(1, min(num_envs, episodes))
    envs = [info.make() for _ in range(n)]
    rng = np.random.default_rng(seed)
    out: dict[int, Episode] = {}
    slot_episode: list[int | None] = [None] * n
    buffers: list[dict[str, list]] = [{} for _ in range(n)]
    obs = np.zeros((n, *envs[0].observation_space.shape), np.float32)
    next_index = 0

    def start(slot: int) -> None:
        nonlocal next_index
        k = next_index
        next_index += 1
        o, _ = envs[slot].reset(seed=episode_seed(seed, k))
        policy.begin_episode(slot, rng)
        obs[slot] = o
        slot_episode[slot] = k
        buffers[slot] = {"obs": [], "act": [], "rew": []}

    for slot in range(n):
        start(slot)
    try:
        while any(k is not None for k in slot_episode):
            actions = policy(obs.copy(), rng)
            for slot, env in enumerate(envs):
                k = slot_episode[slot]
                if k is None:
                    continue
                buf = buffers[slot]
                buf["obs"].append(obs[slot].copy())
                buf["act"].append(actions[slot])
                o, r, terminated, truncated, _ = env.step(actions[slot])
                buf["rew"].append(float(r))
                obs[slot] = o
                if terminated or truncated:
                    out[k] = Episode(
                        observations=np.asarray(buf["obs"], np.float32),
                        actions=np.asarray(buf["act"]),
                        rewards=np.asarray(buf["rew"], np.float32),
                        terminated=bool(terminated),
                        final_observation=np.asarray(o, np.float32),
                        seed=episode_seed(seed, k),
                    )
                    slot_episode[slot] = None
                    if next_index < episodes:
                        start(slot)
    finally:
        for env in envs:
            env.close()
    return [out[k] for k in range(episodes)]


def collect(env: str, flavour: str, data_dir: str | Path, *, episodes: int | None = None, seed: int = 0,
            num_envs: int = 8, medium_epsilon: float | None = None, force: bool = False) -> str:
    """Make (once) the embedded dataset `env`/`flavour` under `data_dir`; returns its Minari id.

    Read it back with `polyformer.rl.data.minari_io.read_minari(id, root=data_root(data_dir))`, or
    with `minari.load_dataset(id)` after `export MINARI_DATASETS_PATH=<data_dir>/rl/minari`.
    """
    from polyformer.rl.data import minari_io

    spec = recipe(env, flavour, episodes, seed, num_envs, medium_epsilon)
    ds_id = dataset_id(spec)
    root = data_root(data_dir)
    if minari_io.exists(root, ds_id) and not force:
        return ds_id
    info = embedded_env(env)
    log.info("collecting %s (%d episodes of %s) under %s", ds_id, spec["episodes"], flavour, root)
    probe = info.make()
    try:
        obs_space, act_space, env_spec = probe.observation_space, probe.action_space, probe.spec
    finally:
        probe.close()
    policy = behaviour_policy(info, spec, act_space)
    episodes_ = run_episodes(info, policy, spec["episodes"], seed=spec["seed"], num_envs=spec["num_envs"])
    data = OfflineData(episodes_, obs_space, act_space, env_id=info.key, dataset_id=ds_id)
    returns = data.returns()
    meta = {
        "algorithm_name": f"polyformer.rl {flavour} behaviour policy",
        "author": ["polyformer"],
        "code_permalink": "polyformer/rl/data/collect.py",
        "description": f"{flavour} flavour for {info.key} ({info.note}); recipe in polyformer_recipe",
        "ref_min_score": info.random_return,
        "ref_max_score": info.expert_return,
        "num_episodes_average_score": 100,
        "polyformer_recipe": spec,
        "polyformer_env": info.key,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
    }
    if force and minari_io.exists(root, ds_id):
        import shutil

        shutil.rmtree(minari_io.dataset_dir(root, ds_id))
    minari_io.write_minari(root, ds_id, data, env_spec=env_spec, metadata=meta)
    return ds_id
