"""Alternating repetitions: every comparison is two things measured in the same run,
interleaved (A B, B A, A B, ...) so drift on a noisy machine hits both alike."""

from __future__ import annotations

import gc
import statistics
from typing import Callable


def alternate(contenders: dict[str, Callable[[], float]], reps: int) -> dict[str, list[float]]:
    """Run each contender ``reps`` times, alternating the order every repetition.

    Each contender returns one sample (e.g. seconds per task). Returns the samples.
    """
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()  # garbage of the previous contender is not charged to this one
            samples[name].append(contenders[name]())
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def paired_ratio(a: list[float], b: list[float]) -> float:
    """Median of the per-repetition ratios a[i]/b[i] (each pair measured back to back)."""
    return median([x / y for x, y in zip(a, b) if y])
