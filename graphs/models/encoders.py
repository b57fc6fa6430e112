"""Input encoders: node/edge features of any kind, Laplacian PE (DeepSet over eigenpairs), RWSE."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polyformer.core.errors import ConfigError


class FeatureEncoder(nn.Module):
    """Embeds one attribute by its spec: float -> Linear, categorical -> sum of per-column embeddings,
    none -> one learned vector for every row (GraphGPS's "DummyEdge" for graphs without edge features)."""

    def __init__(self, spec: dict[str, Any] | None, dim: int):
        super().__init__()
        spec = dict(spec or {"kind": "none"})
        self.kind = spec["kind"]
        if self.kind == "float":
            self.proj = nn.Linear(int(spec["dim"]), dim)
        elif self.kind == "categorical":
            self.tables = nn.ModuleList(nn.Embedding(int(v), dim) for v in spec["vocab"])
        elif self.kind == "none":
            self.const = nn.Parameter(torch.randn(dim) * 0.02)
        else:
            raise ConfigError(f"unknown feature kind '{self.kind}' (float, categorical or none)")

    def forward(self, feat: torch.Tensor | None, count: int) -> torch.Tensor:
        """`[count, dim]` embeddings of `feat` (`feat` may be None when the kind is none)."""
        if self.kind == "none":
            return self.const.expand(count, -1)
        if feat is None:
            raise ConfigError("this model was built for features that the batch does not have")
        if self.kind == "float":
            return self.proj(feat.float().view(count, -1))
        feat = feat.long().view(count, -1)
        out = self.tables[0](feat[:, 0])
        for j in range(1, len(self.tables)):
            out = out + self.tables[j](feat[:, j])
        return out


class LapPEEncoder(nn.Module):
    """GraphGPS's DeepSet Laplacian encoder: each (eigenvector entry, eigenvalue) pair through an MLP,
    padded pairs masked out, summed over the k eigenpairs. Eigenvector signs are flipped at random per
    graph and eigenvector while training (the sign of an eigenvector is arbitrary)."""

    def __init__(self, k: int, dim: int, layers: int = 2):
        super().__init__()
        mods: list[nn.Module] = [nn.Linear(2, dim), nn.ReLU()]
        for _ in range(layers - 1):
            mods += [nn.Linear(dim, dim), nn.ReLU()]
        self.mlp = nn.Sequential(*mods)
        self.k = k

    def forward(self, vec: torch.Tensor, val: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        if self.training:
            sign = torch.randint(0, 2, (num_graphs, vec.shape[1]), device=vec.device).to(vec.dtype) * 2 - 1
            vec = vec * sign[batch]
        valid = val >= 0
        pairs = torch.stack([vec, val.clamp(min=0)], dim=-1)  # [N, k, 2]
        out = self.mlp(pairs) * valid[..., None].to(vec.dtype)
        return out.sum(1)


class RWSEEncoder(nn.Module):
    """Random-walk return probabilities -> BatchNorm -> Linear (GraphGPS's RWSE encoder)."""

    def __init__(self, k: int, dim: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(k)
        self.proj = nn.Linear(k, dim)

    def forward(self, rwse: torch.Tensor) -> torch.Tensor:
        return self.proj(self.norm(rwse))


class NodeEncoder(nn.Module):
    """Node features plus the positional encodings the data carries.

    `combine="concat"` (GraphGPS): features to `dim - n_pe * pe_dim`, each encoding to `pe_dim`, concatenated
    (`pe_dim` is capped at `dim // (n_pe + 1)` so small models keep room for the features).
    `combine="add"` (Graph Transformer): features and each encoding to `dim`, summed.
    """

    def __init__(self, node_features: dict, pe: dict | None, dim: int, pe_dim: int = 16, combine: str = "concat", use_pe: bool = True):
        super().__init__()
        pe = dict(pe or {}) if use_pe else {}
        self.lap_k, self.rwse_k = int(pe.get("lap_k") or 0), int(pe.get("rwse_k") or 0)
        n_pe = int(self.lap_k > 0) + int(self.rwse_k > 0)
        if combine not in ("concat", "add"):
            raise ConfigError(f"pe combine must be 'concat' or 'add', got '{combine}'")
        self.combine = combine
        pe_dim = min(pe_dim, dim // (n_pe + 1)) if n_pe else pe_dim
        enc_dim = pe_dim if combine == "concat" else dim
        x_dim = dim - n_pe * pe_dim if combine == "concat" else dim
        if x_dim < 1:
            raise ConfigError(f"model dim {dim} leaves no room for features next to {n_pe} encodings of pe_dim {pe_dim}")
        self.x = FeatureEncoder(node_features, x_dim)
        self.lap = LapPEEncoder(self.lap_k, enc_dim) if self.lap_k else None
        self.rwse = RWSEEncoder(self.rwse_k, enc_dim) if self.rwse_k else None

    def forward(self, batch) -> torch.Tensor:
        n = batch.num_nodes
        parts = [self.x(getattr(batch, "x", None), n)]
        if self.lap is not None:
            parts.append(self.lap(batch.lap_vec, batch.lap_val, batch.batch, batch.num_graphs))
        if self.rwse is not None:
            parts.append(self.rwse(batch.rwse))
        if self.combine == "concat":
            return torch.cat(parts, dim=-1)
        return torch.stack(parts).sum(0)
