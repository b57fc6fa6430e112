"""Where graphs come from: the embedded SBM recipes, PyG datasets under a local root, OGB folders, Python lists.

Every source returns a `Source`: the raw train/val/test graphs plus what it knows about them (fixed
feature vocabularies, class names). Nothing here downloads: PyG dataset classes are wrapped so that a
missing file raises a DataError saying where to put it, instead of fetching it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch_geometric.data import Data

from polyformer.core.errors import ConfigError, DataError
from polyformer.graphs.data.ogb import MOL_ATOM_VOCAB, MOL_BOND_VOCAB, read_ogb_graphs
from polyformer.graphs.data.sbm import RECIPES, generate_sbm

SOURCES = {
    "pattern": "PATTERN-recipe SBM graphs, node classification, 2 classes (embedded default, generated offline)",
    "cluster": "CLUSTER-recipe SBM graphs, node classification, 6 classes (embedded, generated offline)",
    "zinc": "ZINC molecules (PyG torch_geometric.datasets.ZINC) from a local root, graph regression (MAE)",
    "ogb": "OGB graph-property datasets (ogbg-molhiv) from a local folder of OGB csv files (ROC-AUC)",
    "tu": "TUDataset (PyG) from a local root, graph classification, random split",
    "gnnbenchmark": "GNNBenchmarkDataset (PyG: PATTERN, CLUSTER, MNIST, CIFAR10) from a local root",
    "memory": "an in-memory list of torch_geometric Data objects (Python API: GraphDataModule.from_graphs)",
}


@dataclass
class Source:
    """Raw graphs per split and what the source knows about them."""

    splits: dict[str, Sequence[Data]]
    node_vocab: list[int] | None = None  # fixed categorical vocabularies, if the source defines them
    edge_vocab: list[int] | None = None
    num_classes: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _require_root(root: str | None, what: str) -> Path:
    if not root:
        raise ConfigError(f"the {what} source needs data.root=<folder holding the dataset files>")
    return Path(root).expanduser()


def _no_download(cls):
    """A subclass of a PyG dataset class whose `download()` raises a DataError naming the files it needs."""

    def download(self):
        if all(Path(p).is_file() for p in self.processed_paths):
            return
        url = getattr(self, "url", None) or getattr(self, "urls", {}).get(getattr(self, "name", ""), "")
        raise DataError(
            f"{cls.__name__} files not found: put {list(self.raw_file_names)} in {self.raw_dir} "
            f"(from {url or 'the dataset page'}), or PyG's processed files {list(self.processed_file_names)} "
            f"in {self.processed_dir}. polyformer never downloads at run time."
        )

    return type(f"Local{cls.__name__}", (cls,), {"download": download})


def _pyg_list(dataset) -> list[Data]:
    return [dataset[i] for i in range(len(dataset))]


def sbm_source(kind: str, recipe: dict | None, num_graphs: dict | None, seed: int, transform=None) -> Source:
    """PATTERN/CLUSTER-recipe graphs (generated here; the caller caches them)."""
    base = RECIPES[kind]
    overrides = dict(recipe or {})
    if num_graphs:
        overrides["num_graphs"] = {**base.num_graphs, **{k: int(v) for k, v in num_graphs.items()}}
    r = base.with_overrides(overrides)
    return Source(
        splits=generate_sbm(r, seed=seed, transform=transform),
        node_vocab=[r.feature_vocab],
        num_classes=r.num_classes,
        info={"recipe": r.__dict__.copy()},
    )


def sbm_recipe_key(kind: str, recipe: dict | None, num_graphs: dict | None) -> dict:
    """The resolved recipe as plain data (for the cache stamp)."""
    base = RECIPES[kind]
    overrides = dict(recipe or {})
    if num_graphs:
        overrides["num_graphs"] = {**base.num_graphs, **{k: int(v) for k, v in num_graphs.items()}}
    return dict(base.with_overrides(overrides).__dict__)


def zinc_source(root: str | None, subset: bool = True) -> Source:
    """ZINC (12k-molecule subset by default) from `root` as PyG lays it out (root/raw, root/subset/processed)."""
    from torch_geometric.datasets import ZINC

    cls = _no_download(ZINC)
    path = str(_require_root(root, "zinc"))
    splits = {s: _pyg_list(cls(path, subset=subset, split=s)) for s in ("train", "val", "test")}
    return Source(splits=splits, node_vocab=[28], edge_vocab=[4])


def gnnbenchmark_source(root: str | None, name: str) -> Source:
    """A GNNBenchmarkDataset (PATTERN, CLUSTER, MNIST, CIFAR10, ...) from `root/<name>/{raw,processed}`."""
    from torch_geometric.datasets import GNNBenchmarkDataset

    if not name:
        raise ConfigError("the gnnbenchmark source needs data.name (PATTERN, CLUSTER, MNIST, CIFAR10)")
    cls = _no_download(GNNBenchmarkDataset)
    path = str(_require_root(root, "gnnbenchmark"))
    splits = {s: _pyg_list(cls(path, name=name, split=s)) for s in ("train", "val", "test")}
    return Source(splits=splits)


def tu_source(root: str | None, name: str, split: dict | None, seed: int) -> Source:
    """A TUDataset from `root/<name>/raw` (or processed), split at random by `split` fractions."""
    from torch_geometric.datasets import TUDataset

    if not name:
        raise ConfigError("the tu source needs data.name (e.g. MUTAG, PROTEINS, IMDB-BINARY)")
    cls = _no_download(TUDataset)
    graphs = _pyg_list(cls(str(_require_root(root, "tu")), name=name))
    return Source(splits=random_split(graphs, split, seed))


def random_split(graphs: Sequence[Data], split: dict | None, seed: int) -> dict[str, list[Data]]:
    """Split one list of graphs into train/val/test by fractions (default 0.8 / 0.1 / 0.1), seeded."""
    frac = {"train": 0.8, "val": 0.1, **(split or {})}
    if frac["train"] <= 0 or frac["val"] < 0 or frac["train"] + frac["val"] >= 1:
        raise ConfigError(f"data.split needs 0 < train, 0 <= val and train + val < 1, got {frac}")
    n = len(graphs)
    if n < 3:
        raise DataError(f"need at least 3 graphs to make train/val/test splits, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = max(1, int(round(frac["train"] * n)))
    n_val = max(1, int(round(frac["val"] * n)))
    n_train = min(n_train, n - n_val - 1)
    parts = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    return {k: [graphs[int(i)] for i in v] for k, v in parts.items()}


def ogb_source(root: str | None, name: str) -> Source:
    """ogbg-mol* datasets from a folder of OGB csv files (see graphs/data/ogb.py for the layout)."""
    name = name or "ogbg-molhiv"
    splits = read_ogb_graphs(_require_root(root, "ogb"), name)
    mol = "mol" in name
    return Source(splits=splits, node_vocab=MOL_ATOM_VOCAB if mol else None, edge_vocab=MOL_BOND_VOCAB if mol else None)


def memory_source(graphs: dict[str, Sequence[Data]] | Sequence[Data] | None, split: dict | None, seed: int) -> Source:
    """Graphs handed over in Python: a dict of splits, or one list split at random."""
    if graphs is None:
        raise ConfigError("the memory source needs graphs=...; use GraphDataModule.from_graphs(...) in Python")
    if isinstance(graphs, dict):
        missing = [s for s in ("train", "val") if not graphs.get(s)]
        if missing:
            raise DataError(f"in-memory graphs need at least the {missing} split(s); got {sorted(graphs)}")
        splits = {s: list(graphs.get(s) or graphs["val"]) for s in ("train", "val", "test")}
        return Source(splits=splits)
    return Source(splits=random_split(list(graphs), split, seed))
