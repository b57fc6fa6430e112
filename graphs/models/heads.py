"""Task heads: an MLP per node (node classification) or over pooled nodes (graph-level tasks)."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.utils import scatter

from polyformer.core.errors import ConfigError

POOLS = ("mean", "sum", "max")


class TaskHead(nn.Module):
    """`layers`-deep MLP (Linear-ReLU ... Linear, GraphGPS's post-MP head) on nodes or on pooled graphs."""

    def __init__(self, dim: int, out_dim: int, level: str, layers: int = 3, pool: str = "mean"):
        super().__init__()
        if level not in ("node", "graph"):
            raise ConfigError(f"head level must be 'node' or 'graph', got '{level}'")
        if pool not in POOLS:
            raise ConfigError(f"pool must be one of {POOLS}, got '{pool}'")
        mods: list[nn.Module] = []
        for _ in range(max(0, layers - 1)):
            mods += [nn.Linear(dim, dim), nn.ReLU()]
        mods.append(nn.Linear(dim, out_dim))
        self.mlp = nn.Sequential(*mods)
        self.level, self.pool = level, pool

    def forward(self, h: torch.Tensor, batch_vec: torch.Tensor, num_graphs: int, graph_repr: torch.Tensor | None = None) -> torch.Tensor:
        """Node outputs `[N, out]`, or graph outputs `[G, out]` (from `graph_repr` if given, else pooled)."""
        if self.level == "node":
            return self.mlp(h)
        if graph_repr is None:
            graph_repr = scatter(h, batch_vec, dim=0, dim_size=num_graphs, reduce=self.pool)
        return self.mlp(graph_repr)
