"""Bad input fails early with a message saying what is wrong: spaces, empty episodes, NaNs, unknown names."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from rl_helpers import toy_data

from polyformer.core.errors import ConfigError, DataError
from polyformer.rl.data import minari_io
from polyformer.rl.data.collect import collect, recipe
from polyformer.rl.data.d4rl import read_d4rl, write_d4rl
from polyformer.rl.data.datamodule import OfflineRLDataModule
from polyformer.rl.data.envs import embedded_env, env_info
from polyformer.rl.data.episodes import Episode, validate


def test_unknown_environment():
    with pytest.raises(ConfigError, match="unknown environment 'LunarLandr-v3'.*Did you mean"):
        env_info("LunarLandr-v3")
    with pytest.raises(ConfigError, match="no embedded behaviour policies"):
        embedded_env("hopper")
    with pytest.raises(ConfigError, match="unknown flavour"):
        recipe("Pendulum-v1", "median")
    assert env_info("CartPole-v1").gym_id == "CartPole-v1"  # any registered id is accepted
    assert env_info("D4RL/hopper/medium-v2").key == "hopper"


def test_spaces_that_do_not_match_the_environment(tmp_path):
    path = write_d4rl(tmp_path / "pendulum.hdf5", toy_data())
    with pytest.raises(DataError, match=r"does not fit LunarLander-v3: observations \(3,\) vs \(8,\)"):
        read_d4rl(path, env="LunarLanderContinuous-v3")
    minari_io.write_minari(tmp_path / "m", "test/pend-v0", toy_data())
    dm = OfflineRLDataModule(source="minari", dataset="test/pend-v0", root=str(tmp_path / "m"), env="LunarLander-v3")
    with pytest.raises(DataError, match="does not fit"):
        dm.setup("fit")


def test_empty_episode_in_a_minari_file(tmp_path):
    minari_io.write_minari(tmp_path, "test/empty-v0", toy_data(episodes=2))
    data_dir = minari_io.dataset_dir(tmp_path, "test/empty-v0") / "data"
    with h5py.File(data_dir / "main_data.hdf5", "a") as f:
        g = f.create_group("episode_2")
        g["observations"] = np.zeros((1, 3), np.float32)
        g["actions"] = np.zeros((0, 1), np.float32)
        for key in ("rewards", "terminations", "truncations"):
            g[key] = np.zeros(0)
    meta = json.loads((data_dir / "metadata.json").read_text())
    meta["total_episodes"] = 3
    (data_dir / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="episode 2 is empty"):
        minari_io.read_minari("test/empty-v0", root=tmp_path)


def test_nan_observations(tmp_path):
    data = toy_data()
    data.episodes[1].observations[2, 0] = np.nan
    with pytest.raises(DataError, match="episode 1: observations contain NaN or inf \\(first at step 2\\)"):
        validate(data, "toy")
    path = tmp_path / "nan.hdf5"
    write_d4rl(path, toy_data())
    with h5py.File(path, "a") as f:
        obs = f["observations"][()]
        obs[4, 1] = np.inf
        f["observations"][...] = obs
    with pytest.raises(DataError, match="NaN or inf"):
        read_d4rl(path, env="Pendulum-v1")


def test_malformed_d4rl_files(tmp_path):
    with pytest.raises(DataError, match="no D4RL file"):
        read_d4rl(tmp_path / "missing.hdf5")
    path = tmp_path / "partial.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((3, 3), np.float32)
    with pytest.raises(DataError, match=r"lacks the D4RL array\(s\) \['actions', 'rewards', 'terminals'\]"):
        read_d4rl(path)
    with h5py.File(path, "a") as f:
        f["actions"] = np.zeros((2, 1), np.float32)
        f["rewards"] = np.zeros(3)
        f["terminals"] = np.zeros(3)
    with pytest.raises(DataError, match="differ in length"):
        read_d4rl(path)
    (tmp_path / "text.hdf5").write_text("not hdf5")
    with pytest.raises(DataError, match="not an HDF5 file"):
        read_d4rl(tmp_path / "text.hdf5")


def test_missing_minari_dataset_is_not_downloaded(tmp_path):
    with pytest.raises(DataError, match="no Minari dataset 'mujoco/hopper/medium-v0'.*nothing is downloaded"):
        minari_io.read_minari("mujoco/hopper/medium-v0", root=tmp_path)


def test_no_episodes_and_bad_discrete_actions():
    data = toy_data()
    data.episodes = []
    with pytest.raises(DataError, match="holds no episodes"):
        validate(data, "toy")
    from gymnasium import spaces

    bad = toy_data(episodes=1)
    bad.action_space = spaces.Discrete(4)
    bad.episodes[0] = Episode(bad.episodes[0].observations, np.array([0, 1, 5, 2, 0, 1, 3]), bad.episodes[0].rewards)
    with pytest.raises(DataError, match=r"discrete actions must be integers in \[0, 4\)"):
        validate(bad, "toy")


def test_checkpoint_spec_must_fit_the_data(tmp_path):
    collect("Pendulum-v1", "random", tmp_path, episodes=2, num_envs=2)
    dm = OfflineRLDataModule(env="Pendulum-v1", flavour="random", episodes=2, num_envs=2, data_dir=str(tmp_path))
    dm.setup("fit")
    spec = dict(dm.data_spec(), observation_dim=8)
    other = OfflineRLDataModule(env="Pendulum-v1", flavour="random", episodes=2, num_envs=2, data_dir=str(tmp_path))
    other.bind_spec(spec)
    with pytest.raises(DataError, match="takes 8-dim observations"):
        other.setup("test")


def test_bad_data_options():
    with pytest.raises(ConfigError, match="data.source must be one of"):
        OfflineRLDataModule(source="hub")
    with pytest.raises(ConfigError, match="needs data.dataset"):
        OfflineRLDataModule(source="minari").setup("fit")
    with pytest.raises(ConfigError, match="top_fraction must be in"):
        from polyformer.rl.data.windows import top_episodes

        top_episodes(toy_data().episodes, 0.0)
