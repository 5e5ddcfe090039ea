"""Which model a run evaluated, as a report names it: the base model, its adapter if one was
loaded, and whether that adapter is culture-joint or one of a set of culture-specific adapters
(one per country, whose runs merge into one row).

The adapter's country, the rule: the adapter's training record (`culturespa_training.json`,
written next to the adapter by `culturespa train`) decides whenever it is there and readable: the
record's `country`, or culture-joint when it names none. Only an adapter without a record (results
older than the record, an adapter trained by other tools, a folder moved without it) falls back to
its path: it is culture-specific when the run asks about one country and the path names that
country's code as a word ('.../usa'), culture-joint otherwise.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError

NO_RECORD = "no record"
"""`recorded_country` of an adapter folder without a readable training record."""


def run_model_args(config: dict[str, Any]) -> dict[str, str]:
    """The run's model arguments as text (a dict, or lm-eval's 'k=v,k2=v2' string)."""
    from culturespa.inference.model_args import parse_model_args

    args = config.get("model_args") or {}
    try:
        parsed = parse_model_args(args if isinstance(args, dict) else str(args))
    except CulturespaError:
        # Only labels come from here: keep the well-formed pairs of a damaged string.
        parsed = dict(p.split("=", 1) for p in str(args).split(",") if "=" in p)
    return {str(k).strip(): str(v).strip() for k, v in parsed.items() if v is not None}


def _short_name(path: str) -> str:
    from culturespa.inference.default_model import CHECKPOINT_NAME

    parts = [p for p in re.split(r"[\\/]", path.rstrip("/\\")) if p]
    if not parts:
        return path
    if parts[-1] == CHECKPOINT_NAME:
        return "SmolLM2-135M-Instruct"
    # Hub ids keep their organisation; local folders keep their last two parts.
    return "/".join(parts[-2:]) if len(parts) >= 2 else parts[-1]


def _country_pattern(country: str) -> re.Pattern[str]:
    """A country code as a word of a path, in any case ('usa' in 'runs/usa', not in 'causal')."""
    return re.compile(rf"(?<![A-Za-z]){country}(?![A-Za-z])", re.IGNORECASE)


def recorded_country(adapter: str) -> str | None:
    """The country in an adapter's training record (`culturespa_training.json`, written next to
    the adapter): an ISO-3 code, None for a culture-joint adapter, NO_RECORD where there is no
    readable record (the folder moved, or an adapter trained by other tools)."""
    from culturespa.bounded_input import read_json_file
    from culturespa.run_files import TRAINING_RECORD

    record_file = Path(adapter) / TRAINING_RECORD
    try:
        record = read_json_file(record_file) if record_file.is_file() else None
    except (CulturespaError, OSError):
        record = None
    if not isinstance(record, dict):
        return NO_RECORD
    country = record.get("country")
    return str(country).upper() if isinstance(country, str) and country else None


def adapter_country(adapter: str, run_countries: set[str]) -> str | None:
    """The country of a culture-specific adapter, None for a culture-joint one: its training
    record's when it has a record; only without one, the run's one country where the adapter's
    path names it (the rule in this module's docstring)."""
    country = recorded_country(adapter)
    if country != NO_RECORD:
        return country
    if len(run_countries) == 1:
        (only,) = run_countries
        if _country_pattern(only).search(adapter):
            return only
    return None


def _specific_adapter(adapter: str, country: str) -> str:
    """A culture-specific adapter's path with its country as '{CC}' ('.../usa' -> '.../{CC}',
    a path that does not name it -> its parent + '/{CC}'), so that the set merges into one row."""
    pattern = _country_pattern(country)
    if pattern.search(adapter):
        return pattern.sub("{CC}", adapter)
    return str(Path(adapter).parent / "{CC}")


def model_identity(config: dict[str, Any], countries: set[str]) -> tuple[str, str, str, str]:
    """(model id, display label, base model, adapter kind) of a run asking about `countries`: the
    base model, plus its adapter when one is loaded; kind base, joint or specific
    (`adapter_country`)."""
    args = run_model_args(config)
    base = args.get("pretrained") or str(config.get("model_name") or config.get("model") or "?")
    adapter = args.get("peft") or args.get("lora") or ""
    model = f"{base}+{adapter}" if adapter else base
    if not adapter:
        return model, _short_name(base), base, "base"
    country = adapter_country(adapter, countries)
    if country is None:
        return model, f"{_short_name(base)} + {_short_name(adapter)}", base, "joint"
    shown = _specific_adapter(adapter, country)
    return model, f"{_short_name(base)} + {_short_name(shown)}", base, "specific"
