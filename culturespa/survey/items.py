"""World Values Survey wave 7: items, topics, option numbering and per-country answer shares."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from culturespa.errors import CulturespaError
from culturespa.survey.countries import PAPER_COUNTRIES, get_country
from culturespa.survey.folder import (
    load_survey_json,
    survey_cached,
    survey_label,
    surveyed_countries,
)

# Items whose options are numbered from 0 in the survey (all others start at 1).
_ZERO_BASED = {f"Q{i}" for i in (*range(94, 106), 119, *range(122, 130), *range(241, 250))}
# Excluded from evaluation by the paper: party vote and demographics.
_EXCLUDED = {"Q223", *(f"Q{i}" for i in range(260, 291))}

TOPICS: tuple[tuple[str, int, int], ...] = (
    ("Social Values, Attitudes & Stereotypes", 1, 45),
    ("Happiness and Well-being", 46, 56),
    ("Social Capital, Trust & Organizational Membership", 57, 105),
    ("Economic Values", 106, 111),
    ("Corruption", 112, 120),
    ("Migration", 121, 130),
    ("Security", 131, 151),
    ("Postmaterialist Index", 152, 157),
    ("Science & Technology", 158, 163),
    ("Religious Values", 164, 175),
    ("Ethical Values and Norms", 176, 198),
    ("Political Interest & Political Participation", 199, 234),
    ("Political Culture & Political Regimes", 235, 259),
)
"""The 13 WVS topics as (name, first item number, last item number); Q234A is political interest."""

TOPIC_NAMES: tuple[str, ...] = tuple(name for name, _, _ in TOPICS)

SCALE_POINT = "scale point {}"
"""How a listing by place shows an option whose text is a bare scale value (1..10 scales)."""

_QID = re.compile(r"^Q(\d+)([A-Z]?)$")


def item_number(qid: str) -> int:
    """'Q234A' -> 234."""
    match = _QID.match(qid)
    if not match:
        raise CulturespaError(f"malformed item id {qid!r}: expected Q<number>, e.g. Q1 or Q234A")
    return int(match.group(1))


def topic_of(qid: str) -> str:
    """The WVS topic an item belongs to, by its number."""
    number = item_number(qid)
    for name, first, last in TOPICS:
        if first <= number <= last:
            return name
    raise CulturespaError(f"item {qid} lies outside the 13 scored WVS topics (Q1-Q259)")


@dataclass(frozen=True)
class SurveyItem:
    """One WVS question with its options and option numbering."""

    qid: str
    question: str
    options: tuple[str, ...]
    first_option: int  # 0 or 1

    @property
    def option_numbers(self) -> tuple[int, ...]:
        """The numbers the options carry in prompts and in the survey file."""
        return tuple(range(self.first_option, self.first_option + len(self.options)))

    @property
    def max_distance(self) -> int:
        """The largest possible distance between two answers (n_options - 1)."""
        return len(self.options) - 1

    @property
    def topic(self) -> str:
        return topic_of(self.qid)

    def listing(self, reverse: bool = False, shift: int | None = None) -> tuple[ListedOption, ...]:
        """The options in the order a prompt lists them, with the number each one is shown with.

        Forward (the paper's way): survey order, shown with the survey's own codes (0..k-1 for the
        items numbered from 0). Reversed: last to first, shown as 1..k in that order whatever
        the survey's numbering, so option 1 on screen is the survey's last code. `shift` s (the
        permuted way): survey order started at its (s mod k)-th option and wrapped round, shown
        as 1..k by place; an option whose text is a scale value ("4") reads "scale point 4", so
        that its number on screen (its place) is not taken for the value.
        """
        pairs = list(zip(self.option_numbers, self.options))
        if shift is not None:
            s = shift % len(pairs)
            return tuple(
                ListedOption(shown, code, SCALE_POINT.format(text) if text.isdigit() else text)
                for shown, (code, text) in enumerate(pairs[s:] + pairs[:s], start=1)
            )
        if not reverse:
            return tuple(ListedOption(code, code, text) for code, text in pairs)
        return tuple(
            ListedOption(shown, code, text)
            for shown, (code, text) in enumerate(reversed(pairs), start=1)
        )

    def options_text(self, reverse: bool = False, shift: int | None = None) -> str:
        """'1.Very important 2.Rather important ...' as in the paper's prompts (or reversed, or
        shifted)."""
        return " ".join(f"{o.shown}.{o.text}" for o in self.listing(reverse, shift))

    def option_text(self, number: int) -> str:
        """The text of the option that carries survey code `number`."""
        return self.options[number - self.first_option]

    def shown_number(self, code: int, reverse: bool = False, shift: int | None = None) -> int:
        """The number a prompt shows for the option with survey code `code`."""
        return next(o.shown for o in self.listing(reverse, shift) if o.code == code)


@dataclass(frozen=True)
class ListedOption:
    """One option as a prompt lists it: the number shown, the survey's code, its text."""

    shown: int
    code: int
    text: str


