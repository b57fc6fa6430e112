"""The graphs domain's model registry: `MODELS.build({"name": "gps", ...}, hints=data_spec_sizes)`."""

from polyformer.core.registry import Registry

MODELS = Registry("graph model")
