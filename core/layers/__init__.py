"""Shared layers: norms, MLPs, drop path, positional encodings."""
