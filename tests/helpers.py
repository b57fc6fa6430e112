"""Test helpers: compose a domain's Hydra config in-process (lightning-hydra-template style) and run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[1]


def compose(conf_dir: str | Path, overrides: Sequence[str] = (), tmp_path: Path | None = None) -> DictConfig:
    """The domain's train.yaml composed with `overrides`, outputs under `tmp_path`, Hydra's runtime set."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = hydra_compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    if tmp_path is not None:
        out = tmp_path / "runs" / str(cfg.domain) / str(cfg.name) / "run"
        with open_dict(cfg):
            cfg.paths.root_dir = str(tmp_path)
            cfg.paths.runs_dir = str(tmp_path / "runs")
            cfg.paths.output_dir = str(out)
            cfg.hydra.runtime.output_dir = str(out)
            cfg.hydra.runtime.cwd = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    return cfg


def domain_conf(domain: str) -> Path:
    """The conf/ folder of a domain package."""
    return REPO / domain / "conf"


def run_cli(args: Sequence[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `polyformer <args>` in a subprocess (the real console-script path) and capture its output."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONWARNINGS", "ignore")
    cmd = [sys.executable, "-m", "polyformer.core.cli", *args]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def run_notebook(path: Path, workdir: Path, timeout: int = 600):
    """Execute a notebook in smoke mode (POLYFORMER_SMOKE=1, Agg plots) unchanged; returns the executed notebook.

    The notebook must be stored with its outputs cleared.
    """
    import nbformat
    from nbclient import NotebookClient

    os.environ["POLYFORMER_SMOKE"] = "1"
    os.environ["MPLBACKEND"] = "Agg"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"clear the outputs of {path}"
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def cell_output(nb, marker: str) -> str:
    """The text output of the first code cell whose source contains `marker`."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and marker in c.source)
    return str(cell.outputs)
