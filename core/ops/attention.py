"""Softmax attention on [B, T, H, D] tensors: SDPA fast path, naive reference and a KV cache for decoding.

Conventions shared by every function here:

- `q[B, Tq, H, D]`, `k[B, Tk, Hk, D]`, `v[B, Tk, Hk, Dv]`; `H % Hk == 0` (GQA / MQA when `Hk < H`,
  query head `h` reads key/value head `h // (H // Hk)`).
- Queries are aligned to the *end* of the keys: query `i` sits at position `Tk - Tq + i`. With
  `Tq == Tk` this is ordinary self-attention; with `Tq < Tk` it is decoding over a cache.
- `causal=True`: a query sees keys at positions <= its own.
- `window=w`: a query sees keys less than `w` positions away (w keys including itself when causal,
  `2w - 1` when bidirectional).
- `mask`: bool, True where attention is allowed: `[B, Tk]` (key padding) or broadcastable to
  `[B, H, Tq, Tk]` (`[B, Tq, Tk]` is read as `[B, 1, Tq, Tk]`).
- `attn_bias`: additive float bias broadcastable to `[B, H, Tq, Tk]` (ALiBi, Graphormer spatial bias);
  `-inf` entries act as a mask.
- A query that may attend to no key at all (fully masked row) gets a zero output, never NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from polyformer.core.errors import ConfigError, DataError

__all__ = [
    "attention",
    "naive_attention",
    "allowed_mask",
    "sdpa_backend",
    "kv_cache_init",
    "kv_cache_append",
    "attention_step",
]


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise DataError(f"attention takes q, k, v as [B, T, H, D]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape[:3] != v.shape[:3] or q.shape[0] != k.shape[0] or q.shape[-1] != k.shape[-1]:
        raise DataError(f"q, k, v shapes do not fit together: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if q.shape[2] % k.shape[2]:
        raise ConfigError(f"number of query heads ({q.shape[2]}) must be a multiple of key/value heads ({k.shape[2]})")


def _expand_mask(mask: torch.Tensor, tk: int) -> torch.Tensor:
    """A user mask as bool [B|1, H|1, Tq|1, Tk]."""
    if mask.dtype != torch.bool:
        raise DataError(f"attention mask must be bool (True = attend), got {mask.dtype}; pass additive masks as attn_bias")
    if mask.shape[-1] != tk:
        raise DataError(f"attention mask's last dim ({mask.shape[-1]}) must equal the number of keys ({tk})")
    if mask.ndim == 2:
        return mask[:, None, None, :]
    if mask.ndim == 3:
        return mask[:, None]
    if mask.ndim == 4:
        return mask
    raise DataError(f"attention mask must be [B, Tk], [B, Tq, Tk] or [B, H, Tq, Tk], got {tuple(mask.shape)}")


def allowed_mask(
    tq: int, tk: int, *, causal: bool = False, mask: torch.Tensor | None = None, window: int | None = None, device=None
) -> torch.Tensor | None:
    """Bool [B|1, H|1, Tq, Tk], True where a query may attend a key; None when everything is allowed."""
    out = None
    if causal or window is not None:
        qpos = torch.arange(tk - tq, tk, device=device)[:, None]
        kpos = torch.arange(tk, device=device)[None, :]
        band = torch.ones(tq, tk, dtype=torch.bool, device=device)
        if causal:
            band &= kpos <= qpos
        if window is not None:
            if window < 1:
                raise ConfigError(f"attention window must be >= 1, got {window}")
            band &= (qpos - kpos) < window
            if not causal:
                band &= (kpos - qpos) < window
        out = band[None, None]
    if mask is not None:
        m = _expand_mask(mask, tk)
        out = m if out is None else out & m
    return out


def _combine(q, tk, *, causal, mask, attn_bias, window):
    """(attn_mask for SDPA, dead[B|1, H|1, Tq, 1] rows with no allowed key) from masks and bias."""
    allowed = allowed_mask(q.shape[1], tk, causal=causal, mask=mask, window=window, device=q.device)
    if attn_bias is None:
        dead = ~allowed.any(-1, keepdim=True)
        return allowed | dead, dead
    bias = attn_bias.to(q.dtype)
    if allowed is not None:
        bias = bias.masked_fill(~allowed, float("-inf"))
    dead = torch.isneginf(bias).all(-1, keepdim=True)
    return bias.masked_fill(dead, 0.0), dead


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    attn_bias: torch.Tensor | None = None,
    window: int | None = None,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Softmax attention through `F.scaled_dot_product_attention`; returns `o[B, Tq, H, Dv]`.

    With no mask, bias or window (and `Tq == Tk` or a single query) the call goes to SDPA with
    `is_causal` and no materialised mask, so fused kernels (flash / memory-efficient) apply.
    """
    _check(q, k, v)
    tq, tk = q.shape[1], k.shape[1]
    gqa = k.shape[2] != q.shape[2]
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if window is not None and window >= max(tq, tk, 1):
        window = None  # no query is that far from any key: keep the fused, mask-free path
    if mask is None and attn_bias is None and window is None and (not causal or tq == tk or tq == 1):
        o = F.scaled_dot_product_attention(
            qh, kh, vh, dropout_p=dropout_p, is_causal=causal and tq > 1, scale=scale, enable_gqa=gqa
        )
        return o.transpose(1, 2)
    attn_mask, dead = _combine(q, tk, causal=causal, mask=mask, attn_bias=attn_bias, window=window)
    o = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=attn_mask, dropout_p=dropout_p, scale=scale, enable_gqa=gqa)
    o = o.masked_fill(dead, 0.0)
    return o.transpose(1, 2)


