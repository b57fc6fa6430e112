"""Local message passing with edge features: GatedGCN (Bresson & Laurent) and GINE (Hu et al.)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GINEConv
from torch_geometric.utils import scatter

from polyformer.core.errors import ConfigError


def make_norm(kind: str, dim: int) -> nn.Module:
    """"batch" (GraphGPS's default), "layer", or "none"."""
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be batch, layer or none, got '{kind}'")


class GatedGCNLayer(nn.Module):
    """Residual gated graph convolution with edge features, as benchmarking-gnns and GraphGPS use it.

    For an edge j -> i: `e'_ij = C e_ij + D h_i + E h_j`, `s_ij = sigmoid(e'_ij)`,
    `h'_i = A h_i + sum_j s_ij * B h_j / (sum_j s_ij + eps)`; then norm, ReLU, dropout and a residual
    connection on both nodes and edges. Returns `(h, e)`.
    """

    def __init__(self, dim: int, dropout: float = 0.0, norm: str = "batch", residual: bool = True):
        super().__init__()
        self.A, self.B, self.C, self.D, self.E = (nn.Linear(dim, dim) for _ in range(5))
        self.norm_h, self.norm_e = make_norm(norm, dim), make_norm(norm, dim)
        self.dropout, self.residual = dropout, residual

    def forward(self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        src, dst = edge_index
        n = h.shape[0]
        e_new = self.C(e) + self.D(h)[dst] + self.E(h)[src]
        gate = torch.sigmoid(e_new)
        num = scatter(gate * self.B(h)[src], dst, dim=0, dim_size=n, reduce="sum")
        den = scatter(gate, dst, dim=0, dim_size=n, reduce="sum")
        h_new = self.A(h) + num / (den + 1e-6)
        h_new = F.dropout(F.relu(self.norm_h(h_new)), self.dropout, self.training)
        e_new = F.dropout(F.relu(self.norm_e(e_new)), self.dropout, self.training)
        if self.residual:
            h_new, e_new = h + h_new, e + e_new
        return h_new, e_new


class GINELayer(nn.Module):
    """GINE convolution (`h'_i = MLP((1 + eps) h_i + sum_j ReLU(h_j + e_ji))`) via PyG's GINEConv.

    Returns the raw convolution output; callers add dropout / residual / norm (GraphGPS does so).
    """

    def __init__(self, dim: int):
        super().__init__()
        mlp = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.conv = GINEConv(mlp, train_eps=True)

    def forward(self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.conv(h, edge_index, e)
