"""The metrics each graph benchmark defines, accumulated over a whole evaluation split.

- `accuracy_sbm` (PATTERN, CLUSTER): benchmarking-gnns' `accuracy_SBM`, also GraphGPS's
  "accuracy-SBM": the recall of every class, summed over the classes that appear in the targets, divided
  by the number of classes in the confusion matrix (classes present in the targets *or* the predictions),
  times 100. It is the class-balanced accuracy, with one quirk kept from the definition: a class that is
  predicted but absent from the targets counts in the denominator with recall 0. GraphGPS computes it
  over the whole split (as here); benchmarking-gnns averaged it over batches.
- `accuracy`: plain accuracy in percent (TUDataset, superpixels).
- `mae`: mean absolute error (ZINC); `mse`: mean squared error.
- `rocauc`: ROC-AUC as the OGB evaluator computes it for ogbg-mol*: per task over the labelled
  (non-NaN) entries, for tasks with both classes present, averaged over those tasks.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from polyformer.core.errors import ConfigError, DataError


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """`cm[t, p]` = number of items of class t predicted as p."""
    idx = target.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def accuracy_sbm_from_confusion(cm: torch.Tensor) -> float:
    """benchmarking-gnns' accuracy_SBM from a confusion matrix (see the module docstring)."""
    support = cm.sum(1)
    present = (support > 0) | (cm.sum(0) > 0)
    if not bool(present.any()):
        return 0.0
    recall = torch.where(support > 0, cm.diagonal().double() / support.clamp(min=1).double(), torch.zeros((), dtype=torch.double))
    return float(100.0 * recall[present].sum() / present.sum())


def accuracy_sbm(pred: torch.Tensor, target: torch.Tensor, num_classes: int | None = None) -> float:
    """Class-weighted accuracy of predicted classes `pred` against `target` (both [N]), in percent."""
    k = int(num_classes or int(torch.maximum(pred.max(), target.max())) + 1)
    return accuracy_sbm_from_confusion(confusion_matrix(pred, target, k))


def roc_auc(score: torch.Tensor, target: torch.Tensor) -> float:
    """Area under the ROC curve of one task: P(score of a positive > score of a negative), ties count 1/2."""
    score, target = score.double().view(-1), target.view(-1)
    pos, neg = score[target > 0.5], score[target <= 0.5]
    if pos.numel() == 0 or neg.numel() == 0:
        raise DataError("ROC-AUC needs both positive and negative targets")
    # rank-sum (Mann-Whitney U) form with average ranks for ties
    allv = torch.cat([pos, neg])
    order = torch.argsort(allv, stable=True)
    _, inverse, counts = torch.unique_consecutive(allv[order], return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1
    ranks = torch.empty_like(allv)
    ranks[order] = first.double()[inverse] + (counts.double()[inverse] - 1) / 2
    n_pos, n_neg = pos.numel(), neg.numel()
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def multitask_roc_auc(score: torch.Tensor, target: torch.Tensor) -> float:
    """OGB's mean ROC-AUC over tasks (columns) with both classes among their non-NaN targets."""
    score, target = score.view(score.shape[0], -1), target.view(target.shape[0], -1)
    values = []
    for t in range(target.shape[1]):
        labelled = ~torch.isnan(target[:, t])
        y = target[labelled, t]
        if (y > 0.5).any() and (y <= 0.5).any():
            values.append(roc_auc(score[labelled, t], y))
    if not values:
        raise DataError("ROC-AUC needs at least one task with both positive and negative targets")
    return sum(values) / len(values)


class SBMAccuracy(Metric):
    """`accuracy_sbm` over everything seen since the last reset (inputs: logits [N, C] or classes [N])."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = int(num_classes)
        self.add_state("cm", default=torch.zeros(self.num_classes, self.num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.dim() == 2:
            pred = pred.argmax(-1)
        self.cm += confusion_matrix(pred, target, self.num_classes)

    def compute(self) -> torch.Tensor:
        return torch.tensor(accuracy_sbm_from_confusion(self.cm))


class Accuracy(Metric):
    """Plain accuracy in percent (inputs: logits [N, C] or classes [N])."""

    full_state_update = False
    higher_is_better = True

    def __init__(self):
        super().__init__()
        self.add_state("correct", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.dim() == 2:
            pred = pred.argmax(-1)
        self.correct += (pred == target).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return 100.0 * self.correct.double() / self.total.clamp(min=1)


class MeanError(Metric):
    """Mean absolute (p=1, MAE) or squared (p=2, MSE) error over all targets."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, p: int = 1):
        super().__init__()
        self.p = p
        self.add_state("err", default=torch.tensor(0.0, dtype=torch.double), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        diff = (pred.view_as(target) - target).abs().double()
        self.err += (diff if self.p == 1 else diff**2).sum()
        self.total += target.numel()

    def compute(self) -> torch.Tensor:
        return self.err / self.total.clamp(min=1)


class RocAuc(Metric):
    """OGB-style mean ROC-AUC (inputs: scores/logits [G, T], targets [G, T] with NaN for missing)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self):
        super().__init__()
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        self.scores.append(pred.detach().float().view(target.shape[0], -1))
        self.targets.append(target.detach().float().view(target.shape[0], -1))

    def compute(self) -> torch.Tensor:
        scores = torch.cat(self.scores) if isinstance(self.scores, list) else self.scores
        targets = torch.cat(self.targets) if isinstance(self.targets, list) else self.targets
        return torch.tensor(multitask_roc_auc(scores, targets))


def build_metric(name: str, num_classes: int | None = None) -> Metric:
    """The metric object for a data spec's `metric` name."""
    if name == "accuracy_sbm":
        if not num_classes:
            raise ConfigError("accuracy_sbm needs the number of classes")
        return SBMAccuracy(num_classes)
    if name == "accuracy":
        return Accuracy()
    if name == "mae":
        return MeanError(1)
    if name == "mse":
        return MeanError(2)
    if name == "rocauc":
        return RocAuc()
    raise ConfigError(f"unknown graph metric '{name}'")
