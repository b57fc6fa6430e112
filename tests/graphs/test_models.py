"""Every registered model with every core mixer: shapes, backward, and each graph attending only within itself."""

import pytest
import torch
from graph_helpers import spec_hints, with_edge_attr
from torch_geometric.data import Batch

from polyformer.core.errors import ConfigError
from polyformer.core.mixers import list_mixers
from polyformer.graphs.models import MODELS
from polyformer.graphs.models.dense import DenseBatch, shortest_path_distances

SMALL = {"dim": 16, "num_layers": 2}
CONFIGS = [
    {"name": "gps", "local": "gatedgcn"},
    {"name": "gps", "local": "gine", "spd_max_dist": 3},
    {"name": "gps", "mixer": None},
    {"name": "gps", "local": "none", "node_order": "degree"},
    {"name": "gt", "num_heads": 4},
    {"name": "graphormer", "num_heads": 2},
    {"name": "gine", "use_pe": True},
]


def _build(cfg, **hints):
    return MODELS.build({**SMALL, **cfg}, hints=spec_hints(**hints))


def test_registry_names():
    assert {"gps", "gt", "graphormer", "gine"} <= set(MODELS.names())


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{v}" for v in c.values()))
@pytest.mark.parametrize("level", ["node", "graph"])
def test_shapes_backward_and_batch_invariance(cfg, level, tiny_graphs):
    graphs = with_edge_attr(tiny_graphs)
    model = _build(cfg, edge_kind="categorical", level=level, out_dim=3)
    batch = Batch.from_data_list(graphs)
    out = model(batch)
    rows = batch.num_nodes if level == "node" else len(graphs)
    assert out.shape == (rows, 3)
    out.square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)
    assert all(g is not None for n, g in grads.items() if n.startswith(("node_enc", "head")))
    # only the edge outputs of the last layer may go unused
    assert all(g is not None for n, g in grads.items() if f"layers.{SMALL['num_layers'] - 1}." not in n), [
        n for n, g in grads.items() if g is None
    ]
    model.eval()
    with torch.no_grad():
        together = model(batch)
        alone = torch.cat([model(Batch.from_data_list([g])) for g in graphs])
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("mixer", list_mixers())
def test_gps_with_every_core_mixer(mixer, tiny_graphs):
    model = _build({"name": "gps", "mixer": {"name": mixer}, "num_heads": 2})
    batch = Batch.from_data_list(tiny_graphs)
    out = model(batch)
    assert out.shape == (batch.num_nodes, 2)
    out.sum().backward()
    model.eval()
    with torch.no_grad():
        alone = torch.cat([model(Batch.from_data_list([g])) for g in tiny_graphs])
        assert torch.allclose(model(batch), alone, atol=1e-4)


def test_graphormer_and_spd_bias_need_softmax_attention():
    linear = [m for m in list_mixers() if m != "attention"]
    assert linear, "core registers linear mixers (gla, mamba2, ...)"
    with pytest.raises(ConfigError, match="softmax attention"):
        _build({"name": "graphormer", "mixer": linear[0]})
    with pytest.raises(ConfigError, match="softmax attention"):
        _build({"name": "gps", "mixer": linear[0], "spd_max_dist": 3})


def test_shortest_path_distances_against_bfs(tiny_graphs):
    batch = Batch.from_data_list(tiny_graphs[:2])
    dense = DenseBatch(batch.batch, 2)
    dist = shortest_path_distances(dense, batch.edge_index, max_dist=3)
    for gi, g in enumerate(tiny_graphs[:2]):
        n = g.num_nodes
        adj = [set() for _ in range(n)]
        for s, d in g.edge_index.T.tolist():
            adj[s].add(d)
        for src in range(n):
            seen, frontier, level = {src: 0}, [src], 0
            while frontier:
                level += 1
                frontier = [v for u in frontier for v in adj[u] if v not in seen and not seen.update({v: level})]
            want = torch.tensor([min(seen.get(v, 4), 4) for v in range(n)])
            assert torch.equal(dist[gi, src, :n], want)


def test_attention_maps_are_row_stochastic(tiny_graphs):
    for cfg in ({"name": "gps", "num_heads": 2, "node_order": "degree"}, {"name": "graphormer", "num_heads": 2}):
        model = _build(cfg).eval()
        g = tiny_graphs[1]
        weights = model.node_attention(Batch.from_data_list([g]), layer=-1)
        assert weights.shape == (2, g.num_nodes, g.num_nodes)
        if cfg["name"] == "gps":
            assert torch.allclose(weights.sum(-1), torch.ones(2, g.num_nodes), atol=1e-5)
        assert torch.all(weights >= 0)


def test_gatedgcn_matches_graphgps_reference():
    """Our GatedGCN layer against a transcription of GraphGPS's GatedGCNLayer (graphgps/layer/gatedgcn_layer.py,
    after Bresson & Laurent / benchmarking-gnns): `e_ij = D h_i + E h_j + C e_ij`, `s = sigmoid(e_ij)`,
    `h_i' = A h_i + sum_j s_ij B h_j / (sum_j s_ij + 1e-6)`, then BatchNorm, ReLU and residual on nodes and edges."""
    from torch_geometric.nn import MessagePassing
    from torch_geometric.utils import scatter

    from polyformer.graphs.models.local import GatedGCNLayer

    class Reference(MessagePassing):
        def __init__(self, dim):
            super().__init__()
            self.A, self.B, self.C, self.D, self.E = (torch.nn.Linear(dim, dim) for _ in range(5))
            self.bn_node_x, self.bn_edge_e = torch.nn.BatchNorm1d(dim), torch.nn.BatchNorm1d(dim)

        def forward(self, x, e, edge_index):
            x_in, e_in = x, e
            x, e = self.propagate(edge_index, Bx=self.B(x), Dx=self.D(x), Ex=self.E(x), Ce=self.C(e), Ax=self.A(x))
            x, e = torch.relu(self.bn_node_x(x)), torch.relu(self.bn_edge_e(e))
            return x_in + x, e_in + e

        def message(self, Dx_i, Ex_j, Ce):
            self.e = Dx_i + Ex_j + Ce
            return torch.sigmoid(self.e)

        def aggregate(self, sigma_ij, index, Bx_j, Bx):
            num = scatter(sigma_ij * Bx_j, index, 0, dim_size=Bx.shape[0], reduce="sum")
            den = scatter(sigma_ij, index, 0, dim_size=Bx.shape[0], reduce="sum")
            return num / (den + 1e-6)

        def update(self, aggr_out, Ax):
            return Ax + aggr_out, self.e

    torch.manual_seed(0)
    dim, n = 16, 30
    ours, ref = GatedGCNLayer(dim), Reference(dim)
    for name in "ABCDE":
        getattr(ref, name).load_state_dict(getattr(ours, name).state_dict())
    edge_index = torch.randint(0, n, (2, 120))
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    h, e = torch.randn(n, dim), torch.randn(edge_index.shape[1], dim)
    for train in (True, False):
        ours.train(train), ref.train(train)
        (h1, e1), (h2, e2) = ours(h, e, edge_index), ref(h, e, edge_index)
        torch.testing.assert_close(h1, h2, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(e1, e2, atol=1e-5, rtol=1e-5)
