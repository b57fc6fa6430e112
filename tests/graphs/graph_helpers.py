"""Helpers of the graphs tests: tiny graphs, model hints as GraphModule derives them."""

import torch
from torch_geometric.data import Data

from polyformer.graphs.data.sbm import PATTERN_RECIPE

TINY_RECIPE = PATTERN_RECIPE.with_overrides(
    {"num_graphs": {"train": 4, "val": 1, "test": 1}, "size_min": 3, "size_max": 6, "pattern_size": 4}
)
PE = {"lap_k": 4, "lap_norm": "none", "rwse_k": 3}
# overrides for a run of a few seconds through the harness
TINY = ["experiment=smoke", "logger=none", "callbacks.progress_bar.refresh_rate=0"]


def spec_hints(edge_kind: str = "none", level: str = "node", out_dim: int = 2) -> dict:
    """Model hints as GraphModule derives them from a data spec."""
    edge = {"kind": "none"} if edge_kind == "none" else {"kind": "categorical", "vocab": [3]}
    return {
        "node_features": {"kind": "categorical", "vocab": [3]},
        "edge_features": edge,
        "out_dim": out_dim,
        "level": level,
        "pe": PE,
    }


def with_edge_attr(graphs):
    out = []
    for g in graphs:
        g = g.clone()
        g.edge_attr = torch.randint(0, 3, (g.edge_index.shape[1], 1))
        out.append(g)
    return out


def tiny_data(num_nodes=5, edges=((0, 1), (1, 2), (2, 3)), x_dim=None) -> Data:
    ei = torch.tensor(edges, dtype=torch.long).T if edges else torch.zeros(2, 0, dtype=torch.long)
    if edges:
        ei = torch.cat([ei, ei.flip(0)], 1)
    x = torch.randint(0, 3, (num_nodes, 1)) if x_dim is None else torch.randn(num_nodes, x_dim)
    return Data(x=x, edge_index=ei, y=torch.randint(0, 2, (num_nodes,)), num_nodes=num_nodes)
