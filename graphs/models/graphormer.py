"""Graphormer-style graph transformer (Ying et al., "Do Transformers Really Perform Bad for Graph
Representation?", NeurIPS 2021): full softmax attention over each graph's nodes with

- degree centrality: a learned embedding of each node's degree added to its input embedding;
- spatial encoding: a learned per-head bias for each shortest-path distance, passed to core
  `attention` as `attn_bias` (shared by all layers, as in the paper);
- edge encoding, for adjacent pairs: a per-head bias from the features of the edge joining them
  (the length-1 case of the paper's average over the edges of a shortest path);
- a graph token attached to every node with its own learned per-head bias, read out for graph tasks.

Pre-LayerNorm transformer layers with a GELU MLP. For message passing plus these biases, use `gps`
with `spd_max_dist`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from polyformer.core.errors import ConfigError
from polyformer.core.layers import MLP
from polyformer.graphs.models.dense import DenseBatch, graph_index, node_degree, shortest_path_distances
from polyformer.graphs.models.encoders import FeatureEncoder, NodeEncoder
from polyformer.graphs.models.global_mixer import GlobalMixer, kept_attention, mixer_name
from polyformer.graphs.models.heads import TaskHead
from polyformer.graphs.models.registry import MODELS


class GraphormerLayer(nn.Module):
    """Pre-LN block: `x + drop(attn(LN(x), bias))`, then `x + MLP(LN(x))`."""

    def __init__(self, dim: int, mixer, num_heads: int, dropout: float, attn_dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.glob = GlobalMixer(dim, mixer, num_heads, attn_dropout)
        self.mlp = MLP(dim, 2 * dim, dropout=dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.glob.mix(self.norm1(x), mask, bias))
        return x + self.mlp(self.norm2(x))


@MODELS.register("graphormer")
class Graphormer(nn.Module):
    """Graphormer-style model: degree + feature (+ PE) embedding, SPD-biased attention, graph token.

    Args:
        dim, num_layers, num_heads, dropout, attn_dropout: the transformer.
        mixer: must be softmax attention ("attention"): the biases are additive attention scores.
        max_dist: distances 0..max_dist get their own bias; further or unreachable pairs share one.
        max_degree: degrees above this share the last degree embedding.
        head_layers: task head depth (graph tasks read the graph token; node tasks each node).
        node_features, edge_features, out_dim, level, pe: from the data spec (filled by the module).
    """

    def __init__(
        self,
        dim: int = 64,
        num_layers: int = 4,
        num_heads: int = 4,
        dropout: float = 0.0,
        attn_dropout: float = 0.1,
        mixer: str | Mapping[str, Any] = "attention",
        max_dist: int = 5,
        max_degree: int = 64,
        pe_dim: int = 16,
        head_layers: int = 2,
        node_features: dict | None = None,
        edge_features: dict | None = None,
        out_dim: int = 2,
        level: str = "node",
        pe: dict | None = None,
    ):
        super().__init__()
        if mixer_name(mixer) != "attention":
            raise ConfigError(f"graphormer's structural biases need softmax attention (mixer=attention), not '{mixer_name(mixer)}'")
        self.node_enc = NodeEncoder(node_features or {"kind": "none"}, pe, dim, pe_dim, combine="concat")
        self.degree = nn.Embedding(max_degree + 1, dim)
        self.graph_token = nn.Parameter(torch.randn(dim) * 0.02)
        self.layers = nn.ModuleList(GraphormerLayer(dim, mixer, num_heads, dropout, attn_dropout) for _ in range(num_layers))
        heads = self.layers[0].glob.num_heads
        self.spatial = nn.Embedding(max_dist + 2, heads)
        self.token_bias = nn.Parameter(torch.zeros(heads))
        has_edges = (edge_features or {"kind": "none"})["kind"] != "none"
        self.edge_bias = FeatureEncoder(edge_features, heads) if has_edges else None
        self.norm = nn.LayerNorm(dim)
        self.head = TaskHead(dim, out_dim, level, head_layers)
        self.max_dist, self.max_degree = max_dist, max_degree

    def forward(self, batch) -> torch.Tensor:
        """Node logits `[N, out]` or graph outputs `[G, out]` for a PyG batch."""
        batch_vec, num_graphs = graph_index(batch)
        deg = node_degree(batch.edge_index, batch.num_nodes).clamp(max=self.max_degree)
        h = self.node_enc(batch) + self.degree(deg)
        dense = DenseBatch(batch_vec, num_graphs)
        x = torch.cat([self.graph_token.expand(num_graphs, 1, -1), dense.to_dense(h)], dim=1)
        mask = torch.cat([dense.mask.new_ones(num_graphs, 1), dense.mask], dim=1)
        bias = self.spatial(shortest_path_distances(dense, batch.edge_index, self.max_dist)).permute(0, 3, 1, 2)
        if self.edge_bias is not None:
            src, dst = batch.edge_index
            per_edge = self.edge_bias(batch.edge_attr, src.numel())  # [E, H]
            edge_term = torch.zeros_like(bias).permute(0, 2, 3, 1).index_put(
                (dense.batch[src], dense.pos[src], dense.pos[dst]), per_edge, accumulate=True
            )
            bias = bias + edge_term.permute(0, 3, 1, 2)
        bias = nn.functional.pad(bias, (1, 0, 1, 0))  # the graph token's row and column
        token = self.token_bias.view(1, -1, 1)
        bias[:, :, 0, :] = token
        bias[:, :, 1:, 0] = token
        for layer in self.layers:
            x = layer(x, mask, bias)
        x = self.norm(x)
        nodes = dense.to_sparse(x[:, 1:])
        return self.head(nodes, batch_vec, num_graphs, graph_repr=x[:, 0])

    def global_mixers(self):
        """The attention of every layer (for attention maps; index 0 of each row is the graph token)."""
        return [layer.glob for layer in self.layers]

    def node_attention(self, batch, layer: int = -1) -> torch.Tensor:
        """Attention weights `[H, N, N]` between the nodes of the first graph in `batch` (graph token left out)."""
        weights, _ = kept_attention(self, self.global_mixers(), batch, layer)
        n = int((graph_index(batch)[0] == 0).sum())
        return weights[0][:, 1:n + 1, 1:n + 1]
