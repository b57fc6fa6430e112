"""The example notebook runs end to end in smoke mode (POLYFORMER_SMOKE=1), text unchanged."""

import nbformat
from helpers import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "graphs" / "graph_transformers.ipynb"


def test_notebook_smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYFORMER_SMOKE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "clear the notebook's outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(str(c.get("outputs")) for c in nb.cells if c.cell_type == "code")
    assert "test/accuracy_sbm" in outputs and "attention mass on pattern nodes" in outputs
