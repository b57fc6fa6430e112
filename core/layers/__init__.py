"""Shared layers: norms, MLPs, drop path, positional encodings."""

from polyformer.core.layers.drop_path import DropPath, drop_path
from polyformer.core.layers.mlp import MLP, SwiGLU, build_mlp
from polyformer.core.layers.norms import RMSNorm, build_norm
from polyformer.core.layers.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    RotaryEmbedding2D,
    SinusoidalPositionalEmbedding,
    alibi_bias,
    alibi_slopes,
    apply_rotary,
    interpolate_pos_embed,
    rotate_half,
    sinusoidal_embedding,
)

__all__ = [
    "DropPath",
    "drop_path",
    "MLP",
    "SwiGLU",
    "build_mlp",
    "RMSNorm",
    "build_norm",
    "RotaryEmbedding",
    "RotaryEmbedding2D",
    "apply_rotary",
    "rotate_half",
    "alibi_slopes",
    "alibi_bias",
    "sinusoidal_embedding",
    "SinusoidalPositionalEmbedding",
    "LearnedPositionalEmbedding",
    "interpolate_pos_embed",
]
