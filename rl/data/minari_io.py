"""Minari datasets on disk: a writer for Minari's HDF5 layout (no jax needed) and a reader for a local root.

The layout (Minari 0.5, "hdf5" data format), which `minari.load_dataset(id)` reads when
`MINARI_DATASETS_PATH` points at the root::

    <root>/<namespace>/<name>-v<N>/data/metadata.json      dataset id, spaces (Minari's JSON
                                                          serialisation), env_spec, counts,
                                                          ref_min_score / ref_max_score, ...
    <root>/<namespace>/<name>-v<N>/data/main_data.hdf5     one group per episode:
        episode_<i>/observations [T+1, ...]   (the state after the last step included)
        episode_<i>/actions      [T, ...]     (int64 [T] for Discrete)
        episode_<i>/rewards      [T]
        episode_<i>/terminations [T] bool,  episode_<i>/truncations [T] bool
        attrs: id, total_steps, seed (optional)

Reading goes through the `minari` package itself (any of its storage formats), never downloading.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from polyformer.core.errors import DataError
from polyformer.rl.data.episodes import Episode, OfflineData, validate

METADATA = "metadata.json"
MAIN_FILE = "main_data.hdf5"


def default_root() -> Path:
    """Minari's own local root: `$MINARI_DATASETS_PATH`, else `~/.minari/datasets`."""
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def dataset_dir(root: str | Path, dataset_id: str) -> Path:
    """The folder of `dataset_id` under `root` (the one holding `data/`)."""
    return Path(root).expanduser() / dataset_id


def exists(root: str | Path, dataset_id: str) -> bool:
    """True when a complete dataset (its metadata.json written) is at `root/dataset_id`."""
    return (dataset_dir(root, dataset_id) / "data" / METADATA).is_file()


