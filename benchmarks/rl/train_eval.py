"""One benchmark cell: train a policy on an embedded dataset with the demo recipe, then evaluate it by rollout."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import numpy as np
import torch

from polyformer.rl import DecisionTransformerModule, OfflineRLDataModule
from polyformer.rl.evaluation import evaluate

# The methods of the table: model config and the share of best episodes trained on.
METHODS: dict[str, dict[str, Any]] = {
    "dt": {"model": {"name": "dt", "embed_dim": 64, "depth": 2, "num_heads": 2, "dropout": 0.0, "mixer": "attention"}},
    # backend "cpu": the compiled selective scan (about 3x the torch path's training speed; `run_cell` falls
    # back to "torch" where it does not build); acting uses the recurrent step either way.
    "dt_mamba": {"model": {"name": "dt", "embed_dim": 64, "depth": 2, "dropout": 0.0,
                           "mixer": {"name": "mamba", "backend": "cpu"}}},
    "bc": {"model": {"name": "bc", "hidden_dim": 256, "depth": 2, "dropout": 0.1}},
    "pbc": {"model": {"name": "bc", "hidden_dim": 256, "depth": 2, "dropout": 0.1}, "top_fraction": 0.1},
}
LABELS = {"dt": "DT (attention)", "dt_mamba": "DT (mamba)", "bc": "BC", "pbc": "%BC (top 10%)"}


def _buildable(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec`, with a "cpu" mixer backend replaced by "torch" where the compiled kernel does not build."""
    mixer = spec["model"].get("mixer")
    if isinstance(mixer, dict) and mixer.get("backend") == "cpu":
        from polyformer.core.ops.selective_scan_cpu import cpu_kernel_available

        if not cpu_kernel_available():
            return {**spec, "model": {**spec["model"], "mixer": {**mixer, "backend": "torch"}}}
    return spec


def fit(method: str, env: str, data_dir: str, *, steps: int, seed: int, episodes: int | None = None,
        context_len: int = 10, lr: float = 1e-3) -> tuple[DecisionTransformerModule, float]:
    """Train `method` on `env`'s replay dataset for `steps` steps; returns (module in eval mode, seconds)."""
    L.seed_everything(seed, workers=True, verbose=False)
    spec = _buildable(METHODS[method])
    dm = OfflineRLDataModule(env=env, flavour="replay", episodes=episodes, data_dir=data_dir, context_len=context_len,
                             batch_size=64, samples_per_epoch=64 * steps, top_fraction=spec.get("top_fraction", 1.0),
                             seed=seed)
    dm.prepare_data()
    dm.setup("fit")
    # As the DT paper: linear warmup, then a constant learning rate.
    optim = {"name": "adamw", "lr": lr, "weight_decay": 1e-4, "scheduler": {"name": "constant", "warmup_steps": 100}}
    module = DecisionTransformerModule(model=spec["model"], optim=optim, data=dm.data_spec())
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=0.25, limit_val_batches=0, accelerator="cpu")
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return module.eval(), time.perf_counter() - start


def run_cell(method: str, env: str, data_dir: str, *, steps: int, seed: int, episodes: int = 10,
             dataset_episodes: int | None = None) -> dict[str, Any]:
    """Train and evaluate one (method, env, seed): headline score and, for DT, achieved return per target."""
    torch.manual_seed(seed)
    module, seconds = fit(method, env, data_dir, steps=steps, seed=seed, episodes=dataset_episodes)
    spec = module.spec
    sweep = method.startswith("dt")
    targets = sorted(set(spec["target_returns"]) | {spec["target_return"]}) if sweep else [spec["target_return"]]
    start = time.perf_counter()
    result = evaluate(module, target_returns=targets, episodes=episodes, seeds=[seed])
    by_target = {t["target_return"]: t for t in result["targets"]}
    head = by_target[spec["target_return"]]
    mixer = module.hparams["model"].get("mixer")
    return {
        "method": method, "env": env, "seed": seed, "steps": steps, "train_seconds": seconds,
        "mixer_backend": mixer.get("backend", "auto") if isinstance(mixer, dict) else "auto",
        "eval_seconds": time.perf_counter() - start, "dataset": spec["dataset"],
        "target_return": spec["target_return"], "normalized_score": head["normalized_score"],
        "return_mean": head["return_mean"], "episode_scores_std": head["normalized_score_std"],
        "sweep": [{"target": t, "return_mean": by_target[t]["return_mean"],
                   "normalized_score": by_target[t]["normalized_score"]} for t in targets] if sweep else [],
        "dataset_best_return": spec["dataset_returns"]["max"],
    }


def rises_with_target(sweep: list[dict[str, float]]) -> float:
    """Spearman correlation between target and achieved return (1: achieved return rises with every target)."""
    if len(sweep) < 2:
        return float("nan")
    t = np.argsort(np.argsort([s["target"] for s in sweep]))
    r = np.argsort(np.argsort([s["return_mean"] for s in sweep]))
    return float(np.corrcoef(t, r)[0, 1])
