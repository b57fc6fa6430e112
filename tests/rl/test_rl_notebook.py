"""The rl notebook runs end to end in smoke mode (POLYFORMER_SMOKE=1), text unchanged."""

from helpers import REPO, cell_output, run_notebook


def test_notebook_smoke(tmp_path):
    nb = run_notebook(REPO / "notebooks" / "rl" / "decision_transformer.ipynb", tmp_path)
    printed = cell_output(nb, "dt_eval = evaluate")
    assert "normalised" in printed and "BC" in printed
