"""Hydra configs of polyformer.rl: train.yaml and the model/, data/, experiment/ groups."""
