"""The time estimate printed before each stage, from measured seconds per unit of work."""

from __future__ import annotations

from culturespa.loop.config import LoopConfig
from culturespa.loop.layout import Layout
from culturespa.run_files import (
    ANSWER_LOG,
    ANSWERS_FOLDER,
    FILTERED_QUESTIONS,
    QUESTIONS_FOLDER,
)

IDLE_SECONDS: dict[str, float] = {
    "answer_prompt": 0.10,
    "train_example": 0.57,
    "eval_item": 0.10,
    "eval_item_adapter": 0.12,
    "process_start": 15.0,
}
"""Seconds per unit of work with SmolLM2-135M-Instruct on the project's 2-core CPU, measured by
`make loop` with 200 questions per topic (2026-12-03, README "CultureSPA end to end on the default
model"): 15,600 answer prompts in 26.8 min, 795 + 795 training rows in 8.0 + 8.5 min, 1,255 items
in 2.4 min (base), 2.9 min (joint adapter) and 3.4 min (five specific adapters), each command's
start included; the time estimates printed before each stage scale these. Runs of the same
command have taken up to 1.6 times longer (the first runs at 100 per topic: 0.17 s per prompt)."""

WAY_COST: dict[str, float] = {"perm": 4.3, "cal": 1.05}
"""Time of a way of asking against the forward log-likelihood way on the same items, measured on
the default model. Permuted: 4.3 times since the orders of an item share their question's states
(`python benchmarks/run.py --parts eval_debiased` then `--parts eval_loglik`, 2026-12-08: 242.0 s
against 56.1 s on the USA's 257 items; 5.6 times before, docs/ways_debiased.md). Calibrated: 7,784
option scores against 7,436, 5 min 44 s for the demo's five countries (2026-12-07). Other ways 1."""

EXPECTED_PAIR_SHARE = 0.06
"""Share of (question, country) pairs whose culture-aware answer differs from the culture-unaware
one with SmolLM2-135M-Instruct (measured: 391 of 6,500, 6.0%, with 100 questions per topic; 795 of
13,000, 6.1%, with 200); only for the estimate of training time before the data exist."""


def answer_prompts(config: LoopConfig, layout: Layout, data: dict) -> tuple[int, int]:
    """(prompts of the answer stage, prompts already answered), for the estimate; `data` is the
    build-data config the loop runs."""
    questions = expected_questions(config, data)
    filtered = layout.data / QUESTIONS_FOLDER / FILTERED_QUESTIONS
    if filtered.is_file():
        with filtered.open(encoding="utf-8") as f:
            questions = sum(1 for line in f if line.strip())
    cct = (data.get("answer") or {}).get("cross_culture_thinking", True)
    total = questions * (1 + len(config.countries) * (2 if cct else 1))
    done = 0
    for log in (layout.data / ANSWERS_FOLDER).glob(ANSWER_LOG.replace(".log", "*.log")):
        with log.open(encoding="utf-8") as f:
            done += sum(1 for line in f if line.strip())
    return total, min(done, total)


def expected_questions(config: LoopConfig, data: dict) -> int:
    """Kept questions before the filter ran: the subset's size, else those of the questions file."""
    return config.per_topic * 13 if config.per_topic else _kept_questions(data)


def _kept_questions(data: dict) -> int:
    """Questions the filter keeps, before it ran: 12,808 of the released 13,000; at most the
    lines of a smaller questions file (the 42 sample questions)."""
    from culturespa.packaged import data_file

    source = data.get("questions_file")
    path = data_file(source, "questions_file") if isinstance(source, str) else None
    if path is None or not path.is_file():
        return 12808
    with path.open(encoding="utf-8") as f:
        return min(12808, sum(1 for line in f if line.strip()))


def eval_items(config: LoopConfig) -> int:
    """WVS items per country task (those with survey data, or the limit)."""
    from culturespa.survey.items import items_with_data

    return sum(
        min(len(items_with_data(c)), config.eval_limit or 10**6) for c in config.countries
    ) // len(config.countries)


def way_of_group(group: str) -> str:
    """The way of asking of a task group (`wvs_perm_culture_aware` -> perm)."""
    from culturespa.prompts.task_names import parse_task_name

    parsed = parse_task_name(group)
    return parsed.way if parsed is not None else "loglik"
