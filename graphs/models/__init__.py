"""Graph models, registered by name in `MODELS`: "gps" (GraphGPS), "gt" (Graph Transformer),
"graphormer" (Graphormer-style biases) and "gine" (plain message-passing baseline)."""

from polyformer.graphs.models.gine import GINE
from polyformer.graphs.models.gps import GPS, GPSLayer
from polyformer.graphs.models.graphormer import Graphormer
from polyformer.graphs.models.gt import GraphTransformer, GTLayer
from polyformer.graphs.models.registry import MODELS

__all__ = ["MODELS", "GPS", "GPSLayer", "GraphTransformer", "GTLayer", "Graphormer", "GINE"]
