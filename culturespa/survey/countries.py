"""The surveyed countries: ISO-3 code everywhere in code, demonym and article only in prompts.

One table for every country of World Values Survey wave 7: the 19 of the shipped survey (the
paper's 18 and MEX, with the paper's wording) and the others a survey folder built from the
official data file (`culturespa survey build`) may hold.

The 66 codes are the `B_COUNTRY_ALPHA` values of the cross-national file v6.0 (66 countries and
territories, 97,220 respondents), checked on 2026-12-07 against public sources:
- 64 of them are those of v5.0 (2022-12-14, doi:10.14281/18241.20), as listed by the v5.0
  codebook that WorldValuesBench ships (github.com/Demon702/WorldValuesBench,
  `dataset_construction/codebook.json`, `B_COUNTRY_ALPHA`; it also lists the EVS countries of
  the joint EVS/WVS file, which are not in this file), less two slips of that list: it omits
  HKG (its numeric `B_COUNTRY` list has 344, Hong Kong SAR) and spells Morocco MOR, where the
  data file holds MAR (public code that reads the file finds MAR and prints 64 codes, with
  the samples of the shipped shares: USA 2,596, CHN 3,036, NGA 1,237);
- IND and UZB came with v6.0: on 2022-01-29 the WVS wrote that Morocco, Libya, Maldives, India,
  Uzbekistan and Uruguay were still in the field and that the final wave-7 release would hold
  64 countries (worldvaluessurvey.org/WVSEventsShow.jsp?ID=443); the first three and Uruguay
  are in v5.0, India and Uzbekistan are the two that v6.0 adds.
The file's GBR is Great Britain: Northern Ireland is surveyed on its own (NIR). The other names
are short common names (the file's labels add "SAR" to HKG and MAC, "ROC" to TWN).
"""

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
    ("GBR", "Great Britain", "British", "a", "Europe"),
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

# The other countries and territories of wave 7 (B_COUNTRY_ALPHA codes of the cross-national
# file v6.0; sources in the module docstring).
_MORE_WAVE7 = [
    ("AND", "Andorra", "Andorran", "an", "Europe"),
    ("ARG", "Argentina", "Argentine", "an", "South America"),
    ("ARM", "Armenia", "Armenian", "an", "Asia"),
    ("BGD", "Bangladesh", "Bangladeshi", "a", "Asia"),
    ("CHL", "Chile", "Chilean", "a", "South America"),
    ("COL", "Colombia", "Colombian", "a", "South America"),
    ("CYP", "Cyprus", "Cypriot", "a", "Europe"),
    ("CZE", "Czechia", "Czech", "a", "Europe"),
    ("ECU", "Ecuador", "Ecuadorian", "an", "South America"),
    ("EGY", "Egypt", "Egyptian", "an", "Africa"),
    ("GRC", "Greece", "Greek", "a", "Europe"),
    ("GTM", "Guatemala", "Guatemalan", "a", "North America"),
    ("HKG", "Hong Kong", "Hong Kong", "a", "Asia"),
    ("IDN", "Indonesia", "Indonesian", "an", "Asia"),
    ("IRN", "Iran", "Iranian", "an", "Asia"),
    ("IRQ", "Iraq", "Iraqi", "an", "Asia"),
    ("JPN", "Japan", "Japanese", "a", "Asia"),
    ("JOR", "Jordan", "Jordanian", "a", "Asia"),
    ("KAZ", "Kazakhstan", "Kazakhstani", "a", "Asia"),
    ("KGZ", "Kyrgyzstan", "Kyrgyz", "a", "Asia"),
    ("KOR", "South Korea", "South Korean", "a", "Asia"),
    ("LBN", "Lebanon", "Lebanese", "a", "Asia"),
    ("LBY", "Libya", "Libyan", "a", "Africa"),
    ("MAC", "Macao", "Macanese", "a", "Asia"),
    ("MAR", "Morocco", "Moroccan", "a", "Africa"),
    ("MDV", "Maldives", "Maldivian", "a", "Asia"),
    ("MMR", "Myanmar", "Myanmar", "a", "Asia"),
    ("MNG", "Mongolia", "Mongolian", "a", "Asia"),
    ("MYS", "Malaysia", "Malaysian", "a", "Asia"),
    ("NIC", "Nicaragua", "Nicaraguan", "a", "North America"),
    ("NIR", "Northern Ireland", "Northern Irish", "a", "Europe"),
    ("PAK", "Pakistan", "Pakistani", "a", "Asia"),
    ("PER", "Peru", "Peruvian", "a", "South America"),
    ("PHL", "Philippines", "Filipino", "a", "Asia"),
    ("PRI", "Puerto Rico", "Puerto Rican", "a", "North America"),
    ("ROU", "Romania", "Romanian", "a", "Europe"),
    ("SGP", "Singapore", "Singaporean", "a", "Asia"),
    ("SRB", "Serbia", "Serbian", "a", "Europe"),
    ("SVK", "Slovakia", "Slovak", "a", "Europe"),
    ("TJK", "Tajikistan", "Tajik", "a", "Asia"),
    ("TUN", "Tunisia", "Tunisian", "a", "Africa"),
    ("TUR", "Turkey", "Turkish", "a", "Asia"),
    ("TWN", "Taiwan", "Taiwanese", "a", "Asia"),
    ("URY", "Uruguay", "Uruguayan", "a", "South America"),
    ("UZB", "Uzbekistan", "Uzbek", "an", "Asia"),
    ("VEN", "Venezuela", "Venezuelan", "a", "South America"),
    ("VNM", "Vietnam", "Vietnamese", "a", "Asia"),
]

