"""A survey folder from the official WVS wave-7 cross-national CSV (bottom layer).

`build_survey_folder` streams the file once (only the country, weight and item columns are kept,
as per-country tallies of the raw cell text), then writes the folder the shipped `data/wvs/` has:

- `proportions_group_by_country.json`: per country and scored item, each option's share of the
  country's respondents (weighted by `W_WEIGHT` unless unweighted), largest first, equal shares
  in the order their options first appear in the file. Missing answers (negative codes, empty
  cells) count in the denominator and get no share, as in the paper's shipped shares (USA's are
  counts over all its 2,596 respondents, missing answers included).
  An item that no respondent of a country answered is `{}` for it (not asked there).
- `country_similarity.json`: the paper's score (x100, one decimal) between every two countries'
  majority answers (`culturespa.survey.similarity.answer_similarity`).
- `wvs_questions.json` and `self_alignment_examples.json`: the shipped files, unchanged. The
  questionnaire is the same wave-7 questionnaire; the examples rank items by the similarity of
  their questions, which depends on no country's answers (the paper's release does not include
  the script that computed them).
- `manifest.json`: the source file's name, size and SHA-256, the weighting, counts per country.

Every problem is a `CulturespaError` naming the file; the folder is written all or nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.survey.countries import WAVE7_COUNTRIES
from culturespa.survey.items import scored_items

log = logging.getLogger(__name__)

COUNTRY_COLUMN = "B_COUNTRY_ALPHA"
WEIGHT_COLUMN = "W_WEIGHT"
SHARES_FILE = "proportions_group_by_country.json"
SIMILARITY_FILE = "country_similarity.json"
QUESTIONS_FILE = "wvs_questions.json"
EXAMPLES_FILE = "self_alignment_examples.json"
MANIFEST_FILE = "manifest.json"
COPIED_FILES = (QUESTIONS_FILE, EXAMPLES_FILE)
"""Files a built folder takes unchanged from the shipped survey (they depend on no answers)."""


@dataclass
class CountryTally:
    """One country's respondents: their count, total weight, and per item column the weight of
    each raw cell text."""

    respondents: int = 0
    weight: float = 0.0
    cells: list[dict[str, float]] = field(default_factory=list)


@dataclass
class FileTally:
    """What one pass over the CSV found: the item columns used and each country's tally."""

    items: list[str]
    missing_items: list[str]
    countries: dict[str, CountryTally]
    sha256: str
    size: int


class _MeteredReader(io.RawIOBase):
    """A binary file that hashes what is read and advances a progress bar."""

    def __init__(self, handle: Any, digest: Any, bar: Any) -> None:
        self._handle, self._digest, self._bar = handle, digest, bar

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._handle.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
            self._bar.update(count)
        return count


def _delimiter(header_line: str) -> str:
    """The delimiter of a CSV header: the most frequent of comma, semicolon and tab."""
    return max((",", ";", "\t"), key=header_line.count)


def _column_indexes(source: Path, header: list[str]) -> tuple[dict[str, int], list[str]]:
    """{name: index} for the country, weight and scored item columns; the items not found."""
    names = [name.strip().strip('"').upper() for name in header]
    seen: set[str] = set()
    for name in names:
        if name in seen and (name in (COUNTRY_COLUMN, WEIGHT_COLUMN) or name in scored_items()):
            raise CulturespaError(f"{source}: column {name} appears twice in the header")
        seen.add(name)
    index = {name: i for i, name in enumerate(names)}
    if COUNTRY_COLUMN not in index:
        raise CulturespaError(
            f"{source}: no {COUNTRY_COLUMN} column (the country's ISO-3 code); expected the WVS "
            "wave-7 cross-national CSV"
        )
    items = [qid for qid in scored_items() if qid.upper() in index]
    if not items:
        raise CulturespaError(
            f"{source}: none of the {len(scored_items())} scored items' columns (Q1..Q259, "
            "Q234A) is in the header; expected the WVS wave-7 cross-national CSV"
        )
    missing = [qid for qid in scored_items() if qid.upper() not in index]
    wanted = {COUNTRY_COLUMN, WEIGHT_COLUMN, *(qid.upper() for qid in items)}
    return {name: i for name, i in index.items() if name in wanted}, missing


