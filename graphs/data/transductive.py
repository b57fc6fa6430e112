"""Transductive node classification: one graph whose nodes are split by `train_mask` / `val_mask` / `test_mask`
(the Planetoid / ogbn layout). Every split sees the whole graph; losses and metrics read only the nodes of
the split, marked on each split's view as `node_mask`."""

from __future__ import annotations

import copy

import torch
from torch_geometric.data import Data

from polyformer.core.errors import DataError

MASKS = {"train": "train_mask", "val": "val_mask", "test": "test_mask"}


def has_split_masks(g) -> bool:
    """Whether `g` is a single Data carrying train/val/test node masks."""
    return isinstance(g, Data) and all(getattr(g, key, None) is not None for key in MASKS.values())


def split_views(g: Data) -> dict[str, Data]:
    """One view of `g` per split (tensors shared), with `node_mask` marking the split's nodes."""
    n = int(g.num_nodes)
    masks = {}
    for split, key in MASKS.items():
        mask = g[key]
        if mask.dim() != 1 or mask.shape[0] != n:
            raise DataError(f"{key} must be a bool vector with one entry per node ({n}), got shape {tuple(mask.shape)}")
        mask = mask.bool()
        if not bool(mask.any()):
            raise DataError(f"{key} selects no node; every split needs at least one")
        masks[split] = mask
    if bool((masks["train"] & masks["test"]).any()):
        raise DataError("train_mask and test_mask overlap; a node belongs to one split")
    base = copy.copy(g)
    for key in MASKS.values():
        del base[key]
    views = {}
    for split, mask in masks.items():
        view = copy.copy(base)
        view.node_mask = mask
        views[split] = view
    return views


def masked(out: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """`(outputs, targets)` restricted to the split's nodes when the batch carries a `node_mask`."""
    mask = getattr(batch, "node_mask", None)
    if mask is None:
        return out, batch.y
    return out[mask], batch.y[mask]
