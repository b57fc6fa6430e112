"""Mixers by name: `build_mixer("mamba2", dim=256, d_state=64)` and `list_mixers()`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from polyformer.core.registry import Registry

MIXERS = Registry("mixer")
register_mixer = MIXERS.register


def build_mixer(spec: str | Mapping[str, Any], *, dim: int, causal: bool = True, hints: Mapping | None = None, **kwargs):
    """Build a token mixer from its name or a dict `{"name": ..., **options}`.

    `dim` and `causal` are always passed; `hints` (e.g. a model's `num_heads`) only where the
    chosen mixer takes them. `causal=False` gives the mixer's bidirectional form.
    """
    return MIXERS.build(spec, hints=hints, dim=dim, causal=causal, **kwargs)


def list_mixers() -> list[str]:
    """Names of all registered mixers."""
    return MIXERS.names()
