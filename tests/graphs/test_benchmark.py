"""benchmarks/graphs/run.py bookkeeping: partial accuracy runs keep earlier rows, and no NaN reaches the JSON."""

import json
import math

from benchmarks.graphs import run


def _row(dataset, model, acc=50.0):
    return {"dataset": dataset, "model": model, "test_accuracy_sbm": acc, "val_accuracy_sbm": None}


def test_partial_runs_merge_with_earlier_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    (tmp_path / "accuracy.json").write_text(
        '[{"dataset": "pattern", "model": "GINE", "test_accuracy_sbm": 80.0, "val_accuracy_sbm": NaN},'
        ' {"dataset": "cluster", "model": "GINE", "test_accuracy_sbm": 40.0, "val_accuracy_sbm": 41.0}]'
    )
    rows = run._load_rows("accuracy")
    assert rows[0]["val_accuracy_sbm"] is None  # a NaN written by an older version is read back as null
    rows = run._merge_rows(rows, [_row("pattern", "GINE", 85.0), _row("pattern", "GPS (GINE + attention)", 86.0)])
    assert [(r["dataset"], r["model"], r["test_accuracy_sbm"]) for r in rows] == [
        ("pattern", "GPS (GINE + attention)", 86.0), ("pattern", "GINE", 85.0), ("cluster", "GINE", 40.0)]
    run._save("accuracy", rows, "table")
    assert json.loads((tmp_path / "accuracy.json").read_text()) == rows  # strict JSON (allow_nan=False)


def test_metric_and_model_selection():
    assert run._metric({"a": float("nan")}, "a") is None and run._metric({}, "a") is None
    assert run._metric({"a": 86.6549}, "a") == 86.65
    assert run._std([1.0]) is None and run._std([1.0, 3.0]) == round(math.sqrt(2), 2)
    assert [m for m in run.ACCURACY_MODELS if run._selected(m, ["GINE"])] == ["GINE"]  # an exact label
    assert len([m for m in run.ACCURACY_MODELS if run._selected(m, ["gine +"])]) == 2  # a substring
