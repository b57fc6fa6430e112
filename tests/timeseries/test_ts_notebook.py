"""The example notebook runs end to end in smoke mode (POLYFORMER_SMOKE=1), text unchanged."""

from __future__ import annotations

import os

import nbformat
from helpers import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "timeseries" / "forecasting.ipynb"


def test_notebook_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYFORMER_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "clear the notebook's outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    table = next(c for c in nb.cells if c.cell_type == "code" and "table.round" in c.source)
    assert "iTransformer" in str(table.outputs) and os.environ["POLYFORMER_SMOKE"] == "1"
