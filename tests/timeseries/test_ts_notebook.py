"""The example notebook runs end to end in smoke mode (POLYFORMER_SMOKE=1), text unchanged."""

from helpers import REPO, cell_output, run_notebook


def test_notebook_smoke(tmp_path):
    nb = run_notebook(REPO / "notebooks" / "timeseries" / "forecasting.ipynb", tmp_path)
    assert "iTransformer" in cell_output(nb, "table.round")
