"""The 19 countries: ISO-3 code everywhere in code, demonym and article only in prompts."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from culturespa.errors import CulturespaError


@dataclass(frozen=True)
class Country:
    """A surveyed country."""

    code: str
    name: str
    demonym: str
    article: str
    continent: str

    @property
    def persona(self) -> str:
        """'an American', 'a Chinese': the phrase the paper's prompts use."""
        return f"{self.article} {self.demonym}"


_TABLE = [
    ("USA", "United States", "American", "an", "North America"),
    ("CAN", "Canada", "Canadian", "a", "North America"),
    ("BOL", "Bolivia", "Bolivian", "a", "South America"),
    ("BRA", "Brazil", "Brazilian", "a", "South America"),
    ("GBR", "United Kingdom", "British", "a", "Europe"),
    ("NLD", "Netherlands", "Dutch", "a", "Europe"),
    ("DEU", "Germany", "German", "a", "Europe"),
    ("UKR", "Ukraine", "Ukrainian", "a", "Europe"),
    ("CHN", "China", "Chinese", "a", "Asia"),
    ("RUS", "Russia", "Russian", "a", "Europe"),
    ("IND", "India", "Indian", "an", "Asia"),
    ("THA", "Thailand", "Thai", "a", "Asia"),
    ("KEN", "Kenya", "Kenyan", "a", "Africa"),
    ("NGA", "Nigeria", "Nigerian", "a", "Africa"),
    ("ETH", "Ethiopia", "Ethiopian", "an", "Africa"),
    ("ZWE", "Zimbabwe", "Zimbabwean", "a", "Africa"),
    ("AUS", "Australia", "Australian", "an", "Oceania"),
    ("NZL", "New Zealand", "New Zealand", "a", "Oceania"),
    ("MEX", "Mexico", "Mexican", "a", "North America"),
]

COUNTRIES: dict[str, Country] = {row[0]: Country(*row) for row in _TABLE}
"""All 19 countries with survey data, in the paper's order, MEX last."""

PAPER_COUNTRIES: tuple[str, ...] = tuple(code for code in COUNTRIES if code != "MEX")
"""The paper's 18 countries: its AVG column is the plain mean over these."""

ALL_COUNTRIES: tuple[str, ...] = tuple(COUNTRIES)


def in_paper_average(countries: Iterable[str]) -> list[str]:
    """The countries among these that the paper's AVG column averages: its 18, in its order."""
    present = set(countries)
    return [code for code in PAPER_COUNTRIES if code in present]


def paper_average(by_country: Mapping[str, float]) -> float:
    """The paper's AVG: the plain mean over its 18 countries present here (NaN if none is)."""
    values = [by_country[code] for code in in_paper_average(by_country)]
    return sum(values) / len(values) if values else math.nan


def get_country(code: str) -> Country:
    """Look a country up by ISO-3 code (any case); unknown codes raise a clear error."""
    country = COUNTRIES.get(code.strip().upper())
    if country is None:
        raise CulturespaError(
            f"unknown country code {code!r}; known codes: {', '.join(ALL_COUNTRIES)}"
        )
    return country


def parse_countries(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """'all', 'paper', 'USA,CHN' or a list of codes -> tuple of upper-case ISO-3 codes."""
    if spec is None:
        return PAPER_COUNTRIES
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    codes: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item.lower() == "all":
            codes.extend(ALL_COUNTRIES)
        elif item.lower() == "paper":
            codes.extend(PAPER_COUNTRIES)
        else:
            codes.append(get_country(item).code)
    if not codes:
        raise CulturespaError("no country given; use ISO-3 codes such as USA,CHN, 'paper' or 'all'")
    return tuple(dict.fromkeys(codes))
