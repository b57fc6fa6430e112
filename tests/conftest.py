"""Session-wide test settings: a private data root, few threads, no network."""

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _data_root(tmp_path_factory):
    """Generated datasets go to one temporary root per test session (never the user's cache or the repo)."""
    if "POLYFORMER_TEST_DATA_DIR" in os.environ:
        root = os.environ["POLYFORMER_TEST_DATA_DIR"]
    else:
        root = str(tmp_path_factory.mktemp("polyformer_data"))
    os.environ["POLYFORMER_DATA_DIR"] = root
    os.environ.setdefault("POLYFORMER_SMOKE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield root


# Tiny test tensors run fastest on one thread (and CI has two cores for everything).
torch.set_num_threads(1)
