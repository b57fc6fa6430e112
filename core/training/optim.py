"""Optimizers and learning-rate schedules built from plain config: a name plus keyword arguments."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from polyformer.core.registry import Registry

OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")

OPTIMIZERS.register("adamw")(torch.optim.AdamW)
OPTIMIZERS.register("adam")(torch.optim.Adam)
OPTIMIZERS.register("sgd")(torch.optim.SGD)
OPTIMIZERS.register("rmsprop")(torch.optim.RMSprop)

_NO_DECAY_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.Embedding)


def param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split parameters into decayed (weights of linear/conv layers) and not decayed (biases, norms, embeddings, 1-D)."""
    decay, no_decay, seen = [], [], set()
    for mod in module.modules():
        for name, p in mod.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            skip = p.ndim < 2 or name.endswith("bias") or isinstance(mod, _NO_DECAY_TYPES)
            skip = skip or getattr(p, "_no_weight_decay", False)
            (no_decay if skip else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def build_optimizer(module: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """An optimizer over `module`'s parameters from `{"name": "adamw", "lr": ..., "weight_decay": ...}`."""
    options = {k: v for k, v in cfg.items() if k not in ("name", "scheduler")}
    weight_decay = float(options.pop("weight_decay", 0.0))
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    groups = param_groups(module, weight_decay)
    return OPTIMIZERS.build(cfg["name"], params=groups, **options)


@SCHEDULERS.register("constant")
def constant_schedule(total_steps: int, warmup_steps: int = 0):
    """Linear warmup, then a constant learning rate."""
    return lambda step: min(1.0, (step + 1) / max(1, warmup_steps)) if warmup_steps else 1.0


@SCHEDULERS.register("cosine")
def cosine_schedule(total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0):
    """Linear warmup, then cosine decay to `min_lr_ratio` of the peak at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


@SCHEDULERS.register("linear")
def linear_schedule(total_steps: int, warmup_steps: int = 0, min_lr_ratio: float = 0.0):
    """Linear warmup, then linear decay to `min_lr_ratio` of the peak at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 1 - (1 - min_lr_ratio) * progress

    return factor


@SCHEDULERS.register("exponential")
def exponential_schedule(total_steps: int, warmup_steps: int = 0, gamma_per_epoch: float = 0.5, steps_per_epoch: int = 1):
    """Learning rate multiplied by `gamma_per_epoch` every epoch (Time-Series-Library's 'type1' halving)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return gamma_per_epoch ** ((step - warmup_steps) // max(1, steps_per_epoch))

    return factor


def build_optimization(module, cfg: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a LightningModule's configure_optimizers returns, from its plain `optim` config.

    `cfg = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05, "scheduler": {"name": "cosine", "warmup_steps": 100}}`.
    A module with no trainable parameters (persistence forecasts, say) gets no optimizer.
    """
    if not any(p.requires_grad for p in module.parameters()):
        return None
    cfg = dict(cfg or {"name": "adamw", "lr": 1e-3})
    optimizer = build_optimizer(module, cfg)
    sched_cfg = cfg.get("scheduler")
    if not sched_cfg:
        return {"optimizer": optimizer}
    sched_cfg = dict(sched_cfg) if isinstance(sched_cfg, Mapping) else {"name": sched_cfg}
    trainer = getattr(module, "_trainer", None)
    total = trainer.estimated_stepping_batches if trainer is not None else 1
    total = int(total) if math.isfinite(total) else int(sched_cfg.get("total_steps", 10_000))
    sched_cfg.pop("total_steps", None)
    if "steps_per_epoch" in sched_cfg and sched_cfg["steps_per_epoch"] == "auto":
        epochs = max(1, trainer.max_epochs or 1) if trainer is not None else 1
        sched_cfg["steps_per_epoch"] = max(1, total // epochs)
    factor = SCHEDULERS.build(sched_cfg, total_steps=max(1, total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