def _weight(source: Path, line: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise CulturespaError(
            f"{source}: line {line}: {WEIGHT_COLUMN} is {text!r}, not a number >= 0 "
            "(use --unweighted to ignore the weights)"
        )
    return value


def _rows(source: Path, text: io.TextIOBase) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each data row; an empty file is an error."""
    header_line = text.readline()
    if not header_line.strip():
        raise CulturespaError(f"{source}: the file is empty (no header line)")
    reader = csv.reader(text, delimiter=_delimiter(header_line))
    yield 1, next(csv.reader([header_line], delimiter=_delimiter(header_line)))
    for row in reader:
        if row:
            yield reader.line_num + 1, row


def _tally_rows(
    source: Path, rows: Iterator[tuple[int, list[str]]], weighted: bool
) -> tuple[list[str], list[str], dict[str, CountryTally]]:
    """Stream the rows into per-country tallies of raw cell text."""
    _, header = next(rows)
    index, missing = _column_indexes(source, header)
    if weighted and WEIGHT_COLUMN not in index:
        raise CulturespaError(
            f"{source}: no {WEIGHT_COLUMN} column; use --unweighted to count every respondent once"
        )
    items = [qid for qid in scored_items() if qid not in missing]
    columns = [index[qid.upper()] for qid in items]
    country_at, weight_at = index[COUNTRY_COLUMN], index.get(WEIGHT_COLUMN)
    width = len(header)
    countries: dict[str, CountryTally] = {}
    for line, row in rows:
        if len(row) != width:
            raise CulturespaError(
                f"{source}: line {line} has {len(row)} fields, the header {width}"
            )
        code = row[country_at].strip().upper()
        tally = countries.get(code)
        if tally is None:
            if code not in WAVE7_COUNTRIES:
                raise CulturespaError(
                    f"{source}: line {line}: {COUNTRY_COLUMN} {code!r} is not a wave-7 country "
                    "of culturespa's table (culturespa/survey/countries.py)"
                )
            tally = countries[code] = CountryTally(cells=[{} for _ in columns])
        weight = _weight(source, line, row[weight_at]) if weighted else 1.0
        tally.respondents += 1
        tally.weight += weight
        for cells, column in zip(tally.cells, columns):
            value = row[column]
            cells[value] = cells.get(value, 0.0) + weight
    if not countries:
        raise CulturespaError(f"{source}: no respondents (only a header line)")
    return items, missing, countries


def read_wvs_csv(
    source: str | Path, weighted: bool = True, encoding: str = "utf-8", progress: bool = True
) -> FileTally:
    """One streaming pass over the official CSV: tallies per country, the file's SHA-256."""
    from tqdm.auto import tqdm

    source = Path(source)
    if source.is_dir():
        raise CulturespaError(f"{source} is a folder, not the WVS CSV file")
    if not source.is_file():
        raise CulturespaError(f"{source} does not exist")
    size = source.stat().st_size
    digest = hashlib.sha256()
    decoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    bar = tqdm(total=size, unit="B", unit_scale=True, desc="read WVS", disable=not progress or None)
    try:
        with source.open("rb") as handle, bar:
            raw = io.BufferedReader(_MeteredReader(handle, digest, bar), 1 << 20)
            text = io.TextIOWrapper(raw, encoding=decoding, newline="")
            items, missing, countries = _tally_rows(source, _rows(source, text), weighted)
    except UnicodeDecodeError as exc:
        raise CulturespaError(
            f"{source}: not {'UTF-8' if decoding == 'utf-8-sig' else encoding} (byte {exc.object[exc.start : exc.start + 1]!r} cannot be "
            f"decoded); pass --encoding latin-1 if the file was saved in that encoding"
        ) from None
    except LookupError:
        raise CulturespaError(f"unknown --encoding {encoding!r}") from None
    except csv.Error as exc:
        raise CulturespaError(f"{source}: not a readable CSV file ({exc})") from None
    return FileTally(items, missing, countries, digest.hexdigest(), size)


def _answer_code(source: Path, qid: str, code: str, text: str) -> int | None:
    """A cell's answer code; None for a missing answer (empty or negative)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise CulturespaError(
            f"{source}: column {qid} holds {text!r} for {code}, not an answer code (an integer)"
        )
    return int(value) if value >= 0 else None


def country_shares(
    source: Path, code: str, items: list[str], tally: CountryTally, outside: dict[str, dict]
) -> dict[str, dict[str, float]]:
    """{item: {option: share}} for one country, largest share first; equal shares in the order
    the options first appear in the file (as pandas' `value_counts` orders them).

    The denominator is the country's whole (weighted) sample: missing answers stay in it, as in
    the shipped file. Codes that are not options of the item go into `outside` and no share.
    """
    shares: dict[str, dict[str, float]] = {qid: {} for qid in scored_items()}
    if tally.weight <= 0:
        return shares
    for qid, cells in zip(items, tally.cells):
        options = set(scored_items()[qid].option_numbers)
        by_option: dict[int, float] = {}
        for text, weight in cells.items():
            answer = _answer_code(source, qid, code, text)
            if answer is None:
                continue
            if answer not in options:
                outside.setdefault(qid, {}).setdefault(str(answer), 0.0)
                outside[qid][str(answer)] += weight
                continue
            by_option[answer] = by_option.get(answer, 0.0) + weight
        # Stable: equal shares keep the order in which the options first appear in the file.
        ranked = sorted((o for o in by_option if by_option[o] > 0), key=lambda o: -by_option[o])
        shares[qid] = {str(o): by_option[o] / tally.weight for o in ranked}
    return shares


def survey_shares_table(tally: FileTally, source: Path) -> tuple[dict, dict]:
    """({country: {item: shares}} in the country table's order, {country: codes outside})."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    outside: dict[str, dict] = {}
    for code in (c for c in WAVE7_COUNTRIES if c in tally.countries):
        found: dict[str, dict] = {}
        table[code] = country_shares(source, code, tally.items, tally.countries[code], found)
        respondents = tally.countries[code].respondents
        if tally.countries[code].weight <= 0:
            raise CulturespaError(
                f"{source}: country {code} has no usable answers: its {respondents} "
                f"respondents' {WEIGHT_COLUMN} add up to 0"
            )
        if not any(table[code].values()):
            raise CulturespaError(
                f"{source}: country {code} has no usable answers: every answer of its "
                f"{respondents} respondents to our items is missing (a negative code or empty)"
            )
        if found:
            outside[code] = found
    return table, outside


def majorities(shares: dict[str, dict[str, float]]) -> dict[str, int | None]:
    """{item: majority option or None} from one country's shares (the first key)."""
    return {qid: int(next(iter(s))) if s else None for qid, s in shares.items()}


def similarity_table(table: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """{country: {other: score x100, one decimal}} between the countries' majority answers."""
    from culturespa.survey.similarity import SIMILARITY_DECIMALS, answer_similarity

    answers = {code: majorities(shares) for code, shares in table.items()}
    scores: dict[str, dict[str, float]] = {code: {} for code in table}
    codes = list(table)
    for i, first in enumerate(codes):
        for second in codes[i + 1 :]:
            value = round(answer_similarity(answers[first], answers[second]), SIMILARITY_DECIMALS)
            scores[first][second] = scores[second][first] = value
    return {code: {o: scores[code][o] for o in codes if o != code} for code in codes}


def manifest(
    tally: FileTally, source: Path, weighted: bool, table: dict, outside: dict
) -> dict[str, Any]:
    """What the folder was built from and how: enough to rebuild it and to check the source."""
    from culturespa import __version__

    return {
        "source_file": source.name,
        "source_bytes": tally.size,
        "source_sha256": tally.sha256,
        "weighting": WEIGHT_COLUMN if weighted else "none",
        "culturespa_version": __version__,
        "items_in_file": len(tally.items),
        "items_missing_from_file": tally.missing_items,
        "countries": {
            code: {
                "respondents": tally.countries[code].respondents,
                "total_weight": round(tally.countries[code].weight, 6),
                "items_with_answers": sum(1 for shares in table[code].values() if shares),
            }
            for code in WAVE7_COUNTRIES
            if code in tally.countries
        },
        "codes_outside_options": outside,
        "copied_from_shipped_survey": list(COPIED_FILES),
    }


def build_survey_folder(
    source: str | Path,
    out: str | Path,
    weighted: bool = True,
    encoding: str = "utf-8",
    progress: bool = True,
) -> dict[str, Any]:
    """Read the official CSV and write a survey folder at `out` (all or nothing); the manifest."""
    from culturespa.atomic import check_output_dir, replace_entries, staging_dir
    from culturespa.survey.folder import shipped_survey_file

    source, out = Path(source), Path(out)
    check_output_dir(out, "survey folder")
    if out.resolve() == Path(str(shipped_survey_file(SHARES_FILE))).resolve().parent:
        raise CulturespaError(f"{out} is the shipped survey folder; choose another --out")
    tally = read_wvs_csv(source, weighted, encoding, progress)
    table, outside = survey_shares_table(tally, source)
    for code, found in outside.items():
        log.warning("%s: %s answers with codes that are not options: %s", source, code, found)
    if tally.missing_items:
        shown = ", ".join(tally.missing_items[:10])
        more = "" if len(tally.missing_items) <= 10 else ", ... (all in the manifest)"
        log.warning(
            "%s: no column for %d items: %s%s", source, len(tally.missing_items), shown, more
        )
    files = {
        SHARES_FILE: table,
        SIMILARITY_FILE: similarity_table(table),
        MANIFEST_FILE: manifest(tally, source, weighted, table, outside),
    }
    with staging_dir(out) as stage:
        for name, content in files.items():
            (stage / name).write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
        for name in COPIED_FILES:
            (stage / name).write_bytes(shipped_survey_file(name).read_bytes())
        replace_entries(stage, out)
    return files[MANIFEST_FILE]
