"""Smoke test of the rl benchmark (benchmarks/rl): a tiny run end to end, and its summary statistics by hand."""

from __future__ import annotations

import json

import pytest

from benchmarks.rl import run as bench
from benchmarks.rl.report import summary
from benchmarks.rl.train_eval import rises_with_target


def test_benchmark_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "res"
    args = ["--envs", "Pendulum-v1", "--methods", "dt", "bc", "--seeds", "0", "--steps", "5", "--episodes", "1",
            "--dataset-episodes", "8", "--no-speed", "--data-dir", str(tmp_path / "data"), "--out", str(out)]
    assert bench.main(args) == 0
    saved = json.loads((out / "results.json").read_text())
    cells = {c["method"]: c for c in saved["cells"]}
    assert set(cells) == {"dt", "bc"} and saved["steps"] == 5
    assert [s["target"] for s in cells["dt"]["sweep"]] == sorted(s["target"] for s in cells["dt"]["sweep"])
    assert cells["bc"]["sweep"] == [] and cells["dt"]["mixer_backend"] == "auto"
    table = (out / "results.md").read_text()
    assert "| Pendulum-v1 |" in table and "DT > BC" in table
    # --resume keeps finished cells instead of training them again
    assert bench.main([*args, "--resume"]) == 0
    assert len(json.loads((out / "results.json").read_text())["cells"]) == 2


def test_rises_with_target_is_spearman_over_targets():
    sweep = lambda returns: [{"target": t, "return_mean": r} for t, r in zip([1, 2, 3, 4], returns)]
    assert rises_with_target(sweep([10, 20, 30, 40])) == pytest.approx(1.0)
    assert rises_with_target(sweep([40, 30, 20, 10])) == pytest.approx(-1.0)
    # ranks (1, 2, 4, 3) against (1, 2, 3, 4): 1 - 6 * 2 / (4 * 15) = 0.8
    assert rises_with_target(sweep([1, 2, 9, 5])) == pytest.approx(0.8)


def test_summary_is_mean_and_std_over_seeds():
    cells = [{"env": "E", "method": "bc", "seed": s, "normalized_score": v, "sweep": [], "train_seconds": 1.0}
             for s, v in ((0, 10.0), (1, 30.0))]
    row = summary(cells)[("E", "bc")]
    assert row["mean"] == pytest.approx(20.0)
    assert row["std"] == pytest.approx(10.0)  # population std over the two seeds (np.std)
