"""Token mixers: softmax attention and its linear / state-space relatives, one interface for all."""

from polyformer.core.mixers.base import TokenMixer
from polyformer.core.mixers.registry import MIXERS, build_mixer, list_mixers, register_mixer

__all__ = ["TokenMixer", "MIXERS", "build_mixer", "list_mixers", "register_mixer"]
