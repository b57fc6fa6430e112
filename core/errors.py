"""Errors polyformer raises for bad input: each message says what is wrong and how to fix it."""


class PolyformerError(Exception):
    """Base of every error polyformer raises on purpose; the CLI prints these as one line."""


class ConfigError(PolyformerError, ValueError):
    """A configuration value, override or registry name is wrong."""


class DataError(PolyformerError, ValueError):
    """Input data is missing, malformed or does not fit the model."""


class CheckpointError(PolyformerError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another domain or model."""
