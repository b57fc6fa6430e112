"""The verbs every domain shares: train, eval and predict, driven by a composed Hydra config."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from polyformer.core.errors import CheckpointError, ConfigError
from polyformer.core.training.callbacks import AtomicCheckpointIO, CheckpointStamp, RNGState
from polyformer.core.training.checkpoint import (
    assert_plain,
    checkpoint_info,
    find_last_checkpoint,
    import_class,
    load,
)

log = logging.getLogger("polyformer")


def plain(cfg: Any) -> Any:
    """A config node as plain Python data with interpolations resolved."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def output_dir(cfg: DictConfig) -> Path:
    """The run's output directory (Hydra's, or `paths.output_dir` under the compose API)."""
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_datamodule(data_cfg: Any):
    """Instantiate the LightningDataModule described by a data config with a `_target_`."""
    if not data_cfg or "_target_" not in data_cfg:
        raise ConfigError("the data config needs a `_target_` naming a LightningDataModule class")
    return instantiate(data_cfg, _convert_="all")


def build_trainer(cfg: DictConfig, *, extra_callbacks: list | None = None, for_fit: bool = True) -> L.Trainer:
    """A Trainer from `cfg.trainer`, the `cfg.callbacks` and `cfg.logger` groups, plus the harness's own callbacks."""
    callbacks = list(extra_callbacks or [])
    if for_fit:
        callbacks += [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c and "_target_" in c]
    else:
        keep = ("RichProgressBar", "TQDMProgressBar")
        for c in (cfg.get("callbacks") or {}).values():
            if c and "_target_" in c and c["_target_"].rsplit(".", 1)[-1] in keep:
                callbacks.append(instantiate(c))
    if cfg.trainer.get("enable_progress_bar", True) is False:
        callbacks = [c for c in callbacks if not isinstance(c, L.pytorch.callbacks.ProgressBar)]
    loggers = [instantiate(lg) for lg in (cfg.get("logger") or {}).values() if lg and "_target_" in lg]
    if not loggers:  # nothing to log learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, L.pytorch.callbacks.LearningRateMonitor)]
    trainer_cfg = plain(cfg.trainer)
    trainer_cfg.pop("_target_", None)
    if isinstance(trainer_cfg.get("strategy"), dict):
        trainer_cfg["strategy"] = instantiate(trainer_cfg["strategy"])
    plugins = trainer_cfg.pop("plugins", None) or []
    plugins = [instantiate(p) if isinstance(p, dict) else p for p in plugins]
    if not any(isinstance(p, AtomicCheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    if not for_fit:
        trainer_cfg["devices"] = 1
        trainer_cfg["num_nodes"] = 1
        trainer_cfg.pop("strategy", None)
    trainer_cfg.setdefault("default_root_dir", str(output_dir(cfg)))
    return L.Trainer(callbacks=callbacks, logger=loggers or False, plugins=plugins, **trainer_cfg)


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """`ckpt_path`: None, an existing file, or `last` (the newest last.ckpt of runs/<domain>/<name>)."""
    spec = cfg.get("ckpt_path")
    if spec in (None, "", "null"):
        return None
    if str(spec) == "last":
        return str(find_last_checkpoint(Path(cfg.paths.runs_dir) / cfg.domain / str(cfg.name)))
    path = Path(str(spec)).expanduser()
    if not path.is_file():
        raise CheckpointError(f"ckpt_path='{spec}' is not a file. Give a .ckpt path or ckpt_path=last.")
    return str(path)


def write_metrics(cfg: DictConfig, metrics: dict[str, Any], name: str = "metrics.json") -> Path:
    """Write `metrics` as JSON in the run directory, atomically; returns the path."""
    target = output_dir(cfg) / name
    clean = {k: float(v) if hasattr(v, "item") else v for k, v in metrics.items()}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".metrics.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(clean, f, indent=2, sort_keys=True)
    os.replace(tmp, target)
    return target


def _metrics_of(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit `cfg.module` on `cfg.data`, test the best checkpoint, write metrics.json; resumes with ckpt_path."""
    L.seed_everything(cfg.seed, workers=True)
    ckpt_path = resolve_ckpt_path(cfg)
    data_cfg = plain(cfg.data)
    dm = build_datamodule(data_cfg)
    if ckpt_path and hasattr(dm, "bind_spec"):
        dm.bind_spec(_hparams_of(ckpt_path).get("data") or {})
    dm.prepare_data()
    dm.setup("fit")
    model_cfg, optim_cfg = plain(cfg.model), plain(cfg.get("optim"))
    data_spec = dm.data_spec() if hasattr(dm, "data_spec") else {}
    for value, where in ((model_cfg, "model"), (optim_cfg, "optim"), (data_spec, "data_spec()")):
        assert_plain(value, where)
    module_cls = import_class(cfg.module)
    module = module_cls(model=model_cfg, optim=optim_cfg, data=data_spec)
    harness_callbacks = [CheckpointStamp(cfg.domain, _without_paths(data_cfg)), RNGState()]
    trainer = build_trainer(cfg, extra_callbacks=harness_callbacks)
    _log_backends(module)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    metrics = _metrics_of(trainer)
    if not _last_checkpoint(trainer):
        trainer.save_checkpoint(str(output_dir(cfg) / "checkpoints" / "last.ckpt"))
    if cfg.get("test_after_fit", True) and trainer.world_size > 1:
        log.info("distributed run: test skipped (a sharded test repeats samples); run `polyformer eval` on one device")
    elif cfg.get("test_after_fit", True):
        best = _best_checkpoint(trainer)
        trainer.test(module, datamodule=dm, ckpt_path=best, verbose=False)
        metrics.update(_metrics_of(trainer))
        metrics["best_checkpoint"] = best
    metrics["last_checkpoint"] = _last_checkpoint(trainer) or str(output_dir(cfg) / "checkpoints" / "last.ckpt")
    if trainer.is_global_zero:
        write_metrics(cfg, metrics)
    return metrics


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    cb = trainer.checkpoint_callback
    best = getattr(cb, "best_model_path", "") if cb is not None else ""
    return best or None


def _last_checkpoint(trainer: L.Trainer) -> str | None:
    """The checkpoint of the latest epoch: the `filename: last` callback's, or a `save_last` copy."""
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "filename", None) == "last" and cb.best_model_path:
            return cb.best_model_path
        if getattr(cb, "last_model_path", ""):
            return cb.last_model_path
    return None


def _hparams_of(ckpt_path: str) -> dict[str, Any]:
    from polyformer.core.training.checkpoint import read_checkpoint

    return read_checkpoint(ckpt_path).get("hyper_parameters", {})


def _without_paths(data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The data config as stored in a checkpoint: machine-specific cache roots are left to the loading machine."""
    return {k: v for k, v in data_cfg.items() if k != "data_dir"}


def _log_backends(module) -> None:
    from polyformer.core.mixers.base import TokenMixer

    used = sorted({f"{type(m).__name__}={m.backend}" for m in module.modules() if isinstance(m, TokenMixer)})
    if used:
        log.info("mixer backends: %s", ", ".join(used))


def datamodule_for_checkpoint(cfg: DictConfig, ckpt_path: str):
    """The DataModule an eval/predict run uses: the checkpoint's data config, with this command's `data.*` overrides.

    `data=<name>` on the command line switches to that data config entirely.
    """
    info = checkpoint_info(ckpt_path)
    overrides = _task_overrides()
    if any(o.split("=", 1)[0].lstrip("+~") == "data" for o in overrides) or not info.get("data_config"):
        data_cfg = plain(cfg.data)
    else:
        data_cfg = OmegaConf.create(info["data_config"])
        current = plain(cfg.data)
        if "data_dir" in current:
            data_cfg.data_dir = current["data_dir"]
        for o in overrides:
            key, _, value = o.lstrip("+~").partition("=")
            if key.startswith("data."):
                OmegaConf.update(data_cfg, key[len("data."):], OmegaConf.select(cfg, key), force_add=True)
        data_cfg = plain(data_cfg)
    return build_datamodule(data_cfg)


def _task_overrides() -> list[str]:
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def _load_for(cfg: DictConfig):
    ckpt_path = resolve_ckpt_path(cfg)
    if ckpt_path is None:
        raise ConfigError(f"`polyformer {cfg.task} {cfg.domain}` needs ckpt_path=<file.ckpt> (or ckpt_path=last)")
    module = load(ckpt_path, domain=cfg.domain)
    dm = datamodule_for_checkpoint(cfg, ckpt_path)
    if hasattr(dm, "bind_spec"):
        dm.bind_spec(module.hparams.get("data") or {})
    dm.prepare_data()
    return ckpt_path, module, dm


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test a checkpoint on its data (or on `data.*` overrides); writes metrics.json."""
    L.seed_everything(cfg.seed, workers=True)
    ckpt_path, module, dm = _load_for(cfg)
    trainer = build_trainer(cfg, for_fit=False)
    trainer.test(module, datamodule=dm, verbose=False)
    metrics = _metrics_of(trainer)
    metrics["checkpoint"] = ckpt_path
    write_metrics(cfg, metrics)
    return metrics


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Run a checkpoint's predict step over the data and let the module write its outputs to the run directory."""
    L.seed_everything(cfg.seed, workers=True)
    ckpt_path, module, dm = _load_for(cfg)
    trainer = build_trainer(cfg, for_fit=False)
    outputs = trainer.predict(module, datamodule=dm)
    written: list[str] = []
    if hasattr(module, "write_predictions"):
        written = [str(p) for p in module.write_predictions(outputs, dm, output_dir(cfg))]
    for path in written:
        log.info("wrote %s", path)
    return {"checkpoint": ckpt_path, "written": written}


DEFAULT_TASKS = {"train": train, "eval": evaluate, "predict": predict}
