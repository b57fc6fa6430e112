"""Graph data: PATTERN/CLUSTER-recipe SBM generators, PyG/OGB loaders, positional encodings, the DataModule."""

from polyformer.graphs.data.datamodule import GraphDataModule
from polyformer.graphs.data.encodings import GraphEncodings, laplacian_pe, random_walk_se
from polyformer.graphs.data.sbm import CLUSTER_RECIPE, PATTERN_RECIPE, SBMRecipe, generate_sbm
from polyformer.graphs.data.sources import SOURCES

__all__ = [
    "GraphDataModule",
    "GraphEncodings",
    "laplacian_pe",
    "random_walk_se",
    "SBMRecipe",
    "PATTERN_RECIPE",
    "CLUSTER_RECIPE",
    "generate_sbm",
    "SOURCES",
]
