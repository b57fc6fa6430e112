"""Stochastic-block-model graphs made with the PATTERN and CLUSTER recipes of Dwivedi et al.

"Benchmarking Graph Neural Networks" (JMLR 2023, arXiv:2003.00982), appendix on the SBM datasets, and
their generator notebooks (benchmarking-gnns, data/SBMs). The parameters are written out in
`PATTERN_RECIPE` and `CLUSTER_RECIPE`; any of them can be changed from the data config
(`data.recipe.p=0.6`), which makes a new cache entry.

PATTERN (node classification, 2 classes: is the node part of the planted pattern?)
    - a base graph of 5 communities with sizes drawn uniformly from {5, ..., 34}
      (numpy's `randint(5, 35)`, as in the original notebook), intra-community edge probability
      p = 0.5 and inter-community q = 0.35;
    - node features uniform over a vocabulary of 3 values {0, 1, 2};
    - 100 patterns are drawn once per dataset (shared by all splits): 20 nodes each, internal edge
      probability p_pattern = 0.5, features uniform over {0, 1, 2};
    - each graph gets one of the 100 patterns at random, each (pattern node, base node) pair is joined
      with probability q_pattern = 0.5; label 1 for pattern nodes, 0 for the others;
    - 10,000 / 2,000 / 2,000 graphs (train / val / test), 44-188 nodes in the published set.

CLUSTER (node classification, 6 classes: which community is the node in?)
    - 6 communities with sizes drawn uniformly from {5, ..., 34}, p = 0.55, q = 0.25;
    - features are 0 ("unknown") except one randomly chosen node per community whose feature is
      its community index + 1 (a vocabulary of 7 values); the label of every node is its community;
    - 10,000 / 1,000 / 1,000 graphs.

Edges are undirected (both directions stored), without edge features. Node order is shuffled so the
position of a node says nothing about its class. Each graph also keeps `block` (its community; the
pattern is community 5 in PATTERN) so tests can check the edge densities of the recipe.

Generation is seeded per split and sequential, so a smaller `num_graphs` gives a prefix of the
larger dataset with the same seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data

from polyformer.core.errors import ConfigError

GENERATOR_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SBMRecipe:
    """Parameters of a PATTERN- or CLUSTER-style SBM dataset (see the module docstring)."""

    kind: str  # "pattern" | "cluster"
    num_communities: int
    size_min: int  # community sizes are drawn from {size_min, ..., size_max - 1}
    size_max: int
    p: float  # intra-community edge probability
    q: float  # inter-community edge probability
    vocab_size: int = 3  # PATTERN: node features uniform over {0, ..., vocab_size - 1}
    num_patterns: int = 100  # PATTERN: patterns drawn once per dataset
    pattern_size: int = 20
    p_pattern: float = 0.5  # PATTERN: edge probability inside the pattern
    q_pattern: float = 0.5  # PATTERN: edge probability between pattern and base graph
    num_graphs: dict[str, int] = field(default_factory=dict)

    def with_overrides(self, overrides: dict[str, Any] | None) -> SBMRecipe:
        """A copy with some fields changed (unknown names are a ConfigError)."""
        if not overrides:
            return self
        known = set(asdict(self))
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown SBM recipe field(s) {unknown}. Known: {sorted(known)}")
        out = replace(self, **{k: (dict(v) if isinstance(v, dict) else v) for k, v in overrides.items()})
        out.check()
        return out

    def check(self) -> None:
        """Raise ConfigError on impossible parameters."""
        if self.kind not in ("pattern", "cluster"):
            raise ConfigError(f"SBM recipe kind must be 'pattern' or 'cluster', got '{self.kind}'")
        if not 1 <= self.size_min < self.size_max:
            raise ConfigError(f"SBM community sizes need 1 <= size_min < size_max, got {self.size_min}, {self.size_max}")
        for name in ("p", "q", "p_pattern", "q_pattern"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"SBM probability {name} must be in [0, 1], got {value}")
        if self.num_communities < 1:
            raise ConfigError("SBM recipe needs at least one community")
        for split, n in self.num_graphs.items():
            if split not in SPLITS or int(n) < 1:
                raise ConfigError(f"num_graphs takes positive counts for {SPLITS}, got {split}={n}")

    @property
    def num_classes(self) -> int:
        return 2 if self.kind == "pattern" else self.num_communities

    @property
    def feature_vocab(self) -> int:
        """Number of distinct node-feature values."""
        return self.vocab_size if self.kind == "pattern" else self.num_communities + 1


PATTERN_RECIPE = SBMRecipe(
    kind="pattern", num_communities=5, size_min=5, size_max=35, p=0.5, q=0.35,
    vocab_size=3, num_patterns=100, pattern_size=20, p_pattern=0.5, q_pattern=0.5,
    num_graphs={"train": 10_000, "val": 2_000, "test": 2_000},
)
CLUSTER_RECIPE = SBMRecipe(
    kind="cluster", num_communities=6, size_min=5, size_max=35, p=0.55, q=0.25,
    num_graphs={"train": 10_000, "val": 1_000, "test": 1_000},
)
RECIPES = {"pattern": PATTERN_RECIPE, "cluster": CLUSTER_RECIPE}


def _symmetric_bernoulli(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Undirected simple-graph adjacency: each pair i < j joined with probability prob[i, j]."""
    n = prob.shape[0]
    iu, ju = np.triu_indices(n, k=1)
    keep = rng.random(iu.shape[0]) < prob[iu, ju]
    adj = np.zeros((n, n), dtype=bool)
    adj[iu[keep], ju[keep]] = True
    return adj | adj.T


