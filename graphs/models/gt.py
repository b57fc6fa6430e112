"""Graph Transformer (Dwivedi & Bresson, "A Generalization of Transformer Networks to Graphs", 2021).

Attention restricted to each node's neighbours, with edge features modulating the scores:
`w_ij = (Q h_i * K h_j / sqrt(d)) * E e_ij` per head and channel; the edge output is `w_ij`, the
attention weight is `softmax_j(clamp(sum_channels w_ij, -5, 5))`; then output projection, dropout,
residual and BatchNorm, and a 2x-wide FFN with residual and BatchNorm, for nodes and edges alike.
Laplacian eigenvectors (with random sign flips) are added to the input node embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.utils import scatter, softmax

from polyformer.core.errors import ConfigError
from polyformer.graphs.models.dense import graph_index
from polyformer.graphs.models.encoders import FeatureEncoder, NodeEncoder
from polyformer.graphs.models.heads import TaskHead
from polyformer.graphs.models.local import make_norm
from polyformer.graphs.models.registry import MODELS


class GTLayer(nn.Module):
    """One Graph Transformer layer with edge features; returns `(h, e)`."""

    def __init__(self, dim: int, num_heads: int = 8, dropout: float = 0.0, norm: str = "batch"):
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"GT dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.h, self.dk = num_heads, dim // num_heads
        self.q, self.k, self.v, self.ep = (nn.Linear(dim, dim, bias=False) for _ in range(4))
        self.o_h, self.o_e = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.norm_h1, self.norm_e1 = make_norm(norm, dim), make_norm(norm, dim)
        self.ffn_h = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.ffn_e = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.norm_h2, self.norm_e2 = make_norm(norm, dim), make_norm(norm, dim)
        self.dropout = dropout
        self.keep_attention = False
        self.last_attention: torch.Tensor | None = None

    def forward(self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        src, dst = edge_index
        n, m = h.shape[0], e.shape[0]
        q = self.q(h).view(n, self.h, self.dk)[dst]
        k = self.k(h).view(n, self.h, self.dk)[src]
        v = self.v(h).view(n, self.h, self.dk)[src]
        score = q * k / math.sqrt(self.dk) * self.ep(e).view(m, self.h, self.dk)
        weight = softmax(score.sum(-1).clamp(-5.0, 5.0), dst, num_nodes=n)  # [E, H]
        if self.keep_attention:
            self.last_attention = weight.detach()
        h_att = scatter(weight[..., None] * v, dst, dim=0, dim_size=n, reduce="sum").view(n, -1)
        h_new = self.norm_h1(h + F.dropout(self.o_h(h_att), self.dropout, self.training))
        e_new = self.norm_e1(e + F.dropout(self.o_e(score.reshape(m, -1)), self.dropout, self.training))
        h_new = self.norm_h2(h_new + F.dropout(self.ffn_h(h_new), self.dropout, self.training))
        e_new = self.norm_e2(e_new + F.dropout(self.ffn_e(e_new), self.dropout, self.training))
        return h_new, e_new


@MODELS.register("gt")
class GraphTransformer(nn.Module):
    """Graph Transformer: (features + LapPE) -> GT layers over neighbours with edge features -> task head.

    Args:
        dim, num_layers, num_heads, dropout, norm: the layer stack (paper: 10 layers, 8 heads on SBMs).
        head_layers, pool: task head depth and graph pooling.
        node_features, edge_features, out_dim, level, pe: from the data spec (filled by the module).
    """

    def __init__(
        self,
        dim: int = 64,
        num_layers: int = 4,
        num_heads: int = 8,
        dropout: float = 0.0,
        norm: str = "batch",
        head_layers: int = 3,
        pool: str = "mean",
        node_features: dict | None = None,
        edge_features: dict | None = None,
        out_dim: int = 2,
        level: str = "node",
        pe: dict | None = None,
    ):
        super().__init__()
        self.node_enc = NodeEncoder(node_features or {"kind": "none"}, pe, dim, combine="add")
        self.edge_enc = FeatureEncoder(edge_features, dim)
        self.layers = nn.ModuleList(GTLayer(dim, num_heads, dropout, norm) for _ in range(num_layers))
        self.head = TaskHead(dim, out_dim, level, head_layers, pool)

    def forward(self, batch) -> torch.Tensor:
        """Node logits `[N, out]` or graph outputs `[G, out]` for a PyG batch."""
        batch_vec, num_graphs = graph_index(batch)
        h = self.node_enc(batch)
        e = self.edge_enc(getattr(batch, "edge_attr", None), batch.edge_index.shape[1])
        for layer in self.layers:
            h, e = layer(h, e, batch.edge_index)
        return self.head(h, batch_vec, num_graphs)
