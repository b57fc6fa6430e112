"""polyformer.graphs: graph transformers (GraphGPS, Graph Transformer, Graphormer-style biases) on PyG data.

    polyformer train graphs                       # GraphGPS on PATTERN-recipe graphs (generated offline)
    polyformer train graphs mixer=gla data=cluster
    polyformer eval graphs ckpt_path=...          # test a checkpoint
    GraphGPS.load_from_checkpoint(path).predict(data)
"""

from polyformer.graphs.data import GraphDataModule
from polyformer.graphs.module import GraphGPS, GraphModule

__all__ = ["GraphModule", "GraphGPS", "GraphDataModule"]
