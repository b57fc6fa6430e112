"""Token mixers: softmax attention and its linear / state-space relatives, one interface for all.

Importing this package registers every mixer, so `list_mixers()` is complete after `import polyformer.core`.
"""

from polyformer.core.mixers import attention, deltanet, gla, mamba, mamba2, retention  # noqa: F401  (register them)
from polyformer.core.mixers.attention import Attention
from polyformer.core.mixers.base import TokenMixer
from polyformer.core.mixers.registry import MIXERS, build_mixer, list_mixers, register_mixer

__all__ = ["TokenMixer", "MIXERS", "build_mixer", "list_mixers", "register_mixer", "Attention"]
