"""Data: collection into Minari's layout (read back by our reader and by minari itself), D4RL files, windows."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
import torch
from rl_helpers import pendulum_spaces, toy_data

from polyformer.rl.data import minari_io
from polyformer.rl.data.collect import collect, data_root, dataset_id, recipe, run_episodes
from polyformer.rl.data.d4rl import read_d4rl, write_d4rl
from polyformer.rl.data.datamodule import OfflineRLDataModule
from polyformer.rl.data.envs import env_info
from polyformer.rl.data.policies import make_policy
from polyformer.rl.data.windows import ActionCodec, TrajectoryWindows, action_space_spec, top_episodes


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Three short Pendulum replay episodes and two LunarLander random ones, collected once."""
    root = tmp_path_factory.mktemp("rl_collect")
    pend = collect("Pendulum-v1", "replay", root, episodes=3, num_envs=2)
    lunar = collect("LunarLander-v3", "random", root, episodes=2, num_envs=2)
    return root, pend, lunar


def test_collect_writes_minari_layout_that_minari_reads(collected, monkeypatch):
    import minari

    root, pend, _ = collected
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(data_root(root)))
    ds = minari.load_dataset(pend)
    assert ds.total_episodes == 3 and ds.total_steps == 600
    ep = next(iter(ds.iterate_episodes()))
    assert ep.observations.shape == (201, 3) and ep.actions.shape == (200, 1)
    assert ep.truncations[-1] and not ep.terminations.any()
    # Reference returns are stored the way minari expects for its own normalised score.
    score = minari.get_normalized_score(ds, np.array([env_info("Pendulum-v1").expert_return]))
    assert score[0] == pytest.approx(1.0)
    assert ds.recover_environment().spec.id == "Pendulum-v1"


def test_our_reader_matches_minari(collected):
    import minari

    root, pend, lunar = collected
    data = minari_io.read_minari(pend, root=data_root(root))
    assert data.env_id == "Pendulum-v1" and len(data.episodes) == 3
    theirs = minari.MinariDataset(minari_io.dataset_dir(data_root(root), pend) / "data")
    for ours, ep in zip(data.episodes, theirs.iterate_episodes()):
        np.testing.assert_array_equal(ours.observations, ep.observations[:-1])
        np.testing.assert_array_equal(ours.final_observation, ep.observations[-1])
        np.testing.assert_allclose(ours.rewards, ep.rewards, rtol=1e-6)
    discrete = minari_io.read_minari(lunar, root=data_root(root))
    assert discrete.discrete and discrete.action_dim == 4 and discrete.episodes[0].actions.dtype == np.int64
    # A dataset folder works as well as an id under a root.
    assert len(minari_io.read_minari(str(minari_io.dataset_dir(data_root(root), lunar))).episodes) == 2


def test_collection_is_cached_and_recipe_changes_make_new_entries(collected):
    root, pend, _ = collected
    path = minari_io.dataset_dir(data_root(root), pend) / "data" / "main_data.hdf5"
    before = path.stat().st_mtime_ns
    assert collect("Pendulum-v1", "replay", root, episodes=3, num_envs=2) == pend
    assert path.stat().st_mtime_ns == before
    other = dataset_id(recipe("Pendulum-v1", "replay", episodes=4, num_envs=2))
    assert other != pend and other.startswith("polyformer/pendulum/replay-")
    meta = minari_io.read_metadata(data_root(root), pend)
    assert meta["polyformer_recipe"]["episodes"] == 3 and meta["polyformer_recipe"]["flavour"] == "replay"


def test_collection_is_reproducible():
    info = env_info("Pendulum-v1")
    space = info.make().action_space
    a = run_episodes(info, make_policy("noisy0.5", info.expert, space), 2, seed=3, num_envs=2)
    b = run_episodes(info, make_policy("noisy0.5", info.expert, space), 2, seed=3, num_envs=2)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.actions, y.actions)


