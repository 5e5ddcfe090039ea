"""The filter rules, one by one, and the counts on the paper's released Llama-3 questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from culturespa.pluralise.filter import (
    clean_options,
    filter_questions,
    normalised,
    single_rule_counts,
)
from culturespa.pluralise.questions import read_raw_questions
from culturespa.survey.items import TOPIC_NAMES, get_item

T = TOPIC_NAMES[0]
LLAMA3 = Path(__file__).resolve().parents[1] / "data/generated/generated_questions_llama3_8b.jsonl"


def row(question: str, options: list, topic: str = T) -> dict:
    return {"topic": topic, "question": question, "options": options}


def test_numbering_is_stripped():
    result = clean_options("Q?", ["1 - Strongly disagree", "2. Disagree", "3) Agree"])
    assert result.options == ["Strongly disagree", "Disagree", "Agree"]
    assert result.edits == ["numbering_stripped"]
    assert clean_options("Q?", ["0-2 hours", "3-5 hours"]).options == ["0-2 hours", "3-5 hours"]


def test_labelled_ends_become_a_numeric_card():
    options = ["1 - Not at all", *map(str, range(2, 10)), "10 - Completely"]
    result = clean_options("How much do you trust them?", options)
    assert result.options == [str(n) for n in range(1, 11)]
    assert result.question.endswith(
        "Using this card on which 1 means 'Not at all' and 10 means 'Completely'."
    )
    assert result.first_option == 1 and result.edits == ["numeric_card"]


def test_numbers_only_need_an_explained_scale():
    numbers = [str(n) for n in range(0, 11)]
    assert (
        clean_options("On a scale from 0 to 10, how happy are you?", numbers).drop == "numbers_only"
    )
    explained = clean_options("Where 0 means 'never' and 10 means 'always', how often?", numbers)
    assert explained.drop is None and explained.first_option == 0
    assert clean_options("From 1 (low) to 5 (high)?", ["1", "2", "3", "4", "5"]).drop is None
    assert clean_options("Q where 1 means x and 9 means y", ["1", "3", "9"]).drop == "numbers_only"


def test_duplicates_counts_and_order():
    wvs = get_item("Q1").question
    rows = [
        row("How often do you pray?", ["Often", "Never"]),
        row("How often do you pray?", ["Daily", "Never"]),  # exact duplicate of the text
        row("How often, do you pray ", ["Often", "Never"]),  # near duplicate
        row(wvs.upper(), ["Yes", "No"]),  # a WVS item in another case
        row("One option only?", ["Yes"]),
        row("Too many?", [f"o{i}" for i in range(12)]),
        row("", ["a", "b"]),
        row("Kept", ["1. Yes", "2. No"], topic=TOPIC_NAMES[1]),
        row("Same answer twice?", ["1. Agree", "2. Neutral", "3. agree."]),
    ]
    kept, report = filter_questions(rows)
    assert [q.question for q in kept] == ["How often do you pray?", "Kept"]
    assert kept[1].options == ("Yes", "No") and kept[1].options_text() == "1.Yes 2.No"
    assert dict(report.dropped) == {
        "exact_duplicate": 1,
        "near_duplicate": 1,
        "wvs_duplicate": 1,
        "option_count": 2,
        "malformed": 1,
        "duplicate_options": 1,
    }
    assert report.per_topic[TOPIC_NAMES[1]]["numbering_stripped"] == 1
    assert report.kept == 2 and report.total == 9
    assert "| drop: near_duplicate | 1 |" in report.markdown()


def test_ids_are_stable_and_unique():
    rows = [row(f"Question {i}?", ["a", "b"]) for i in range(20)]
    first, _ = filter_questions(rows)
    second, _ = filter_questions(list(rows))
    assert [q.question_id for q in first] == [q.question_id for q in second]
    assert len({q.question_id for q in first}) == 20 and first[0].question_id.startswith("t00-")
    assert normalised("The  Value, of a Thing!") == "value of thing"


def test_llama3_release_counts():
    rows = read_raw_questions(LLAMA3)
    assert len(rows) == 13000
    alone = single_rule_counts(rows)
    assert 13000 - alone["exact_duplicate"] == 12891  # the figure in the data README
    kept, report = filter_questions(rows)
    assert report.kept == len(kept) == 12808
    assert dict(report.dropped) == {
        "exact_duplicate": 109,
        "numbers_only": 39,
        "duplicate_options": 42,
        "near_duplicate": 2,
    }
    assert report.edited == {"numbering_stripped": 2792, "numeric_card": 28}


def test_broken_questions_file_names_the_line(tmp_path):
    from culturespa.errors import CulturespaError

    path = tmp_path / "q.jsonl"
    good = json.dumps({"topic": T, "question": "Q", "options": ["a", "b"]})
    path.write_text(good + '\n{"topic": oops\n')
    with pytest.raises(CulturespaError, match=r"q.jsonl:2: not valid JSON"):
        read_raw_questions(path)
    path.write_text('{"topic": "Weather", "question": "Q", "options": ["a", "b"]}\n')
    with pytest.raises(CulturespaError, match=r"q.jsonl:1: unknown topic"):
        read_raw_questions(path)
    path.write_text(json.dumps({"topic": T, "question": "Q"}) + "\n")
    with pytest.raises(CulturespaError, match=r"q.jsonl:1: missing field\(s\) options"):
        read_raw_questions(path)