def attention_probs(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    attn_bias: torch.Tensor | None = None,
    window: int | None = None,
    scale: float | None = None,
) -> torch.Tensor:
    """The attention weights `softmax(q k^T * scale + bias + masks)` as `[B, H, Tq, Tk]`; fully masked rows -> 0.

    For looking at what a layer attends to (the fused path never forms them).
    """
    group = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(group, dim=2)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    if attn_bias is not None:
        scores = scores + attn_bias.to(scores.dtype)
    allowed = allowed_mask(q.shape[1], k.shape[1], causal=causal, mask=mask, window=window, device=q.device)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    dead = torch.isneginf(scores).all(-1, keepdim=True)
    return torch.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)


def naive_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    attn_bias: torch.Tensor | None = None,
    window: int | None = None,
    scale: float | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """The definition of correctness: `softmax(q k^T * scale + bias + masks) v`, fully masked rows -> 0."""
    _check(q, k, v)
    weights = attention_probs(q, k, causal=causal, mask=mask, attn_bias=attn_bias, window=window, scale=scale)
    weights = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    v = v.repeat_interleave(q.shape[2] // v.shape[2], dim=2)
    return torch.einsum("bhqk,bkhd->bqhd", weights, v)


def sdpa_backend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, masked: bool = False, causal: bool = False) -> str:
    """Name of the SDPA kernel torch would pick for these [B, T, H, D] inputs ("flash_attention", "math", ...).

    Best effort: asks torch's dispatcher (`torch._fused_sdp_choice`); "unknown" where this torch lacks it.
    """
    choose = getattr(torch, "_fused_sdp_choice", None)
    if choose is None:
        return "unknown"
    qh, kh, vh = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    attn_mask = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool, device=q.device) if masked else None
    index = choose(qh, kh, vh, attn_mask, 0.0, causal and not masked, enable_gqa=k.shape[2] != q.shape[2])
    return torch.nn.attention.SDPBackend(index).name.lower()


# ----------------------------------------------------------------------------------------------------------
# KV cache: a dict of tensors, so it passes through torch.compile, deepcopy and lists of per-layer states.
#   k[B, S, Hk, D], v[B, S, Hk, Dv]: cached keys/values (S slots, growing);
#   kpos[B, S]: position of each slot's token, -1 for empty / padded slots;
#   pos[B]: position the next token will take (the number of valid tokens seen so far).
# ----------------------------------------------------------------------------------------------------------


def kv_cache_init(batch: int, num_kv_heads: int, head_dim: int, *, v_dim: int | None = None, device=None, dtype=None) -> dict:
    """An empty KV cache for `batch` sequences."""
    v_dim = head_dim if v_dim is None else v_dim
    return {
        "k": torch.zeros(batch, 0, num_kv_heads, head_dim, device=device, dtype=dtype),
        "v": torch.zeros(batch, 0, num_kv_heads, v_dim, device=device, dtype=dtype),
        "kpos": torch.zeros(batch, 0, dtype=torch.long, device=device),
        "pos": torch.zeros(batch, dtype=torch.long, device=device),
    }


def kv_cache_append(cache: dict, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, *, window: int | None = None) -> dict:
    """A new cache with `k, v[B, T, Hk, D]` appended; `mask[B, T]` (right padding) marks valid new tokens.

    With `window`, slots no future query can reach (further back than `window - 1` from every
    sequence's next position) are dropped, so the cache stays at about `window` slots.
    """
    t = k.shape[1]
    if mask is None:
        mask = torch.ones(k.shape[0], t, dtype=torch.bool, device=k.device)
    offsets = torch.cumsum(mask.long(), dim=1) - 1
    new_kpos = torch.where(mask, cache["pos"][:, None] + offsets, torch.full_like(offsets, -1))
    out = {
        "k": torch.cat([cache["k"], k.to(cache["k"].dtype)], dim=1),
        "v": torch.cat([cache["v"], v.to(cache["v"].dtype)], dim=1),
        "kpos": torch.cat([cache["kpos"], new_kpos], dim=1),
        "pos": cache["pos"] + mask.long().sum(1),
    }
    return out if window is None else _trim(out, window)


def _trim(cache: dict, window: int) -> dict:
    """Drop leading slots that no future query of any sequence can reach with this window."""
    if cache["kpos"].shape[1] <= window:
        return cache
    needed = ((cache["kpos"] >= 0) & (cache["kpos"] > cache["pos"][:, None] - window)).any(0)
    first = int(needed.long().argmax()) if bool(needed.any()) else needed.numel()
    return {**cache, "k": cache["k"][:, first:], "v": cache["v"][:, first:], "kpos": cache["kpos"][:, first:]}


def attention_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache: dict,
    *,
    mask: torch.Tensor | None = None,
    window: int | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, dict]:
    """Causal decoding: append `k, v[B, T, Hk, D]` to `cache`, attend `q[B, T, H, D]` over it.

    `T` is 1 for token-by-token decoding and may be larger (chunked prefill). Returns `(o, cache)`;
    equal to causal `attention` over the whole sequence so far.
    """
    valid = torch.ones(q.shape[:2], dtype=torch.long, device=q.device) if mask is None else mask.long()
    q_pos = cache["pos"][:, None] + torch.cumsum(valid, dim=1) - 1
    cache = kv_cache_append(cache, k, v, mask)
    kpos = cache["kpos"][:, None, :]
    allowed = (kpos >= 0) & (kpos <= q_pos[:, :, None])
    if window is not None:
        allowed &= (q_pos[:, :, None] - kpos) < window
    o = attention(q, cache["k"], cache["v"], mask=allowed, scale=scale)
    return o, (cache if window is None else _trim(cache, window))
