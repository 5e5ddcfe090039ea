"""Text from outside (model names, paths, notes) made inert in what users open: Markdown tables,
CSV files, the terminal and JSON. Every writer of a table calls these; nothing else escapes.

- Markdown: `&`, `<`, `>` become entities, `|` is escaped, line breaks fold to a space and other
  control characters go, so a name can neither add HTML nor split a row.
- CSV: a text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return (or their
  full-width forms, or any of them after leading spaces) gets a leading `'` and is quoted
  (OWASP's CSV injection advice). A cell that is a plain decimal number (`-5.10`, a score we
  wrote) is data and stays as it is: a number cannot hold a formula. Numbers passed as numbers
  are written as numbers, non-finite ones empty. Text cells are also put on one line without
  control characters (as in Markdown), so `cat` and line-based tools see one line per row.
- Terminal: ANSI escape sequences and other control characters are removed (a line break in a
  one-line cell becomes a space), so a results file cannot move the cursor or recolour the screen.
- JSON: non-finite numbers are written as null (JSON has no NaN or Infinity), and the dump uses
  `allow_nan=False`, so a value that slips through fails loudly instead of writing bad JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing the screen
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[@-Z\\-_]"  # two-character escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\t\v\f\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls, and the bidirectional overrides that reorder what a line shows."""

CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""Leading characters that make a spreadsheet read a cell as a formula (with full-width forms)."""
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _one_line(text: str) -> str:
    """Escape sequences removed, line breaks and tabs folded to a space, other controls removed."""
    text = _ESCAPE_SEQUENCE.sub("", text)
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", text))


def terminal_text(value: object, keep_lines: bool = False) -> str:
    """`value` as text safe to print: no escape sequences or control characters. One line
    unless `keep_lines` (then each line is cleaned and the line breaks stay)."""
    text = str(value)
    if keep_lines:
        return "\n".join(_one_line(line) for line in text.split("\n"))
    return _one_line(text)


def markdown_cell(value: object) -> str:
    """`value` as one Markdown table cell (or heading, or list item): HTML escaped, `|` escaped,
    on one line."""
    text = _one_line(str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|")


def markdown_row(cells: Iterable[object]) -> str:
    """'| a | b |' from cells, each through `markdown_cell`."""
    return "| " + " | ".join(markdown_cell(cell) for cell in cells) + " |"


def csv_cell(value: object) -> str:
    """One CSV field's text (before CSV quoting): numbers as numbers (non-finite: empty), None
    empty, text that a spreadsheet would run as a formula prefixed with `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ""
    text = _one_line(str(value))
    return "'" + text if _formula_like(value) else text


def _formula_like(value: object) -> bool:
    """Text a spreadsheet could read as a formula: a trigger first (after spaces), not a number."""
    if not isinstance(value, str):
        return False
    return value.lstrip(" ").startswith(CSV_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value)


def _csv_field(value: object) -> str:
    text = csv_cell(value)
    if _formula_like(value) or any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_text(head: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    """A CSV file's text ('\\n' line ends): every field through `csv_cell`, fields that were
    neutralised or hold a comma, quote or line break quoted."""
    out = []
    for line in [head, *rows]:
        text = ",".join(_csv_field(v) for v in line)
        out.append((text or '""') + "\n")  # a lone empty field, not a blank line
    return "".join(out)


def finite_json(value: Any) -> Any:
    """`value` with every non-finite float (NaN, Infinity) replaced by None, through dicts,
    lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def json_text(value: Any, indent: int | None = 2) -> str:
    """Standard JSON text of `value` (non-finite numbers as null), with a final line break."""
    return json.dumps(finite_json(value), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
