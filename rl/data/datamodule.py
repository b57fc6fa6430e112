"""The LightningDataModule of polyformer.rl: offline episodes from the embedded collector, Minari or D4RL.

`source`:
- `embedded`: collect (once, cached under `data_dir`) the `env` / `flavour` dataset and read it back;
- `minari`: a local Minari dataset `dataset` under `root` (default Minari's own root; no download);
- `d4rl`: a D4RL-style HDF5 file at `path`.

Episodes are split into train / validation by episode (`val_fraction`); `top_fraction < 1` keeps
only the best episodes of the training split (filtered %BC). Training draws `samples_per_epoch`
windows per epoch uniformly over start steps; validation and test use non-overlapping windows of
the held-out episodes and report offline action losses (returns are measured by rollouts).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler

from polyformer.core.errors import ConfigError, DataError
from polyformer.rl.data.envs import env_info
from polyformer.rl.data.episodes import OfflineData, check_spaces
from polyformer.rl.data.windows import ActionCodec, TrajectoryWindows, action_space_spec, top_episodes

log = logging.getLogger("polyformer.rl")

SOURCES = ("embedded", "minari", "d4rl")


class OfflineRLDataModule(L.LightningDataModule):
    """Offline trajectories as K-step context windows, with the statistics a policy needs stored in `data_spec()`."""

    def __init__(
        self,
        source: str = "embedded",
        env: str | None = "Pendulum-v1",
        flavour: str = "replay",
        episodes: int | None = None,
        collect_seed: int = 0,
        num_envs: int = 8,
        dataset: str | None = None,
        root: str | None = None,
        path: str | None = None,
        data_dir: str | None = None,
        context_len: int = 20,
        batch_size: int = 64,
        samples_per_epoch: int = 6400,
        val_fraction: float = 0.1,
        top_fraction: float = 1.0,
        return_scale: float | None = None,
        max_episode_steps: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        if source not in SOURCES:
            raise ConfigError(f"data.source must be one of {SOURCES}, got '{source}'")
        self.source, self.env, self.flavour, self.episodes = source, env, flavour, episodes
        self.collect_seed, self.num_envs = collect_seed, num_envs
        self.dataset, self.root, self.path, self.data_dir = dataset, root, path, data_dir
        self.context_len, self.batch_size = int(context_len), int(batch_size)
        self.samples_per_epoch, self.val_fraction, self.top_fraction = int(samples_per_epoch), float(val_fraction), float(top_fraction)
        self.return_scale, self.max_episode_steps = return_scale, max_episode_steps
        self.num_workers, self.seed = int(num_workers), int(seed)
        self._bound: dict[str, Any] | None = None
        self.data: OfflineData | None = None
        self.spec: dict[str, Any] | None = None

    # ---- loading -------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Collect the embedded dataset once (a no-op when it is already on disk)."""
        if self.source == "embedded":
            self._collect()

    def _collect(self) -> str:
        from polyformer.rl.data.collect import collect

        if not self.env:
            raise ConfigError("data.source=embedded needs env=<id> (e.g. Pendulum-v1, LunarLander-v3)")
        if not self.data_dir:
            raise ConfigError("data.data_dir is not set; it normally comes from paths.data_dir (POLYFORMER_DATA_DIR)")
        return collect(self.env, self.flavour, self.data_dir, episodes=self.episodes, seed=self.collect_seed,
                       num_envs=self.num_envs)

    def load(self) -> OfflineData:
        """Read the configured source into validated OfflineData (checked against the environment's spaces)."""
        from polyformer.rl.data import d4rl, minari_io
        from polyformer.rl.data.collect import data_root

        if self.source == "embedded":
            data = minari_io.read_minari(self._collect(), root=data_root(self.data_dir))
        elif self.source == "minari":
            if not self.dataset:
                raise ConfigError("data.source=minari needs data.dataset=<minari id or dataset folder>")
            data = minari_io.read_minari(self.dataset, root=self.root)
        else:
            if not self.path:
                raise ConfigError("data.source=d4rl needs data.path=<file.hdf5>")
            data = d4rl.read_d4rl(self.path, env=self.env, max_episode_steps=self.max_episode_steps or 1000)
        env_id = self.env or data.env_id
        if not env_id:
            raise ConfigError(f"dataset '{data.dataset_id}' does not name its environment; set env=<gymnasium id>")
        info = env_info(env_id)
        if data.env_id and self.env and env_info(data.env_id).key != info.key:
            raise DataError(f"dataset '{data.dataset_id}' was collected in {data.env_id}, not {self.env}. "
                            f"Set env={data.env_id} or pick a dataset of {self.env}.")
        try:
            env = info.make()
        except Exception as exc:  # noqa: BLE001 - gymnasium raises many kinds (missing mujoco, box2d...)
            raise ConfigError(f"cannot make environment '{info.gym_id}': {type(exc).__name__}: {exc}") from exc
        try:
            check_spaces(data, env, f"dataset '{data.dataset_id}'")
        finally:
            env.close()
        data.env_id = info.key
        return data

    # ---- learned data --------------------------------------------------------------------------
    def bind_spec(self, spec: dict[str, Any]) -> None:
        """Use a checkpoint's statistics (state mean/std, return scale) instead of refitting them."""
        self._bound = dict(spec) if spec else None

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        data = self.load()
        info = env_info(data.env_id)
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(len(data.episodes))
        n_val = int(round(self.val_fraction * len(order))) if len(order) > 1 else 0
        n_val = min(max(n_val, 1 if self.val_fraction > 0 and len(order) > 1 else 0), len(order) - 1)
        val_idx, train_idx = sorted(order[:n_val]), sorted(order[n_val:])
        train = data.subset(train_idx)
        val = data.subset(val_idx) if n_val else data.subset(train_idx)
        train_eps = top_episodes(train.episodes, self.top_fraction)
        self.data, self.train_episodes, self.val_episodes = data, train_eps, val.episodes

        if self._bound:
            spec = self._check_bound(data)
        else:
            mean, std = OfflineData(train_eps, data.observation_space, data.action_space).state_stats()
            refs = data.references() or info.references
            returns = data.returns()
            spec = {
                "env_id": info.key,
                "dataset": data.dataset_id,
                "observation_dim": data.observation_dim,
                "action_space": action_space_spec(data.action_space),
                "state_mean": mean.astype(float).tolist(),
                "state_std": std.astype(float).tolist(),
                "return_scale": float(self.return_scale or info.return_scale),
                "max_episode_steps": int(self.max_episode_steps or info.max_episode_steps),
                "context_len": self.context_len,
                "reference_returns": refs,
                "target_returns": [float(x) for x in info.target_returns] or [float(returns.max())],
                "target_return": float(info.target_return if info.target_return is not None else returns.max()),
                "dataset_returns": {"mean": float(returns.mean()), "max": float(returns.max()),
                                    "min": float(returns.min())},
                "top_fraction": self.top_fraction,
            }
        self.spec = spec
        self.codec = ActionCodec(spec["action_space"])
        log.info("rl data %s: %d train / %d val episodes (%d / %d steps), returns %.1f..%.1f",
                 data.dataset_id, len(train_eps), len(self.val_episodes), sum(len(e) for e in train_eps),
                 sum(len(e) for e in self.val_episodes), spec["dataset_returns"]["min"], spec["dataset_returns"]["max"])

    def _check_bound(self, data: OfflineData) -> dict[str, Any]:
        spec = dict(self._bound)
        if int(spec["observation_dim"]) != data.observation_dim:
            raise DataError(f"the checkpoint's policy takes {spec['observation_dim']}-dim observations; "
                            f"dataset '{data.dataset_id}' has {data.observation_dim}")
        if spec["action_space"] != action_space_spec(data.action_space):
            raise DataError(f"the checkpoint's action space {spec['action_space']} differs from dataset "
                            f"'{data.dataset_id}''s {action_space_spec(data.action_space)}")
        if spec.get("env_id") and env_info(spec["env_id"]).key != data.env_id:
            raise DataError(f"the checkpoint was trained on {spec['env_id']}, the data is from {data.env_id}")
        return spec

    def data_spec(self) -> dict[str, Any]:
        """What the policy needs from the data (plain data, stored in the checkpoint)."""
        if self.spec is None:
            raise DataError("data_spec() is available after setup()")
        return self.spec

    # ---- loaders -------------------------------------------------------------------------------
    def _windows(self, episodes, stride: int = 1) -> TrajectoryWindows:
        s = self.spec
        return TrajectoryWindows(episodes, self.context_len, s["state_mean"], s["state_std"], s["return_scale"],
                                 self.codec, s["max_episode_steps"], stride=stride)

    def train_dataloader(self) -> DataLoader:
        ds = self._windows(self.train_episodes)
        gen = torch.Generator().manual_seed(self.seed)
        sampler = RandomSampler(ds, replacement=True, num_samples=self.samples_per_epoch, generator=gen)
        return DataLoader(ds, batch_size=self.batch_size, sampler=sampler, num_workers=self.num_workers,
                          drop_last=len(ds) >= self.batch_size and self.samples_per_epoch >= self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._windows(self.val_episodes, stride=self.context_len), batch_size=self.batch_size * 4,
                          num_workers=self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()
