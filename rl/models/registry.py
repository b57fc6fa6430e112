"""The registry of polyformer.rl's policy networks (`MODELS.build({"name": "dt", ...}, hints=...)`)."""

from polyformer.core.registry import Registry

MODELS = Registry("rl model")
