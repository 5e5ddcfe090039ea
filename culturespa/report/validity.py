"""What a results file or sample log may put into a leaderboard row, checked before it gets
there: a score is a finite number the paper's score can take, a share lies in [0, 1], a count
is a finite non-negative number, a logged answer is one the paper's parser accepts (0..10).

The readers (`culturespa.report.results_files`, `culturespa.report.sample_logs`) refuse damaged
files; these checks keep the tables and the ranking sound whatever reaches them.
"""

from __future__ import annotations

import math

from culturespa.report.run_scores import Notes, TaskResult
from culturespa.scoring.answers import MAX_VALID_ANSWER


def valid_score(value: object) -> bool:
    """A score a row can show and rank: a finite number, at most 1, at least -10 (the paper's
    per-item score of an answer of 10 on a two-option item is -8). Anything else (Infinity,
    1e308) is no score: left out with a note, never ranked."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value) and -MAX_VALID_ANSWER <= value <= 1 + 1e-9


def count_value(value: object) -> int:
    """A results file's count (out_of_range), 0 unless a finite number."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return int(value) if number and math.isfinite(value) and value >= 0 else 0


def share_value(value: object) -> float:
    """A results file's share (coverage), NaN unless a finite number in [0, 1]."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) and 0 <= value <= 1 else math.nan


def refuse_unparsable_answers(task: TaskResult, source: object, notes: Notes) -> None:
    """Logged answers the paper's parser would refuse (not an integer in 0..10, e.g. 10**30)
    become invalid replies (None), with a note: they are never scored."""
    if task.answers is None:
        return
    refused = [
        qid
        for qid, answer in task.answers.items()
        if answer is not None
        and (
            not isinstance(answer, int)
            or isinstance(answer, bool)
            or not 0 <= answer <= MAX_VALID_ANSWER
        )
    ]
    if refused:
        task.answers = {q: (None if q in refused else a) for q, a in task.answers.items()}
        notes.add(
            f"{source}: {task.task}: {len(refused)} logged answer(s) outside 0..10 (e.g. item "
            f"{refused[0]}) read as invalid replies"
        )
