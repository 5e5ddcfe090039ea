"""Typed dataclass fields, checked at the boundary: a value is what its annotation says, or an error.

YAML and JSON give whatever the user wrote: `cross_culture_thinking: "no"` is a string (truthy), `min_options: 2.5`
a float, `seed: abc` a string. `check_field_types` refuses such values with one line naming the
key, the value and what is allowed, before any of them is used. Booleans must be real booleans,
integers real integers (not booleans), numbers real finite numbers.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError

SHOWN_CHARS = 80
"""The most characters of a value an error message shows."""


def show(value: Any) -> str:
    """A value as the user wrote it in YAML or JSON (`"no"`, `2.5`, `[1, 2]`, `null`), cut to
    SHOWN_CHARS: a huge value is never turned into text whole."""
    text = _preview(value, SHOWN_CHARS + 1)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _preview(value: Any, budget: int, depth: int = 0) -> str:
    """JSON text of `value` as json.dumps writes it, built only until `budget` characters."""
    if isinstance(value, (list, tuple, dict)):
        if depth > 8:
            return "..."
        is_dict = isinstance(value, dict)
        pairs = value.items() if is_dict else ((None, v) for v in value)
        parts: list[str] = []
        used = 2
        for key, item in pairs:
            if used > budget:
                parts.append("...")
                break
            head = f"{json.dumps(str(key)[:budget], ensure_ascii=False)}: " if is_dict else ""
            parts.append(head + _preview(item, budget - used, depth + 1))
            used += len(parts[-1]) + 2
        inner = ", ".join(parts)
        return f"{{{inner}}}" if is_dict else f"[{inner}]"
    if isinstance(value, str) and len(value) > budget:
        value = value[:budget]
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)[:budget]


def invalid(key: str, value: Any, allowed: str) -> CulturespaError:
    """The one-line error for a value that is not allowed: `key = value: expected allowed`."""
    return CulturespaError(f"{key} = {show(value)}: expected {allowed}")


def check_at_least(key: str, value: int, low: int) -> None:
    """Raise the one-line error for an integer config value below `low`."""
    if value < low:
        raise invalid(key, value, f"an integer >= {low}")


def _members(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return None


def accepts(value: Any, hint: Any) -> bool | None:
    """Whether `value` has the type `hint`; None when the hint is one this module does not know."""
    if hint is Any:
        return True
    members = _members(hint)
    if members is not None:
        verdicts = [accepts(value, m) for m in members]
        if any(v is True for v in verdicts):
            return True
        return None if any(v is None for v in verdicts) else False
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return (
            isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        )
    if hint is str:
        return isinstance(value, str)
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(hint)
        if not args or (origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)):
            return True if not args else None
        verdicts = [accepts(item, args[0]) for item in value]
        return False if False in verdicts else (None if None in verdicts else True)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or value in {m.value for m in hint}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    return None


def describe(hint: Any) -> str:
    """What a hint allows, in words: 'a boolean (true or false)', 'an integer or null', ..."""
    members = _members(hint)
    if members is not None:
        return " or ".join(dict.fromkeys(describe(m) for m in members))
    if hint is type(None):
        return "null"
    if hint is bool:
        return "a boolean (true or false)"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a finite number"
    if hint is str:
        return "text"
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(show(a) for a in typing.get_args(hint))
    if origin in (list, tuple) or hint in (list, tuple):
        args = typing.get_args(hint)
        return f"a list of {_plural(describe(args[0]))}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(show(m.value) for m in hint)
    return getattr(hint, "__name__", str(hint))


def _plural(text: str) -> str:
    words = {"text": "text", "an integer": "integers", "a finite number": "numbers"}
    return words.get(text, text)


def check_field_types(obj: Any, prefix: str = "") -> None:
    """Raise a CulturespaError for the first field of a dataclass instance whose value does not
    have its annotated type (`prefix` + field name is the key named in the message)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        hint = hints.get(f.name, Any)
        value = getattr(obj, f.name)
        if accepts(value, hint) is False:
            raise invalid(f"{prefix}{f.name}", value, describe(hint))


def read_yaml_mapping(path: str | Path, what: str, empty_ok: bool = False) -> dict[str, Any]:
    """The mapping in a YAML file; a missing, unreadable or malformed file is one error naming
    the file. `what` names the file in errors ("config file", "--config")."""
    import yaml

    from culturespa.bounded_input import load_yaml_text

    path = Path(path)
    if not path.is_file():
        raise CulturespaError(
            f"{what} {path} {'is a folder' if path.is_dir() else 'does not exist'}"
        )
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
    except UnicodeDecodeError as exc:
        raise CulturespaError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        raise CulturespaError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise CulturespaError(f"{path}: expected a YAML mapping of key: value")
    return data
