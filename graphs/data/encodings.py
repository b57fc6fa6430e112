"""Positional and structural encodings computed once per graph and stored with the dataset.

- Laplacian eigenvectors (LapPE): the `k` eigenpairs of the graph Laplacian with the smallest
  eigenvalues (the trivial one included, as in GraphGPS), stored as `data.lap_vec[N, k]` (unit-norm
  eigenvectors) and `data.lap_val[N, k]` (the eigenvalues, repeated on every node). Graphs with fewer
  than `k` nodes are padded with eigenvector 0 and eigenvalue -1, which the encoder masks out.
  Eigenvector signs are arbitrary; models flip them at random per graph while training.
- Random-walk structural encoding (RWSE, Dwivedi et al. 2022): `data.rwse[N, K]` with
  `rwse[i, t-1] = (P^t)[i, i]`, the probability that a random walk from node i is back at i after
  t steps, where `P = D^-1 A` (a node without edges stays at 0).

`GraphEncodings(lap_k=..., rwse_k=...)` is the transform applied at generation / first load; its
`config()` goes into the cache stamp and the checkpoint, so a model always sees the encodings it was
trained with.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch_geometric.data import Data

from polyformer.core.errors import ConfigError

DENSE_LIMIT = 4096  # above this many nodes, encodings use sparse matrices
LAP_NORMS = ("none", "sym")


@contextlib.contextmanager
def _one_thread():
    """Small dense eigenproblems run fastest on one thread (and do not fight other processes for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _adjacency(edge_index: torch.Tensor, num_nodes: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency (self-loops dropped, duplicates merged) as scipy CSR."""
    ei = edge_index.cpu().numpy()
    keep = ei[0] != ei[1]
    src, dst = ei[0, keep], ei[1, keep]
    data = np.ones(src.shape[0], dtype=np.float64)
    a = sp.coo_matrix((data, (src, dst)), shape=(num_nodes, num_nodes)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    return a.tocsr()


def laplacian(edge_index: torch.Tensor, num_nodes: int, norm: str = "none") -> sp.csr_matrix:
    """`L = D - A` (norm="none") or `I - D^-1/2 A D^-1/2` (norm="sym"; isolated nodes get L_ii = 0)."""
    if norm not in LAP_NORMS:
        raise ConfigError(f"Laplacian norm must be one of {LAP_NORMS}, got '{norm}'")
    a = _adjacency(edge_index, num_nodes)
    deg = np.asarray(a.sum(1)).ravel()
    if norm == "none":
        return (sp.diags(deg) - a).tocsr()
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    return (sp.diags((deg > 0).astype(np.float64)) - sp.diags(inv_sqrt) @ a @ sp.diags(inv_sqrt)).tocsr()


def laplacian_pe(edge_index: torch.Tensor, num_nodes: int, k: int, norm: str = "none") -> tuple[torch.Tensor, torch.Tensor]:
    """The `k` lowest Laplacian eigenpairs: (vectors [N, k], eigenvalues repeated per node [N, k]); padded."""
    lap = laplacian(edge_index, num_nodes, norm)
    m = min(k, num_nodes)
    if num_nodes <= DENSE_LIMIT or m >= num_nodes - 1:
        with _one_thread():
            evals, evecs = torch.linalg.eigh(torch.from_numpy(lap.toarray()))
        vals, vecs = evals[:m].numpy(), evecs[:, :m].numpy()
    else:
        vals, vecs = spla.eigsh(lap.astype(np.float64), k=m, which="SA", tol=1e-6)
        order = np.argsort(vals)
        vals, vecs = vals[order], vecs[:, order]
    vals = np.clip(vals, 0.0, None)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=0, keepdims=True), 1e-12)
    out_vec = torch.zeros(num_nodes, k)
    out_val = torch.full((num_nodes, k), -1.0)
    out_vec[:, :m] = torch.from_numpy(vecs).float()
    out_val[:, :m] = torch.from_numpy(vals).float()[None, :]
    return out_vec, out_val


def random_walk_se(edge_index: torch.Tensor, num_nodes: int, steps: int) -> torch.Tensor:
    """RWSE `[N, steps]`: diagonal of `(D^-1 A)^t` for t = 1..steps."""
    a = _adjacency(edge_index, num_nodes)
    deg = np.asarray(a.sum(1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0.0)
    p = (sp.diags(inv) @ a).tocsr()
    out = np.zeros((num_nodes, steps), dtype=np.float64)
    if num_nodes <= DENSE_LIMIT:
        pd = torch.from_numpy(p.toarray())
        power = torch.eye(num_nodes, dtype=pd.dtype)
        with _one_thread():
            for t in range(steps):
                power = power @ pd
                out[:, t] = torch.diagonal(power).numpy()
    else:
        power = sp.identity(num_nodes, format="csr")
        for t in range(steps):
            power = (power @ p).tocsr()
            out[:, t] = power.diagonal()
    return torch.from_numpy(out).float()


class GraphEncodings:
    """Transform adding LapPE (`lap_vec`, `lap_val`) and/or RWSE (`rwse`) to a `Data` object.

    Args:
        lap_k: number of Laplacian eigenpairs (0: none).
        lap_norm: "none" (combinatorial `D - A`, GraphGPS) or "sym" (normalised, Dwivedi & Bresson).
        rwse_k: number of random-walk steps (0: none).
    """

    def __init__(self, lap_k: int = 0, lap_norm: str = "none", rwse_k: int = 0):
        if lap_k < 0 or rwse_k < 0:
            raise ConfigError(f"encoding sizes must be >= 0, got lap_k={lap_k}, rwse_k={rwse_k}")
        if lap_norm not in LAP_NORMS:
            raise ConfigError(f"pe.lap_norm must be one of {LAP_NORMS}, got '{lap_norm}'")
        self.lap_k, self.lap_norm, self.rwse_k = int(lap_k), lap_norm, int(rwse_k)

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> GraphEncodings:
        """From a plain `{"lap_k": .., "lap_norm": .., "rwse_k": ..}` (None: no encodings)."""
        cfg = dict(cfg or {})
        unknown = sorted(set(cfg) - {"lap_k", "lap_norm", "rwse_k"})
        if unknown:
            raise ConfigError(f"unknown pe option(s) {unknown}; pe takes lap_k, lap_norm, rwse_k")
        return cls(**cfg)

    def config(self) -> dict[str, Any]:
        """The plain config (what the cache stamp and the checkpoint keep)."""
        return {"lap_k": self.lap_k, "lap_norm": self.lap_norm, "rwse_k": self.rwse_k}

    def missing(self, data: Data) -> bool:
        """True when `data` lacks an encoding this transform would add (or has one of another size)."""
        if self.lap_k and (getattr(data, "lap_vec", None) is None or data.lap_vec.shape[-1] != self.lap_k):
            return True
        return bool(self.rwse_k and (getattr(data, "rwse", None) is None or data.rwse.shape[-1] != self.rwse_k))

    def __call__(self, data: Data) -> Data:
        n = int(data.num_nodes)
        if self.lap_k:
            data.lap_vec, data.lap_val = laplacian_pe(data.edge_index, n, self.lap_k, self.lap_norm)
        if self.rwse_k:
            data.rwse = random_walk_se(data.edge_index, n, self.rwse_k)
        return data

    def __repr__(self) -> str:
        return f"GraphEncodings(lap_k={self.lap_k}, lap_norm={self.lap_norm!r}, rwse_k={self.rwse_k})"
