"""Fixtures of the rl tests: one tiny trained checkpoint shared by the round-trip tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import compose, domain_conf
from rl_helpers import TINY_DT

from polyformer.rl.tasks import train


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny Decision Transformer trained through the domain's train verb (with rollouts after fit)."""
    tmp = tmp_path_factory.mktemp("rl_train")
    cfg = compose(domain_conf("rl"), [*TINY_DT, "name=shared", "trainer.max_epochs=2"], tmp)
    metrics = train(cfg)
    return cfg, metrics, Path(metrics["last_checkpoint"])
