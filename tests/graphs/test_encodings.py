"""LapPE satisfies the eigen-equation of the Laplacian; RWSE equals the diagonal of random-walk matrix powers."""

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_dense_adj

from polyformer.core.errors import ConfigError
from polyformer.graphs.data import encodings as E


def _graph():
    # a 6-cycle with a chord and a pendant node: eigenvalues are distinct enough, one node of degree 1
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (0, 3), (5, 6)]
    ei = torch.tensor(edges).T
    return Data(edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=7)


def _dense_laplacian(g, norm):
    a = to_dense_adj(g.edge_index, max_num_nodes=g.num_nodes)[0].double()
    d = a.sum(1)
    if norm == "none":
        return torch.diag(d) - a
    s = torch.diag(d.pow(-0.5))
    return torch.eye(len(d), dtype=torch.double) - s @ a @ s


@pytest.mark.parametrize("norm", ["none", "sym"])
def test_lap_pe_solves_the_eigen_equation(norm):
    g = _graph()
    vec, val = E.laplacian_pe(g.edge_index, g.num_nodes, k=4, norm=norm)
    lap = _dense_laplacian(g, norm)
    lam = val[0].double()
    assert torch.all(val == val[0])  # eigenvalues repeated on every node
    assert torch.all(lam[1:] >= lam[:-1])  # ascending: the k lowest
    assert lam[0] == pytest.approx(0.0, abs=1e-5)
    assert torch.allclose(lap @ vec.double(), vec.double() * lam, atol=1e-4)
    assert torch.allclose(vec.double().T @ vec.double(), torch.eye(4, dtype=torch.double), atol=1e-4)
    full = torch.linalg.eigvalsh(lap)
    assert torch.allclose(lam, full[:4], atol=1e-4)


def test_lap_pe_pads_small_graphs():
    g = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=2)
    vec, val = E.laplacian_pe(g.edge_index, 2, k=5)
    assert vec.shape == (2, 5) and torch.all(vec[:, 2:] == 0) and torch.all(val[:, 2:] == -1)
    assert torch.all(val[:, :2] >= 0)


def test_rwse_matches_matrix_powers():
    g = _graph()
    out = E.random_walk_se(g.edge_index, g.num_nodes, steps=5)
    a = to_dense_adj(g.edge_index, max_num_nodes=g.num_nodes)[0].double()
    p = a / a.sum(1, keepdim=True)
    for t in range(1, 6):
        assert torch.allclose(out[:, t - 1].double(), torch.diagonal(torch.linalg.matrix_power(p, t)), atol=1e-6)
    assert torch.all(out[:, 0] == 0)  # no self-loops: never back after one step


def test_sparse_paths_match_dense(monkeypatch):
    g = _graph()
    dense_rw = E.random_walk_se(g.edge_index, g.num_nodes, 4)
    _, dense_val = E.laplacian_pe(g.edge_index, g.num_nodes, 3)
    monkeypatch.setattr(E, "DENSE_LIMIT", 2)
    assert torch.allclose(E.random_walk_se(g.edge_index, g.num_nodes, 4), dense_rw, atol=1e-6)
    vec, val = E.laplacian_pe(g.edge_index, g.num_nodes, 3)
    assert torch.allclose(val, dense_val, atol=1e-4)
    lap = _dense_laplacian(g, "none").float()
    assert torch.allclose(lap @ vec, vec * val[0], atol=1e-3)


def test_transform_adds_and_reports_encodings():
    t = E.GraphEncodings.from_config({"lap_k": 3, "rwse_k": 2})
    g = _graph()
    assert t.missing(g)
    g = t(g)
    assert g.lap_vec.shape == (7, 3) and g.lap_val.shape == (7, 3) and g.rwse.shape == (7, 2)
    assert not t.missing(g)
    assert t.config() == {"lap_k": 3, "lap_norm": "none", "rwse_k": 2}
    with pytest.raises(ConfigError):
        E.GraphEncodings.from_config({"lap": 3})
