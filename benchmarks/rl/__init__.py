"""Benchmarks of polyformer.rl: normalised scores on the embedded mixed-quality datasets, speed vs HF."""
