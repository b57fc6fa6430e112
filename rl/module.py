"""The LightningModule of polyformer.rl: trains a policy network offline, and acts with it.

One module serves every policy in MODELS (the Decision Transformer with any mixer, and the BC /
%BC baselines), so all train in the same harness. Box actions: MSE on tanh outputs in [-1, 1];
Discrete actions: cross-entropy. Validation/test log offline action losses; returns come from
rollouts (`rollout`, `evaluate`, `polyformer eval rl`).

A checkpoint carries everything needed to act (in `hparams.data`): the environment id, the state
mean/std, the return scale, the action space and the context length, so

    policy = DecisionTransformer.load_from_checkpoint("last.ckpt")
    result = policy.rollout("Pendulum-v1", target_return=-150, episodes=10)

works on a fresh machine without the dataset.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from polyformer.core.errors import CheckpointError
from polyformer.core.training.optim import build_optimization
from polyformer.rl.acting import Actor, act_on_history
from polyformer.rl.data.windows import ActionCodec
from polyformer.rl.models import MODELS


class DecisionTransformerModule(L.LightningModule):
    """Offline policy learning with a sequence model (`model.name=dt`) or behaviour cloning (`model.name=bc`)."""

    def __init__(self, model: dict, optim: dict | None = None, data: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        if not data or "action_space" not in data:
            raise CheckpointError("DecisionTransformerModule needs data=datamodule.data_spec() "
                                  "(observation size, action space, state statistics)")
        self.spec: dict[str, Any] = dict(data)
        self.codec = ActionCodec(data["action_space"])
        hints = {
            "state_dim": int(data["observation_dim"]),
            "act_dim": self.codec.dim,
            "discrete": self.codec.discrete,
            "max_timestep": int(data["max_episode_steps"]),
            "context_len": int(data.get("context_len", 20)),
        }
        self.net = MODELS.build(model, hints=hints)

    # ---- what the checkpoint knows -------------------------------------------------------------
    @property
    def env_id(self) -> str:
        """The environment the policy was trained for (an id of polyformer.rl.data.envs or gymnasium)."""
        return self.spec["env_id"]

    @property
    def state_mean(self) -> np.ndarray:
        return np.asarray(self.spec["state_mean"], np.float32)

    @property
    def state_std(self) -> np.ndarray:
        return np.asarray(self.spec["state_std"], np.float32)

    @property
    def return_scale(self) -> float:
        """Returns-to-go are divided by this before the model sees them."""
        return float(self.spec["return_scale"])

    @property
    def action_space(self):
        """The gymnasium action space the policy acts in (rebuilt from the checkpoint's plain spec)."""
        from gymnasium import spaces

        a = self.spec["action_space"]
        if a["type"] == "discrete":
            return spaces.Discrete(a["n"], start=a.get("start", 0))
        shape = tuple(a["shape"])
        return spaces.Box(np.asarray(a["low"], np.float32).reshape(shape), np.asarray(a["high"], np.float32).reshape(shape))

    # ---- training ------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Action predictions `[B, K, A]` (Box, in [-1, 1]) or logits `[B, K, n]` for a batch of windows."""
        return self.net(batch["states"], batch["actions"], batch["returns_to_go"], batch["timesteps"], batch.get("mask"))

    def _losses(self, batch) -> dict[str, torch.Tensor]:
        pred, target, mask = self(batch), batch["actions"], batch["mask"]
        if self.codec.discrete:
            loss = F.cross_entropy(pred[mask], target[mask])
            acc = (pred[mask].argmax(-1) == target[mask]).float().mean()
            return {"loss": loss, "action_accuracy": acc}
        return {"loss": F.mse_loss(pred[mask], target[mask])}

    def training_step(self, batch, batch_idx):
        out = self._losses(batch)
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=batch["mask"].shape[0])
        return out["loss"]

    def _eval_step(self, batch, stage: str):
        out = self._losses(batch)
        n = int(batch["mask"].sum())
        self.log(f"{stage}/action_loss", out["loss"], prog_bar=stage == "val", batch_size=n)
        if "action_accuracy" in out:
            self.log(f"{stage}/action_accuracy", out["action_accuracy"], batch_size=n)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def configure_optimizers(self):
        return build_optimization(self, self.hparams.optim)

    # ---- acting --------------------------------------------------------------------------------
    def actor(self, batch: int, target_return: float | list[float], mode: str = "recurrent") -> Actor:
        """A stateful policy for `batch` episodes side by side: `actor.act(obs)`, then `actor.observe(rewards)`."""
        return Actor(self, batch, target_return, mode=mode)

    def act(self, observations, returns_to_go, actions=None, timesteps=None) -> np.ndarray:
        """The action for the last step of a history (raw observations, returns-to-go, past actions).

        `returns_to_go[t]` is the target return minus the rewards received before step t. The last
        K steps are used (the published DT's window). For step-by-step acting without re-running
        the context, use `actor(...)` or `rollout(...)`.
        """
        return act_on_history(self, observations, returns_to_go, actions, timesteps)

    def rollout(self, env=None, target_return: float | None = None, episodes: int = 1, seed: int = 0,
                mode: str = "recurrent", max_steps: int | None = None) -> dict[str, Any]:
        """Play `episodes` episodes conditioned on `target_return` (default: about the expert's return).

        `env`: an environment id (default: the checkpoint's), a gymnasium Env, or a list of Envs.
        Returns `{"returns": [...], "lengths": [...]}`.
        """
        from polyformer.rl.evaluation import rollout

        target = self.spec.get("target_return", self.spec["target_returns"][-1]) if target_return is None else float(target_return)
        return rollout(self, env or self.env_id, target, episodes=episodes, seed=seed, mode=mode, max_steps=max_steps)

    def evaluate(self, target_returns: list[float] | None = None, episodes: int = 10, seeds=(0,), mode: str = "recurrent",
                 env: str | None = None) -> dict[str, Any]:
        """Rollouts at several target returns and seeds, summarised (returns and normalised scores)."""
        from polyformer.rl.evaluation import evaluate

        return evaluate(self, env, target_returns, episodes=episodes, seeds=seeds, mode=mode)


DecisionTransformer = DecisionTransformerModule
"""The name downstream code uses: `DecisionTransformer.load_from_checkpoint(path).rollout(...)`."""
