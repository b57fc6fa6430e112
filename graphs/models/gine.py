"""Plain GINE baseline: message passing with edge features only (no global attention, no encodings by default)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.graphs.models.dense import graph_index
from polyformer.graphs.models.encoders import FeatureEncoder, NodeEncoder
from polyformer.graphs.models.heads import TaskHead
from polyformer.graphs.models.local import GINELayer, make_norm
from polyformer.graphs.models.registry import MODELS


@MODELS.register("gine")
class GINE(nn.Module):
    """GINE layers with residual connections: `h = h + dropout(ReLU(norm(GINE(h, e))))`, then a task head.

    Args:
        dim, num_layers, dropout, norm: the layer stack.
        use_pe: also feed the data's positional encodings (off: a plain MPNN baseline).
        pe_dim, head_layers, pool: encoding width, task head depth and graph pooling.
        node_features, edge_features, out_dim, level, pe: from the data spec (filled by the module).
    """

    def __init__(
        self,
        dim: int = 64,
        num_layers: int = 4,
        dropout: float = 0.0,
        norm: str = "batch",
        use_pe: bool = False,
        pe_dim: int = 16,
        head_layers: int = 3,
        pool: str = "mean",
        node_features: dict | None = None,
        edge_features: dict | None = None,
        out_dim: int = 2,
        level: str = "node",
        pe: dict | None = None,
    ):
        super().__init__()
        self.node_enc = NodeEncoder(node_features or {"kind": "none"}, pe, dim, pe_dim, use_pe=use_pe)
        self.edge_enc = FeatureEncoder(edge_features, dim)
        self.convs = nn.ModuleList(GINELayer(dim) for _ in range(num_layers))
        self.norms = nn.ModuleList(make_norm(norm, dim) for _ in range(num_layers))
        self.head = TaskHead(dim, out_dim, level, head_layers, pool)
        self.dropout = dropout

    def forward(self, batch) -> torch.Tensor:
        """Node logits `[N, out]` or graph outputs `[G, out]` for a PyG batch."""
        batch_vec, num_graphs = graph_index(batch)
        h = self.node_enc(batch)
        e = self.edge_enc(getattr(batch, "edge_attr", None), batch.edge_index.shape[1])
        for conv, norm in zip(self.convs, self.norms):
            h = h + F.dropout(F.relu(norm(conv(h, e, batch.edge_index))), self.dropout, self.training)
        return self.head(h, batch_vec, num_graphs)
