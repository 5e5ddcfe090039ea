"""Stated distributions: a reply that gives the share of people choosing each option, parsed.

The stated-distribution tasks ask for one line per option, "<option number>: <percentage>%".
Replies, small models' above all, come in other shapes too; every shape below is read:

- one option per line or per comma/semicolon-separated part: "1. 40%", "1: 40", "Option 1 - 40 %",
  "1.Very important: 40%", "- 1) 40 percent", the option's text echoed between number and share
  ("1.1: 5%" on a 1..10 scale reads option 1, 5%), or the option's text instead of its number
  ("Very important: 40%");
- a JSON object keyed by option number ({"1": 40, "2": "30%"}, {"Option 1": 40}) or by option
  text, also nested one level ({"shares": {...}});
- a list of shares in the order the options are listed: "[40, 30, 20, 10]" or
  "40%, 30%, 20%, 10%".

Shares are renormalised to sum to 1, so percentages that do not add up to 100 (or fractions that
add up to 1) count as what they say relative to each other. A reply is unusable, and counted as
such by the tasks, when it gives no share for some option, or when every share is zero. The first
share given for an option counts (small models often repeat their list).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

_NUMBER = r"\d+(?:\.\d+)?"
_MARKER = re.compile(
    r"^[\W_]*?(?:(?:option|choice|answer)\s*)?#?\s*(\d{1,2})(?!\d)(?!\s*%)(.*)$",
    re.IGNORECASE,
)
"""A part that opens with an option number (after bullets, "Option", "#")."""
_SPLIT = re.compile(
    r"[;,]\s*(?=[\W_]*?(?:(?:option|choice)\s*)?#?\s*\d{1,2}\s*[.:)\]=\-–—]"
    r"|[\W_]*[A-Za-z][^\d\n]*[:=]\s*\d)",
    re.IGNORECASE,
)
"""Where a line holding several options' shares is cut: a comma or semicolon before the next
option marker ("1: 40%, 2: 30%") or option text ("Agree: 60%, Disagree: 40%")."""
_SEPARATORS = " \t.:)]=-–—(*"
_PERCENT = re.compile(rf"({_NUMBER})\s*(?:%|percent|per cent)", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)
_BARE_LIST = re.compile(
    rf"^[\s\[\](){{}}]*{_NUMBER}(?:[\s,;\[\](){{}}]+{_NUMBER})*[\s\[\](){{}}]*$"
)


@dataclass(frozen=True)
class StatedDistribution:
    """A parsed reply: the shares in the order the options are listed (summing to 1), or None
    with the reason the reply is unusable."""

    shares: tuple[float, ...] | None
    problem: str = ""

    @property
    def usable(self) -> bool:
        return self.shares is not None


def _value(text: str) -> float | None:
    """The share a part gives after its option marker: the number before the first '%', else
    the only number in it (several bare numbers are ambiguous: an echo of the options line)."""
    percent = _PERCENT.search(text)
    if percent:
        return float(percent.group(1))
    numbers = _ANY_NUMBER.findall(text)
    return float(numbers[0]) if len(numbers) == 1 else None


def _echo_free(rest: str, text: str) -> str:
    """The part after an option number without the option's own text, where the reply echoes it
    ("1.Very important: 40%"; "1.1: 5%" on a scale whose option 1 reads "1")."""
    rest = rest.lstrip(_SEPARATORS)
    if not text or not rest.lower().startswith(text.lower()):
        return rest
    after = rest[len(text) :]
    if after[:1].isalnum() or re.match(r"\.\d", after):
        return rest  # "4" is not echoed in "40%"
    return after if _value(after) is not None else rest


def _parts(reply: str) -> list[str]:
    return [part for line in reply.splitlines() for part in _SPLIT.split(line) if part.strip()]


def _marker(part: str, texts: Sequence[str], numbers: Sequence[int]) -> tuple[int, str] | None:
    """(option number, rest) where a part opens with an option number; a number followed by a
    decimal point and digits is a share ("0.4"), unless those digits are the option's echoed
    text ("1.1: 5%" on a 1..10 scale)."""
    match = _MARKER.match(part)
    if match is None:
        return None
    number, rest = int(match.group(1)), match.group(2)
    decimal = re.match(r"\.(\d+)", rest)
    if decimal:
        text = texts[list(numbers).index(number)] if texts and number in numbers else None
        if decimal.group(1) != text:
            return None
    return number, rest


def _by_text(part: str, texts: Sequence[str]) -> tuple[int, str] | None:
    """(index, rest) when a part opens with an option's text that holds a letter (longest first)."""
    body = part.lstrip(" \t-*•#>")
    for i in sorted(range(len(texts)), key=lambda i: -len(texts[i])):
        text = texts[i]
        if not re.search(r"[A-Za-z]", text) or not body.lower().startswith(text.lower()):
            continue
        rest = body[len(text) :]
        if rest[:1].isalpha():
            continue  # "Agree" must not match "Agree strongly"
        return i, rest
    return None


