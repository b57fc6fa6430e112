"""Through the harness: train (+ rollouts), resume, checkpoint round trip, load/act/rollout, eval and collect verbs, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import compose, domain_conf, run_cli
from rl_helpers import TINY_BC, TINY_DT

from polyformer.core.errors import ConfigError
from polyformer.core.training.checkpoint import load
from polyformer.rl import DecisionTransformer, DecisionTransformerModule
from polyformer.rl.tasks import collect, rollout_eval, train

CONF = domain_conf("rl")


def test_train_logs_losses_and_rollout_scores(trained):
    cfg, metrics, ckpt = trained
    for key in ("train/loss", "val/action_loss", "test/action_loss", "test/return_mean", "test/normalized_score"):
        assert np.isfinite(metrics[key]), key
    on_disk = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert on_disk["test/normalized_score"] == pytest.approx(metrics["test/normalized_score"])
    rollouts = json.loads((Path(cfg.paths.output_dir) / "rollouts.json").read_text())
    assert rollouts["target_return"] == -150.0 and len(rollouts["targets"][0]["returns"]) == 2


def test_checkpoint_is_plain_and_self_describing(trained):
    _, _, ckpt = trained
    raw = torch.load(ckpt, weights_only=True)
    assert raw["polyformer"]["domain"] == "rl"
    data = raw["hyper_parameters"]["data"]
    assert data["env_id"] == "Pendulum-v1" and data["return_scale"] == 100.0
    assert len(data["state_mean"]) == 3 and data["action_space"]["type"] == "box"


def test_load_from_checkpoint_acts_and_rolls_out(trained):
    _, _, ckpt = trained
    policy = DecisionTransformer.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    assert isinstance(policy, DecisionTransformerModule)
    assert policy.env_id == "Pendulum-v1" and policy.return_scale == 100.0
    assert policy.state_std.shape == (3,) and policy.action_space.shape == (1,)
    obs = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.5]], np.float32)
    action = policy.act(obs, returns_to_go=[-150.0, -149.0], actions=[[0.5]])
    assert action.shape == (1,) and policy.action_space.contains(action)
    result = policy.rollout(target_return=-150.0, episodes=2, max_steps=10)
    assert len(result["returns"]) == 2 and result["lengths"] == [10, 10]
    same = load(ckpt, domain="rl")
    assert type(same) is DecisionTransformerModule and not same.training


def test_eval_verb_rolls_out_at_given_targets(trained, tmp_path):
    _, _, ckpt = trained
    cfg = compose(CONF, [*TINY_DT, f"ckpt_path={ckpt}", "task=eval", "target_return=[-800,-150]", "rollout.episodes=2",
                         "rollout.mode=window"], tmp_path)
    metrics = rollout_eval(cfg)
    assert set(metrics) >= {"test/normalized_score", "test/normalized_score@-800", "test/return_mean@-150"}
    out = Path(cfg.paths.output_dir)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["checkpoint"] == str(ckpt)
    rollouts = json.loads((out / "rollouts.json").read_text())
    assert [t["target_return"] for t in rollouts["targets"]] == [-800.0, -150.0] and rollouts["mode"] == "window"


def test_resume_from_last(trained):
    cfg, metrics, _ = trained
    steps = torch.load(metrics["last_checkpoint"], weights_only=True)["global_step"]
    resumed_cfg = compose(CONF, [*TINY_DT, "name=shared", "trainer.max_epochs=3", "ckpt_path=last", "rollout.after_fit=false"],
                          Path(cfg.paths.root_dir))
    resumed = train(resumed_cfg)
    assert torch.load(resumed["last_checkpoint"], weights_only=True)["global_step"] == steps * 3 // 2


def test_bc_and_filtered_bc_train(tmp_path):
    cfg = compose(CONF, [*TINY_BC, "rollout.episodes=1"], tmp_path / "bc")
    metrics = train(cfg)
    assert np.isfinite(metrics["test/normalized_score"])
    pbc = compose(CONF, [*TINY_BC, "model=pbc", "model.hidden_dim=16", "rollout.after_fit=false"], tmp_path / "pbc")
    assert pbc.data.top_fraction == 0.1
    raw = torch.load(train(pbc)["last_checkpoint"], weights_only=True)
    assert raw["hyper_parameters"]["data"]["top_fraction"] == 0.1


def test_collect_verb(tmp_path):
    cfg = compose(CONF, ["task=collect", "env=LunarLander-v3", "flavour=[random,expert]", "data.episodes=2"], tmp_path)
    out = collect(cfg)
    assert set(out["datasets"]) == {"random", "expert"}
    assert out["datasets"]["expert"]["total_episodes"] == 2
    assert (Path(cfg.paths.output_dir) / "collect.json").is_file()


def test_collect_verb_unknown_environment(tmp_path):
    cfg = compose(CONF, ["task=collect", "env=LunarLandr-v3"], tmp_path)
    with pytest.raises(ConfigError, match="unknown environment 'LunarLandr-v3'"):
        collect(cfg)


def test_cli_train_fast_dev_run(tmp_path):
    env = {"POLYFORMER_DATA_DIR": str(tmp_path / "data")}
    proc = run_cli(["train", "rl", *TINY_DT, "+trainer.fast_dev_run=true", f"paths.root_dir={tmp_path}"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads(next(tmp_path.glob("runs/rl/train/*/metrics.json")).read_text())
    assert np.isfinite(metrics["test/action_loss"])


def test_d4rl_experiment_trains_on_a_d4rl_file(tmp_path):
    """A user's D4RL file trains unchanged with the paper's experiment config (shrunk here) and scores with D4RL refs."""
    from gymnasium import spaces

    from polyformer.rl.data.d4rl import write_d4rl
    from polyformer.rl.data.episodes import Episode, OfflineData

    rng = np.random.default_rng(0)
    eps = [Episode(rng.normal(size=(12, 11)).astype(np.float32), rng.uniform(-1, 1, (12, 3)).astype(np.float32),
                   rng.uniform(0, 3, 12).astype(np.float32), terminated=True) for _ in range(4)]
    data = OfflineData(eps, spaces.Box(-np.inf, np.inf, (11,)), spaces.Box(-1, 1, (3,)))
    path = write_d4rl(tmp_path / "hopper_medium-v2.hdf5", data)
    cfg = compose(CONF, ["experiment=d4rl_hopper_medium", f"data.path={path}", "model.embed_dim=16", "model.depth=1",
                         "data.context_len=4", "data.samples_per_epoch=16", "data.batch_size=8", "trainer.max_epochs=1",
                         "optim.scheduler.warmup_steps=1", "rollout.episodes=1", "rollout.seeds=[0]", "rollout.max_steps=5",
                         "logger=none"], tmp_path)
    assert cfg.model.embed_dim == 16 and cfg.optim.lr == 1e-4 and list(cfg.target_return) == [3600, 1800]
    metrics = train(cfg)
    raw = torch.load(metrics["last_checkpoint"], weights_only=True)["hyper_parameters"]["data"]
    assert raw["env_id"] == "hopper" and raw["return_scale"] == 1000.0
    assert raw["reference_returns"] == {"random": -20.272305, "expert": 3234.3}
    assert "test/normalized_score@3600" in metrics and "test/normalized_score@1800" in metrics


def test_mixer_is_a_config_choice(tmp_path):
    """`mixer=mamba` gives a Decision-Mamba-style agent that acts through the SSM's O(1) recurrent state."""
    cfg = compose(CONF, [*TINY_DT, "mixer=mamba", "rollout.episodes=1", "rollout.max_steps=8"], tmp_path)
    metrics = train(cfg)
    policy = DecisionTransformer.load_from_checkpoint(metrics["last_checkpoint"], weights_only=True)
    assert policy.hparams.model["mixer"]["name"] == "mamba"
    assert type(policy.net.stack.layers[0].mixer).__name__.lower().startswith("mamba")
    assert np.isfinite(metrics["test/normalized_score"])


def test_rollout_in_the_wrong_environment_fails_clearly(trained):
    from polyformer.core.errors import DataError

    policy = load(trained[2], domain="rl")
    with pytest.raises(DataError, match="takes 3-dim observations, LunarLander-v3 gives 8"):
        policy.rollout("LunarLander-v3", episodes=1, max_steps=2)
    with pytest.raises(ConfigError, match="not a verb of rl"):
        from polyformer.rl.tasks import predict

        predict(None)
