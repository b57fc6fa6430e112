"""D4RL-style HDF5 files: flat arrays `observations, actions, rewards, terminals, timeouts` split into episodes.

This is the layout of the files `d4rl` downloads (e.g. `hopper_medium-v2.hdf5`) and of many
offline-RL repositories' exports. An episode ends where `terminals` (the MDP ended) or
`timeouts` (the time limit cut it) is set; steps after the last flag form a final, truncated
episode. Files from before D4RL added `timeouts` are split at `terminals` and every
`max_episode_steps` steps. `next_observations`, where present, gives each episode's final state.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from polyformer.core.errors import DataError
from polyformer.rl.data.episodes import Episode, OfflineData, check_spaces, validate

REQUIRED = ("observations", "actions", "rewards", "terminals")


def read_d4rl(path: str | Path, env: str | None = None, max_episode_steps: int = 1000) -> OfflineData:
    """Read a D4RL-style HDF5 file into OfflineData.

    `env` (an id or alias, e.g. "hopper" or "Hopper-v5") gives the spaces and reference returns and
    is checked against the arrays' shapes; without it the spaces are inferred from the data.
    """
    from polyformer.rl.data.envs import env_info

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"no D4RL file at '{path}'. Give data.path=<file.hdf5> (e.g. hopper_medium_replay-v2.hdf5).")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"'{path}' is not an HDF5 file ({exc})") from exc
    with f:
        missing = [k for k in REQUIRED if k not in f]
        if missing:
            raise DataError(f"'{path}' lacks the D4RL array(s) {missing}; it has {sorted(f.keys())}")
        obs = np.asarray(f["observations"], dtype=np.float32)
        actions = np.asarray(f["actions"])
        rewards = np.asarray(f["rewards"], dtype=np.float32).reshape(-1)
        terminals = np.asarray(f["terminals"]).reshape(-1).astype(bool)
        timeouts = np.asarray(f["timeouts"]).reshape(-1).astype(bool) if "timeouts" in f else None
        next_obs = np.asarray(f["next_observations"], dtype=np.float32) if "next_observations" in f else None
    n = len(rewards)
    lengths = {"observations": len(obs), "actions": len(actions), "rewards": n, "terminals": len(terminals)}
    if timeouts is not None:
        lengths["timeouts"] = len(timeouts)
    if len(set(lengths.values())) != 1:
        raise DataError(f"'{path}': the arrays differ in length {lengths}; every step needs one row in each")
    if n == 0:
        raise DataError(f"'{path}' holds no steps")
    discrete = actions.ndim == 1 and np.issubdtype(actions.dtype, np.integer)
    actions = actions.astype(np.int64) if discrete else actions.astype(np.float32).reshape(n, -1)

    ends = terminals.copy() if timeouts is None else terminals | timeouts
    episodes, start = [], 0
    for t in range(n):
        if ends[t] or (timeouts is None and t + 1 - start >= max_episode_steps) or t == n - 1:
            sl = slice(start, t + 1)
            episodes.append(Episode(
                observations=obs[sl], actions=actions[sl], rewards=rewards[sl], terminated=bool(terminals[t]),
                final_observation=None if next_obs is None else next_obs[t],
            ))
            start = t + 1

    info = env_info(env) if env else None
    obs_space, act_space = _spaces(obs, actions, discrete, info, path)
    meta = {"source": "d4rl", "path": str(path)}
    if info is not None and info.references:
        meta.update(ref_min_score=info.random_return, ref_max_score=info.expert_return)
    data = OfflineData(episodes, obs_space, act_space, env_id=info.key if info else None,
                       dataset_id=path.stem, metadata=meta)
    return validate(data, f"D4RL file '{path}'")


def _spaces(obs, actions, discrete, info, path):
    from gymnasium import spaces

    if info is not None:
        env = info.make()
        try:
            probe = OfflineData([], spaces.Box(-np.inf, np.inf, obs.shape[1:], np.float32),
                                spaces.Discrete(int(actions.max()) + 1) if discrete
                                else spaces.Box(-1, 1, actions.shape[1:], np.float32))
            check_spaces(probe, env, f"D4RL file '{path}'")
            return env.observation_space, env.action_space
        finally:
            env.close()
    obs_space = spaces.Box(-np.inf, np.inf, obs.shape[1:], np.float32)
    if discrete:
        return obs_space, spaces.Discrete(int(actions.max()) + 1)
    bound = float(max(1.0, np.abs(actions).max()))
    return obs_space, spaces.Box(-bound, bound, actions.shape[1:], np.float32)


def write_d4rl(path: str | Path, data: OfflineData) -> Path:
    """Write OfflineData as a D4RL-style HDF5 file (flat arrays + terminals/timeouts); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cat = lambda key: np.concatenate([getattr(e, key) for e in data.episodes])
    terminals = np.concatenate([np.eye(1, len(e), len(e) - 1, dtype=bool)[0] & e.terminated for e in data.episodes])
    timeouts = np.concatenate([np.eye(1, len(e), len(e) - 1, dtype=bool)[0] & (not e.terminated) for e in data.episodes])
    with h5py.File(path, "w") as f:
        f["observations"] = cat("observations")
        f["actions"] = cat("actions")
        f["rewards"] = cat("rewards")
        f["terminals"] = terminals
        f["timeouts"] = timeouts
    return path
