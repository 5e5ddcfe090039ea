"""Stage 5: conversational training sets (the contract with `recipes/sft.py`).

Under `<output_dir>/sft/`:

- `culture_joint/` + `culture_joint.jsonl`: culture-aware rows of all countries,
- `cross_culture_thinking_joint/` + `cross_culture_thinking_joint.jsonl`: cross-culture-thinking rows of all countries,
- `culture_specific/<ISO3>/` + `culture_specific/<ISO3>.jsonl`: one set per country,
- `README.md`: the dataset card.

Folders are `DatasetDict({"train": ...}).save_to_disk` outputs. Each row is
`{"messages": [system, user, assistant], "country", "topic", "question_id", "variant"}`; the system
message is the variant's persona (`system_prompt("aware", c)` for culture sets,
`system_prompt("cross_culture_thinking", c)` for CCT), the user message is `USER_PLAIN` with the question
and its options as "1.Option 2.Option ...", the assistant message is the option number.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from culturespa.atomic import replace_dir_atomic, write_text_atomic
from culturespa.errors import CulturespaError
from culturespa.pluralise.questions import Question
from culturespa.pluralise.store import write_jsonl_atomic
from culturespa.prompts.templates import system_prompt
from culturespa.run_files import (
    CROSS_CULTURE_JOINT,
    DATASET_CARD,
    JOINT,
    SPECIFIC,
    VARIANTS,
    country_set,
    set_jsonl,
)
from culturespa.survey.items import TOPIC_NAMES

_SOURCE = {JOINT: "culture", CROSS_CULTURE_JOINT: "cross_culture_thinking", SPECIFIC: "culture"}
_SYSTEM_KIND = {"culture": "aware", "cross_culture_thinking": "cross_culture_thinking"}


def training_row(question: Question, country: str, answer: int, source: str, variant: str) -> dict:
    """One conversational example in the contract's format."""
    return {
        "messages": [
            {"role": "system", "content": system_prompt(_SYSTEM_KIND[source], country)},
            {"role": "user", "content": question.user_message()},
            {"role": "assistant", "content": str(answer)},
        ],
        "country": country,
        "topic": question.topic,
        "question_id": question.question_id,
        "variant": variant,
    }


def _features():
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    return Features(
        {
            "messages": List(message),
            "country": Value("string"),
            "topic": Value("string"),
            "question_id": Value("string"),
            "variant": Value("string"),
        }
    )


def check_build_targets(sft_dir: Path, variants: Sequence[str], countries: Sequence[str]) -> None:
    """Refuse a symbolic link where the build stage replaces a folder or file (it would move the
    link and fail on every rerun), before any stage runs."""
    folders = [sft_dir] + [sft_dir / v for v in variants]
    if SPECIFIC in variants:
        folders += [country_set(sft_dir, cc) for cc in countries]
    for folder in folders:
        for path in (folder, folder.with_name(f".{folder.name}.old"), set_jsonl(folder)):
            if path.is_symlink():
                raise CulturespaError(
                    f"{path} is a symbolic link; build-data replaces it with its own output: "
                    "remove the link (or use another output_dir)"
                )


