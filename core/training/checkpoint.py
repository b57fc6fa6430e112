"""Self-describing checkpoints: restore any polyformer checkpoint to its own class, find `last`, check plain hparams."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from polyformer.core.errors import CheckpointError, ConfigError
from polyformer.core.training.callbacks import CHECKPOINT_KEY

PLAIN_TYPES = (str, int, float, bool, type(None))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded with `weights_only=True` (no code runs); clear errors for missing/corrupt files."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at '{path}'. Pass ckpt_path=<file.ckpt> (runs/<domain>/.../checkpoints/).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CheckpointError(f"'{path}' is not a readable polyformer checkpoint ({type(exc).__name__}: {exc})") from exc


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """What the harness stamped into the checkpoint: domain, class, data_config, versions."""
    ckpt = read_checkpoint(path)
    info = ckpt.get(CHECKPOINT_KEY)
    if not info:
        raise CheckpointError(
            f"'{path}' has no polyformer stamp: it was not written by a polyformer run. "
            "Load it with YourModule.load_from_checkpoint(path) instead."
        )
    return info


def import_class(path: str):
    """The class named by a dotted path such as 'polyformer.timeseries.module.ForecastModule'."""
    module_name, _, attr = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"cannot import '{path}': {exc}") from exc


def load(path: str | Path, *, domain: str | None = None, map_location: str | torch.device = "cpu", strict: bool = True):
    """Restore a polyformer checkpoint to its own LightningModule class, in eval mode.

    `domain` (optional) is checked against the checkpoint's, so a timeseries checkpoint given to
    `polyformer eval rl` fails with a clear message instead of a shape error.
    """
    info = checkpoint_info(path)
    if domain is not None and info.get("domain") != domain:
        raise CheckpointError(
            f"'{path}' is a {info.get('domain')} checkpoint, not {domain}. "
            f"Use `polyformer eval {info.get('domain')} ckpt_path=...` or pick a {domain} checkpoint."
        )
    cls = import_class(info["class"])
    module = cls.load_from_checkpoint(str(path), map_location=map_location, strict=strict, weights_only=True)
    module.eval()
    return module


def find_last_checkpoint(search_root: str | Path) -> Path:
    """The newest `last.ckpt` under `search_root` (what `ckpt_path=last` means)."""
    root = Path(search_root)
    found = sorted(root.rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime) if root.exists() else []
    if not found:
        raise CheckpointError(
            f"ckpt_path=last found no last.ckpt under '{root}'. Train first, or pass the run's name=... "
            "or an explicit ckpt_path=<file.ckpt>."
        )
    return found[-1]


def assert_plain(value: Any, where: str = "hparams") -> None:
    """Raise unless `value` is plain data (str/int/float/bool/None, lists and str-keyed dicts of them)."""
    if isinstance(value, PLAIN_TYPES):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            assert_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where} has a non-string key {key!r}; checkpoints keep plain data only")
            assert_plain(item, f"{where}.{key}")
        return
    raise ConfigError(
        f"{where} is a {type(value).__name__}; checkpoint hyperparameters must be plain data "
        "(str/int/float/bool/list/dict) so torch.load(weights_only=True) works"
    )
