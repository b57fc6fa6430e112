"""Callbacks and plugins the harness adds to every run: checkpoint stamp, RNG state, throughput, atomic saves."""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

CHECKPOINT_KEY = "polyformer"
FORMAT_VERSION = 1


class CheckpointStamp(L.Callback):
    """Writes what `polyformer.core.load` needs into every checkpoint: domain, module class, data config."""

    def __init__(self, domain: str, data_config: dict[str, Any] | None = None):
        self.domain = domain
        self.data_config = data_config or {}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        from polyformer.core import __version__

        cls = type(pl_module)
        checkpoint[CHECKPOINT_KEY] = {
            "domain": self.domain,
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "data_config": self.data_config,
            "format_version": FORMAT_VERSION,
            "polyformer_version": __version__,
        }


class RNGState(L.Callback):
    """Saves and restores Python's and torch's random generators so a resumed run draws what it would have."""

    def state_dict(self) -> dict[str, Any]:
        state = {"python": random.getstate(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "python" in state_dict:
            version, internal, gauss = state_dict["python"]
            random.setstate((version, tuple(internal), gauss))
        if "torch" in state_dict:
            torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class Throughput(L.Callback):
    """Logs training samples per second (and tokens per second when batches say how many tokens they hold)."""

    def __init__(self, log_every_n_steps: int = 50):
        self.log_every_n_steps = log_every_n_steps
        self._t0 = None
        self._samples = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0, self._samples = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._samples += _batch_size(batch)
        if self._t0 is None or (batch_idx + 1) % self.log_every_n_steps:
            return
        elapsed = time.perf_counter() - self._t0
        if elapsed > 0:
            pl_module.log("perf/samples_per_sec", self._samples / elapsed, on_step=True, on_epoch=False)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._t0 is None:
            return
        elapsed = time.perf_counter() - self._t0
        if elapsed > 0 and self._samples:
            pl_module.log("perf/epoch_samples_per_sec", self._samples / elapsed, on_epoch=True)


def _batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        batch = list(batch.values())
    if isinstance(batch, list | tuple):
        for item in batch:
            n = _batch_size(item)
            if n:
                return n
    num_graphs = getattr(batch, "num_graphs", None)
    return int(num_graphs) if num_graphs is not None else 0


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves a checkpoint to a temporary file beside the target, then renames it: a crash never leaves half a file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        fs = get_filesystem(path)
        if fs.protocol not in ("file", ("file", "local")) and "file" not in (fs.protocol or ()):
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
