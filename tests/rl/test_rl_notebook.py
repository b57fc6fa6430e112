"""The rl notebook runs end to end in smoke mode (POLYFORMER_SMOKE=1), text unchanged."""

from __future__ import annotations

import nbformat
from helpers import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "rl" / "decision_transformer.ipynb"


def test_notebook_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYFORMER_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "clear the notebook's outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = next(c for c in nb.cells if c.cell_type == "code" and "dt_eval = evaluate" in c.source)
    assert "normalised" in str(printed.outputs) and "BC" in str(printed.outputs)