def save_dataset(rows: list[dict], folder: Path, jsonl: Path) -> None:
    """Save rows as DatasetDict({'train'}) in `folder` (atomically) and as JSONL."""
    from datasets import Dataset, DatasetDict

    staging = folder.with_name(f".{folder.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    features = _features()
    columns = {name: [row[name] for row in rows] for name in features}
    dataset = Dataset.from_dict(columns, features=features)
    # One shard always, so an empty set (a country with no differing answer) still loads.
    DatasetDict({"train": dataset}).save_to_disk(str(staging), num_shards={"train": 1})
    replace_dir_atomic(staging, folder)
    write_jsonl_atomic(jsonl, rows)


def build_training_sets(
    questions: Sequence[Question],
    collected: Sequence[dict],
    countries: Sequence[str],
    out_dir: Path,
    variants: Sequence[str] = VARIANTS,
    card_info: dict | None = None,
) -> dict:
    """Write every requested variant under `out_dir` (the run's `sft/`); return row counts."""
    by_id = {q.question_id: q for q in questions}
    counts: dict[str, int] = {}
    stats: dict[str, dict] = {}
    for variant in variants:
        source = _SOURCE[variant]
        picked = [r for r in collected if r["variant"] == source]
        if variant == SPECIFIC:
            for country in countries:
                rows = [
                    training_row(by_id[r["question_id"]], country, r["answer"], source, variant)
                    for r in picked
                    if r["country"] == country
                ]
                folder = country_set(out_dir, country)
                save_dataset(rows, folder, set_jsonl(folder))
                counts[f"{SPECIFIC}/{country}"] = len(rows)
        else:
            rows = [
                training_row(by_id[r["question_id"]], r["country"], r["answer"], source, variant)
                for r in picked
            ]
            save_dataset(rows, out_dir / variant, set_jsonl(out_dir / variant))
            counts[variant] = len(rows)
            stats[variant] = {
                "country": dict(Counter(r["country"] for r in rows)),
                "topic": dict(Counter(r["topic"] for r in rows)),
            }
    write_text_atomic(
        out_dir / DATASET_CARD, dataset_card(counts, stats, countries, card_info or {})
    )
    return counts


def dataset_card(counts: dict, stats: dict, countries: Sequence[str], info: dict) -> str:
    """The dataset card: source model, method, contract, counts, per-country/topic statistics."""
    lines = [
        "---",
        "license: other",
        "task_categories: [text-generation]",
        "tags: [culturespa, world-values-survey, cultural-alignment]",
        "---",
        "",
        "# CultureSPA self-pluralised training data",
        "",
        "Built by `culturespa build-data` (the CultureSPA data recipe, Xu et al., arXiv 2410.12971).",
        "",
        f"- Source model: `{info.get('model', '?')}` (backend `{info.get('backend', '?')}`)",
        f"- Questions: `{info.get('questions_source', '?')}`, {info.get('n_questions', '?')} kept after filtering",
        f"- Answer method: `{info.get('method', '?')}`; seed {info.get('seed', '?')}",
        f"- Countries: {', '.join(countries)}",
        "",
        "A row is kept where the culture-aware (or cross-culture-thinking) answer for a country",
        "differs from the model's culture-unaware answer to the same question.",
        "",
        "## Format",
        "",
        "Each folder is a `datasets.DatasetDict` with one split, `train`, saved with `save_to_disk`;",
        "the JSONL file next to it holds the same rows. A row:",
        "",
        "```json",
        '{"messages": [{"role": "system", "content": "<country persona of the variant>"},',
        '              {"role": "user", "content": "<USER_PLAIN with #Question and #Options 1.A 2.B ...>"},',
        '              {"role": "assistant", "content": "3"}],',
        ' "country": "USA", "topic": "<WVS topic>", "question_id": "t00-<sha1>", "variant": "culture_joint"}',
        "```",
        "",
        "System prompts: culture-aware (P1) for `culture_joint` and `culture_specific`,",
        "cross-culture thinking (P2) for `cross_culture_thinking_joint`.",
        "",
        "## Counts",
        "",
        "| set | rows |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {n} |" for name, n in counts.items()]
    for variant, parts in stats.items():
        lines += ["", f"## {variant}: rows per country and per topic", ""]
        lines += ["| country | rows |", "| --- | ---: |"]
        lines += [f"| {c} | {parts['country'].get(c, 0)} |" for c in countries]
        lines += ["", "| topic | rows |", "| --- | ---: |"]
        lines += [f"| {t} | {parts['topic'].get(t, 0)} |" for t in TOPIC_NAMES]
    return "\n".join(lines) + "\n"
