"""Shared Hydra config groups (trainer, callbacks, logger, paths, hydra, optim, mixer, debug), reached by each
domain through its searchpath `pkg://polyformer.core.conf`."""

from pathlib import Path

CONF_DIR = Path(__file__).parent
