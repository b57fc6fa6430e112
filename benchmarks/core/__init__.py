"""Benchmarks of the core token mixers and their ops: `python -m benchmarks.core.mixers` (see README.md)."""
