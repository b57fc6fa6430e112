"""Generate-once cache of prepared graph splits under `paths.data_dir`, stamped with what made them.

An entry is `<data_dir>/graphs/<source>-<hash>/` holding `train.pt`, `val.pt`, `test.pt` (PyG's
InMemoryDataset format, loadable with `torch.load(weights_only=True)`) and `stamp.json` (the full key:
generator version, recipe or source files, encodings). The hash covers the whole key, so a changed
recipe or encoding makes a new entry instead of reusing a stale one. Entries are written to a temporary
folder and renamed into place, under a file lock, so concurrent runs never see half an entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch_geometric.data import Data, InMemoryDataset

from polyformer.core.errors import DataError

CACHE_VERSION = 1
SPLITS = ("train", "val", "test")


class GraphSet(InMemoryDataset):
    """An in-memory list of graphs in PyG's collated storage (from a list, or from a saved file)."""

    def __init__(self, graphs: Sequence[Data] | None = None, path: str | Path | None = None):
        super().__init__(None)
        if path is not None:
            self.load(str(path))
        elif graphs is not None:
            if len(graphs) == 0:
                raise DataError("a graph split is empty")
            self.data, self.slices = self.collate(list(graphs))

    def storage(self, key: str):
        """The attribute `key` concatenated over all graphs (e.g. all node features), or None."""
        return self._data[key] if key in self._data else None


def stamp_hash(key: dict[str, Any]) -> str:
    """Short stable hash of a plain-data key."""
    text = json.dumps({"cache_version": CACHE_VERSION, **key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def entry_dir(data_dir: str | Path, source: str, key: dict[str, Any]) -> Path:
    """The cache folder of `key`."""
    return Path(data_dir).expanduser() / "graphs" / f"{source}-{stamp_hash(key)}"


def load_or_build(
    data_dir: str | Path, source: str, key: dict[str, Any], build: Callable[[], dict[str, Sequence[Data]]]
) -> dict[str, GraphSet]:
    """The cached splits of `key`, built with `build()` (and saved) the first time."""
    folder = entry_dir(data_dir, source, key)
    if not (folder / "stamp.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(folder.parent / f".{folder.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / "stamp.json").is_file():
                _write(folder, key, build())
    return {split: GraphSet(path=folder / f"{split}.pt") for split in SPLITS}


def _write(folder: Path, key: dict[str, Any], splits: dict[str, Sequence[Data]]) -> None:
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        counts = {}
        for split in SPLITS:
            graphs = list(splits.get(split) or [])
            if not graphs:
                raise DataError(f"the {split} split has no graphs; every split needs at least one")
            InMemoryDataset.save(graphs, str(tmp / f"{split}.pt"))
            counts[split] = len(graphs)
        (tmp / "stamp.json").write_text(json.dumps({**key, "counts": counts}, indent=2, sort_keys=True, default=str))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
