"""Evaluation by rollout: a trained policy acts in gymnasium at given target returns; returns and normalised scores.

`rollout` runs a batch of episodes side by side (one environment each, one model call per step for
all of them). `evaluate` does that for several target returns and several evaluation seeds and
summarises with `polyformer.rl.metrics`. Evaluation reset seeds come from a different stream than
the collection seeds, so a policy is never scored on the episodes it was trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyformer.core.errors import DataError
from polyformer.rl.acting import Actor
from polyformer.rl.data.envs import env_info
from polyformer.rl.metrics import normalized_score, summarize

log = logging.getLogger("polyformer.rl")

EVAL_SEED_OFFSET = 1_000_003


def eval_seed(seed: int, index: int) -> int:
    """Reset seed of evaluation episode `index` under evaluation seed `seed`."""
    return int(np.random.SeedSequence([EVAL_SEED_OFFSET, int(seed), int(index)]).generate_state(1)[0])


def _make_envs(env, n: int) -> tuple[list, bool]:
    """(environments, made_here): from an id (n fresh ones), one gymnasium Env, or a list of them."""
    if isinstance(env, str):
        info = env_info(env)
        return [info.make() for _ in range(n)], True
    if isinstance(env, list | tuple):
        return list(env), False
    return [env], False


@torch.no_grad()
def rollout(module, env, target_return: float, episodes: int = 1, seed: int = 0, mode: str = "recurrent",
            max_steps: int | None = None) -> dict[str, Any]:
    """Run `episodes` episodes of `module`'s policy conditioned on `target_return`.

    `env` is an environment id (that many environments are made and stepped side by side), a
    gymnasium Env (episodes run one after another) or a list of Envs (one episode each). Returns
    `{"returns": [...], "lengths": [...]}`.
    """
    envs, made = _make_envs(env, episodes)
    try:
        check_env_fits(module, envs[0])
    except DataError:
        if made:
            for e in envs:
                e.close()
        raise
    was_training = module.training
    module.eval()
    returns, lengths = [], []
    try:
        done_count = 0
        while done_count < episodes:
            wave = envs[: episodes - done_count]
            r, n = _run_wave(module, wave, target_return, [eval_seed(seed, done_count + i) for i in range(len(wave))],
                             mode, max_steps)
            returns += r
            lengths += n
            done_count += len(wave)
    finally:
        if made:
            for e in envs:
                e.close()
        module.train(was_training)
    return {"returns": returns, "lengths": lengths}


def check_env_fits(module, env) -> None:
    """Raise DataError unless `env`'s observation and action spaces are the ones the policy was trained on."""
    from polyformer.rl.data.windows import action_space_spec

    spec = module.spec
    obs_dim = int(np.prod(env.observation_space.shape))
    env_id = getattr(getattr(env, "spec", None), "id", "the environment")
    if obs_dim != int(spec["observation_dim"]):
        raise DataError(f"the policy takes {spec['observation_dim']}-dim observations, {env_id} gives {obs_dim}; "
                        f"roll it out in {spec['env_id']}")
    theirs, ours = action_space_spec(env.action_space), spec["action_space"]
    if theirs["type"] != ours["type"] or theirs.get("n") != ours.get("n") or theirs.get("shape") != ours.get("shape"):
        raise DataError(f"the policy acts in {ours}, {env_id}'s action space is {theirs}; roll it out in {spec['env_id']}")


def _run_wave(module, envs, target_return, seeds, mode, max_steps):
    n = len(envs)
    obs = np.stack([np.asarray(e.reset(seed=s)[0], np.float32) for e, s in zip(envs, seeds)])
    actor = Actor(module, n, target_return, mode=mode)
    active = np.ones(n, bool)
    ret, length = np.zeros(n), np.zeros(n, int)
    limit = max_steps or int(module.spec.get("max_episode_steps", 1000))
    for _ in range(limit):
        actions = actor.act(obs)
        rewards = np.zeros(n)
        for i, e in enumerate(envs):
            if not active[i]:
                continue
            o, r, term, trunc, _ = e.step(actions[i])
            obs[i], rewards[i] = o, r
            ret[i] += r
            length[i] += 1
            if term or trunc:
                active[i] = False
        actor.observe(rewards)
        if not active.any():
            break
    return ret.tolist(), length.tolist()


