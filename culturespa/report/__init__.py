"""Reports over lm-eval results: load runs, build a leaderboard and the paper's tables, plot them.

`results_files` reads results JSON files (and `sample_logs` their sample logs) into
`run_scores`, `row_building` merges them into `rows`, `leaderboard` ranks and formats them,
`comparison` lays out the paper's table, `plots` draws; `build_report` runs them all and writes
everything into one folder.
"""

from culturespa.report.results_files import load_runs
from culturespa.report.run_scores import Notes, RunScores
from culturespa.report.writer import build_report

__all__ = ["Notes", "RunScores", "build_report", "load_runs"]
