"""Early, clear errors for graphs that do not fit: missing features, bad edge_index, no edges, wrong labels.

`TASKS` are the four tasks the domain trains:
    node_classification   y: long [N] (one class per node)
    graph_classification  y: long [1] (one class per graph)
    graph_regression      y: float [1, T] (T targets per graph)
    graph_binary          y: float [1, T] of 0/1 (NaN = missing), e.g. ogbg-molhiv
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch_geometric.data import Data

from polyformer.core.errors import ConfigError, DataError

TASKS = ("node_classification", "graph_classification", "graph_regression", "graph_binary")
EDGELESS = ("error", "drop", "keep")


def task_level(task: str) -> str:
    """'node' or 'graph'."""
    if task not in TASKS:
        raise ConfigError(f"unknown task '{task}'. Tasks: {', '.join(TASKS)}")
    return "node" if task.startswith("node") else "graph"


def normalize_graph(g: Data, task: str) -> Data:
    """Bring common PyG layouts to the domain's: 1-D edge_attr -> [E, 1], 1-D float x -> [N, 1], y shapes per task."""
    if getattr(g, "edge_attr", None) is not None and g.edge_attr.dim() == 1:
        g.edge_attr = g.edge_attr.view(-1, 1)
    if getattr(g, "x", None) is not None and g.x.dim() == 1:
        g.x = g.x.view(-1, 1)
    y = getattr(g, "y", None)
    if y is not None:
        if task in ("node_classification", "graph_classification"):
            g.y = y.view(-1).long()
        else:
            g.y = y.view(1, -1).float()
    return g


def check_graph(g: Data, where: str, task: str, *, need_y: bool = True, edgeless: str = "error") -> bool:
    """Raise DataError with a fix if `g` is malformed; False when it has no edges and `edgeless="drop"`."""
    level = task_level(task)
    if not isinstance(g, Data):
        raise DataError(f"{where} is a {type(g).__name__}, not a torch_geometric.data.Data graph")
    x = getattr(g, "x", None)
    if x is None:
        raise DataError(
            f"{where} has no node features (data.x is missing). Give every graph an x tensor [num_nodes, F], "
            "or set data.fill_x=degree (node degree as a feature) or data.fill_x=constant."
        )
    n = int(g.num_nodes) if g.num_nodes is not None else x.shape[0]
    if x.dim() != 2 or x.shape[0] != n:
        raise DataError(f"{where}: x has shape {tuple(x.shape)} but the graph has {n} nodes; x must be [num_nodes, F]")
    if n == 0:
        raise DataError(f"{where} has no nodes; remove empty graphs from the dataset")
    if not (x.is_floating_point() or x.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.bool)):
        raise DataError(f"{where}: x has dtype {x.dtype}; use float features or integer categories")
    if x.is_floating_point() and not torch.isfinite(x).all():
        raise DataError(f"{where}: x contains NaN or inf; clean or impute the node features first")
    if not x.is_floating_point() and x.numel() and int(x.min()) < 0:
        raise DataError(f"{where}: categorical node features must be >= 0, found {int(x.min())}")
    ei = getattr(g, "edge_index", None)
    if ei is None:
        raise DataError(f"{where} has no edge_index; give a LongTensor [2, num_edges] (it may have 0 columns)")
    if ei.dim() != 2 or ei.shape[0] != 2:
        raise DataError(f"{where}: edge_index must be [2, num_edges], got shape {tuple(ei.shape)}")
    if ei.dtype != torch.long:
        raise DataError(f"{where}: edge_index must be torch.long, got {ei.dtype}")
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
        raise DataError(
            f"{where}: edge_index refers to node {int(ei.max()) if int(ei.max()) >= n else int(ei.min())} "
            f"but the graph has nodes 0..{n - 1}; fix edge_index or num_nodes"
        )
    if ei.shape[1] == 0:
        if edgeless == "error":
            raise DataError(
                f"{where} has no edges. Set data.edgeless=keep to train on it anyway (its nodes then see only "
                "themselves and the global attention), or data.edgeless=drop to leave such graphs out."
            )
        if edgeless == "drop":
            return False
    ea = getattr(g, "edge_attr", None)
    if ea is not None and ea.shape[0] != ei.shape[1]:
        raise DataError(f"{where}: edge_attr has {ea.shape[0]} rows for {ei.shape[1]} edges")
    y = getattr(g, "y", None)
    if need_y:
        if y is None:
            raise DataError(f"{where} has no target (data.y) for the {task} task")
        if level == "node" and y.shape[0] != n:
            raise DataError(f"{where}: node-level y has {y.shape[0]} entries for {n} nodes")
        if level == "graph" and y.shape[0] != 1:
            raise DataError(f"{where}: graph-level y must have one row per graph, got shape {tuple(y.shape)}")
        if task.endswith("classification") and y.numel() and int(y.min()) < 0:
            raise DataError(f"{where}: class labels must be >= 0, found {int(y.min())}")
    return True


def check_graphs(graphs: Sequence[Data], split: str, task: str, *, need_y: bool = True, edgeless: str = "error") -> list[Data]:
    """Normalize and check every graph of a split; returns the graphs kept (edgeless ones dropped if asked)."""
    if edgeless not in EDGELESS:
        raise ConfigError(f"data.edgeless must be one of {EDGELESS}, got '{edgeless}'")
    kept = []
    for i, g in enumerate(graphs):
        g = normalize_graph(g, task)
        if check_graph(g, f"graph {i} of the {split} split", task, need_y=need_y, edgeless=edgeless):
            kept.append(g)
    if not kept:
        raise DataError(f"the {split} split has no graphs left to use")
    return kept


def fill_node_features(g: Data, how: str | None, max_degree: int = 64) -> Data:
    """Give featureless graphs an x: "constant" (all 0) or "degree" (degree, capped, as a category)."""
    if how is None or getattr(g, "x", None) is not None:
        return g
    n = int(g.num_nodes)
    if how == "constant":
        g.x = torch.zeros(n, 1, dtype=torch.long)
    elif how == "degree":
        deg = torch.zeros(n, dtype=torch.long)
        if g.edge_index.numel():
            deg.scatter_add_(0, g.edge_index[1], torch.ones(g.edge_index.shape[1], dtype=torch.long))
        g.x = deg.clamp(max=max_degree).view(-1, 1)
    else:
        raise ConfigError(f"data.fill_x must be null, 'constant' or 'degree', got '{how}'")
    return g
