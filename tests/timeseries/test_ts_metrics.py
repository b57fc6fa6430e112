"""Metrics: TSLib's MSE/MAE on a hand-made example; every window counted whatever the batch sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polyformer.timeseries.metrics import ForecastErrors, mae, mse


def test_mse_mae_hand_made():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    true = np.array([[1.0, 0.0], [0.0, 8.0]])
    # errors 0, 2, 3, -4: squared 0+4+9+16 = 29, absolute 0+2+3+4 = 9, over 4 elements.
    assert mse(pred, true) == pytest.approx(29 / 4)
    assert mae(pred, true) == pytest.approx(9 / 4)
    assert mse(torch.tensor(pred), torch.tensor(true)) == pytest.approx(29 / 4)


def test_running_errors_weigh_every_window_not_every_batch():
    torch.manual_seed(0)
    pred, true = torch.randn(37, 5, 3), torch.randn(37, 5, 3)
    metric = ForecastErrors()
    for start in range(0, 37, 16):  # batches of 16, 16, 5
        metric.update(pred[start:start + 16], true[start:start + 16])
    got = metric.compute()
    assert float(got["mse"]) == pytest.approx(mse(pred, true), rel=1e-9)
    assert float(got["mae"]) == pytest.approx(mae(pred, true), rel=1e-9)
    batch_mean = np.mean([mse(pred[s:s + 16], true[s:s + 16]) for s in range(0, 37, 16)])
    assert float(got["mse"]) != pytest.approx(batch_mean, rel=1e-6)  # the naive per-batch average differs


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        ForecastErrors().update(torch.zeros(2, 3), torch.zeros(3, 2))
