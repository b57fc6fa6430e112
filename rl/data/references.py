"""Measure the reference returns of the embedded environments (the constants in `polyformer.rl.data.envs`).

`python -m polyformer.rl.data.references` prints, per embedded environment, the mean return of
the uniform random policy and of the scripted expert over 100 episodes with reset seeds
derived from 10000 (never the seeds the datasets are collected with).
"""

from __future__ import annotations

import numpy as np

from polyformer.rl.data.collect import run_episodes
from polyformer.rl.data.envs import EMBEDDED, embedded_env
from polyformer.rl.data.policies import RandomPolicy, make_expert


def measure_references(env: str, episodes: int = 100, seed: int = 10_000, num_envs: int = 8) -> dict[str, float]:
    """`{"random": mean return of uniform random actions, "expert": mean return of the scripted expert}`."""
    info = embedded_env(env)
    probe = info.make()
    space = probe.action_space
    probe.close()
    out = {}
    for name, policy in (("random", RandomPolicy(space)), ("expert", make_expert(info.expert, space))):
        eps = run_episodes(info, policy, episodes, seed=seed, num_envs=num_envs)
        out[name] = float(np.mean([e.total_return for e in eps]))
    return out


if __name__ == "__main__":
    for key in EMBEDDED:
        refs = measure_references(key)
        print(f"{key}: random_return={refs['random']:.2f}, expert_return={refs['expert']:.2f}")
