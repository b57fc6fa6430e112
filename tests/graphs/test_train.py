"""Through the harness: train, resume, checkpoint round trip, eval, predict, downstream predict(), the real CLI."""

import csv
import json
from pathlib import Path

import pytest
import torch
from graph_helpers import TINY, tiny_data
from helpers import compose, domain_conf, run_cli
from torch_geometric.data import Batch

from polyformer.core.errors import DataError
from polyformer.core.training import runner
from polyformer.graphs import GraphGPS, GraphModule
from polyformer.graphs.data.sbm import PATTERN_RECIPE, generate_sbm

CONF = domain_conf("graphs")


def _train(tmp_path, *extra):
    cfg = compose(CONF, [*TINY, *extra], tmp_path)
    return cfg, runner.train(cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny GraphGPS run on PATTERN-recipe graphs shared by the round-trip tests."""
    tmp = tmp_path_factory.mktemp("graphs_train")
    cfg, metrics = _train(tmp, "name=shared")
    return cfg, metrics, Path(metrics["best_checkpoint"])


def _new_graphs(n=3):
    recipe = PATTERN_RECIPE.with_overrides(
        {"num_graphs": {"train": n, "val": 1, "test": 1}, "size_min": 3, "size_max": 6, "pattern_size": 5}
    )
    return generate_sbm(recipe, seed=11)["train"]


def test_train_writes_metrics_and_checkpoints(trained):
    cfg, metrics, ckpt = trained
    for key in ("val/accuracy_sbm", "test/accuracy_sbm", "test/loss", "train/loss"):
        assert 0 <= metrics[key] <= 100 or key.endswith("loss"), key
    on_disk = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert on_disk["test/accuracy_sbm"] == pytest.approx(metrics["test/accuracy_sbm"])
    assert ckpt.is_file() and Path(metrics["last_checkpoint"]).is_file()


def test_checkpoint_is_plain_and_self_describing(trained):
    _, _, ckpt = trained
    raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    spec = raw["hyper_parameters"]["data"]
    assert spec["task"] == "node_classification" and spec["num_classes"] == 2
    assert spec["node_features"] == {"kind": "categorical", "vocab": [3]}
    assert spec["pe"] == {"lap_k": 4, "lap_norm": "none", "rwse_k": 4}
    assert raw["hyper_parameters"]["model"]["name"] == "gps"
    assert raw["polyformer"]["domain"] == "graphs" and raw["polyformer"]["class"].endswith("GraphModule")


def test_downstream_predict(trained):
    _, _, ckpt = trained
    model = GraphGPS.load_from_checkpoint(ckpt)
    assert isinstance(model, GraphModule)
    graphs = _new_graphs()  # no encodings yet: predict computes the checkpoint's
    one = model.predict(graphs[0])
    assert one.shape == (graphs[0].num_nodes,) and set(one.tolist()) <= {0, 1}
    many = model.predict(graphs)
    assert [p.shape[0] for p in many] == [g.num_nodes for g in graphs]
    assert torch.equal(many[0], one)
    from_batch = model.predict(Batch.from_data_list(graphs))
    assert all(torch.equal(a, b) for a, b in zip(many, from_batch))
    probs = model.predict(graphs[1], return_scores=True)
    assert probs.shape == (graphs[1].num_nodes, 2) and torch.allclose(probs.sum(-1), torch.ones(graphs[1].num_nodes))
    attn = model.attention(graphs[2])
    assert attn.shape[1:] == (graphs[2].num_nodes, graphs[2].num_nodes)
    assert torch.allclose(attn.sum(-1), torch.ones_like(attn.sum(-1)), atol=1e-5)


def test_predict_refuses_graphs_that_do_not_fit(trained):
    _, _, ckpt = trained
    model = GraphGPS.load_from_checkpoint(ckpt)
    with pytest.raises(DataError, match="node features are float.*categorical"):
        model.predict(tiny_data(x_dim=3))
    wide = tiny_data()
    wide.x[0, 0] = 5
    with pytest.raises(DataError, match="category 5, beyond the 3"):
        model.predict(wide)
    with pytest.raises(DataError, match="no edges"):
        model.predict(tiny_data(edges=()))
    no_x = tiny_data()
    del no_x.x
    with pytest.raises(DataError, match="no node features"):
        model.predict(no_x)
    with pytest.raises(DataError, match="refers to node"):
        model.predict(tiny_data(edges=((0, 7),)))


def test_eval_recomputes_the_test_metric(trained, tmp_path):
    cfg, metrics, ckpt = trained
    ecfg = compose(CONF, [*TINY, "task=eval", f"ckpt_path={ckpt}", "data.batch_size=3"], tmp_path)
    got = runner.evaluate(ecfg)
    assert got["test/accuracy_sbm"] == pytest.approx(metrics["test/accuracy_sbm"], abs=1e-4)


def test_eval_refuses_data_the_model_cannot_read(trained, tmp_path):
    _, _, ckpt = trained
    # CLUSTER-recipe features take 7 values; the checkpoint knows 3
    ecfg = compose(CONF, [*TINY, "task=eval", f"ckpt_path={ckpt}", "data=cluster", "data.num_graphs={train: 2, val: 1, test: 2}",
                          "data.recipe={size_min: 3, size_max: 5}", "data.pe={lap_k: 4, rwse_k: 4}"], tmp_path)
    with pytest.raises(DataError, match="categor"):
        runner.evaluate(ecfg)


def test_predict_writes_one_row_per_node(trained, tmp_path):
    _, _, ckpt = trained
    pcfg = compose(CONF, [*TINY, "task=predict", f"ckpt_path={ckpt}"], tmp_path)
    result = runner.predict(pcfg)
    with open(result["written"][0]) as f:
        rows = list(csv.DictReader(f))
    model = GraphGPS.load_from_checkpoint(ckpt)
    dm = runner.datamodule_for_checkpoint(pcfg, str(ckpt))
    dm.setup("test")
    expected = model.predict([dm.sets["test"][i] for i in range(len(dm.sets["test"]))])
    assert len(rows) == sum(p.numel() for p in expected)
    assert set(rows[0]) == {"graph", "node", "prediction", "target", "prob_0", "prob_1"}
    first = [int(r["prediction"]) for r in rows if r["graph"] == "0"]
    assert first == expected[0].tolist()


def test_resume_continues_from_last(tmp_path):
    _, first = _train(tmp_path, "name=resume")
    step = torch.load(first["last_checkpoint"], weights_only=True)["global_step"]
    _, second = _train(tmp_path, "name=resume", "ckpt_path=last", "trainer.max_epochs=2")
    after = torch.load(second["last_checkpoint"], weights_only=True)
    # one more epoch of the same steps (Lightning writes last.ckpt at train end, epoch 2, when the
    # monitored metric did not improve, at epoch end otherwise)
    assert after["global_step"] == 2 * step and after["epoch"] in (1, 2)


@pytest.mark.parametrize(
    "extra",
    [["model=gt"], ["model=graphormer"], ["model=gine"], ["mixer=gla", "model.node_order=random"]],
    ids=["gt", "graphormer", "gine", "gps-gla"],
)
def test_models_train_through_the_harness(tmp_path, extra):
    _, metrics = _train(tmp_path, *extra, "debug=fdr")
    assert 0 <= metrics["test/accuracy_sbm"] <= 100


def test_cli_fast_dev_run(tmp_path):
    """The real console path once: `polyformer train graphs experiment=smoke debug=fdr` in a subprocess."""
    done = run_cli(["train", "graphs", *TINY, "name=cli", "debug=fdr"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads(next((tmp_path / "runs" / "graphs" / "cli").rglob("metrics.json")).read_text())
    assert 0 <= metrics["test/accuracy_sbm"] <= 100
