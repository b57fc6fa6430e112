"""Graph data: generate-once cache with a recipe stamp, PyG/OGB local roots, in-memory lists, bad input."""

import gzip
import json

import numpy as np
import pytest
import torch
from graph_helpers import tiny_data
from torch_geometric.data import Data

from polyformer.core.errors import ConfigError, DataError
from polyformer.graphs.data import GraphDataModule
from polyformer.graphs.data.spec import check_spec_fits

SMALL = {"num_graphs": {"train": 6, "val": 2, "test": 2}, "recipe": {"size_min": 3, "size_max": 6, "pattern_size": 4}}
PE = {"lap_k": 3, "lap_norm": "none", "rwse_k": 2}


def _dm(tmp_path, **kw):
    return GraphDataModule(**{"source": "pattern", "data_dir": str(tmp_path), "pe": PE, "batch_size": 4, **SMALL, **kw})


def test_sbm_is_generated_once_and_stamped(tmp_path):
    dm = _dm(tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    entries = list((tmp_path / "graphs").glob("pattern-*"))
    assert len(entries) == 1
    stamp = json.loads((entries[0] / "stamp.json").read_text())
    assert stamp["recipe"]["p"] == 0.5 and stamp["recipe"]["q"] == 0.35 and stamp["pe"] == PE
    assert stamp["counts"] == {"train": 6, "val": 2, "test": 2}
    before = (entries[0] / "train.pt").stat().st_mtime_ns
    again = _dm(tmp_path)
    again.prepare_data()
    again.setup("fit")
    assert (entries[0] / "train.pt").stat().st_mtime_ns == before  # reused, not rebuilt
    assert torch.equal(again.sets["train"][0].edge_index, dm.sets["train"][0].edge_index)
    changed = _dm(tmp_path, recipe={**SMALL["recipe"], "q": 0.2})
    changed.prepare_data()
    assert len(list((tmp_path / "graphs").glob("pattern-*"))) == 2  # a new entry, the old one kept
    spec = dm.data_spec()
    assert spec["task"] == "node_classification" and spec["num_classes"] == 2
    assert spec["node_features"] == {"kind": "categorical", "vocab": [3]}
    assert spec["edge_features"] == {"kind": "none"} and spec["pe"] == PE
    batch = next(iter(dm.train_dataloader()))
    assert batch.num_graphs == 4 and batch.lap_vec.shape[1] == 3 and batch.rwse.shape[1] == 2


def test_cluster_spec(tmp_path):
    dm = _dm(tmp_path, source="cluster", recipe={"size_min": 3, "size_max": 6})
    dm.prepare_data()
    dm.setup("fit")
    spec = dm.data_spec()
    assert spec["num_classes"] == 6 and spec["node_features"]["vocab"] == [7] and spec["metric"] == "accuracy_sbm"


def test_in_memory_graphs(tmp_path):
    graphs = [tiny_data(5 + i % 3, x_dim=4) for i in range(10)]
    dm = GraphDataModule.from_graphs(graphs, task="node_classification", pe=PE, data_dir=str(tmp_path))
    dm.setup("fit")
    spec = dm.data_spec()
    assert spec["node_features"] == {"kind": "float", "dim": 4}
    assert sum(len(dm.sets[s]) for s in ("train", "val", "test")) == 10
    assert dm.sets["train"][0].lap_vec.shape[1] == 3
    assert not list(tmp_path.iterdir())  # nothing written for in-memory graphs


def _expect(graphs, match, **kw):
    dm = GraphDataModule.from_graphs({"train": graphs, "val": graphs, "test": graphs}, task="node_classification", **kw)
    with pytest.raises(DataError, match=match):
        dm.setup("fit")


def test_bad_graphs_fail_early_with_a_fix():
    g = tiny_data()
    del g.x
    _expect([g], "no node features.*fill_x")
    bad = tiny_data()
    bad.edge_index = torch.tensor([[0, 9], [9, 0]])
    _expect([bad], "refers to node 9.*nodes 0..4")
    _expect([tiny_data(edges=())], "no edges.*edgeless=keep")
    short_y = tiny_data()
    short_y.y = short_y.y[:2]
    _expect([short_y], "node-level y has 2 entries for 5 nodes")
    nan_x = tiny_data(x_dim=2)
    nan_x.x[0, 0] = float("nan")
    _expect([nan_x], "NaN")
    _expect([object()], "not a torch_geometric")


def test_edgeless_and_featureless_options():
    graphs = [tiny_data(), tiny_data(edges=())]
    dm = GraphDataModule.from_graphs({"train": graphs, "val": graphs, "test": graphs}, task="node_classification", edgeless="drop")
    dm.setup("fit")
    assert len(dm.sets["train"]) == 1
    keep = GraphDataModule.from_graphs({"train": graphs, "val": graphs, "test": graphs}, task="node_classification", edgeless="keep")
    keep.setup("fit")
    assert len(keep.sets["train"]) == 2
    g = tiny_data()
    del g.x
    filled = GraphDataModule.from_graphs({"train": [g], "val": [g], "test": [g]}, task="node_classification", fill_x="degree")
    filled.setup("fit")
    assert filled.sets["train"][0].x.view(-1).tolist() == [1, 2, 2, 1, 0]


def test_features_that_do_not_fit_a_checkpoint(tmp_path):
    dm = _dm(tmp_path)
    dm.setup("fit")
    trained = dm.data_spec()
    other = GraphDataModule.from_graphs([tiny_data(6, x_dim=3) for _ in range(5)], task="node_classification")
    other.bind_spec(trained)
    with pytest.raises(DataError, match="node features are float.*categorical"):
        other.setup("test")
    wider = dict(trained, node_features={"kind": "categorical", "vocab": [2]})
    with pytest.raises(DataError, match="beyond the 2 categories"):
        check_spec_fits(dm._spec, wider)
    with pytest.raises(DataError, match="graph_regression"):
        check_spec_fits(dm._spec, dict(trained, task="graph_regression"))


def test_bad_config_values(tmp_path):
    with pytest.raises(ConfigError, match="unknown graph source"):
        GraphDataModule(source="cora")
    with pytest.raises(ConfigError, match="metric_mode=min"):
        GraphDataModule(source="zinc", metric_mode="max")
    with pytest.raises(ConfigError, match="data.task"):
        GraphDataModule(source="memory", graphs=[])


def test_missing_pyg_files_say_where_to_put_them(tmp_path):
    dm = GraphDataModule(source="zinc", root=str(tmp_path / "ZINC"), data_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"train.pickle.*ZINC/raw.*never downloads"):
        dm.prepare_data()
    gb = GraphDataModule(source="gnnbenchmark", name="CLUSTER", root=str(tmp_path / "gb"), data_dir=str(tmp_path / "cache"))
    assert gb.task == "node_classification" and gb.metric == "accuracy_sbm"
    with pytest.raises(DataError, match=r"CLUSTER.*never downloads"):
        gb.prepare_data()
    with pytest.raises(DataError, match="ogbg_molhiv/raw"):
        GraphDataModule(source="ogb", name="ogbg-molhiv", root=str(tmp_path / "ogb"), data_dir=str(tmp_path)).prepare_data()
    assert not (tmp_path / "ZINC" / "raw" / "train.pickle").exists()


def _write_tu(root, name="TOY", graphs=9):
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    edges, indicator, labels, node_labels, offset = [], [], [], [], 0
    for g in range(graphs):
        n = 3 + g % 3
        for i in range(n - 1):
            edges += [(offset + i + 1, offset + i + 2), (offset + i + 2, offset + i + 1)]
        indicator += [g + 1] * n
        node_labels += [i % 2 for i in range(n)]
        labels.append(g % 2)
        offset += n
    for key, rows in (("A", [f"{a}, {b}" for a, b in edges]), ("graph_indicator", indicator),
                      ("graph_labels", labels), ("node_labels", node_labels)):
        (raw / f"{name}_{key}.txt").write_text("".join(f"{r}\n" for r in rows))  # TU files end with a newline


def test_tu_dataset_from_a_local_root(tmp_path):
    _write_tu(tmp_path / "tu")
    dm = GraphDataModule(source="tu", name="TOY", root=str(tmp_path / "tu"), data_dir=str(tmp_path / "cache"), pe=PE)
    dm.prepare_data()
    dm.setup("fit")
    sizes = {s: len(dm.sets[s]) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 9 and min(sizes.values()) >= 1
    spec = dm.data_spec()
    assert spec["task"] == "graph_classification" and spec["num_classes"] == 2
    assert spec["node_features"] == {"kind": "float", "dim": 2}


def _gz(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(",".join(str(v) for v in np.atleast_1d(r)) for r in rows) + "\n")


def test_ogb_molhiv_folder(tmp_path):
    folder = tmp_path / "ogb" / "ogbg_molhiv"
    nodes, edges = [3, 2, 4, 3], [2, 1, 3, 2]
    edge_rows = [[0, 1], [1, 2], [0, 1], [0, 1], [1, 2], [2, 3], [0, 1], [1, 2]]
    _gz(folder / "raw" / "edge.csv.gz", edge_rows)
    _gz(folder / "raw" / "num-node-list.csv.gz", nodes)
    _gz(folder / "raw" / "num-edge-list.csv.gz", edges)
    _gz(folder / "raw" / "node-feat.csv.gz", [[6, 0, 2, 5, 1, 0, 2, 0, 0]] * sum(nodes))
    _gz(folder / "raw" / "edge-feat.csv.gz", [[0, 0, 0]] * sum(edges))
    _gz(folder / "raw" / "graph-label.csv.gz", [0, 1, 0, 1])
    for split, idx in (("train", [0, 1]), ("valid", [2]), ("test", [3])):
        _gz(folder / "split" / "scaffold" / f"{split}.csv.gz", idx)
    dm = GraphDataModule(source="ogb", name="ogbg-molhiv", root=str(tmp_path / "ogb"), data_dir=str(tmp_path / "c"), pe=PE)
    dm.prepare_data()
    dm.setup("fit")
    g = dm.sets["train"][1]
    assert g.num_nodes == 2 and g.edge_index.shape[1] == 2 and g.edge_attr.shape == (2, 3)  # reverse edges added
    assert g.y.shape == (1, 1) and float(g.y) == 1.0
    spec = dm.data_spec()
    assert spec["task"] == "graph_binary" and spec["metric"] == "rocauc" and spec["out_dim"] == 1
    assert spec["node_features"]["vocab"][0] == 119


def test_loads_a_pyg_processed_root(tmp_path):
    """A root holding only PyG's processed files is read without raw files and without any download."""
    from torch_geometric.data import InMemoryDataset

    processed = tmp_path / "TOY2" / "processed"
    processed.mkdir(parents=True)
    graphs = [Data(x=torch.randn(4, 2), edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), y=torch.tensor([i % 2]))
              for i in range(6)]
    data, slices = InMemoryDataset.collate(graphs)
    sizes = {"num_node_attributes": 2, "num_node_labels": 0, "num_edge_attributes": 0, "num_edge_labels": 0}
    torch.save((data.to_dict(), slices, sizes, Data), processed / "data.pt")
    dm = GraphDataModule(source="tu", name="TOY2", root=str(tmp_path), data_dir=str(tmp_path / "c"), pe=None)
    dm.prepare_data()
    dm.setup("fit")
    assert sum(len(dm.sets[s]) for s in ("train", "val", "test")) == 6


def test_one_large_graph_with_split_masks(tmp_path):
    import lightning as L

    from polyformer.graphs.module import GraphModule

    g = tiny_data(40, edges=[(i, (i + 1) % 40) for i in range(40)] + [(i, (i + 7) % 40) for i in range(40)])
    order = torch.randperm(40, generator=torch.Generator().manual_seed(0))
    for key, idx in (("train_mask", order[:24]), ("val_mask", order[24:32]), ("test_mask", order[32:])):
        mask = torch.zeros(40, dtype=torch.bool)
        mask[idx] = True
        g[key] = mask
    dm = GraphDataModule.from_graphs(g, task="node_classification", pe=PE, batch_size=1)
    dm.setup("fit")
    assert [int(dm.sets[s][0].node_mask.sum()) for s in ("train", "val", "test")] == [24, 8, 8]
    assert "train_mask" not in dm.sets["train"][0] and dm.sets["test"][0].lap_vec.shape == (40, 3)
    module = GraphModule(model={"name": "gps", "dim": 16, "num_layers": 1, "mixer": {"name": "attention"}},
                         data=dm.data_spec())
    got = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False).test(module, datamodule=dm, verbose=False)[0]
    view = dm.sets["test"][0]
    with torch.no_grad():
        out = module.eval()(next(iter(dm.test_dataloader())))
    mask = view.node_mask  # only the test nodes are scored
    want = torch.nn.functional.cross_entropy(out[mask], view.y[mask])
    assert got["test/loss"] == pytest.approx(float(want), rel=1e-4)
    assert got["test/accuracy"] == pytest.approx(100 * float((out[mask].argmax(-1) == view.y[mask]).float().mean()), rel=1e-4)
    bad = g.clone()
    bad.test_mask = bad.train_mask.clone()
    with pytest.raises(DataError, match="overlap"):
        GraphDataModule.from_graphs(bad, task="node_classification").setup("fit")
