"""What a model needs to know about its graphs (feature kinds and sizes, task, classes), and the check that
new graphs fit a trained model.

A feature spec is plain data:
    {"kind": "none"}                              no features (edges of PATTERN/CLUSTER)
    {"kind": "float", "dim": F}                   real-valued [*, F]
    {"kind": "categorical", "vocab": [V1, ...]}   integer categories, one vocabulary per column
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from polyformer.core.errors import DataError


def feature_spec(tensors: Sequence[torch.Tensor | None], vocab_hint: Sequence[int] | None = None) -> dict[str, Any]:
    """The spec of one attribute (x or edge_attr) from its storage in every split."""
    present = [t for t in tensors if t is not None]
    if not present:
        return {"kind": "none"}
    if len(present) != len(tensors):
        raise DataError("some splits have this feature and others do not; give every split the same attributes")
    dims = {t.shape[-1] if t.dim() > 1 else 1 for t in present}
    if len(dims) != 1:
        raise DataError(f"feature sizes differ between splits: {sorted(dims)}")
    dim = dims.pop()
    if any(t.is_floating_point() for t in present):
        if not all(t.is_floating_point() for t in present):
            raise DataError("a feature is float in some splits and integer in others; use one dtype")
        return {"kind": "float", "dim": int(dim)}
    cols = [t.view(t.shape[0], -1).long() for t in present]
    vocab = [int(max(int(c[:, j].max()) if c.numel() else 0 for c in cols)) + 1 for j in range(dim)]
    if vocab_hint is not None:
        if len(vocab_hint) != dim:
            raise DataError(f"expected {len(vocab_hint)} categorical feature columns, found {dim}")
        vocab = [max(int(h), v) for h, v in zip(vocab_hint, vocab)]
    return {"kind": "categorical", "vocab": vocab}


def check_feature_fits(name: str, data: dict[str, Any], model: dict[str, Any]) -> None:
    """Raise DataError unless features described by `data` can go into a model trained on `model`."""
    if data["kind"] != model["kind"]:
        raise DataError(
            f"{name} are {_describe(data)} but the checkpoint was trained on {_describe(model)}; "
            "use graphs with the features the model was trained on"
        )
    if data["kind"] == "float" and data["dim"] != model["dim"]:
        raise DataError(f"{name} have {data['dim']} features per row, the checkpoint expects {model['dim']}")
    if data["kind"] == "categorical":
        if len(data["vocab"]) != len(model["vocab"]):
            raise DataError(
                f"{name} have {len(data['vocab'])} categorical columns, the checkpoint expects {len(model['vocab'])}"
            )
        over = [i for i, (d, m) in enumerate(zip(data["vocab"], model["vocab"])) if d > m]
        if over:
            i = over[0]
            raise DataError(
                f"{name} column {i} has category {data['vocab'][i] - 1}, beyond the {model['vocab'][i]} "
                "categories the checkpoint knows"
            )


def _describe(spec: dict[str, Any]) -> str:
    if spec["kind"] == "none":
        return "absent"
    if spec["kind"] == "float":
        return f"float [*, {spec['dim']}]"
    return f"categorical with vocabularies {spec['vocab']}"


def check_spec_fits(data: dict[str, Any], model: dict[str, Any]) -> None:
    """Raise DataError unless a dataset's spec fits a checkpoint's (task, features, classes, targets)."""
    if data["task"] != model["task"]:
        raise DataError(f"the data is a {data['task']} task but the checkpoint was trained for {model['task']}")
    check_feature_fits("node features", data["node_features"], model["node_features"])
    check_feature_fits("edge features", data["edge_features"], model["edge_features"])
    if model.get("num_classes") and data.get("num_classes") and data["num_classes"] > model["num_classes"]:
        raise DataError(
            f"the data has labels up to {data['num_classes'] - 1}, the checkpoint knows {model['num_classes']} classes"
        )
    if data["task"] in ("graph_regression", "graph_binary") and data["out_dim"] != model["out_dim"]:
        raise DataError(f"the data has {data['out_dim']} targets per graph, the checkpoint predicts {model['out_dim']}")
