"""polyformer.core: token mixers, blocks and the training harness every domain stands on."""

from polyformer.core.blocks import Block, MixerStack
from polyformer.core.errors import CheckpointError, ConfigError, DataError, PolyformerError
from polyformer.core.mixers import TokenMixer, build_mixer, list_mixers, register_mixer

__version__ = "0.1.0"


def load(path, **kwargs):
    """Restore any polyformer checkpoint to its own LightningModule class (see training.checkpoint.load)."""
    from polyformer.core.training.checkpoint import load as _load

    return _load(path, **kwargs)


__all__ = [
    "build_mixer",
    "list_mixers",
    "register_mixer",
    "load",
    "Block",
    "MixerStack",
    "TokenMixer",
    "PolyformerError",
    "ConfigError",
    "DataError",
    "CheckpointError",
]
