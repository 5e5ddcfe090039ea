"""The paper's alignment score: a leaf utility (numpy only) that every layer may use: the survey
(similarity between countries), scoring, evaluation and the task folder.

score = 1 - ||a - m||_2 / ||(n_i - 1)_i||_2 over the items with a valid answer: a the answers,
m the survey majority answers, n_i the number of options of item i (Xu et al., 2025, Sec. 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def alignment_from_arrays(
    answers: Sequence[float], majorities: Sequence[float], max_distances: Sequence[float]
) -> float:
    """1 - ||a - m||_2 / ||(n_i - 1)_i||_2 (the paper's formula, in [0, 1] for in-range answers)."""
    if len(answers) == 0:
        return float("nan")
    a = np.asarray(answers, dtype=float)
    m = np.asarray(majorities, dtype=float)
    n = np.asarray(max_distances, dtype=float)
    return float(1.0 - np.linalg.norm(a - m) / np.linalg.norm(n))
