"""Reports over lm-eval results: load runs, build a leaderboard and the paper's tables, plot them.

`loading` reads results JSON files and sample logs, `row_building` merges them into `rows`,
`leaderboard` ranks and formats them, `comparison` lays out the paper's table, `plots` draws;
`build_report` runs them all and writes everything into one folder.
"""

from culturespa.report.loading import Notes, RunScores, load_runs
from culturespa.report.writer import build_report

__all__ = ["Notes", "RunScores", "build_report", "load_runs"]
