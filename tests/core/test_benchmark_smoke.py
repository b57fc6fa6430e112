"""Smoke test of the core benchmark (benchmarks/core): a tiny in-process run at T=64.

Checks that the command runs end to end and writes its JSON + markdown, and that every fast path
gives the same outputs (and input gradients) as its reference and as the peers that are installed;
and that the generation-state case (`mixer:state`) measures what it says: attention's KV cache grows
with T, a linear mixer's state does not, and one step from the prefilled state equals the forward.
No timing is asserted: speed targets are reported by the benchmark, never tested.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from benchmarks.core import mixers as bench
from benchmarks.core import runner
from benchmarks.core.common import PEER, Sizes
from benchmarks.core.report import decode_tables, targets
from benchmarks.core.runner import all_groups, check_case, decode_case

T = 64


def test_benchmark_runs_and_ours_match_references(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "THREADS", 1)
    out = tmp_path / "res"
    results = bench.main(
        ["--T", str(T), "--reps", "1", "--budget", "0", "--threads", "1", "--inline", "--no-peers", "--out", str(out)]
    )
    assert (out / "results.md").read_text().startswith("# polyformer core benchmark")
    saved = json.loads((out / "results.json").read_text())
    assert set(saved["groups"]) == {g.key for g in all_groups()}
    for key, entry in saved["groups"].items():
        if not entry["results"]:  # groups measured only at long T (mixer:long_context)
            continue
        res = entry["results"][str(T)]
        assert not res["errors"], (key, res["errors"])
        assert res["time"], key
        assert all(m["peak_mib"] >= 0 for m in res["memory"].values()), key
        for name, chk in res["checks"].items():
            assert chk["output"]["ok"] and chk["grad"]["ok"], (key, name, chk)
    assert "verdicts" in results


def _peer_cases(module: str):
    return [
        (g.key, i.name)
        for g in all_groups()
        for i in g.impls
        if i.role == PEER and module in i.requires and i.runs_at(T)
    ]


@pytest.mark.parametrize("module", ["fla", "mambapy", "transformers"])
def test_peers_give_our_outputs(module, monkeypatch):
    # fla's references load without importing fla itself; the dev extra installs all three peers
    assert importlib.util.find_spec(module) is not None, f"{module} is missing: pip install -e '.[dev]'"
    monkeypatch.setattr(runner, "THREADS", 1)
    cases = _peer_cases(module)
    assert cases
    for key, peer in cases:
        ours = next(i.name for i in next(g for g in all_groups() if g.key == key).impls if i.role != PEER)
        _, checks, errors, _, _ = check_case(key, T, Sizes(), [ours, peer])
        assert not errors, (key, errors)
        chk = checks[peer]
        assert chk["output"]["ok"] and chk["grad"]["ok"], (key, peer, chk)


def test_state_case_attention_grows_linear_mixers_do_not(monkeypatch):
    from benchmarks.core.cases_mixers import STATE_MIXERS
    from polyformer.core.mixers import list_mixers

    assert set(STATE_MIXERS) == set(list_mixers()), "mixer:state should cover every registered mixer"
    monkeypatch.setattr(runner, "THREADS", 1)
    names = list(STATE_MIXERS)
    res = {t: decode_case("mixer:state", t, Sizes(), names, 1, 0.0) for t in (16, 64)}
    for t, r in res.items():
        assert not r["errors"], (t, r["errors"])
        assert set(r["time"]) == set(names), t
        for name in names:
            assert r["step_check"][name]["ok"], (t, name, r["step_check"][name])
    kv = {t: r["state"]["attention"]["bytes"] for t, r in res.items()}
    s = Sizes()
    assert kv[64] - kv[16] == 48 * (2 * s.dim * 4 + 8)  # k and v (fp32) and one key position (int64) per token
    for name in names:
        if name != "attention":
            assert res[16]["state"][name]["bytes"] == res[64]["state"][name]["bytes"], name
    # the report's target rows and tables come from the same entries
    results = {
        "meta": {"threads": 1},
        "sizes": {"batch": 1},
        "Ts": [16, 64],
        "groups": {
            "mixer:state": {
                "kind": "mixer", "name": "state", "linear": False, "same_function": False, "threads": 1,
                "impls": {n: {} for n in names}, "results": {"16": res[16], "64": res[64]},
            }  # fmt: skip
        },
    }
    table, verdicts = targets(results)
    assert "decode_step_vs_attention" in verdicts
    assert {f"state_vs_kv_cache:{n}" for n in names if n != "attention"} <= set(verdicts)
    assert "| mamba |" in decode_tables(results)


def test_state_keeps_no_sequence_length_buffer_alive(monkeypatch):
    from benchmarks.core.cases_mixers import STATE_MIXERS

    monkeypatch.setattr(runner, "THREADS", 1)
    names = [n for n in STATE_MIXERS if n != "attention"]
    res = {t: decode_case("mixer:state", t, Sizes(), names, 1, 0.0) for t in (16, 64)}
    for name in names:
        assert res[16]["state"][name]["retained_bytes"] == res[64]["state"][name]["retained_bytes"], name
