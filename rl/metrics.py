"""Normalised scores (D4RL's definition) and their summaries over episodes and seeds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from polyformer.core.errors import DataError


def normalized_score(returns, random_return: float, expert_return: float):
    """`100 * (R - R_random) / (R_expert - R_random)`: 0 is the random policy, 100 the expert.

    Works on a number or an array; D4RL's `get_normalized_score` times 100.
    """
    if expert_return == random_return:
        raise DataError(f"reference returns must differ (random {random_return}, expert {expert_return})")
    return 100.0 * (np.asarray(returns, dtype=np.float64) - random_return) / (expert_return - random_return)


def summarize(returns_per_seed: Sequence[Sequence[float]], references: dict[str, float] | None = None) -> dict[str, Any]:
    """Mean and std of returns over all episodes of all seeds, the std of per-seed means, and the
    same for normalised scores when `references` (`{"random": ..., "expert": ...}`) are given."""
    per_seed = [np.asarray(r, dtype=np.float64) for r in returns_per_seed]
    flat = np.concatenate(per_seed)
    out: dict[str, Any] = {
        "returns": flat.tolist(),
        "episodes": int(flat.size),
        "seeds": len(per_seed),
        "return_mean": float(flat.mean()),
        "return_std": float(flat.std()),
    }
    if references:
        lo, hi = float(references["random"]), float(references["expert"])
        norm = normalized_score(flat, lo, hi)
        out["normalized_score"] = float(norm.mean())
        out["normalized_score_std"] = float(norm.std())
        out["normalized_score_seed_std"] = float(np.std([normalized_score(r, lo, hi).mean() for r in per_seed]))
    return out
