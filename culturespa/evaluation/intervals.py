"""Bootstrap intervals of a task's alignment from its logged per-item rows (lm-eval samples)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from culturespa.alignment import alignment_from_arrays
from culturespa.errors import CulturespaError
from culturespa.scoring.bootstrap import bootstrap_interval


def _alignment_of_rows(rows: Sequence[Mapping[str, Any]]) -> float:
    return alignment_from_arrays(
        [r["answer"] for r in rows],
        [r["majority"] for r in rows],
        [r["max_distance"] for r in rows],
    )


def alignment_interval(
    rows: Sequence[Mapping[str, Any]], n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a task's alignment from its logged per-item rows."""
    valid = [r for r in rows if r.get("answer") is not None]
    return bootstrap_interval(valid, _alignment_of_rows, n_resamples=n_resamples, seed=seed)


def alignment_intervals(
    samples: Mapping[str, Sequence[Mapping[str, Any]]], n_resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Per-task intervals from lm-eval's samples ({task: [sample, ...]}, as with --log_samples)."""
    return {
        task: alignment_interval([s["alignment"] for s in rows], n_resamples, seed)
        for task, rows in samples.items()
        if rows and "alignment" in rows[0]
    }


def read_sample_log(path: str | Path) -> list[dict[str, Any]]:
    """The samples of one task from lm-eval's samples_<task>_<date>.jsonl."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise CulturespaError(f"sample log {path} does not exist") from exc
    return [json.loads(line) for line in lines if line.strip()]
