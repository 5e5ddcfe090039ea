"""The names of the metrics a WVS task reports: the one list every layer reads.

The task YAMLs (`metric_list` of `culturespa_tasks/_wvs_*_yaml`), the tasks' `process_results`,
the group YAMLs' averages, the report's reader and the survey references all use these names;
`tests/test_metric_names.py` checks that the YAMLs and `culturespa_tasks/utils.py` report exactly
`TASK_METRICS` for each way of asking.
"""

from __future__ import annotations

ALIGNMENT = "alignment"
"""The paper's score over the task's items with a valid answer."""
ALIGNMENT_SPECIFIC = "alignment_specific"
"""The paper's score over the culture-specific items (majority differs from the consensus)."""
ALIGNMENT_W1 = "alignment_w1"
ALIGNMENT_JSD = "alignment_jsd"
MAJORITY_MATCH = "majority_match"
COVERAGE = "coverage"
OUT_OF_RANGE = "out_of_range"
UNPARSED = "unparsed"
TIED = "tied"
POSITION_LED = "position_led"

SCORE_METRICS: tuple[str, ...] = (
    ALIGNMENT,
    ALIGNMENT_SPECIFIC,
    ALIGNMENT_W1,
    ALIGNMENT_JSD,
    MAJORITY_MATCH,
)
"""How well answers agree with the survey: what a report can rank by."""
PAPER_SCORE_METRICS: tuple[str, ...] = (ALIGNMENT, ALIGNMENT_SPECIFIC)
"""The paper's score over all items, and over the culture-specific ones: computable from the
per-item answers of a sample log."""
COUNT_METRICS: tuple[str, ...] = (OUT_OF_RANGE, UNPARSED, TIED)
"""Metrics that count items (>= 0, aggregated as sums); every other one is a share or a score."""
REFERENCE_METRICS: tuple[str, ...] = (ALIGNMENT, ALIGNMENT_W1, ALIGNMENT_JSD, MAJORITY_MATCH)
"""The per-item metrics a survey reference (a rule that answers without a model) is scored on;
its `alignment_specific` is `alignment` on the culture-specific items."""

_PERMUTED = (*SCORE_METRICS, COVERAGE, TIED)
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "loglik": SCORE_METRICS,
    "rev": SCORE_METRICS,
    "gen": (ALIGNMENT, ALIGNMENT_SPECIFIC, ALIGNMENT_W1, ALIGNMENT_JSD, COVERAGE, OUT_OF_RANGE),
    "dist": (*SCORE_METRICS, COVERAGE, UNPARSED),
    "perm": _PERMUTED,
    "cal": (*_PERMUTED, POSITION_LED),
}
"""Way of asking (`culturespa.prompts.task_names.WAYS`) -> the metrics each of its tasks reports,
in the order of its `metric_list`."""
GROUP_METRICS: dict[str, tuple[str, ...]] = {
    way: tuple(m for m in metrics if m not in COUNT_METRICS)
    for way, metrics in TASK_METRICS.items()
}
"""Way of asking -> the metrics its groups average over their tasks (the counts are not averaged)."""
REPORTED_METRICS: tuple[str, ...] = (
    *SCORE_METRICS,
    COVERAGE,
    OUT_OF_RANGE,
    UNPARSED,
    POSITION_LED,
)
"""The metrics a report reads from results files and sample logs (not `tied`: it counts the items
that `coverage` misses in the permuted and calibrated tasks)."""
