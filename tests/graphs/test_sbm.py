"""The SBM generators follow the published PATTERN / CLUSTER recipes (edge densities, sizes, features, labels)."""

import numpy as np
import pytest
import torch

from polyformer.core.errors import ConfigError
from polyformer.graphs.data.sbm import CLUSTER_RECIPE, PATTERN_RECIPE, generate_sbm


def _densities(graphs, num_blocks):
    """Observed edge probability inside each block and between blocks (pairs i < j)."""
    edges = np.zeros((num_blocks, num_blocks))
    pairs = np.zeros((num_blocks, num_blocks))
    for g in graphs:
        b = g.block.numpy()
        src, dst = g.edge_index.numpy()
        keep = src < dst
        np.add.at(edges, (b[src[keep]], b[dst[keep]]), 1)
        sizes = np.bincount(b, minlength=num_blocks)
        pairs += np.outer(sizes, sizes)
        pairs[np.diag_indices(num_blocks)] -= sizes
    edges = edges + edges.T - np.diag(np.diag(edges))
    pairs = pairs - np.diag(np.diag(pairs)) / 2
    return edges, pairs


def _block_rates(edges, pairs, blocks):
    intra = sum(edges[i, i] for i in blocks) / sum(pairs[i, i] for i in blocks)
    inter_e = sum(edges[i, j] for i in blocks for j in blocks if i < j)
    inter_p = sum(pairs[i, j] for i in blocks for j in blocks if i < j)
    return intra, inter_e / inter_p


def test_pattern_recipe_statistics():
    recipe = PATTERN_RECIPE.with_overrides({"num_graphs": {"train": 40, "val": 1, "test": 1}})
    graphs = generate_sbm(recipe, seed=3)["train"]
    edges, pairs = _densities(graphs, recipe.num_communities + 1)
    intra, inter = _block_rates(edges, pairs, range(recipe.num_communities))
    assert intra == pytest.approx(0.5, abs=0.02)
    assert inter == pytest.approx(0.35, abs=0.02)
    pat = recipe.num_communities
    assert edges[pat, pat] / pairs[pat, pat] == pytest.approx(0.5, abs=0.03)  # p_pattern
    cross = edges[pat, :pat].sum() / pairs[pat, :pat].sum()
    assert cross == pytest.approx(0.5, abs=0.02)  # q_pattern
    for g in graphs:
        n_base = g.num_nodes - recipe.pattern_size
        assert recipe.num_communities * recipe.size_min <= n_base <= recipe.num_communities * (recipe.size_max - 1)
        assert int(g.y.sum()) == recipe.pattern_size
        assert torch.equal(g.y, (g.block == pat).long())
        assert set(g.x.view(-1).tolist()) <= {0, 1, 2}
        assert g.x.shape == (g.num_nodes, 1) and getattr(g, "edge_attr", None) is None
        src, dst = g.edge_index
        assert not bool((src == dst).any())
        assert g.edge_index.shape[1] % 2 == 0  # undirected, both directions


def test_pattern_uses_a_fixed_set_of_patterns():
    recipe = PATTERN_RECIPE.with_overrides({"num_graphs": {"train": 30, "val": 1, "test": 1}, "num_patterns": 2})
    graphs = generate_sbm(recipe, seed=0)["train"]
    signatures = set()
    for g in graphs:
        idx = (g.y == 1).nonzero().view(-1)
        signatures.add(tuple(sorted(g.x.view(-1)[idx].tolist())))
    assert len(signatures) <= 2


def test_cluster_recipe_statistics():
    recipe = CLUSTER_RECIPE.with_overrides({"num_graphs": {"train": 40, "val": 1, "test": 1}})
    graphs = generate_sbm(recipe, seed=5)["train"]
    edges, pairs = _densities(graphs, recipe.num_communities)
    intra, inter = _block_rates(edges, pairs, range(recipe.num_communities))
    assert intra == pytest.approx(0.55, abs=0.02)
    assert inter == pytest.approx(0.25, abs=0.02)
    for g in graphs:
        x = g.x.view(-1)
        labelled = x > 0
        assert int(labelled.sum()) == recipe.num_communities  # one revealed node per cluster
        assert torch.equal(x[labelled] - 1, g.y[labelled])
        assert sorted(g.y[labelled].tolist()) == list(range(recipe.num_communities))
        assert torch.equal(g.y, g.block)


def test_generation_is_seeded_and_prefix_stable():
    small = CLUSTER_RECIPE.with_overrides({"num_graphs": {"train": 3, "val": 1, "test": 1}})
    big = CLUSTER_RECIPE.with_overrides({"num_graphs": {"train": 5, "val": 1, "test": 1}})
    a, b = generate_sbm(small, seed=1)["train"], generate_sbm(big, seed=1)["train"]
    for g, h in zip(a, b[:3]):
        assert torch.equal(g.edge_index, h.edge_index) and torch.equal(g.x, h.x)
    c = generate_sbm(small, seed=2)["train"]
    assert not torch.equal(a[0].x, c[0].x) or a[0].num_nodes != c[0].num_nodes


def test_bad_recipe_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown SBM recipe"):
        PATTERN_RECIPE.with_overrides({"bogus": 1})
    with pytest.raises(ConfigError, match="probability"):
        PATTERN_RECIPE.with_overrides({"p": 1.5})
