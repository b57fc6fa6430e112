"""GraphDataModule: any graph source -> checked, encoded (LapPE / RWSE), cached splits -> PyG DataLoaders."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from polyformer.core.errors import ConfigError
from polyformer.graphs.data import sources as S
from polyformer.graphs.data.cache import SPLITS, GraphSet, load_or_build
from polyformer.graphs.data.checks import TASKS, check_graphs, fill_node_features, task_level
from polyformer.graphs.data.encodings import GraphEncodings
from polyformer.graphs.data.spec import check_spec_fits, feature_spec
from polyformer.graphs.data.transductive import has_split_masks, split_views

# task, metric, loss each source uses unless the config says otherwise
DEFAULTS = {
    "pattern": ("node_classification", "accuracy_sbm", "weighted_ce"),
    "cluster": ("node_classification", "accuracy_sbm", "weighted_ce"),
    "zinc": ("graph_regression", "mae", "l1"),
    "ogb": ("graph_binary", "rocauc", "bce"),
    "tu": ("graph_classification", "accuracy", "ce"),
    "gnnbenchmark": (None, None, None),
    "memory": (None, None, None),
}
METRICS = {"accuracy_sbm": "max", "accuracy": "max", "mae": "min", "rocauc": "max", "mse": "min"}
LOSSES = ("ce", "weighted_ce", "l1", "mse", "bce")
_GNNBENCH_NODE = ("PATTERN", "CLUSTER")


def default_data_dir() -> str:
    """`$POLYFORMER_DATA_DIR`, else `~/.cache/polyformer` (the same rule as `paths.data_dir`)."""
    return os.environ.get("POLYFORMER_DATA_DIR") or str(Path.home() / ".cache" / "polyformer")


class GraphDataModule(L.LightningDataModule):
    """Train/val/test graphs for one task, with positional encodings computed once and cached.

    Args:
        source: one of `polyformer.graphs.data.sources.SOURCES` ("pattern", "cluster", "zinc", "ogb",
            "tu", "gnnbenchmark", "memory").
        data_dir: cache root (`paths.data_dir`); generated and converted graphs go to `<data_dir>/graphs/`.
        root, name, subset: where a PyG / OGB dataset lives and which one (`name="MUTAG"`, `"PATTERN"`...).
        task: node_classification | graph_classification | graph_regression | graph_binary (default per source).
        metric: accuracy_sbm | accuracy | mae | rocauc | mse; metric_mode: max | min (must match the metric).
        loss: ce | weighted_ce (GraphGPS's class-balanced CE for PATTERN/CLUSTER) | l1 | mse | bce.
        num_graphs, recipe, seed: SBM dataset size per split, recipe overrides, generator seed.
        split: train/val fractions for sources without splits (tu, a single in-memory list).
        pe: `{"lap_k": 8, "lap_norm": "none", "rwse_k": 16}` (0 or null turns one off).
        fill_x: null | "degree" | "constant" for graphs without node features.
        edgeless: "error" | "drop" | "keep" for graphs without edges.
        graphs: in-memory graphs for `source="memory"` (see `from_graphs`), or one graph with node masks.
    """

    def __init__(
        self,
        source: str = "pattern",
        data_dir: str | None = None,
        root: str | None = None,
        name: str | None = None,
        subset: bool = True,
        task: str | None = None,
        metric: str | None = None,
        metric_mode: str | None = None,
        loss: str | None = None,
        num_graphs: dict[str, int] | None = None,
        recipe: dict[str, Any] | None = None,
        seed: int = 0,
        split: dict[str, float] | None = None,
        pe: dict[str, Any] | None = None,
        fill_x: str | None = None,
        edgeless: str = "error",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        predict_split: str = "test",
        graphs: dict[str, Sequence[Data]] | Sequence[Data] | Data | None = None,
    ):
        super().__init__()
        if source not in S.SOURCES:
            raise ConfigError(f"unknown graph source '{source}'. Sources: {', '.join(S.SOURCES)}")
        d_task, d_metric, d_loss = DEFAULTS[source]
        if source == "gnnbenchmark" and name:
            node = str(name).upper() in _GNNBENCH_NODE
            d_task, d_metric = ("node_classification", "accuracy_sbm") if node else ("graph_classification", "accuracy")
            d_loss = "weighted_ce" if node else "ce"
        self.source, self.root, self.name, self.subset = source, root, name, subset
        self.task = task or d_task
        if self.task is None:
            raise ConfigError(f"the {source} source needs data.task ({', '.join(TASKS)})")
        task_level(self.task)
        self.metric = metric or d_metric or _default_metric(self.task)
        if self.metric not in METRICS:
            raise ConfigError(f"unknown graph metric '{self.metric}'. Metrics: {', '.join(METRICS)}")
        self.metric_mode = metric_mode or METRICS[self.metric]
        if self.metric_mode != METRICS[self.metric]:
            raise ConfigError(f"metric {self.metric} is better when {METRICS[self.metric]}imised; set metric_mode={METRICS[self.metric]}")
        self.loss = loss or d_loss or _default_loss(self.task)
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss '{self.loss}'. Losses: {', '.join(LOSSES)}")
        self.data_dir = data_dir or default_data_dir()
        self.num_graphs, self.recipe, self.seed, self.split = num_graphs, recipe, int(seed), split
        self.encodings = GraphEncodings.from_config(pe)
        self.fill_x, self.edgeless = fill_x, edgeless
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size or batch_size)
        self.num_workers, self.predict_split = int(num_workers), predict_split
        if predict_split not in SPLITS:
            raise ConfigError(f"predict_split must be one of {SPLITS}, got '{predict_split}'")
        self.graphs = graphs
        self.sets: dict[str, GraphSet] = {}
        self._bound: dict[str, Any] | None = None
        self._spec: dict[str, Any] | None = None
        self._hints: dict[str, Any] = {}

    @classmethod
    def from_graphs(cls, graphs: dict[str, Sequence[Data]] | Sequence[Data] | Data, task: str, **kwargs) -> GraphDataModule:
        """A datamodule over in-memory `Data` graphs: `{"train": [...], "val": [...], "test": [...]}`, one list
        (split at random), or one large graph with `train_mask` / `val_mask` / `test_mask` (transductive)."""
        return cls(source="memory", graphs=graphs, task=task, **kwargs)

    # ------------------------------------------------------------------ data
    def _cache_key(self) -> dict[str, Any]:
        key: dict[str, Any] = {
            "source": self.source, "task": self.task, "pe": self.encodings.config(),
            "fill_x": self.fill_x, "edgeless": self.edgeless,
        }
        if self.source in ("pattern", "cluster"):
            key["recipe"] = S.sbm_recipe_key(self.source, self.recipe, self.num_graphs)
            key["seed"] = self.seed
        else:
            root = Path(str(self.root)).expanduser().resolve() if self.root else None
            key.update(root=str(root), name=self.name, subset=self.subset, split=self.split, seed=self.seed)
            key["files"] = _fingerprint(root, self.name)
        return key

    def _load_source(self) -> S.Source:
        if self.source in ("pattern", "cluster"):
            return S.sbm_source(self.source, self.recipe, self.num_graphs, self.seed)
        if self.source == "zinc":
            return S.zinc_source(self.root, self.subset)
        if self.source == "gnnbenchmark":
            return S.gnnbenchmark_source(self.root, self.name)
        if self.source == "tu":
            return S.tu_source(self.root, self.name, self.split, self.seed)
        if self.source == "ogb":
            return S.ogb_source(self.root, self.name)
        return S.memory_source(self.graphs, self.split, self.seed)

    def _prepare(self, src: S.Source) -> dict[str, list[Data]]:
        out = {}
        for split in SPLITS:
            raw = src.splits[split]
            if self.source == "memory":  # leave the caller's Data objects as they were
                raw = [g.clone() if isinstance(g, Data) else g for g in raw]
            graphs = [fill_node_features(g, self.fill_x) if isinstance(g, Data) else g for g in raw]
            graphs = check_graphs(graphs, split, self.task, edgeless=self.edgeless)
            out[split] = [self.encodings(g) for g in graphs]
        return out

    def _source_hints(self, src: S.Source) -> dict[str, Any]:
        return {"node_vocab": src.node_vocab, "edge_vocab": src.edge_vocab, "num_classes": src.num_classes}

    def prepare_data(self) -> None:
        """Generate / convert the graphs once and cache them with their encodings (no-op for in-memory graphs)."""
        if self.source == "memory":
            return
        load_or_build(self.data_dir, self.source, self._cache_key(), lambda: self._prepare(self._build_source()))

    def _build_source(self) -> S.Source:
        src = self._load_source()
        self._hints = self._source_hints(src)
        return src

    def setup(self, stage: str | None = None) -> None:
        """Load the cached splits, derive the data spec, and check it against a bound checkpoint spec."""
        if self.sets:
            return
        if self.source == "memory" and has_split_masks(self.graphs):
            self.sets = self._transductive(self.graphs)
        elif self.source == "memory":
            src = self._build_source()
            self.sets = {s: GraphSet(g) for s, g in self._prepare(src).items()}
        else:
            self.sets = load_or_build(self.data_dir, self.source, self._cache_key(), lambda: self._prepare(self._build_source()))
            if not self._hints and self.source in ("pattern", "cluster", "zinc", "ogb"):
                self._hints = _static_hints(self.source, self.recipe, self.num_graphs, self.name)
        self._spec = self._make_spec()
        if self._bound is not None:
            check_spec_fits(self._spec, self._bound)

    def _transductive(self, g: Data) -> dict[str, GraphSet]:
        """One graph with train/val/test node masks: checked and encoded once, one masked view per split."""
        if self.task != "node_classification":
            raise ConfigError(f"a single graph with train/val/test masks is a node_classification task, not {self.task}")
        g = fill_node_features(g.clone(), self.fill_x)
        g = check_graphs([g], "the graph", self.task, edgeless=self.edgeless)[0]
        views = split_views(self.encodings(g))
        return {s: GraphSet([views[s]]) for s in SPLITS}

    def _make_spec(self) -> dict[str, Any]:
        sets = [self.sets[s] for s in SPLITS]
        node = feature_spec([s.storage("x") for s in sets], self._hints.get("node_vocab"))
        edge = feature_spec([s.storage("edge_attr") for s in sets], self._hints.get("edge_vocab"))
        ys = [s.storage("y") for s in sets]
        num_classes, out_dim = None, None
        if self.task.endswith("classification"):
            num_classes = max(int(y.max()) + 1 for y in ys if y is not None and y.numel())
            num_classes = max(num_classes, int(self._hints.get("num_classes") or 0), 2)
            out_dim = num_classes
        else:
            out_dim = int(ys[0].shape[-1])
        return {
            "source": self.source,
            "task": self.task,
            "level": task_level(self.task),
            "metric": self.metric,
            "metric_mode": self.metric_mode,
            "loss": self.loss,
            "node_features": node,
            "edge_features": edge,
            "num_classes": num_classes,
            "out_dim": out_dim,
            "pe": self.encodings.config(),
            "edgeless": self.edgeless,
        }

    def data_spec(self) -> dict[str, Any]:
        """What the model learns from the data (plain data, stored in the checkpoint)."""
        if self._spec is None:
            self.setup("fit")
        if self._bound is not None:  # a resumed / evaluated model keeps its own sizes
            return dict(self._bound)
        return dict(self._spec)

    def bind_spec(self, spec: dict[str, Any]) -> None:
        """Use a checkpoint's spec: its encodings are computed for these graphs, and the graphs must fit it."""
        if not spec:
            return
        self._bound = dict(spec)
        self.encodings = GraphEncodings.from_config(spec.get("pe"))
        if self.sets:
            self.sets = {}
            self.setup()

    # ------------------------------------------------------------------ loaders
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if not self.sets:
            self.setup()
        size = self.batch_size if split == "train" else self.eval_batch_size
        return DataLoader(self.sets[split], batch_size=size, shuffle=shuffle, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, shuffle=False)


def _default_metric(task: str) -> str:
    return {"node_classification": "accuracy", "graph_classification": "accuracy",
            "graph_regression": "mae", "graph_binary": "rocauc"}[task]


def _default_loss(task: str) -> str:
    return {"node_classification": "ce", "graph_classification": "ce", "graph_regression": "l1", "graph_binary": "bce"}[task]


def _static_hints(source: str, recipe, num_graphs, name) -> dict[str, Any]:
    """Vocabularies a source defines, without loading it (for cache hits)."""
    from polyformer.graphs.data.ogb import MOL_ATOM_VOCAB, MOL_BOND_VOCAB

    if source in ("pattern", "cluster"):
        r = S.sbm_recipe_key(source, recipe, num_graphs)
        vocab = r["vocab_size"] if source == "pattern" else r["num_communities"] + 1
        classes = 2 if source == "pattern" else r["num_communities"]
        return {"node_vocab": [vocab], "num_classes": classes}
    if source == "zinc":
        return {"node_vocab": [28], "edge_vocab": [4]}
    if source == "ogb" and "mol" in str(name or "ogbg-molhiv"):
        return {"node_vocab": MOL_ATOM_VOCAB, "edge_vocab": MOL_BOND_VOCAB}
    return {}


def _fingerprint(root: Path | None, name: str | None, limit: int = 200) -> list:
    """(relative path, size) of the dataset files under root (so replaced files make a new cache entry)."""
    if root is None or not root.exists():
        return []
    base = root / name if name and (root / name).is_dir() else root
    files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    source_files = [p for p in files if not any(part.startswith("processed") for part in p.relative_to(base).parts)]
    files = (source_files or files)[:limit]  # PyG writes processed/ on first load: leave it out when raw files exist
    return [[str(p.relative_to(root)), p.stat().st_size] for p in files]
