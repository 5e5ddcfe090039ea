"""The lm-evaluation-harness task folder of culturespa: WVS survey simulation per template and country."""

from __future__ import annotations

from pathlib import Path

TASK_DIR: Path = Path(__file__).resolve().parent
"""The folder to pass to lm-eval as `--include_path`."""