def write_minari(
    root: str | Path,
    dataset_id: str,
    data: OfflineData,
    *,
    env_spec=None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `data` as Minari dataset `dataset_id` under `root`; returns the dataset folder.

    The dataset is written to a temporary folder and renamed into place, so a crash never leaves a
    half-written dataset that later looks complete. An existing dataset is never overwritten
    (DataError). Episodes without a final observation repeat their last one (Minari needs T + 1).
    """
    from minari import __version__ as minari_version
    from minari.serialization import serialize_space

    validate(data, f"dataset '{dataset_id}'")
    target = dataset_dir(root, dataset_id)
    if target.exists():
        raise DataError(f"a dataset already exists at {target}; pick another id or delete it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    (tmp / "data").mkdir(parents=True)
    try:
        total_steps = _write_episodes(tmp / "data" / MAIN_FILE, data)
        meta = {
            "dataset_id": dataset_id,
            "total_episodes": len(data.episodes),
            "total_steps": total_steps,
            "data_format": "hdf5",
            "jpeg_encoding": False,
            "observation_space": serialize_space(data.observation_space),
            "action_space": serialize_space(data.action_space),
            "minari_version": minari_version,
        }
        if env_spec is not None:
            meta["env_spec"] = env_spec.to_json()
        meta.update({k: v for k, v in (metadata or {}).items() if k not in meta})
        meta["dataset_size"] = round((tmp / "data" / MAIN_FILE).stat().st_size / 1e6, 1)
        with open(tmp / "data" / METADATA, "w") as f:
            json.dump(meta, f, indent=1)
        try:
            os.rename(tmp, target)
        except OSError as exc:
            if exists(root, dataset_id):  # another process finished the same dataset first
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise DataError(f"could not move the new dataset into {target}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_episodes(path: Path, data: OfflineData) -> int:
    total = 0
    with h5py.File(path, "w", track_order=True) as f:
        for i, ep in enumerate(data.episodes):
            g = f.create_group(f"episode_{i}")
            g.attrs["id"] = i
            g.attrs["total_steps"] = len(ep)
            if ep.seed is not None:
                g.attrs["seed"] = int(ep.seed)
            final = ep.final_observation if ep.final_observation is not None else ep.observations[-1]
            obs = np.concatenate([ep.observations, np.asarray(final, ep.observations.dtype)[None]])
            term = np.zeros(len(ep), dtype=bool)
            trunc = np.zeros(len(ep), dtype=bool)
            (term if ep.terminated else trunc)[-1] = True
            g.create_dataset("observations", data=obs, chunks=True, maxshape=(None, *obs.shape[1:]))
            acts = np.asarray(ep.actions, dtype=np.int64 if data.discrete else np.float32)
            g.create_dataset("actions", data=acts, chunks=True, maxshape=(None, *acts.shape[1:]))
            for name, arr in (("rewards", np.asarray(ep.rewards, np.float64)), ("terminations", term), ("truncations", trunc)):
                g.create_dataset(name, data=arr, chunks=True, maxshape=(None,))
            total += len(ep)
    return total


def read_metadata(root: str | Path, dataset_id: str) -> dict[str, Any]:
    """The raw metadata.json of a local dataset."""
    path = _data_path(root, dataset_id) / METADATA
    with open(path) as f:
        return json.load(f)


def _data_path(root: str | Path | None, dataset: str) -> Path:
    direct = Path(dataset).expanduser()
    for candidate in (direct / "data", direct):
        if (candidate / METADATA).is_file():
            return candidate
    base = Path(root).expanduser() if root else default_root()
    data_path = base / dataset / "data"
    if not (data_path / METADATA).is_file():
        have = sorted(str(p.parent.parent.relative_to(base)) for p in base.glob("**/data/metadata.json")) if base.is_dir() else []
        listing = f" Local datasets there: {', '.join(have[:10])}." if have else " There are none."
        raise DataError(
            f"no Minari dataset '{dataset}' under {base} (nothing is downloaded).{listing} "
            "Set data.root (or MINARI_DATASETS_PATH) to the folder holding it, give a dataset folder as "
            "data.dataset, or fetch it once with `minari download <id>`."
        )
    return data_path


def read_minari(dataset: str, root: str | Path | None = None) -> OfflineData:
    """Read a local Minari dataset (by id under `root`, or a dataset folder) into OfflineData, validated.

    `root` defaults to Minari's own (`MINARI_DATASETS_PATH` or `~/.minari/datasets`). Only flat Box
    observations and Box / Discrete actions are supported (Dict observations: flatten them first).
    """
    from minari import MinariDataset

    data_path = _data_path(root, dataset)
    try:
        ds = MinariDataset(data_path)
    except Exception as exc:  # noqa: BLE001 - minari raises ValueError/AssertionError/KeyError for bad files
        raise DataError(f"'{data_path}' is not a readable Minari dataset ({type(exc).__name__}: {exc})") from exc
    obs_space, act_space = ds.observation_space, ds.action_space
    if not hasattr(obs_space, "shape") or obs_space.shape is None or type(obs_space).__name__ != "Box":
        raise DataError(f"{ds.id}: observation space {obs_space} is not a Box; flatten Dict/Tuple observations first")
    if type(act_space).__name__ not in ("Box", "Discrete"):
        raise DataError(f"{ds.id}: action space {act_space} is neither Box nor Discrete")
    with open(data_path / METADATA) as f:
        raw = json.load(f)
    episodes = []
    for ep in ds.iterate_episodes():
        obs = np.asarray(ep.observations, dtype=np.float32)
        n = len(ep.rewards)
        if len(obs) not in (n, n + 1):
            raise DataError(f"{ds.id}, episode {ep.id}: {len(obs)} observations for {n} steps (Minari stores T + 1)")
        actions = np.asarray(ep.actions)
        actions = actions.astype(np.int64) if hasattr(act_space, "n") else actions.astype(np.float32)
        episodes.append(Episode(
            observations=obs[:n],
            actions=actions,
            rewards=np.asarray(ep.rewards, dtype=np.float32),
            terminated=bool(n and np.asarray(ep.terminations)[-1]),
            final_observation=obs[n] if len(obs) > n else None,
        ))
    data = OfflineData(episodes, obs_space, act_space, env_id=env_key_of(raw.get("env_spec")),
                       dataset_id=ds.id, metadata=raw)
    return validate(data, f"Minari dataset '{ds.id}' ({data_path})")


def env_key_of(env_spec_json: str | None) -> str | None:
    """Our environment key for a Minari `env_spec` (LunarLander-v3 with continuous=True -> LunarLanderContinuous-v3)."""
    if not env_spec_json:
        return None
    try:
        spec = json.loads(env_spec_json)
    except (TypeError, ValueError):
        return None
    env_id = spec.get("id")
    if env_id == "LunarLander-v3" and (spec.get("kwargs") or {}).get("continuous"):
        return "LunarLanderContinuous-v3"
    return env_id
