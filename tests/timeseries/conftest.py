"""Fixtures of the timeseries tests."""

from __future__ import annotations

import pytest
from ts_helpers import make_frame


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory):
    """A 400-row TSLib-style CSV (date, load, temp, OT)."""
    path = tmp_path_factory.mktemp("ts_csv") / "tiny.csv"
    make_frame().to_csv(path, index=False)
    return path
