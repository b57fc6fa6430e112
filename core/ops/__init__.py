"""Functional ops under each mixer: naive references, chunked parallel forms and recurrent steps."""

from polyformer.core.ops.attention import (
    allowed_mask,
    attention,
    attention_probs,
    attention_step,
    kv_cache_append,
    kv_cache_init,
    naive_attention,
    sdpa_backend,
)
from polyformer.core.ops.delta_rule import (
    chunk_delta_rule,
    chunk_gated_delta_rule,
    delta_rule,
    delta_rule_step,
    gated_delta_rule,
    gated_delta_rule_step,
    naive_delta_rule,
    naive_gated_delta_rule,
)
from polyformer.core.ops.gla import chunk_gla, gla, gla_step, naive_gla
from polyformer.core.ops.retention import chunk_retention, naive_retention, retention, retention_step
from polyformer.core.ops.selective_scan import naive_selective_scan, selective_scan, selective_scan_step
from polyformer.core.ops.selective_scan_cpu import selective_scan_cpu
from polyformer.core.ops.ssd import chunk_ssd, naive_ssd, ssd, ssd_step

__all__ = [
    "attention",
    "attention_probs",
    "naive_attention",
    "allowed_mask",
    "attention_step",
    "kv_cache_init",
    "kv_cache_append",
    "sdpa_backend",
    "retention",
    "naive_retention",
    "chunk_retention",
    "retention_step",
    "gla",
    "naive_gla",
    "chunk_gla",
    "gla_step",
    "delta_rule",
    "naive_delta_rule",
    "chunk_delta_rule",
    "delta_rule_step",
    "gated_delta_rule",
    "naive_gated_delta_rule",
    "chunk_gated_delta_rule",
    "gated_delta_rule_step",
    "selective_scan",
    "naive_selective_scan",
    "selective_scan_step",
    "selective_scan_cpu",
    "ssd",
    "naive_ssd",
    "chunk_ssd",
    "ssd_step",
]
