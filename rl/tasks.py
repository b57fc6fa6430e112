"""The verbs of polyformer.rl: train (then evaluate by rollout), eval by rollout, and collect datasets.

- `polyformer train rl ...`: the harness's train, then rollouts of the last checkpoint at the
  target returns (`rollout.*`), added to metrics.json as `test/normalized_score` etc.
- `polyformer eval rl ckpt_path=... target_return=...`: rollouts only, metrics.json + rollouts.json
  (+ a GIF with `rollout.video=true` where rendering works).
- `polyformer collect rl env=... flavour=...`: make the embedded Minari dataset(s) under paths.data_dir.
- `polyformer predict rl`: refused with a pointer to eval / act.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from polyformer.core.errors import ConfigError
from polyformer.core.training import runner

log = logging.getLogger("polyformer.rl")


def _targets(cfg: DictConfig) -> list[float] | str | None:
    value = cfg.get("target_return")
    if value is None:
        return None
    if OmegaConf.is_list(value) or isinstance(value, list | tuple):
        return [float(v) for v in value]
    if isinstance(value, str):
        if value == "sweep":
            return "sweep"
        return [float(v) for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    return [float(value)]


def _explicit(key: str) -> bool:
    """True when the command line set `key` (so eval does not take train.yaml's default env)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = HydraConfig.get().overrides.task
    except ValueError:
        return False
    return any(o.lstrip("+~").split("=", 1)[0] == key for o in overrides)


def _rollout_eval(cfg: DictConfig, module, ckpt_path: str) -> dict[str, Any]:
    from polyformer.rl.evaluation import evaluate, flat_metrics, record_video

    ro = cfg.get("rollout") or {}
    env = cfg.env if _explicit("env") else None
    result = evaluate(module, env=env, target_returns=_targets(cfg), episodes=int(ro.get("episodes", 10)),
                      seeds=list(ro.get("seeds", [0])), mode=str(ro.get("mode", "recurrent")),
                      max_steps=ro.get("max_steps"))
    out_dir = runner.output_dir(cfg)
    with open(out_dir / "rollouts.json", "w") as f:
        json.dump({"checkpoint": ckpt_path, **result}, f, indent=2)
    metrics = flat_metrics(result)
    if ro.get("video"):
        video = record_video(module, out_dir / "rollout.gif", result["target_return"], env=env, mode=result["mode"])
        if video is not None:
            metrics["video"] = str(video)
    return metrics


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test (offline action loss), then roll the last checkpoint out at the target returns."""
    metrics = runner.train(cfg)
    ro = cfg.get("rollout") or {}
    if not ro.get("after_fit", True) or int(ro.get("episodes", 0)) <= 0:
        return metrics
    # The final weights, as the DT paper evaluates: held-out action loss says little about returns.
    ckpt = metrics.get("last_checkpoint") or metrics.get("best_checkpoint")
    if not ckpt:
        log.info("no checkpoint was saved (fast_dev_run?): rollouts skipped")
        return metrics
    from polyformer.core.training.checkpoint import load

    module = load(ckpt, domain="rl")
    metrics.update(_rollout_eval(cfg, module, ckpt))
    runner.write_metrics(cfg, metrics)
    return metrics


def rollout_eval(cfg: DictConfig) -> dict[str, Any]:
    """`polyformer eval rl ckpt_path=... [target_return=...] [rollout.episodes=...]`: evaluate by rollout."""
    from polyformer.core.training.checkpoint import load

    ckpt = runner.resolve_ckpt_path(cfg)
    if ckpt is None:
        raise ConfigError("`polyformer eval rl` needs ckpt_path=<file.ckpt> (or ckpt_path=last)")
    module = load(ckpt, domain="rl")
    metrics = _rollout_eval(cfg, module, ckpt)
    metrics["checkpoint"] = ckpt
    runner.write_metrics(cfg, metrics)
    for key, value in metrics.items():
        if key.startswith("test/normalized_score") or key.startswith("test/return_mean"):
            print(f"{key}: {value:.2f}")
    return metrics


def collect(cfg: DictConfig) -> dict[str, Any]:
    """`polyformer collect rl env=<id> flavour=<random|medium|expert|replay|all|[a,b]> [data.episodes=N]`."""
    from polyformer.rl.data import minari_io
    from polyformer.rl.data.collect import FLAVOURS, data_root
    from polyformer.rl.data.collect import collect as collect_one

    value = cfg.flavour
    if OmegaConf.is_list(value):
        flavours = [str(f) for f in value]
    else:
        flavours = list(FLAVOURS) if str(value) == "all" else [str(value)]
    data = cfg.get("data") or {}
    root = data_root(cfg.paths.data_dir)
    out: dict[str, Any] = {"root": str(root), "datasets": {}}
    for flavour in flavours:
        ds_id = collect_one(str(cfg.env), flavour, cfg.paths.data_dir, episodes=data.get("episodes"),
                            seed=int(data.get("collect_seed", 0)), num_envs=int(data.get("num_envs", 8)))
        meta = minari_io.read_metadata(root, ds_id)
        out["datasets"][flavour] = {k: meta.get(k) for k in ("dataset_id", "total_episodes", "total_steps",
                                                              "return_mean", "return_max", "ref_min_score", "ref_max_score")}
        print(f"{ds_id}: {meta['total_episodes']} episodes, {meta['total_steps']} steps, "
              f"return {meta['return_mean']:.1f} (max {meta['return_max']:.1f})")
    print(f"MINARI_DATASETS_PATH={root}  (then minari.load_dataset('<id>') reads them)")
    path = Path(runner.output_dir(cfg)) / "collect.json"
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    return out


def predict(cfg: DictConfig) -> dict[str, Any]:
    """rl has no offline predictions to write: a policy is judged by acting."""
    raise ConfigError("`polyformer predict rl` is not a verb of rl: use `polyformer eval rl ckpt_path=... "
                      "target_return=...` (rollouts), or DecisionTransformer.load_from_checkpoint(p).act(...) in Python")
