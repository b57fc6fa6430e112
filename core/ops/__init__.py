"""Functional ops under each mixer: naive references, chunked parallel forms and recurrent steps."""

from polyformer.core.ops.attention import (
    allowed_mask,
    attention,
    attention_step,
    kv_cache_append,
    kv_cache_init,
    naive_attention,
    sdpa_backend,
)

__all__ = [
    "attention",
    "naive_attention",
    "allowed_mask",
    "attention_step",
    "kv_cache_init",
    "kv_cache_append",
    "sdpa_backend",
]
