"""Fixtures of the graphs tests."""

import pytest
from graph_helpers import PE, TINY_RECIPE
from torch_geometric.data import Batch

from polyformer.graphs.data.encodings import GraphEncodings
from polyformer.graphs.data.sbm import generate_sbm


@pytest.fixture(scope="session")
def tiny_graphs():
    """Four small PATTERN-recipe graphs of different sizes, with LapPE and RWSE."""
    return generate_sbm(TINY_RECIPE, seed=0, transform=GraphEncodings.from_config(PE))["train"]


@pytest.fixture
def tiny_batch(tiny_graphs):
    return Batch.from_data_list(tiny_graphs)
