"""Sliding forecast windows over a scaled series, in Time-Series-Library's indexing."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class WindowDataset(Dataset):
    """Every window of a series: `seq_len` rows of lookback and the `pred_len` rows after them.

    Window `i` reads rows `[i, i + seq_len)` as input `x` and rows `[i + seq_len, i + seq_len + pred_len)`
    as target `y` (TSLib's `s_begin = index`); there are `T - seq_len - pred_len + 1` windows.
    `x_mark`/`y_mark` are the rows' time features (zero columns when time features are off).
    """

    def __init__(self, values: np.ndarray, marks: np.ndarray, seq_len: int, pred_len: int):
        self.values = torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)
        self.marks = torch.as_tensor(np.ascontiguousarray(marks), dtype=torch.float32)
        self.seq_len, self.pred_len = seq_len, pred_len

    def __len__(self) -> int:
        return max(0, len(self.values) - self.seq_len - self.pred_len + 1)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s, m = i + self.seq_len, i + self.seq_len + self.pred_len
        return {"x": self.values[i:s], "x_mark": self.marks[i:s], "y": self.values[s:m], "y_mark": self.marks[s:m]}


class LastWindow(Dataset):
    """The final `seq_len` rows of a series: the lookback of a forecast past its last timestamp."""

    def __init__(self, values: np.ndarray, marks: np.ndarray, seq_len: int):
        self.x = torch.as_tensor(np.ascontiguousarray(values[-seq_len:]), dtype=torch.float32)
        self.x_mark = torch.as_tensor(np.ascontiguousarray(marks[-seq_len:]), dtype=torch.float32)

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x, "x_mark": self.x_mark}
