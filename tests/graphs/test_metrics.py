"""Each benchmark metric on a hand-made example, against its definition."""

import math

import pytest
import torch

from polyformer.core.errors import DataError
from polyformer.graphs.metrics import (
    Accuracy,
    MeanError,
    RocAuc,
    SBMAccuracy,
    accuracy_sbm,
    multitask_roc_auc,
    roc_auc,
)


def test_accuracy_sbm_is_mean_per_class_recall():
    # class 0: 4 nodes, 3 right; class 1: 2 nodes, 1 right -> (3/4 + 1/2) / 2 = 62.5
    target = torch.tensor([0, 0, 0, 0, 1, 1])
    pred = torch.tensor([0, 0, 0, 1, 1, 0])
    assert accuracy_sbm(pred, target) == pytest.approx(62.5)
    # plain accuracy would be 4/6 = 66.7: the metric weighs classes, not nodes
    assert accuracy_sbm(pred, target) != pytest.approx(100 * 4 / 6)


def test_accuracy_sbm_counts_predicted_only_classes_like_benchmarking_gnns():
    # classes 0, 1 in the targets; class 2 only predicted: sklearn's confusion matrix is 3x3,
    # recall(0) = 1/2, recall(1) = 1, recall(2) = 0 (no support) -> 100 * 1.5 / 3 = 50
    target = torch.tensor([0, 0, 1])
    pred = torch.tensor([0, 2, 1])
    assert accuracy_sbm(pred, target, num_classes=6) == pytest.approx(50.0)
    # a class absent from both targets and predictions does not count
    assert accuracy_sbm(torch.tensor([0, 1]), torch.tensor([0, 1]), num_classes=6) == pytest.approx(100.0)


def test_sbm_metric_accumulates_over_batches():
    m = SBMAccuracy(num_classes=2)
    m.update(torch.tensor([[2.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 0]))  # logits
    m.update(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 0, 1, 1]))  # classes
    # class 0: 3 of 4, class 1: 1 of 2 -> 62.5 (batch-averaging would give (100 + 50) / 2 = 75)
    assert float(m.compute()) == pytest.approx(62.5)


def test_accuracy_and_errors():
    acc = Accuracy()
    acc.update(torch.tensor([1, 0, 2]), torch.tensor([1, 1, 2]))
    assert float(acc.compute()) == pytest.approx(200 / 3)
    mae, mse = MeanError(1), MeanError(2)
    for m in (mae, mse):
        m.update(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.5], [0.0]]))
        m.update(torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    assert float(mae.compute()) == pytest.approx((0.5 + 2 + 1) / 3)
    assert float(mse.compute()) == pytest.approx((0.25 + 4 + 1) / 3)


def test_roc_auc_is_the_probability_a_positive_outranks_a_negative():
    score = torch.tensor([0.9, 0.4, 0.4, 0.2, 0.8])
    target = torch.tensor([1, 1, 0, 0, 0])
    # pairs (pos, neg): (0.9: beats 0.4, 0.2, 0.8 -> 3), (0.4: ties 0.4 -> 0.5, beats 0.2 -> 1, loses 0.8)
    assert roc_auc(score, target) == pytest.approx((3 + 1.5) / 6)
    assert roc_auc(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])) == 1.0
    with pytest.raises(DataError):
        roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))


def test_multitask_roc_auc_skips_missing_labels_and_one_class_tasks():
    score = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.5, 0.3], [0.6, 0.7, 0.1]])
    target = torch.tensor([[1.0, math.nan, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    # task 0: positives 0.9, 0.6 vs negative 0.2 -> 1.0; task 1 (row 0 missing): 0.5 vs 0.7 -> 0.0;
    # task 2 has only positives and is skipped -> mean 0.5
    assert multitask_roc_auc(score, target) == pytest.approx(0.5)
    m = RocAuc()
    m.update(score[:2], target[:2])
    m.update(score[2:], target[2:])
    assert float(m.compute()) == pytest.approx(0.5)
