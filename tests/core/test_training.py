"""The harness on a tiny domain: train, exact resume, checkpoints, eval, predict, atomic saves, DDP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TOY = Path(__file__).parent / "toy"
sys.path.insert(0, str(TOY))

from helpers import compose  # noqa: E402

from polyformer.core.errors import CheckpointError  # noqa: E402
from polyformer.core.training import runner  # noqa: E402
from polyformer.core.training.callbacks import AtomicCheckpointIO  # noqa: E402
from polyformer.core.training.checkpoint import load  # noqa: E402

FAST = ["trainer.max_epochs=2", "data.n=128", "logger=none"]


def _train(tmp_path, overrides):
    cfg = compose(TOY / "conf", [*FAST, *overrides], tmp_path)
    return cfg, runner.train(cfg)


def test_train_writes_metrics_and_learns(tmp_path):
    cfg, metrics = _train(tmp_path, ["model.hidden=0", "optim=sgd", "optim.lr=0.1", "optim.momentum=0.0", "trainer.gradient_clip_val=null", "optim.scheduler=null", "trainer.max_epochs=10", "data.noise=0.01"])
    saved = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert saved["test/mse"] == pytest.approx(metrics["test/mse"])
    # The target's variance is ~30: a linear model that learned must be far below it.
    assert metrics["test/mse"] < 1.0
    assert Path(metrics["last_checkpoint"]).is_file()


def test_checkpoint_is_plain_and_loads_to_its_class(tmp_path):
    _, metrics = _train(tmp_path, [])
    ckpt = torch.load(metrics["last_checkpoint"], weights_only=True)
    assert ckpt["polyformer"]["domain"] == "toy"
    assert ckpt["polyformer"]["class"] == "toy.ToyModule"
    assert ckpt["hyper_parameters"]["data"]["in_dim"] == 4
    module = load(metrics["last_checkpoint"])
    assert type(module).__name__ == "ToyModule" and not module.training
    with pytest.raises(CheckpointError, match="is a toy checkpoint, not rl"):
        load(metrics["last_checkpoint"], domain="rl")


def test_missing_and_corrupt_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load(tmp_path / "nope.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load(bad)


def test_resume_from_last_is_exact(tmp_path):
    # A constant learning rate, so a 2-epoch run is exactly the first half of the 4-epoch one.
    const = ["optim.scheduler=null"]
    _, full = _train(tmp_path / "full", [*const, "trainer.max_epochs=4"])
    _train(tmp_path / "split", [*const, "trainer.max_epochs=2"])
    cfg = compose(TOY / "conf", [*FAST, *const, "trainer.max_epochs=4", "ckpt_path=last"], tmp_path / "split")
    with __import__("omegaconf").open_dict(cfg):
        cfg.paths.output_dir = str(Path(cfg.paths.output_dir).with_name("run2"))
    resumed = runner.train(cfg)
    a = torch.load(full["last_checkpoint"], weights_only=True)
    b = torch.load(resumed["last_checkpoint"], weights_only=True)
    assert a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=0)


def test_eval_and_predict_from_checkpoint(tmp_path):
    _, metrics = _train(tmp_path, [])
    ckpt = metrics["last_checkpoint"]
    cfg = compose(TOY / "conf", ["task=eval", f"ckpt_path={ckpt}"], tmp_path / "eval")
    result = runner.evaluate(cfg)
    assert "test/mse" in result and (Path(cfg.paths.output_dir) / "metrics.json").is_file()
    cfg = compose(TOY / "conf", ["task=predict", f"ckpt_path={ckpt}"], tmp_path / "predict")
    out = runner.predict(cfg)
    preds = torch.load(out["written"][0])
    assert preds.shape == (32,)


def test_eval_rejects_incompatible_data(tmp_path):
    from polyformer.core.errors import DataError

    _, metrics = _train(tmp_path, [])
    cfg = compose(TOY / "conf", ["task=eval", f"ckpt_path={metrics['last_checkpoint']}", "data.in_dim=5"], tmp_path / "e")
    with pytest.raises(DataError, match="in_dim=4"):
        runner.evaluate(cfg)


def test_eval_without_checkpoint_says_what_to_pass(tmp_path):
    from polyformer.core.errors import ConfigError

    cfg = compose(TOY / "conf", ["task=eval"], tmp_path)
    with pytest.raises(ConfigError, match="needs ckpt_path"):
        runner.evaluate(cfg)
    cfg = compose(TOY / "conf", ["ckpt_path=last", "name=never_trained"], tmp_path)
    with pytest.raises(CheckpointError, match="found no last.ckpt"):
        runner.train(cfg)


def test_atomic_save_keeps_the_old_checkpoint_on_failure(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "ckpt" / "last.ckpt"
    io.save_checkpoint({"a": torch.ones(2)}, target)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        io.save_checkpoint({"a": torch.zeros(2)}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def test_ddp_two_processes_on_cpu(tmp_path):
    cmd = [
        sys.executable, str(TOY / "run.py"), "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.max_epochs=1", "data.n=64", "logger=none", f"hydra.run.dir={tmp_path / 'run'}",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    module = load(last)
    assert module.hparams.data["in_dim"] == 4
    assert torch.load(last, weights_only=True)["global_step"] == 1  # 32 train samples over 2 ranks = 16 each = one batch of 16


def test_last_checkpoint_is_the_latest_epoch_even_when_it_is_not_the_best(tmp_path):
    # monitor_mode=max on a falling loss makes epoch 1 the "best"; last.ckpt must still be epoch 3.
    _, metrics = _train(tmp_path, ["trainer.max_epochs=3", "monitor_mode=max"])
    last = torch.load(metrics["last_checkpoint"], weights_only=True)
    best = torch.load(metrics["best_checkpoint"], weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 12
    assert best["global_step"] < last["global_step"]


def test_multirun_sweeps_over_overrides(tmp_path):
    cmd = [
        sys.executable, str(TOY / "run.py"), "-m", "model.hidden=0,4", "trainer.max_epochs=1", "data.n=64",
        "logger=none", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(runs) == 2
    hidden = [load(json.loads(p.read_text())["last_checkpoint"]).hparams.model["hidden"] for p in runs]
    assert hidden == [0, 4]
