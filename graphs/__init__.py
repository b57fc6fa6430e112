"""polyformer.graphs: graph transformers (GraphGPS, Graph Transformer, Graphormer-style biases) on PyG data."""
