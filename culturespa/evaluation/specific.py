"""Culture-specific adapters evaluated as one run: each country's adapter (from the training
run's `adapters.json`) on its own country's task of each task group, one results file each.

`culturespa eval --adapters runs/train/llama3-8b-instruct_culture_specific --tasks
wvs_gen_culture_aware --output-path runs/eval` runs it; `culturespa report` reads each adapter's
country from its training record and shows the adapters as one row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from culturespa.errors import CulturespaError
from culturespa.prompts.task_names import task_of_group

if TYPE_CHECKING:
    from culturespa.evaluation.run import EvalOptions

logger = logging.getLogger(__name__)


def country_tasks(groups: str, country: str) -> str:
    """'wvs_culture_aware,wvs_rev_culture_aware' + USA -> each group's USA task, comma-separated."""
    names = [g.strip() for g in groups.split(",") if g.strip()]
    try:
        return ",".join(task_of_group(group, country) for group in names)
    except ValueError as exc:
        raise CulturespaError(
            f"--tasks {groups!r}: with --adapters, task groups such as wvs_culture_aware ({exc})"
        ) from None


def select_adapters(
    index_path: str | Path, countries: tuple[str, ...] | None
) -> tuple[str, dict[str, str]]:
    """(base model, {ISO3: adapter folder}) of `adapters.json`, only `countries` when given."""
    from culturespa.training.outputs import read_adapter_index

    base, adapters = read_adapter_index(index_path)
    if countries is not None:
        missing = [c for c in countries if c not in adapters]
        if missing:
            raise CulturespaError(
                f"{index_path}: no adapter for {', '.join(missing)}; it holds {', '.join(adapters)}"
            )
        adapters = {c: adapters[c] for c in countries}
    return base, adapters


def check_adapters_surveyed(index_path: str | Path, adapters: dict[str, str]) -> None:
    """Every adapter's country is in the survey in use (its task exists); else one line."""
    from culturespa.survey.countries import get_country
    from culturespa.survey.folder import survey_folder, survey_label, surveyed_countries

    outside = [code for code in adapters if code not in surveyed_countries()]
    if outside:
        code = outside[0]
        hint = (
            "pass --survey DIR with a survey folder that has it"
            if survey_folder() is None
            else "evaluate it with the survey folder it was trained on, or leave it out "
            "with --countries"
        )
        raise CulturespaError(
            f"{index_path}: the adapter of {code} ({get_country(code).name}) has no task: "
            f"{survey_label()} lacks {code}; {hint}"
        )


def evaluate_culture_specific(
    index_path: str | Path,
    task: str,
    options: EvalOptions,
    model: str | None = None,
    countries: tuple[str, ...] | None = None,
    seeds: Sequence[int] = (42,),
) -> dict[str, list[dict[str, Any]]]:
    """Evaluate each country's adapter (or those of `countries` only) on its country's task of
    each group in `task` (comma-separated); {ISO3: lm-eval results, one per seed}. `options`
    are those of `run_evaluations`, its `peft` the country's adapter."""
    from culturespa.evaluation.run import run_evaluations

    index_base, adapters = select_adapters(index_path, countries)
    check_adapters_surveyed(index_path, adapters)
    base = model or index_base
    if not base:
        raise CulturespaError(f"{index_path}: no base_model; pass the base model (--model)")
    results = {}
    for code, adapter in adapters.items():
        tasks = country_tasks(task, code)
        logger.info("evaluating %s adapter %s on %s", code, adapter, tasks)
        results[code] = run_evaluations(base, tasks, seeds, replace(options, peft=adapter))
    return results