def test_experts_beat_random():
    for env in ("Pendulum-v1", "LunarLanderContinuous-v3"):
        info = env_info(env)
        space = info.make().action_space
        expert = np.mean([e.total_return for e in run_episodes(info, make_policy("expert", info.expert, space), 2)])
        rand = np.mean([e.total_return for e in run_episodes(info, make_policy("random", info.expert, space), 2)])
        assert expert > rand + 0.5 * (info.expert_return - info.random_return), env


def test_d4rl_reader_splits_episodes(tmp_path):
    data = toy_data(episodes=3, steps=5)
    path = write_d4rl(tmp_path / "tiny.hdf5", data)
    back = read_d4rl(path, env="Pendulum-v1")
    assert [len(e) for e in back.episodes] == [5, 5, 5]
    assert [e.terminated for e in back.episodes] == [False, True, False]
    np.testing.assert_allclose(back.episodes[1].observations, data.episodes[1].observations)
    assert back.references() == env_info("Pendulum-v1").references
    # Old files without `timeouts`: split at terminals and at the episode limit.
    with h5py.File(path, "a") as f:
        del f["timeouts"]
    assert [len(e) for e in read_d4rl(path, max_episode_steps=4).episodes] == [4, 4, 2, 4, 1]


def test_d4rl_file_trains_through_the_datamodule(tmp_path):
    path = write_d4rl(tmp_path / "tiny.hdf5", toy_data(episodes=4, steps=9))
    dm = OfflineRLDataModule(source="d4rl", path=str(path), env="Pendulum-v1", context_len=4, batch_size=2,
                             samples_per_epoch=4)
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["states"].shape == (2, 4, 3) and batch["actions"].shape == (2, 4, 1)
    spec = dm.data_spec()
    assert spec["env_id"] == "Pendulum-v1" and spec["reference_returns"]["expert"] == env_info("pendulum").expert_return


def test_windows_pad_right_and_normalise():
    data = toy_data(episodes=2, steps=5)
    codec = ActionCodec(action_space_spec(data.action_space))
    ds = TrajectoryWindows(data.episodes, 4, np.zeros(3), np.ones(3), 10.0, codec, max_timestep=3)
    assert len(ds) == 10
    item = ds[3]  # episode 0, steps 3..4, then padding
    assert item["mask"].tolist() == [True, True, False, False]
    np.testing.assert_allclose(item["states"][:2], data.episodes[0].observations[3:5])
    assert item["returns_to_go"][0, 0] == pytest.approx(data.episodes[0].rewards[3:].sum() / 10.0, rel=1e-5)
    assert item["timesteps"].tolist() == [2, 2, 0, 0]  # clipped at max_timestep - 1
    assert torch.all(item["actions"][:2].abs() <= 1.0)
    np.testing.assert_allclose(codec.decode(item["actions"][:2].numpy()), data.episodes[0].actions[3:5], rtol=1e-5)
    assert len(TrajectoryWindows(data.episodes, 4, np.zeros(3), np.ones(3), 1.0, codec, 10, stride=4)) == 4


def test_top_episodes_keeps_the_best():
    data = toy_data(episodes=10)
    best = top_episodes(data.episodes, 0.2)
    assert len(best) == 2
    assert min(e.total_return for e in best) == pytest.approx(sorted(data.returns())[-2])


def test_writer_never_overwrites(tmp_path):
    from polyformer.core.errors import DataError

    minari_io.write_minari(tmp_path, "test/toy-v0", toy_data())
    with pytest.raises(DataError, match="already exists"):
        minari_io.write_minari(tmp_path, "test/toy-v0", toy_data(seed=1))
    assert not [p for p in os.listdir(tmp_path / "test") if p.startswith(".")]


def test_discrete_codec_round_trip():
    codec = ActionCodec({"type": "discrete", "n": 4, "start": 0})
    assert codec.dim == 4 and codec.decode(codec.encode(np.array([0, 3]))).tolist() == [0, 3]
    box = ActionCodec(action_space_spec(pendulum_spaces()[1]))
    assert box.encode(np.array([[2.0], [-2.0]])).ravel().tolist() == [1.0, -1.0]
