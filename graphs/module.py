"""GraphModule (alias GraphGPS): loss, metrics, optimizer and inference for every graph model and task."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from polyformer.core.errors import ConfigError, DataError
from polyformer.core.training.optim import build_optimization
from polyformer.graphs.data.checks import check_graph, normalize_graph
from polyformer.graphs.data.encodings import GraphEncodings
from polyformer.graphs.data.spec import check_feature_fits, feature_spec
from polyformer.graphs.data.transductive import masked
from polyformer.graphs.metrics import build_metric
from polyformer.graphs.models import MODELS
from polyformer.graphs.models.dense import graph_index

SPEC_KEYS = ("task", "level", "metric", "loss", "node_features", "edge_features", "out_dim", "pe")


class GraphModule(L.LightningModule):
    """Trains a graph model from the `MODELS` registry on node- or graph-level tasks.

    Args:
        model: model config, `{"name": "gps", "dim": 64, ...}` (sizes come from `data`).
        optim: optimizer config for `polyformer.core.training.optim.build_optimization`.
        data: the datamodule's `data_spec()`: task, metric, loss, feature specs, classes, encodings.

    Inference: `predict(graphs)` (classes / values per graph) and `attention(graph)` (global attention
    of one graph). `GraphGPS.load_from_checkpoint(path).predict(data)` is the downstream use.
    """

    def __init__(self, model: dict[str, Any], optim: dict[str, Any] | None = None, data: dict[str, Any] | None = None):
        super().__init__()
        self.save_hyperparameters()
        spec = dict(data or {})
        missing = [k for k in SPEC_KEYS if k not in spec]
        if missing:
            raise ConfigError(f"GraphModule needs the datamodule's data_spec(); missing {missing}")
        self.spec = spec
        hints = {k: spec[k] for k in ("node_features", "edge_features", "out_dim", "level", "pe")}
        self.net = MODELS.build(model, hints=hints)
        self.val_metric = build_metric(spec["metric"], spec.get("num_classes"))
        self.test_metric = build_metric(spec["metric"], spec.get("num_classes"))
        self.encodings = GraphEncodings.from_config(spec.get("pe"))

    # ------------------------------------------------------------------ training
    def forward(self, batch) -> torch.Tensor:
        """Raw model outputs: node logits `[N, C]`, graph logits `[G, C]` or values `[G, T]`."""
        return self.net(batch)

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        name = self.spec["loss"]
        if name == "ce":
            return F.cross_entropy(out, y)
        if name == "weighted_ce":
            return weighted_cross_entropy(out, y)
        if name == "l1":
            return F.l1_loss(out, y.view_as(out))
        if name == "mse":
            return F.mse_loss(out, y.view_as(out))
        if name == "bce":
            y = y.view_as(out)
            labelled = ~torch.isnan(y)
            return F.binary_cross_entropy_with_logits(out[labelled], y[labelled])
        raise ConfigError(f"unknown loss '{name}'")

    def _size(self, batch) -> int:
        if self.spec["level"] == "graph":
            return int(graph_index(batch)[1])
        mask = getattr(batch, "node_mask", None)
        return int(batch.num_nodes) if mask is None else int(mask.sum())

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        out, y = masked(self(batch), batch)  # a transductive split scores its own nodes only
        loss = self._loss(out, y)
        self.log("train/loss", loss, prog_bar=True, batch_size=self._size(batch))
        return loss

    def _eval_step(self, batch, stage: str, metric) -> None:
        out, y = masked(self(batch), batch)
        self.log(f"{stage}/loss", self._loss(out, y), batch_size=self._size(batch))
        metric.update(out.detach(), y)
        self.log(f"{stage}/{self.spec['metric']}", metric, prog_bar=True, batch_size=self._size(batch))

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_metric)

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_metric)

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        batch_vec, num_graphs = graph_index(batch)
        return {
            "out": self(batch).detach().cpu(),
            "batch": batch_vec.cpu(),
            "num_graphs": num_graphs,
            "y": batch.y.cpu() if getattr(batch, "y", None) is not None else None,
        }

    def configure_optimizers(self):
        return build_optimization(self, self.hparams.optim)

    # ------------------------------------------------------------------ inference
    def prepare_graphs(self, graphs: Data | Batch | Sequence[Data]) -> Batch:
        """Check graphs against the checkpoint (features, sizes), add missing encodings, batch them."""
        if isinstance(graphs, Batch):
            graphs = graphs.to_data_list()
        elif isinstance(graphs, Data):
            graphs = [graphs]
        graphs = list(graphs)
        if not graphs:
            raise DataError("predict needs at least one graph")
        edgeless = "keep" if self.spec.get("edgeless") == "keep" else "error"
        prepared = []
        for i, g in enumerate(graphs):
            if not isinstance(g, Data):
                raise DataError(f"graph {i} is a {type(g).__name__}, not a torch_geometric.data.Data")
            g = normalize_graph(g.clone(), self.spec["task"])
            check_graph(g, f"graph {i}", self.spec["task"], need_y=False, edgeless=edgeless)
            if self.encodings.missing(g):
                g = self.encodings(g)
            prepared.append(g)
        check_feature_fits("node features", feature_spec([g.x for g in prepared]), self.spec["node_features"])
        edge = [getattr(g, "edge_attr", None) for g in prepared]
        edge_spec = feature_spec(edge) if all(e is not None for e in edge) else {"kind": "none"}
        check_feature_fits("edge features", edge_spec, self.spec["edge_features"])
        keep = ("x", "edge_index", "edge_attr", "lap_vec", "lap_val", "rwse")
        clean = [Data(num_nodes=g.num_nodes, **{k: g[k] for k in keep if k in g}) for g in prepared]
        return Batch.from_data_list(clean).to(self.device)

    @torch.no_grad()
    def predict(self, graphs: Data | Batch | Sequence[Data], return_scores: bool = False):
        """Predictions for one graph (a tensor) or several (a list, one tensor per graph).

        Node classification: the class of every node `[N]`; graph classification: the class `[]`;
        graph regression: the values `[T]`; graph binary: the probabilities `[T]`. With
        `return_scores=True`, class probabilities (`[N, C]` / `[C]`) instead of classes.
        """
        single = isinstance(graphs, Data) and not isinstance(graphs, Batch)
        was_training = self.training
        self.eval()
        try:
            batch = self.prepare_graphs(graphs)
            out = self(batch)
        finally:
            self.train(was_training)
        values = self._decode(out, return_scores)
        if self.spec["level"] == "node":
            per_graph = list(values.split(torch.diff(batch.ptr).tolist()))
        else:
            per_graph = list(values.unbind(0))
        per_graph = [v.cpu() for v in per_graph]
        return per_graph[0] if single else per_graph

    def _decode(self, out: torch.Tensor, scores: bool) -> torch.Tensor:
        task = self.spec["task"]
        if task.endswith("classification"):
            return out.softmax(-1) if scores else out.argmax(-1)
        if task == "graph_binary":
            return out.sigmoid()
        return out

    @torch.no_grad()
    def attention(self, graph: Data, layer: int = -1) -> torch.Tensor:
        """Global attention weights `[heads, N, N]` of one graph at one layer (row i: what node i attends to)."""
        if not hasattr(self.net, "node_attention"):
            raise ConfigError(f"model '{self.hparams.model.get('name')}' has no global softmax attention to show")
        was_training = self.training
        self.eval()
        try:
            return self.net.node_attention(self.prepare_graphs([graph]), layer).cpu()
        finally:
            self.train(was_training)

    def write_predictions(self, outputs: list[dict[str, Any]], datamodule, output_dir: str | Path) -> list[Path]:
        """`predictions.csv` in `output_dir`: one row per node (node tasks) or per graph, with targets if known."""
        path = Path(output_dir) / "predictions.csv"
        node_level = self.spec["level"] == "node"
        offset, rows = 0, []
        for chunk in outputs:
            values = self._decode(chunk["out"], scores=False)
            probs = chunk["out"].softmax(-1) if self.spec["task"].endswith("classification") else None
            y = chunk["y"]
            if node_level:
                graph = chunk["batch"] + offset
                starts = torch.cumsum(torch.bincount(chunk["batch"], minlength=chunk["num_graphs"]), 0)
                starts = torch.cat([starts.new_zeros(1), starts[:-1]])
                local = torch.arange(values.shape[0]) - starts[chunk["batch"]]
                for i in range(values.shape[0]):
                    row = [int(graph[i]), int(local[i]), _fmt(values[i]), _fmt(y[i]) if y is not None else ""]
                    rows.append(row + ([f"{float(p):.6g}" for p in probs[i]] if probs is not None else []))
            else:
                for i in range(values.shape[0]):
                    row = [offset + i, "", _fmt(values[i]), _fmt(y[i]) if y is not None else ""]
                    rows.append(row + ([f"{float(p):.6g}" for p in probs[i]] if probs is not None else []))
            offset += chunk["num_graphs"]
        header = ["graph", "node", "prediction", "target"]
        if self.spec["task"].endswith("classification"):
            header += [f"prob_{c}" for c in range(int(self.spec["out_dim"]))]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)
        return [path]


GraphGPS = GraphModule
"""Alias of GraphModule: `GraphGPS.load_from_checkpoint(path).predict(data)`."""


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """GraphGPS's class-balanced cross-entropy for PATTERN/CLUSTER: class c weighs (V - n_c) / V in the batch."""
    v = y.numel()
    counts = torch.bincount(y, minlength=logits.shape[-1]).to(logits.dtype)
    weight = (v - counts) / v * (counts > 0).to(logits.dtype)
    if not bool((weight > 0).any()):  # a batch with one class only: plain cross-entropy
        return F.cross_entropy(logits, y)
    return F.cross_entropy(logits, y, weight=weight)


def _fmt(value: torch.Tensor) -> str:
    """A prediction or target as CSV text: integers as they are, floats with 6 significant digits."""
    flat = value.reshape(-1)
    if flat.is_floating_point():
        return " ".join(f"{float(v):.6g}" for v in flat)
    return " ".join(str(int(v)) for v in flat)
