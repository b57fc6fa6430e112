"""Packing the nodes of a batch of graphs into padded per-graph rows (for global mixers) and back,
and the structural quantities computed on them: shortest-path distances and degrees."""

from __future__ import annotations

import torch


def graph_index(batch) -> tuple[torch.Tensor, int]:
    """`(batch vector [N], number of graphs)`; a single `Data` (no batch vector) is one graph."""
    vec = getattr(batch, "batch", None)
    if vec is None:
        return torch.zeros(batch.num_nodes, dtype=torch.long, device=batch.edge_index.device), 1
    return vec, int(batch.num_graphs)


class DenseBatch:
    """Where each node sits in a `[G, T]` padded layout (T = largest graph), with the padding mask.

    Nodes keep their order inside each graph unless `order_key` is given: then each graph's nodes are
    placed by ascending key (e.g. degree, or a random key for random orders). Graphs never mix: a mixer
    that honours `mask` sees each graph's nodes alone.
    """

    def __init__(self, batch_vec: torch.Tensor, num_graphs: int, order_key: torch.Tensor | None = None):
        n = batch_vec.numel()
        device = batch_vec.device
        counts = torch.bincount(batch_vec, minlength=num_graphs)
        self.num_graphs, self.max_nodes = num_graphs, int(counts.max()) if n else 0
        start = torch.cumsum(counts, 0) - counts
        if order_key is None:
            order = torch.argsort(batch_vec, stable=True)
        else:
            by_key = torch.argsort(order_key, stable=True)
            order = by_key[torch.argsort(batch_vec[by_key], stable=True)]
        pos = torch.empty(n, dtype=torch.long, device=device)
        pos[order] = torch.arange(n, device=device) - start[batch_vec[order]]
        self.pos = pos
        self.batch = batch_vec
        self.index = batch_vec * self.max_nodes + pos
        self.mask = torch.arange(self.max_nodes, device=device)[None, :] < counts[:, None]

    def to_dense(self, x: torch.Tensor) -> torch.Tensor:
        """`[N, D]` -> `[G, T, D]` (zeros at padding)."""
        out = x.new_zeros(self.num_graphs * self.max_nodes, x.shape[-1])
        out[self.index] = x
        return out.view(self.num_graphs, self.max_nodes, x.shape[-1])

    def to_sparse(self, x: torch.Tensor) -> torch.Tensor:
        """`[G, T, D]` -> `[N, D]`."""
        return x.reshape(self.num_graphs * self.max_nodes, -1)[self.index]

    def adjacency(self, edge_index: torch.Tensor) -> torch.Tensor:
        """Dense 0/1 adjacency `[G, T, T]` (symmetrised; edges only join nodes of the same graph)."""
        g, t = self.num_graphs, self.max_nodes
        adj = torch.zeros(g, t, t, device=edge_index.device)
        src, dst = edge_index
        adj[self.batch[src], self.pos[src], self.pos[dst]] = 1.0
        return ((adj + adj.transpose(1, 2)) > 0).float()


@torch.no_grad()
def shortest_path_distances(dense: DenseBatch, edge_index: torch.Tensor, max_dist: int) -> torch.Tensor:
    """Hop distances `[G, T, T]` by breadth-first search on the dense adjacency; pairs further than
    `max_dist` hops apart or unreachable get `max_dist + 1`."""
    adj = dense.adjacency(edge_index)
    g, t = dense.num_graphs, dense.max_nodes
    dist = torch.full((g, t, t), max_dist + 1, dtype=torch.long, device=adj.device)
    reached = torch.eye(t, dtype=torch.bool, device=adj.device).expand(g, t, t).clone()
    dist[reached] = 0
    frontier = reached.float()
    for d in range(1, max_dist + 1):
        new = (torch.bmm(frontier, adj) > 0) & ~reached
        if not bool(new.any()):
            break
        dist[new] = d
        reached |= new
        frontier = new.float()
    return dist


def node_degree(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """In-degree of every node (= degree for the undirected graphs stored in both directions)."""
    deg = torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
    if edge_index.numel():
        deg.scatter_add_(0, edge_index[1], torch.ones(edge_index.shape[1], dtype=torch.long, device=edge_index.device))
    return deg