def _community_sizes(recipe: SBMRecipe, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(recipe.size_min, recipe.size_max, size=recipe.num_communities)


def _block_probabilities(block: np.ndarray, p: float, q: float) -> np.ndarray:
    same = block[:, None] == block[None, :]
    return np.where(same, p, q)


def _to_data(adj: np.ndarray, x: np.ndarray, y: np.ndarray, block: np.ndarray, rng: np.random.Generator) -> Data:
    """Shuffle node order and pack one graph as a PyG `Data` (x: long [N, 1], y: long [N])."""
    perm = rng.permutation(adj.shape[0])
    adj, x, y, block = adj[perm][:, perm], x[perm], y[perm], block[perm]
    src, dst = np.nonzero(adj)
    return Data(
        x=torch.from_numpy(x.astype(np.int64)).view(-1, 1),
        edge_index=torch.from_numpy(np.stack([src, dst]).astype(np.int64)),
        y=torch.from_numpy(y.astype(np.int64)),
        block=torch.from_numpy(block.astype(np.int64)),
        num_nodes=int(adj.shape[0]),
    )


def make_patterns(recipe: SBMRecipe, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """The PATTERN recipe's fixed patterns: (adjacency [P, P], features [P]) pairs."""
    n = recipe.pattern_size
    full = np.full((n, n), recipe.p_pattern)
    return [
        (_symmetric_bernoulli(full, rng), rng.integers(0, recipe.vocab_size, size=n))
        for _ in range(recipe.num_patterns)
    ]


def pattern_graph(recipe: SBMRecipe, patterns, rng: np.random.Generator) -> Data:
    """One PATTERN graph: an SBM base graph with one of `patterns` planted and joined to it."""
    sizes = _community_sizes(recipe, rng)
    block = np.repeat(np.arange(recipe.num_communities), sizes)
    base = _symmetric_bernoulli(_block_probabilities(block, recipe.p, recipe.q), rng)
    x_base = rng.integers(0, recipe.vocab_size, size=block.shape[0])
    w0, u0 = patterns[int(rng.integers(0, len(patterns)))]
    n, n0 = base.shape[0], w0.shape[0]
    cross = rng.random((n0, n)) < recipe.q_pattern
    adj = np.zeros((n + n0, n + n0), dtype=bool)
    adj[:n, :n], adj[n:, n:], adj[n:, :n], adj[:n, n:] = base, w0, cross, cross.T
    block = np.concatenate([block, np.full(n0, recipe.num_communities)])
    y = (block == recipe.num_communities).astype(np.int64)
    return _to_data(adj, np.concatenate([x_base, u0]), y, block, rng)


def cluster_graph(recipe: SBMRecipe, rng: np.random.Generator) -> Data:
    """One CLUSTER graph: SBM communities, one node per community shows its label (feature = class + 1)."""
    sizes = _community_sizes(recipe, rng)
    block = np.repeat(np.arange(recipe.num_communities), sizes)
    adj = _symmetric_bernoulli(_block_probabilities(block, recipe.p, recipe.q), rng)
    x = np.zeros(block.shape[0], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    shown = starts + (rng.random(recipe.num_communities) * sizes).astype(np.int64)
    x[shown] = block[shown] + 1
    return _to_data(adj, x, block.copy(), block, rng)


def generate_sbm(recipe: SBMRecipe, seed: int = 0, transform=None) -> dict[str, list[Data]]:
    """All splits of a PATTERN/CLUSTER-recipe dataset as lists of `Data` (`transform` applied to each graph)."""
    recipe.check()
    root = np.random.SeedSequence([int(seed), GENERATOR_VERSION])
    pattern_seq, *split_seqs = root.spawn(1 + len(SPLITS))
    patterns = make_patterns(recipe, np.random.default_rng(pattern_seq)) if recipe.kind == "pattern" else None
    out: dict[str, list[Data]] = {}
    for split, seq in zip(SPLITS, split_seqs):
        rng = np.random.default_rng(seq)
        graphs = []
        for _ in range(int(recipe.num_graphs.get(split, 0))):
            g = pattern_graph(recipe, patterns, rng) if recipe.kind == "pattern" else cluster_graph(recipe, rng)
            graphs.append(transform(g) if transform is not None else g)
        out[split] = graphs
    return out