def evaluate(module, env: str | None = None, target_returns: list[float] | None = None, episodes: int = 10,
             seeds: list[int] | tuple[int, ...] = (0,), mode: str = "recurrent", max_steps: int | None = None,
             references: dict[str, float] | None = None) -> dict[str, Any]:
    """Roll out at each target return and seed; summary per target plus the headline (first target).

    `env` defaults to the checkpoint's environment; `target_returns` to the checkpoint's headline
    target (about the expert's return), or "sweep" for the environment's list of targets;
    `references` to the checkpoint's reference returns. Keys: `targets` (per-target summaries),
    and the headline `return_mean`, `return_std`, `normalized_score`, `normalized_score_std`, ...
    """
    spec = module.spec
    env = env or spec["env_id"]
    if target_returns == "sweep":
        target_returns = spec["target_returns"]
    targets = [float(t) for t in (target_returns or [spec.get("target_return", spec["target_returns"][-1])])]
    refs = references or spec.get("reference_returns")
    per_target = []
    for target in targets:
        per_seed = [rollout(module, env, target, episodes=episodes, seed=s, mode=mode, max_steps=max_steps)["returns"]
                    for s in seeds]
        summary = summarize(per_seed, refs)
        summary["target_return"] = target
        per_target.append(summary)
        log.info("target %.1f: return %.1f +- %.1f%s", target, summary["return_mean"], summary["return_std"],
                 f", normalised {summary['normalized_score']:.1f}" if "normalized_score" in summary else "")
    out = {k: v for k, v in per_target[0].items() if k != "returns"}
    out["targets"] = per_target
    out["env"] = env
    out["mode"] = mode
    return out


def flat_metrics(result: dict[str, Any], prefix: str = "test/") -> dict[str, float]:
    """Scalar metrics of an `evaluate` result for metrics.json: headline, then `@<target>` per target."""
    out = {}
    for key in ("return_mean", "return_std", "normalized_score", "normalized_score_std", "normalized_score_seed_std"):
        if key in result:
            out[prefix + key] = float(result[key])
    for t in result["targets"]:
        tag = f"{t['target_return']:g}"
        out[f"{prefix}return_mean@{tag}"] = float(t["return_mean"])
        if "normalized_score" in t:
            out[f"{prefix}normalized_score@{tag}"] = float(t["normalized_score"])
    return out


def record_video(module, path: str | Path, target_return: float, env: str | None = None, seed: int = 0,
                 mode: str = "recurrent", fps: int = 30) -> Path | None:
    """Write one rollout as a GIF (rgb_array rendering + imageio); returns None, with a message, where it cannot."""
    try:
        import imageio.v2 as imageio
    except ImportError:
        log.warning("video skipped: imageio is not installed (pip install imageio)")
        return None
    info = env_info(env or module.spec["env_id"])
    try:
        e = info.make(render_mode="rgb_array")
        obs, _ = e.reset(seed=eval_seed(seed, 0))
        frames = [e.render()]
    except Exception as exc:  # noqa: BLE001 - renderers fail in many ways (no pygame, no GL context)
        log.warning("video skipped: %s cannot render here (%s: %s)", info.gym_id, type(exc).__name__, exc)
        return None
    actor = Actor(module, 1, target_return, mode=mode)
    module.eval()
    try:
        for _ in range(int(module.spec.get("max_episode_steps", 1000))):
            a = actor.act(np.asarray(obs)[None])
            obs, r, term, trunc, _ = e.step(a[0])
            actor.observe(np.array([r]))
            frames.append(e.render())
            if term or trunc:
                break
    finally:
        e.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, frames[::2], duration=2.0 / fps, loop=0)
    return path


def score(returns, references) -> float:
    """Mean normalised score of raw `returns` under `{"random", "expert"}` references."""
    return float(np.mean(normalized_score(np.asarray(returns), references["random"], references["expert"])))
