"""Training sets in the data builder's format (`culturespa build-data`), built from the survey's
majority answers, for training tests and the GPU check."""

from __future__ import annotations

import json
from pathlib import Path


def sft_rows(country: str, variant: str, n: int) -> list[dict]:
    """Conversational rows as `culturespa build-data` writes them (survey majority as answer)."""
    from culturespa.prompts.templates import render
    from culturespa.survey.items import items_with_data, survey_majority

    template = (
        "cross_culture_thinking" if variant == "cross_culture_thinking_joint" else "culture_aware"
    )
    rows = []
    for qid in items_with_data(country)[:n]:
        prompt = render(template, qid, country)
        answer = str(survey_majority(country, qid))
        rows.append(
            {
                "messages": [*prompt.as_messages(), {"role": "assistant", "content": answer}],
                "country": country,
                "topic": "t",
                "question_id": qid,
                "variant": variant,
            }
        )
    return rows


def write_set(path: Path, rows: list[dict]) -> Path:
    """A DatasetDict({'train'}) folder plus its JSONL sibling, as the data builder writes."""
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_list(rows)}).save_to_disk(str(path))
    with path.with_suffix(".jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return path
