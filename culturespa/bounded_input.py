"""Reading the files users hand in, with bounds: YAML without aliases or repeated keys, JSON with
depth and digit limits and no NaN or Infinity, JSON lines streamed one line at a time.

A hostile or damaged file must cost one line of error, never minutes, gigabytes or a traceback:
a YAML alias bomb (`a: &a [x, x]`, `b: &b [*a, *a]`, ...) is refused before any value is built,
200,000 nested brackets or a 100,000-digit number before Python's recursion or `int` limits are
reached, and a sample log of gigabytes is read a line at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError

MAX_JSON_DEPTH = 64
"""Nesting of lists and objects a JSON input may have (lm-eval's results files have about 6)."""
MAX_NUMBER_CHARS = 100
"""Characters a JSON number may have (a float's 17 digits and exponent fit many times over)."""
MAX_LINE_BYTES = 64 * 1024 * 1024
"""Bytes one line of a JSON-lines file may have; a longer line is skipped as unreadable."""


class BoundExceeded(ValueError):
    """A JSON text breaks a bound (depth, digits, non-finite number); the message says which."""


def _number(text: str) -> float | int:
    if len(text) > MAX_NUMBER_CHARS:
        raise BoundExceeded(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise BoundExceeded(f"the number {text} is beyond a finite float")
    return value


_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _constants(allow_nan: bool, allow_infinity: bool):
    """The parse_constant hook: NaN and +-Infinity are numbers only where allowed."""
    allowed = {"NaN"} if allow_nan else set()
    allowed |= {"Infinity", "-Infinity"} if allow_infinity else set()

    def constant(name: str) -> float:
        if name not in allowed:
            raise BoundExceeded(f"{name} is not a JSON number")
        return _CONSTANTS[name]

    return constant


def _check_depth(value: Any) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        children = node.values() if isinstance(node, dict) else node
        if depth > MAX_JSON_DEPTH:
            raise BoundExceeded(f"nested deeper than {MAX_JSON_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def loads_bounded(text: str, allow_nan: bool = False, allow_infinity: bool = False) -> Any:
    """Parse JSON text within the bounds; raise BoundExceeded or json.JSONDecodeError.

    `allow_nan` accepts `NaN` (lm-eval writes a metric that has no value so); `allow_infinity`
    accepts `Infinity` and `-Infinity` (a sample log's log-likelihood of an impossible token).
    """
    try:
        value = json.loads(
            text,
            parse_int=_number,
            parse_float=_number,
            parse_constant=_constants(allow_nan, allow_infinity),
        )
    except RecursionError:
        raise BoundExceeded(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    _check_depth(value)
    return value


def read_json_file(path: str | Path, what: str = "", allow_nan: bool = False) -> Any:
    """The JSON value in a file; every problem is one CulturespaError naming the file."""
    path = Path(path)
    where = f"{what} {path}".strip()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CulturespaError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise CulturespaError(f"{where}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError as exc:
        raise CulturespaError(f"{where}: not UTF-8 text ({exc.reason})") from None
    try:
        return loads_bounded(text, allow_nan=allow_nan)
    except json.JSONDecodeError as exc:
        raise CulturespaError(f"{where}: malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except BoundExceeded as exc:
        raise CulturespaError(f"{where}: refused, {exc}") from None


def iter_json_lines(
    path: str | Path, allow_nan: bool = False, what: str = "", allow_infinity: bool = False
) -> Iterator[tuple[int, Any]]:
    """(line number, value or a BoundExceeded/JSONDecodeError) for each non-blank line of a JSON-lines
    file, read one line at a time (a file of gigabytes never sits in memory). A line that is not
    UTF-8 is a CulturespaError naming the file (after `what`), line and byte; a line over
    MAX_LINE_BYTES is yielded as a BoundExceeded without being kept."""
    path = Path(path)
    offset = 0
    with path.open("rb") as stream:
        number = 0
        while True:
            raw = stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            start, offset = offset, offset + len(raw)
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                yield number, BoundExceeded(f"line {number} is over {MAX_LINE_BYTES} bytes")
                offset += _skip_rest_of_line(stream)  # only when the reader goes on
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CulturespaError(
                    f"{what}{path}: not UTF-8 text "
                    f"(line {number}, byte {start + exc.start}: {exc.reason})"
                ) from None
            if not text.strip():
                continue
            try:
                yield number, loads_bounded(text, allow_nan, allow_infinity)
            except (json.JSONDecodeError, BoundExceeded) as exc:
                yield number, exc


def _skip_rest_of_line(stream) -> int:
    """Read past the rest of an over-long line in chunks; return the bytes skipped."""
    skipped = 0
    while True:
        chunk = stream.readline(1024 * 1024)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def load_yaml_text(text: str, source: str) -> Any:
    """The value of a YAML document, read with PyYAML's safe loader less aliases and repeated keys.

    An alias (`*name`) is refused before anything is built, so an alias bomb costs nothing; a key
    given twice in one mapping is an error naming the key and line (YAML's last-one-wins would
    silently drop the first).
    """
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        """yaml.SafeLoader that refuses aliases and repeated keys."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise CulturespaError(
                    f"{source}: line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) "
                    "are not allowed; write the value out"
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # an unhashable key: the base class names it
                if repeated:
                    raise CulturespaError(
                        f"{source}: line {key_node.start_mark.line + 1}: key {str(key)[:80]!r} "
                        "appears twice in one mapping"
                    )
            return super().construct_mapping(node, deep=deep)

    return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader subclass
