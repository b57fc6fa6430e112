"""Per-variate standardisation fitted on the training rows only, stored as plain lists in the checkpoint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from polyformer.core.errors import CheckpointError


class StandardScaler:
    """`(x - mean) / std` per variate, as scikit-learn's StandardScaler (population std; std 0 -> 1)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise CheckpointError(f"scaler mean and std must be equal-length lists, got {self.mean.shape} and {self.std.shape}")

    @classmethod
    def fit(cls, values: np.ndarray) -> StandardScaler:
        """Fit on `values[T, N]` (the training split's rows)."""
        values = np.asarray(values, dtype=np.float64)
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))

    @classmethod
    def from_dict(cls, state: Mapping[str, Sequence[float]]) -> StandardScaler:
        """The scaler stored by `to_dict` (e.g. in a checkpoint's `data` hyperparameters)."""
        return cls(state["mean"], state["std"])

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists, so `torch.load(weights_only=True)` reads the checkpoint."""
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    def select(self, index: Sequence[int]) -> StandardScaler:
        """The scaler of a subset of variates (e.g. the target for features=MS)."""
        index = list(index)
        return StandardScaler(self.mean[index], self.std[index])

    def transform(self, x):
        """Scale numpy or torch values whose last axis is the variates."""
        mean, std = self._like(x)
        return (x - mean) / std

    def inverse_transform(self, x):
        """Back to original units."""
        mean, std = self._like(x)
        return x * std + mean

    def _like(self, x):
        if isinstance(x, torch.Tensor):
            return (torch.as_tensor(self.mean, dtype=x.dtype, device=x.device),
                    torch.as_tensor(self.std, dtype=x.dtype, device=x.device))
        return self.mean, self.std
