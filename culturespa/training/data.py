"""Training sets written by `culturespa build-data`: loaded, checked, described, per country."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from culturespa.errors import CulturespaError
from culturespa.run_files import set_jsonl
from culturespa.survey.countries import WAVE7_COUNTRIES, get_country

logger = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("system", "user", "assistant")


def _validate_messages(messages: Any, where: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise CulturespaError(f"{where}: 'messages' must be a non-empty list")
    for turn in messages:
        if not isinstance(turn, dict) or turn.get("role") not in ROLES:
            raise CulturespaError(f"{where}: every message needs a role in {ROLES}")
        if not isinstance(turn.get("content"), str):
            raise CulturespaError(f"{where}: message content must be a string")
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise CulturespaError(f"{where}: the last message must be a non-empty assistant answer")


def load_sft_dataset(path: str | Path, max_examples: int | None = None):
    """Load one conversational training set (a `save_to_disk` folder or a JSONL file) and check it."""
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".jsonl":
        dataset = load_dataset("json", data_files=str(path), split="train")
    elif path.is_dir() and (
        (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()
    ):
        loaded = load_from_disk(str(path))
        if isinstance(loaded, DatasetDict):
            if "train" not in loaded:
                raise CulturespaError(f"{path}: the dataset has no 'train' split")
            loaded = loaded["train"]
        dataset = loaded
    elif set_jsonl(path).is_file():
        dataset = load_dataset("json", data_files=str(set_jsonl(path)), split="train")
    else:
        raise CulturespaError(f"{path}: not a saved dataset folder or a .jsonl file")
    if not isinstance(dataset, Dataset) or "messages" not in dataset.column_names:
        raise CulturespaError(f"{path}: no 'messages' column (conversational rows expected)")
    if len(dataset) == 0:
        raise CulturespaError(f"{path}: the training set is empty")
    if max_examples is not None:
        dataset = dataset.select(range(min(max_examples, len(dataset))))
    for index, messages in enumerate(dataset["messages"]):
        _validate_messages(messages, f"{path} row {index}")
    return dataset


def describe_dataset(dataset, path: str | Path) -> dict[str, Any]:
    """What the model card says about a training set: path, size, variants, countries, topics."""

    def distinct(column: str) -> list[str]:
        if column not in dataset.column_names:
            return []
        return sorted({str(v) for v in dataset[column] if v is not None})

    return {
        "path": str(path),
        "examples": len(dataset),
        "variants": distinct("variant"),
        "countries": distinct("country"),
        "topics": len(distinct("topic")),
        "fingerprint": getattr(dataset, "_fingerprint", None),
    }


def _country_set_path(parent: Path, code: str) -> Path | None:
    for candidate in (parent / code, set_jsonl(parent / code)):
        if candidate.exists():
            return candidate
    return None


def _is_empty_set(path: Path) -> bool:
    """Whether a saved dataset folder or JSONL file holds no rows (cheap: no row parsing)."""
    if path.is_file():
        return not any(line.strip() for line in path.open(encoding="utf-8"))
    from datasets import DatasetDict, load_from_disk

    loaded = load_from_disk(str(path))
    if isinstance(loaded, DatasetDict):
        return "train" in loaded and len(loaded["train"]) == 0
    return len(loaded) == 0


def culture_specific_sets(parent: str | Path, countries: str) -> dict[str, Path]:
    """The per-country training sets under `parent` for 'all' or 'USA,CHN' (paper order).

    'all' skips countries whose set is empty (with a warning); a named country must have rows."""
    parent = Path(parent).expanduser()
    if not parent.is_dir():
        raise CulturespaError(
            f"dataset_path: {parent} is not a folder of per-country training sets"
        )
    if countries.lower() == "all":
        found = {code: p for code in WAVE7_COUNTRIES if (p := _country_set_path(parent, code))}
        empty = [code for code, p in found.items() if _is_empty_set(p)]
        if empty:
            logger.warning("skipping countries with empty training sets: %s", ", ".join(empty))
        found = {code: p for code, p in found.items() if code not in empty}
        if not found:
            raise CulturespaError(
                f"{parent}: no per-country training sets (<ISO3>/ or <ISO3>.jsonl)"
            )
        return found
    sets: dict[str, Path] = {}
    for raw in countries.split(","):
        if not raw.strip():
            continue
        code = get_country(raw).code
        path = _country_set_path(parent, code)
        if path is None:
            raise CulturespaError(f"countries: no training set for {code} in {parent}")
        sets[code] = path
    if not sets:
        raise CulturespaError("countries: no country given")
    return sets
