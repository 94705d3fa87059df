"""Reproducible seeds of tasks: derived from a controller's seed and each task's position,
and applied to ``random`` and numpy's global generator for one evaluation.

The derivation uses only the standard library (BLAKE2b of the seed and the position), so
the same controller seed gives the same task seeds on every machine, with or without
numpy installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from typing import Any, Iterator

from .validation import non_negative_int

#: Task seeds are non-negative and below this bound (63 bits).
SEED_BOUND = 2 ** 63
_NUMPY_WORD = 2 ** 32


def task_seeds(seed: int, start: int, n: int) -> list[int]:
    """The seeds of the tasks at positions ``start .. start + n - 1`` of a controller whose
    seed is ``seed``: independent-looking 63-bit ints, the same everywhere."""
    out = []
    for position in range(start, start + n):
        digest = hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8,
                                 person=b"rush-task-seed").digest()
        out.append(int.from_bytes(digest, "big") % SEED_BOUND)
    return out


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        return None
    return numpy


@contextlib.contextmanager
def task_seed(seed: int | None) -> Iterator[None]:
    """Seed ``random`` and numpy's global generator (when numpy is installed) with ``seed``
    for the block, and restore both generators' states afterwards. ``None`` does nothing,
    so ``with rush.task_seed(task.get("seed")):`` works for tasks without a seed.

    A seed below 2**32 seeds numpy as ``numpy.random.seed(seed)`` does; a larger one is
    split into 32-bit words.
    """
    if seed is None:
        yield
        return
    seed = non_negative_int("seed", seed)
    np = _numpy()
    saved = random.getstate()
    np_saved = np.random.get_state() if np is not None else None
    random.seed(seed)
    if np is not None:
        np.random.seed(seed if seed < _NUMPY_WORD else _words(seed))
    try:
        yield
    finally:
        random.setstate(saved)
        if np is not None:
            np.random.set_state(np_saved)


def _words(seed: int) -> list[int]:
    """``seed`` as 32-bit words, least significant first."""
    words = []
    while seed:
        words.append(seed % _NUMPY_WORD)
        seed //= _NUMPY_WORD
    return words