WAVE7_COUNTRIES: dict[str, Country] = {row[0]: Country(*row) for row in (*_TABLE, *_MORE_WAVE7)}
"""Every country and territory of wave 7 by ISO-3 code: the 19 below first, then by code."""

COUNTRIES: dict[str, Country] = {row[0]: WAVE7_COUNTRIES[row[0]] for row in _TABLE}
"""The 19 countries of the shipped survey, in the paper's order, MEX last."""

PAPER_COUNTRIES: tuple[str, ...] = tuple(code for code in COUNTRIES if code != "MEX")
"""The paper's 18 countries: its AVG column is the plain mean over these."""

ALL_COUNTRIES: tuple[str, ...] = tuple(COUNTRIES)

DEMO_COUNTRIES: tuple[str, ...] = ("USA", "CHN", "NGA", "DEU", "BRA")
"""The demo's and the loop's default countries: one or more per continent (North and South
America, Asia, Africa, Europe)."""


def in_paper_average(countries: Iterable[str]) -> list[str]:
    """The countries among these that the paper's AVG column averages: its 18, in its order."""
    present = set(countries)
    return [code for code in PAPER_COUNTRIES if code in present]


def paper_average(by_country: Mapping[str, float]) -> float:
    """The paper's AVG: the plain mean over its 18 countries present here (NaN if none is)."""
    values = [by_country[code] for code in in_paper_average(by_country)]
    return sum(values) / len(values) if values else math.nan


def get_country(code: str) -> Country:
    """Look a wave-7 country up by ISO-3 code (any case); unknown codes raise a clear error."""
    country = WAVE7_COUNTRIES.get(code.strip().upper())
    if country is None:
        raise CulturespaError(
            f"unknown country code {code!r}; the shipped survey's codes: "
            f"{', '.join(ALL_COUNTRIES)} (any World Values Survey wave-7 ISO-3 code with "
            "a survey folder from `culturespa survey build`)"
        )
    return country


def parse_countries(
    spec: str | list[str] | tuple[str, ...] | None,
    surveyed: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """'all', 'paper', 'USA,CHN' or a list of codes -> tuple of upper-case ISO-3 codes.

    `surveyed`: the countries to choose from (default: those of the survey folder in use, the
    shipped 19 unless a command took --survey). 'all' means them; a code outside them is an
    error that names it.
    """
    if surveyed is None:
        from culturespa.survey.folder import surveyed_countries

        surveyed = surveyed_countries()
    if spec is None:
        return tuple(code for code in PAPER_COUNTRIES if code in surveyed)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    codes: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if item.lower() == "all":
            codes.extend(surveyed)
        elif item.lower() == "paper":
            codes.extend(code for code in PAPER_COUNTRIES if code in surveyed)
        else:
            code = get_country(item).code
            if code not in surveyed:
                raise CulturespaError(
                    f"country {code} ({get_country(code).name}) is not in the survey; its "
                    f"countries: {', '.join(surveyed)}"
                )
            codes.append(code)
    if not codes:
        raise CulturespaError("no country given; use ISO-3 codes such as USA,CHN, 'paper' or 'all'")
    return tuple(dict.fromkeys(codes))
