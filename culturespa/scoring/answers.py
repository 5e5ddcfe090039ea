"""Answers: the paper's parser, and answers set next to the survey's majorities."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from culturespa.alignment import alignment_from_arrays
from culturespa.errors import CulturespaError
from culturespa.survey.items import get_item, survey_majority

_FIRST_INTEGER = re.compile(r"\d+")
MAX_VALID_ANSWER = 10


def parse_answer(reply: str | int | float | None) -> int | None:
    """The paper's parser: the first integer in the reply if it lies in 0..10, else None.

    Every answer is read as text: a number (an int or float from a JSON reply file) is first
    turned into its text, so 7, 7.0 and "7" give 7; a boolean is refused. The first integer keeps
    its sign when a minus sign directly precedes it and is not itself preceded by a letter or a
    digit: "-1" and "answer: -3" are negative, so invalid, while "1-4" gives 1 and "Option-2"
    gives 2. The paper's regex (`\\d+`) would read "-1" as 1; no reply in its released files has
    such a sign, so its published scores are unchanged.
    """
    if reply is None:
        return None
    if isinstance(reply, bool):
        raise CulturespaError(f"an answer must be text or a number, not the boolean {reply}")
    text = reply if isinstance(reply, str) else str(reply)
    match = _FIRST_INTEGER.search(text)
    if match is None:
        return None
    digits = match.group().lstrip("0") or "0"
    if len(digits) > len(str(MAX_VALID_ANSWER)):
        return None  # out of 0..10 whatever its sign; never int() of thousands of digits
    value = int(digits)
    start = match.start()
    if start >= 1 and text[start - 1] == "-" and (start == 1 or not text[start - 2].isalnum()):
        value = -value
    return value if 0 <= value <= MAX_VALID_ANSWER else None


def answer_decided(text: str) -> bool:
    """Whether the first integer of a reply (so far) is complete: a character other than a digit
    follows it, so no continuation of the reply can change what `parse_answer` reads (its sign,
    if any, comes before it). Generation may stop there (`culturespa.inference.lm_eval_model`)."""
    match = _FIRST_INTEGER.search(text)
    return match is not None and match.end() < len(text)


@dataclass(frozen=True)
class ScoredItem:
    """One item's answer next to the survey, ready for aggregation."""

    qid: str
    answer: int
    majority: int
    max_distance: int

    @property
    def in_options(self) -> bool:
        """Whether the answer is one of the item's option numbers (the parser admits 0..10)."""
        return answer_in_options(self.qid, self.answer)


def answer_in_options(qid: str, answer: int | None) -> bool:
    """Whether `answer` is one of the option numbers of item `qid`."""
    return answer is not None and answer in get_item(qid).option_numbers


def collect_scored_items(answers: Mapping[str, int | None], country: str) -> list[ScoredItem]:
    """Keep items with a valid answer and survey data for the country (the paper's skipping).

    An answer the parser accepts (0..10) that is not one of the item's options is kept, as in
    the paper; `ScoredItem.in_options` tells such answers apart.
    """
    rows = []
    for qid, answer in answers.items():
        majority = survey_majority(country, qid)
        if answer is None or majority is None or not 0 <= answer <= MAX_VALID_ANSWER:
            continue  # beyond the parser's range: counted out of range, never averaged
        rows.append(ScoredItem(qid, answer, majority, get_item(qid).max_distance))
    return rows


def alignment_of(rows: Sequence[ScoredItem]) -> float:
    """The paper's alignment score (0..1) over already-collected items."""
    return alignment_from_arrays(
        [r.answer for r in rows], [r.majority for r in rows], [r.max_distance for r in rows]
    )
