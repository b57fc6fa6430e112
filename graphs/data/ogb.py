"""OGB graph-property datasets (ogbg-molhiv and friends) read from a local folder, without the `ogb` package.

Expected layout, as the OGB download unpacks it (https://ogb.stanford.edu/docs/graphprop/):

    <root>/ogbg_molhiv/
        raw/edge.csv.gz            one row per undirected edge (local node ids), one direction only
            num-node-list.csv.gz   nodes per graph
            num-edge-list.csv.gz   edges per graph
            node-feat.csv.gz       9 categorical atom features per node
            edge-feat.csv.gz       3 categorical bond features per edge
            graph-label.csv.gz     one row per graph (T task columns; empty = missing)
        split/scaffold/train.csv.gz, valid.csv.gz, test.csv.gz   graph indices

Reverse edges are added (as OGB does for molecules). The categorical vocabularies are OGB's fixed
atom/bond feature dimensions for `ogbg-mol*` datasets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data

from polyformer.core.errors import DataError

RAW_FILES = ("edge.csv.gz", "num-node-list.csv.gz", "num-edge-list.csv.gz", "node-feat.csv.gz", "graph-label.csv.gz")
# ogb.utils.features.get_atom_feature_dims() / get_bond_feature_dims() for molecule datasets
MOL_ATOM_VOCAB = [119, 5, 12, 12, 10, 6, 6, 2, 2]
MOL_BOND_VOCAB = [5, 6, 2]
SPLIT_FILES = {"train": "train.csv.gz", "val": "valid.csv.gz", "test": "test.csv.gz"}


def ogb_folder(root: str | Path, name: str) -> Path:
    """`<root>/ogbg_molhiv` for name 'ogbg-molhiv' (or `root` itself when it already is that folder)."""
    root = Path(root).expanduser()
    folder = name.replace("-", "_")
    return root if root.name == folder else root / folder


def _read(path: Path, dtype) -> np.ndarray:
    return pd.read_csv(path, compression="gzip", header=None).values.astype(dtype)


def read_ogb_graphs(root: str | Path, name: str = "ogbg-molhiv", split: str = "scaffold") -> dict[str, list[Data]]:
    """The train/val/test graphs of an OGB graph-property dataset from its raw csv files."""
    folder = ogb_folder(root, name)
    raw, split_dir = folder / "raw", folder / "split" / split
    missing = [str(raw / f) for f in RAW_FILES if not (raw / f).is_file()]
    missing += [str(split_dir / f) for f in SPLIT_FILES.values() if not (split_dir / f).is_file()]
    if missing:
        raise DataError(
            f"{name} files are missing: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}. "
            f"Unzip the OGB download (http://snap.stanford.edu/ogb/data/graphproppred/csv_mol_download/"
            f"{name.split('-', 1)[-1]}.zip) so that {folder}/raw and {folder}/split/{split} exist, "
            "then point data.root at its parent. polyformer never downloads at run time."
        )
    edges = _read(raw / "edge.csv.gz", np.int64)
    num_nodes = _read(raw / "num-node-list.csv.gz", np.int64).ravel()
    num_edges = _read(raw / "num-edge-list.csv.gz", np.int64).ravel()
    node_feat = _read(raw / "node-feat.csv.gz", np.int64)
    edge_feat = _read(raw / "edge-feat.csv.gz", np.int64) if (raw / "edge-feat.csv.gz").is_file() else None
    labels = pd.read_csv(raw / "graph-label.csv.gz", compression="gzip", header=None).values.astype(np.float32)
    if len(num_nodes) != len(labels) or int(num_nodes.sum()) != len(node_feat) or int(num_edges.sum()) != len(edges):
        raise DataError(f"{raw}: node/edge counts do not match the feature files; re-extract the OGB download")
    graphs = []
    n_off = np.concatenate([[0], np.cumsum(num_nodes)])
    e_off = np.concatenate([[0], np.cumsum(num_edges)])
    for i in range(len(num_nodes)):
        e = torch.from_numpy(edges[e_off[i]:e_off[i + 1]].T.copy())
        g = Data(
            x=torch.from_numpy(node_feat[n_off[i]:n_off[i + 1]].copy()),
            edge_index=torch.cat([e, e.flip(0)], dim=1),
            y=torch.from_numpy(labels[i:i + 1].copy()),
            num_nodes=int(num_nodes[i]),
        )
        if edge_feat is not None:
            f = torch.from_numpy(edge_feat[e_off[i]:e_off[i + 1]].copy())
            g.edge_attr = torch.cat([f, f], dim=0)
        graphs.append(g)
    out = {}
    for key, fname in SPLIT_FILES.items():
        idx = _read(split_dir / fname, np.int64).ravel()
        out[key] = [graphs[j] for j in idx]
    return out
