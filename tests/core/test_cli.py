"""The `polyformer` command: listing, doctor, one-line errors, and composing every shared config group."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import compose, run_cli

from polyformer.core.cli import check_group_choices, main
from polyformer.core.conf import CONF_DIR

TOY = Path(__file__).parent / "toy"


def test_help_lists_the_verbs(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in ("train", "eval", "predict", "list", "doctor", "demo"):
        assert verb in out


def test_demo_help_runs_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--help"]) == 0
    assert "usage: polyformer demo" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()  # no summary written over a previous demo's


def test_list_shows_domains_and_mixers(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mixers:" in out and "attention" in out
    assert "vision" in out


def test_doctor_reports_versions_and_backends(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "mamba2" in out and "cuda" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "nosuch"], "unknown domain 'nosuch'"),
        (["train", "timeseriez"], "did you mean 'timeseries'"),
        (["train"], "needs a domain"),
        (["train", "model=x"], "needs a domain"),
        (["demo", "timeseriez"], "did you mean 'timeseries'"),
        (["demo", "--nosuch"], "no demo for '--nosuch'"),
    ],
)
def test_cli_errors_are_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_unknown_group_option_names_the_options():
    msg = check_group_choices(TOY / "conf", ["model=lineer"])
    assert "unknown model 'lineer'" in msg and "did you mean 'linear'" in msg
    msg = check_group_choices(TOY / "conf", ["trainer=gpx"])
    assert "unknown trainer 'gpx'" in msg and "ddp" in msg
    assert check_group_choices(TOY / "conf", ["trainer=ddp", "trainer.devices=2", "model.hidden=3"]) is None


def test_unknown_override_key_fails_before_training(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(TOY / "run.py"), "no_such_key=1", f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "Could not override 'no_such_key'" in proc.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_cli_subprocess_reports_unknown_domain(tmp_path):
    proc = run_cli(["eval", "nosuch", "ckpt_path=x"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "unknown domain 'nosuch'" in proc.stderr


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "override",
    [f"{g}={o}" for g in ("trainer", "callbacks", "logger", "optim", "mixer", "debug") for o in _options(g)],
)
def test_every_shared_config_composes(override, tmp_path):
    cfg = compose(TOY / "conf", [override], tmp_path)
    group, option = override.split("=")
    assert cfg.domain == "toy"
    if group == "trainer":
        assert "max_epochs" in cfg.trainer
    if group == "mixer":
        assert cfg.mixer.name == option
