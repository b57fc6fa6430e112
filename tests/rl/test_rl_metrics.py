"""Normalised scores follow D4RL's definition; summaries over episodes and seeds; the optional rollout video."""

from __future__ import annotations

import numpy as np
import pytest

from polyformer.core.errors import DataError
from polyformer.rl.data.envs import D4RL_MUJOCO, env_info
from polyformer.rl.metrics import normalized_score, summarize


def test_normalized_score_definition():
    assert normalized_score(-20.0, random_return=-20.0, expert_return=80.0) == pytest.approx(0.0)
    assert normalized_score(80.0, -20.0, 80.0) == pytest.approx(100.0)
    returns = np.array([30.0, 130.0])
    np.testing.assert_allclose(normalized_score(returns, -20.0, 80.0), 100 * (returns + 20) / 100)
    with pytest.raises(DataError, match="must differ"):
        normalized_score(1.0, 5.0, 5.0)


def test_d4rl_reference_returns_are_the_published_ones():
    hopper = D4RL_MUJOCO["hopper"]
    assert (hopper.random_return, hopper.expert_return) == (-20.272305, 3234.3)
    assert env_info("halfcheetah").references == {"random": -280.178953, "expert": 12135.0}
    assert env_info("Walker2d-v2").references == {"random": 1.629008, "expert": 4592.3}
    # 3234.3 on hopper is 100, the random reference 0: D4RL's get_normalized_score times 100.
    assert normalized_score(3234.3, hopper.random_return, hopper.expert_return) == pytest.approx(100.0)


def test_summarize_over_episodes_and_seeds():
    out = summarize([[0.0, 10.0], [20.0, 30.0]], {"random": 0.0, "expert": 100.0})
    assert out["episodes"] == 4 and out["seeds"] == 2
    assert out["return_mean"] == pytest.approx(15.0)
    assert out["normalized_score"] == pytest.approx(15.0)
    assert out["normalized_score_std"] == pytest.approx(np.std([0, 10, 20, 30]))
    assert out["normalized_score_seed_std"] == pytest.approx(np.std([5.0, 25.0]))
    assert "normalized_score" not in summarize([[1.0]])


def test_video_is_written_or_skipped_with_a_message(trained, tmp_path, caplog):
    from polyformer.rl import DecisionTransformer
    from polyformer.rl.evaluation import record_video

    policy = DecisionTransformer.load_from_checkpoint(trained[2], weights_only=True)
    policy.spec["max_episode_steps"] = 6  # a short clip
    path = record_video(policy, tmp_path / "clip.gif", target_return=-150.0)
    assert (path is not None and path.stat().st_size > 0) or "video skipped" in caplog.text