@survey_cached
def all_items() -> dict[str, SurveyItem]:
    """All 291 items of the questionnaire file, scored or not, by item id."""
    items: dict[str, SurveyItem] = {}
    for row in load_survey_json("wvs_questions.json"):
        qid = row["Q_id"]
        items[qid] = SurveyItem(
            qid=qid,
            question=row["question"],
            options=tuple(row["option_lst"]),
            first_option=0 if qid in _ZERO_BASED else 1,
        )
    return items


@survey_cached
def scored_items() -> dict[str, SurveyItem]:
    """The 259 items the paper scores (Q223 and the demographics Q260-Q290 excluded)."""
    return {qid: item for qid, item in all_items().items() if qid not in _EXCLUDED}


def get_item(qid: str) -> SurveyItem:
    """A scored item by id; unknown or excluded ids raise a clear error."""
    item = scored_items().get(qid)
    if item is None:
        why = "is excluded from scoring" if qid in all_items() else "does not exist"
        raise CulturespaError(f"WVS item {qid!r} {why}; scored items are Q1-Q259 without Q223")
    return item


@survey_cached
def _shares() -> dict[str, dict[str, dict[str, float]]]:
    return load_survey_json("proportions_group_by_country.json")


def _country_shares(code: str) -> dict[str, dict[str, float]]:
    """A country's {item: shares} in the survey; a country the survey lacks is a clear error."""
    shares = _shares().get(code)
    if shares is None:
        raise CulturespaError(
            f"country {code} is not in {survey_label()}; its countries: "
            f"{', '.join(surveyed_countries())}"
        )
    return shares


@survey_cached
def _item_shares(code: str, qid: str) -> tuple[tuple[int, float], ...]:
    get_item(qid)
    return tuple((int(k), float(v)) for k, v in _country_shares(code).get(qid, {}).items())


def survey_shares(country: str, qid: str) -> dict[int, float]:
    """Raw answer shares {option number: share}, majority first; empty if not asked there."""
    return dict(_item_shares(get_country(country).code, qid))


def has_survey_data(country: str, qid: str) -> bool:
    """Whether the country's survey has answers for this item."""
    code = get_country(country).code
    return bool(_country_shares(code).get(qid))


def survey_majority(country: str, qid: str) -> int | None:
    """The majority option number, or None if the item has no data there.

    The majority is the first key of the item's shares in the survey file (the file lists the
    shares majority first), as in the paper's scripts; where two options tie for the largest
    share, the file's order decides.
    """
    shares = _item_shares(get_country(country).code, qid)
    return shares[0][0] if shares else None


def survey_distribution(country: str, qid: str) -> np.ndarray | None:
    """Shares over the item's options in option order, renormalised to sum to 1 (None if no data)."""
    item = get_item(qid)
    shares = survey_shares(country, qid)
    if not shares:
        return None
    dist = np.array([shares.get(n, 0.0) for n in item.option_numbers], dtype=float)
    total = dist.sum()
    if total <= 0:
        return None
    return dist / total


def items_with_data(country: str) -> list[str]:
    """Scored item ids that have survey data for the country, in questionnaire order."""
    return [qid for qid in scored_items() if has_survey_data(country, qid)]


@survey_cached
def _neighbours() -> dict[str, list[str]]:
    return load_survey_json("self_alignment_examples.json")


def similar_items(qid: str) -> list[str]:
    """Other items ranked by similarity to `qid` (the paper's self-alignment ranking)."""
    get_item(qid)
    return list(_neighbours().get(qid, []))


@survey_cached
def survey_country_similarity() -> dict[str, dict[str, float]]:
    """The survey's country_similarity.json (x100): the paper's 18 countries in the shipped
    survey, every country in a built one."""
    return load_survey_json("country_similarity.json")


@survey_cached
def consensus_majority(qid: str) -> int | None:
    """The option with the largest mean share over the paper's 18 countries that asked the item
    (the shares as the survey file gives them, non-response left out); None if none asked it."""
    item = get_item(qid)
    vectors = []
    for code in (c for c in PAPER_COUNTRIES if c in surveyed_countries()):
        shares = survey_shares(code, qid)
        if shares:
            vectors.append([shares.get(n, 0.0) for n in item.option_numbers])
    if not vectors:
        return None
    return item.option_numbers[int(np.argmax(np.mean(vectors, axis=0)))]


def culture_specific_items(country: str) -> list[str]:
    """The country's items with survey data whose majority differs from the consensus majority:
    where a model that answers only the world's consensus cannot be right."""
    code = get_country(country).code
    return [
        qid
        for qid in items_with_data(code)
        if consensus_majority(qid) is not None
        and survey_majority(code, qid) != consensus_majority(qid)
    ]
