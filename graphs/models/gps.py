"""GraphGPS (Rampasek et al., "Recipe for a General, Powerful, Scalable Graph Transformer", NeurIPS 2022).

Each layer sums a local message-passing update (GatedGCN or GINE, with edge features) and a global
update over all nodes of each graph from any core mixer in its bidirectional form, each with dropout,
residual and BatchNorm, then applies a 2x-wide MLP with residual and BatchNorm, as in the paper's
published code. Unlike PyG's GPSConv, the global part may be a linear mixer (for large graphs) and may
add shortest-path-distance attention biases (`spd_max_dist`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.graphs.models.dense import DenseBatch, graph_index, node_degree, shortest_path_distances
from polyformer.graphs.models.encoders import FeatureEncoder, NodeEncoder
from polyformer.graphs.models.global_mixer import GlobalMixer, kept_attention
from polyformer.graphs.models.heads import TaskHead
from polyformer.graphs.models.local import GatedGCNLayer, GINELayer, make_norm
from polyformer.graphs.models.registry import MODELS

LOCALS = ("gatedgcn", "gine", "none")
NODE_ORDERS = ("none", "degree", "random")


class GPSLayer(nn.Module):
    """One GraphGPS layer: `h = norm(h + local(h)) + norm(h + global(h))`, then `h = norm(h + MLP(h))`."""

    def __init__(
        self,
        dim: int,
        local: str = "gine",
        mixer: str | Mapping[str, Any] | None = "attention",
        num_heads: int = 4,
        dropout: float = 0.0,
        attn_dropout: float = 0.5,
        norm: str = "batch",
        spd_buckets: int | None = None,
    ):
        super().__init__()
        if local not in LOCALS:
            raise ConfigError(f"GPS local layer must be one of {LOCALS}, got '{local}'")
        if local == "none" and mixer is None:
            raise ConfigError("a GPS layer needs a local layer, a global mixer, or both")
        self.local_kind = local
        if local == "gatedgcn":
            self.local = GatedGCNLayer(dim, dropout=dropout, norm=norm)
        elif local == "gine":
            self.local = GINELayer(dim)
        self.norm_local = make_norm(norm, dim) if local != "none" else None
        self.glob = GlobalMixer(dim, mixer, num_heads, attn_dropout, spd_buckets) if mixer is not None else None
        self.norm_global = make_norm(norm, dim) if mixer is not None else None
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim), nn.Dropout(dropout))
        self.norm_ffn = make_norm(norm, dim)
        self.dropout = dropout

    def forward(self, h: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor, dense: DenseBatch, spd: torch.Tensor | None = None):
        parts = []
        if self.local_kind == "gatedgcn":
            h_local, e = self.local(h, e, edge_index)  # residual and dropout inside, as in GraphGPS
            parts.append(self.norm_local(h_local))
        elif self.local_kind == "gine":
            h_local = F.dropout(self.local(h, e, edge_index), self.dropout, self.training)
            parts.append(self.norm_local(h + h_local))
        if self.glob is not None:
            h_glob = F.dropout(self.glob(h, dense, spd), self.dropout, self.training)
            parts.append(self.norm_global(h + h_glob))
        h = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        return self.norm_ffn(h + self.ffn(h)), e


@MODELS.register("gps")
class GPS(nn.Module):
    """GraphGPS model: node/edge/PE encoders -> GPS layers -> task head.

    Args:
        dim: hidden width (GraphGPS: 64 on PATTERN, 48 on CLUSTER).
        num_layers: GPS layers (PATTERN 6, CLUSTER 16 in the published configs).
        local: "gine", "gatedgcn" (the published PATTERN/CLUSTER recipe) or "none" (a pure transformer).
        mixer: the global mixer (core name or dict), or None for a pure MPNN.
        num_heads, attn_dropout: offered to the mixer.
        dropout: dropout in the local, global and MLP branches.
        norm: "batch" (published recipe), "layer" or "none".
        pe_dim: width given to each positional encoding (concatenated to the node features).
        spd_max_dist: add learned per-head shortest-path-distance attention biases for distances
            0..spd_max_dist (further or unreachable share one bucket); softmax attention only.
        node_order: order of nodes in each graph's sequence for the global mixer: "none" (as stored),
            "degree" (ascending degree) or "random" (a fresh random order per batch while training,
            stored order in eval); matters for order-dependent linear mixers only.
        head_layers, pool: task head depth and graph pooling.
        node_features, edge_features, out_dim, level, pe: from the data spec (filled by the module).
    """

    def __init__(
        self,
        dim: int = 64,
        num_layers: int = 4,
        local: str = "gine",
        mixer: str | Mapping[str, Any] | None = "attention",
        num_heads: int = 4,
        dropout: float = 0.0,
        attn_dropout: float = 0.5,
        norm: str = "batch",
        pe_dim: int = 16,
        spd_max_dist: int | None = None,
        node_order: str = "none",
        head_layers: int = 3,
        pool: str = "mean",
        node_features: dict | None = None,
        edge_features: dict | None = None,
        out_dim: int = 2,
        level: str = "node",
        pe: dict | None = None,
    ):
        super().__init__()
        if node_order not in NODE_ORDERS:
            raise ConfigError(f"node_order must be one of {NODE_ORDERS}, got '{node_order}'")
        if isinstance(mixer, str) and mixer.lower() in ("none", "null", ""):
            mixer = None
        if isinstance(mixer, Mapping) and str(mixer.get("name", "")).lower() in ("none", "null"):
            mixer = None
        self.node_enc = NodeEncoder(node_features or {"kind": "none"}, pe, dim, pe_dim, combine="concat")
        self.edge_enc = FeatureEncoder(edge_features, dim) if local != "none" else None
        self.spd_max_dist = spd_max_dist
        buckets = spd_max_dist + 2 if spd_max_dist is not None else None
        self.layers = nn.ModuleList(
            GPSLayer(dim, local, mixer, num_heads, dropout, attn_dropout, norm, buckets) for _ in range(num_layers)
        )
        self.head = TaskHead(dim, out_dim, level, head_layers, pool)
        self.node_order = node_order
        self.has_global = mixer is not None

    def _dense(self, batch, batch_vec, num_graphs) -> DenseBatch:
        key = None
        if self.node_order == "degree":
            key = node_degree(batch.edge_index, batch.num_nodes).float()
        elif self.node_order == "random" and self.training:
            key = torch.rand(batch.num_nodes, device=batch_vec.device)
        return DenseBatch(batch_vec, num_graphs, key)

    def forward(self, batch) -> torch.Tensor:
        """Node logits `[N, out]` or graph outputs `[G, out]` for a PyG batch."""
        batch_vec, num_graphs = graph_index(batch)
        h = self.node_enc(batch)
        e = self.edge_enc(getattr(batch, "edge_attr", None), batch.edge_index.shape[1]) if self.edge_enc is not None else None
        dense = self._dense(batch, batch_vec, num_graphs) if self.has_global else None
        spd = shortest_path_distances(dense, batch.edge_index, self.spd_max_dist) if self.spd_max_dist is not None else None
        for layer in self.layers:
            h, e = layer(h, e, batch.edge_index, dense, spd)
        return self.head(h, batch_vec, num_graphs)

    def global_mixers(self) -> list[GlobalMixer]:
        """The global mixer of every layer (for attention maps)."""
        return [layer.glob for layer in self.layers if layer.glob is not None]

    def node_attention(self, batch, layer: int = -1) -> torch.Tensor:
        """Attention weights `[H, N, N]` of the first graph in `batch` at `layer`, in the graph's node order."""
        weights, pos = kept_attention(self, self.global_mixers(), batch, layer)
        n = int((graph_index(batch)[0] == 0).sum())
        pos = pos[:n]
        return weights[0][:, pos][:, :, pos]
