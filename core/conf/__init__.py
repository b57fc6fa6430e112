"""Shared Hydra config groups, reached by each domain through its searchpath."""
