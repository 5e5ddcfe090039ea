"""The lm-eval task folder from Python: names and globs, groups, which tasks sample replies."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError

logger = logging.getLogger(__name__)


def task_dir() -> Path:
    """The installed lm-eval task folder (what `--include_path` takes)."""
    from culturespa_tasks import TASK_DIR

    return TASK_DIR


def task_manager(include_defaults: bool = False, folder: str | Path | None = None):
    """An lm-eval TaskManager over our task folder, or `folder` (one `culturespa tasks build`
    wrote), and lm-eval's own tasks if asked."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(folder or task_dir()), include_defaults=include_defaults)


def expand_tasks(patterns: str | Iterable[str], names: Sequence[str]) -> list[str]:
    """Comma-separated names or globs -> task/group names in `names`, in order, without repeats."""
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    items = [part for item in items for part in item.split(",")]
    selected: list[str] = []
    for raw in items:
        pattern = raw.strip()
        if not pattern:
            continue
        if any(ch in pattern for ch in "*?["):
            matches = sorted(fnmatch.filter(names, pattern))
        else:
            matches = [pattern] if pattern in names else []
        if not matches:
            raise CulturespaError(
                f"no task matches {pattern!r}; `culturespa tasks` lists them, e.g. wvs_culture_aware_usa"
            )
        selected.extend(matches)
    if not selected:
        raise CulturespaError("no task given; e.g. --tasks 'wvs_culture_aware_*'")
    return list(dict.fromkeys(selected))


def group_members(manager: Any, name: str) -> set[str]:
    """The task names a group runs (itself for a plain task), through nested groups."""
    entry = manager.task_index.get(name)
    members = (entry.cfg or {}).get("task") if entry is not None else None
    if not isinstance(members, list):
        return {name}
    found: set[str] = set()
    for member in members:
        if isinstance(member, str):
            found |= group_members(manager, member)
    return found


def drop_covered(names: Sequence[str], manager: Any) -> list[str]:
    """Drop tasks that a selected group already runs; overlapping groups are an error.

    lm-eval refuses a task selected twice (alone and through a group, or through two groups).
    """
    groups = [n for n in names if group_members(manager, n) != {n}]
    covered: dict[str, str] = {}
    for group in groups:
        for task in group_members(manager, group):
            if task in covered:
                raise CulturespaError(
                    f"groups {covered[task]} and {group} both run {task}; select one of them"
                )
            covered[task] = group
    kept = [n for n in names if n in groups or n not in covered]
    if len(kept) < len(names):
        logger.info("dropped %d tasks that the selected groups run", len(names) - len(kept))
    return kept


def _samples(config: dict) -> bool:
    """Whether a task config samples its replies (generation with `do_sample`): its result
    changes with the seed. Greedy generation (the stated distributions) does not."""
    kwargs = config.get("generation_kwargs") or {}
    return config.get("output_type") == "generate_until" and kwargs.get("do_sample", True) is True


def sampled_tasks(names: Sequence[str], manager: Any) -> list[str]:
    """The names (tasks or groups) whose every task samples its replies."""
    kept = []
    for name in names:
        members = group_members(manager, name)
        if all(
            _samples(manager.task_index[m].cfg or {}) for m in members if m in manager.task_index
        ):
            kept.append(name)
    return kept
