"""F1 for the classifier's evaluations: per class, macro and weighted (by support)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    weighted: float
    macro: float
    per_class: dict[str, float]
    support: dict[str, int]


def f1_scores(truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> Scores:
    assert len(truth) == len(predicted) and truth, "need as many predictions as labels, and some"
    per_class: dict[str, float] = {}
    support: dict[str, int] = {}
    for c in classes:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p != c)
        per_class[c] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        support[c] = tp + fn
    n = len(truth)
    weighted = sum(per_class[c] * support[c] / n for c in classes)
    macro = sum(per_class.values()) / len(classes)
    return Scores(weighted, macro, per_class, support)


def binary_f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 of one yes/no label."""
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