def _keyed_parts(
    parts: list[str], numbers: Sequence[int], texts: Sequence[str]
) -> tuple[dict[int, float], bool]:
    """(index in the listing -> share, whether any part names an option by number) from the
    parts that name an option by its number or its text."""
    found: dict[int, float] = {}
    numbered = False
    for part in parts:
        index = value = None
        marker = _marker(part, texts, numbers)
        if marker is not None:
            numbered = True
            number, rest = marker
            if number in numbers:
                index = list(numbers).index(number)
                value = _value(_echo_free(rest, texts[index] if texts else ""))
        elif texts and (hit := _by_text(part, texts)) is not None:
            index, rest = hit
            value = _value(rest)
        if index is not None and value is not None and index not in found:
            found[index] = value
    return found, numbered


def _number_in(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if isinstance(value, str):
        match = _ANY_NUMBER.search(value)
        return float(match.group()) if match else None
    return None


def _json_shares(
    reply: str, numbers: Sequence[int], texts: Sequence[str]
) -> dict[int, float] | list[float] | None:
    """The first JSON object (keyed shares) or list (shares in listing order) with two entries
    or more in the reply, or None."""
    decoder = json.JSONDecoder()
    lowered = [t.lower() for t in texts]
    for start, char in enumerate(reply):
        if char not in "{[":
            continue
        try:
            data, _ = decoder.raw_decode(reply[start:])
        except ValueError:
            continue
        if isinstance(data, dict) and len(data) == 1:
            inner = next(iter(data.values()))
            data = inner if isinstance(inner, (dict, list)) else data
        if not isinstance(data, (dict, list)) or len(data) < 2:
            continue
        if isinstance(data, list):
            values = [_number_in(v) for v in data]
            return None if None in values else values  # type: ignore[return-value]
        keyed: dict[int, float] = {}
        for key, raw in data.items():
            key, value = str(key).strip(), _number_in(raw)
            digits = re.search(r"\d+", key)
            if key.lower() in lowered and re.search(r"[A-Za-z]", key):
                index = lowered.index(key.lower())
            elif digits and int(digits.group()) in numbers:
                index = list(numbers).index(int(digits.group()))
            else:
                continue
            if value is not None and index not in keyed:
                keyed[index] = value
        return keyed
    return None


def _listed(reply: str) -> list[float] | None:
    """Shares given in listing order without option numbers: '40%, 30%, 20%, 10%', or a bare
    list of numbers '0.4, 0.3, 0.2, 0.1'."""
    percents = [float(v) for v in _PERCENT.findall(reply)]
    if percents:
        return percents
    if _BARE_LIST.match(reply):
        return [float(v) for v in _ANY_NUMBER.findall(reply)]
    return None


def _normalised(values: Sequence[float], n: int) -> StatedDistribution:
    if len(values) != n:
        return StatedDistribution(None, f"{len(values)} shares for {n} options")
    total = float(sum(values))
    if total <= 0:
        return StatedDistribution(None, "every share is zero")
    return StatedDistribution(tuple(v / total for v in values))


def _complete(found: dict[int, float], n: int) -> StatedDistribution:
    if len(found) < n:
        return StatedDistribution(None, f"shares for {len(found)} of {n} options")
    return _normalised([found[i] for i in range(n)], n)


def parse_stated_distribution(
    reply: str | None, numbers: Sequence[int], texts: Sequence[str] = ()
) -> StatedDistribution:
    """The shares a reply states for the options shown with `numbers` (in that order; `texts`
    are the options' texts in the same order, used where a reply names options by text)."""
    n = len(numbers)
    if texts and len(texts) != n:
        raise ValueError(f"{len(texts)} option texts for {n} option numbers")
    if not isinstance(reply, str) or not reply.strip():
        return StatedDistribution(None, "empty reply")
    from_json = _json_shares(reply, numbers, texts)
    if isinstance(from_json, list):
        return _normalised(from_json, n)
    if from_json:
        return _complete(from_json, n)
    keyed, numbered = _keyed_parts(_parts(reply), numbers, texts)
    if keyed or numbered:
        return _complete(keyed, n)
    listed = _listed(reply)
    if listed is not None:
        return _normalised(listed, n)
    return StatedDistribution(None, "no shares found")
