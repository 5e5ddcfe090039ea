"""The survey folder in use: the one place that reads survey files (bottom layer).

A survey folder holds `wvs_questions.json`, `proportions_group_by_country.json`,
`country_similarity.json` and `self_alignment_examples.json`: the shipped one (the 19 countries
of the paper's release, the package `culturespa.data`) or one that `culturespa survey build`
wrote from the official WVS file. Every reader of survey data (items, similarity, baselines,
prompts) loads through `load_survey_json`; a command that takes `--survey DIR` calls
`use_survey_folder` once, at its boundary, and everything after reads that folder. Results
cached from survey data are cached with `survey_cached`, so switching folders clears them.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from culturespa.errors import CulturespaError

SURVEY_FILES = (
    "wvs_questions.json",
    "proportions_group_by_country.json",
    "country_similarity.json",
    "self_alignment_examples.json",
)
"""The files every survey folder has (a built one adds `manifest.json`)."""

_active: Path | None = None
_CACHED: list[Any] = []
F = TypeVar("F", bound=Callable[..., Any])


def survey_cached(function: F) -> F:
    """`functools.cache` for results computed from survey data: cleared when the folder changes."""
    cached = functools.cache(function)
    _CACHED.append(cached)
    return cached  # type: ignore[return-value]


def shipped_survey_file(name: str) -> Any:
    """A file of the shipped survey: of the installed package, or of the checkout when
    culturespa runs from one without being installed (PYTHONPATH=<checkout>)."""
    from culturespa.packaged import data_root

    return data_root() / "wvs" / name


def survey_folder() -> Path | None:
    """The survey folder in use; None for the shipped survey."""
    return _active


def survey_file(name: str) -> Any:
    """A file of the survey folder in use."""
    return _active / name if _active is not None else shipped_survey_file(name)


def survey_label() -> str:
    """How messages name the survey in use."""
    return f"survey folder {_active}" if _active is not None else "the shipped survey"


def survey_content_sha256(folder: str | Path) -> str:
    """SHA-256 of what a survey folder holds: its survey files, by name, in `SURVEY_FILES`'
    order (not the manifest, nor where the folder is). A task built for the folder records it, so
    a report recognises the survey by content: a copy matches, a rebuilt folder does not."""
    signature = []
    for name in SURVEY_FILES:
        try:
            stat = (Path(folder) / name).stat()
        except OSError:
            raise CulturespaError(f"survey folder {folder} lacks {name}") from None
        signature.append((stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return _content_sha256(str(Path(folder).resolve()), tuple(signature))


@functools.lru_cache(maxsize=16)
def _content_sha256(folder: str, signature: tuple) -> str:
    """`survey_content_sha256` of a folder whose files are as `signature` says (read once)."""
    digest = hashlib.sha256()
    for name in SURVEY_FILES:
        data = (Path(folder) / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def check_survey_content(folder: str | Path, recorded: str) -> None:
    """The survey folder still holds the survey whose content SHA-256 a task recorded."""
    actual = survey_content_sha256(folder)
    if actual != recorded:
        raise CulturespaError(
            f"survey folder {folder} changed since its tasks were built (content SHA-256 "
            f"{actual[:12]}, the tasks name {recorded[:12]}); build them again with "
            "`culturespa tasks build --survey DIR --out TASKDIR`"
        )


@survey_cached
def load_survey_json(name: str) -> Any:
    """A JSON file of the survey folder in use; a missing or unreadable file is a clear error."""
    path = survey_file(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CulturespaError(f"{survey_label()} has no {name}") from None
    except UnicodeDecodeError:
        raise CulturespaError(f"{path}: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise CulturespaError(f"{path}: malformed JSON ({exc.msg}, line {exc.lineno})") from None


def use_survey_folder(folder: str | Path | None) -> None:
    """Read survey data from `folder` from now on (None: the shipped survey); checked at once."""
    global _active
    if folder is not None:
        folder = Path(folder)
        if _active is not None and folder.resolve() == _active.resolve():
            return
        if not folder.is_dir():
            what = "does not exist" if not folder.exists() else "is a file, not a folder"
            raise CulturespaError(f"survey folder {folder} {what}")
        missing = [name for name in SURVEY_FILES if not (folder / name).is_file()]
        if missing:
            raise CulturespaError(
                f"survey folder {folder} lacks {', '.join(missing)}; build one with "
                "`culturespa survey build --wvs FILE --out DIR`"
            )
    elif _active is None:
        return
    previous = _active
    _active = folder
    for cached in _CACHED:
        cached.cache_clear()
    try:
        check_survey_folder()
    except CulturespaError:
        _active = previous
        for cached in _CACHED:
            cached.cache_clear()
        raise


def check_survey_folder() -> None:
    """The shares file of the folder in use has the shipped shape, with known countries,
    items and options: {country: {item: {option: share in [0, 1]}}}."""
    from culturespa.survey.countries import WAVE7_COUNTRIES
    from culturespa.survey.items import all_items

    name = "proportions_group_by_country.json"
    where = f"{survey_label()}: {name}"
    shares = load_survey_json(name)
    if not isinstance(shares, dict) or not shares:
        raise CulturespaError(f"{where}: expected an object {{country: {{item: shares}}}}")
    items = all_items()
    for code, by_item in shares.items():
        if code not in WAVE7_COUNTRIES:
            raise CulturespaError(f"{where}: {code!r} is not a wave-7 country code")
        if not isinstance(by_item, dict):
            raise CulturespaError(f"{where}: {code} is not an object {{item: shares}}")
        for qid, values in by_item.items():
            if qid not in items or not isinstance(values, dict):
                raise CulturespaError(f"{where}: {code} {qid}: not a known item with shares")
            numbers = {str(n) for n in items[qid].option_numbers}
            for option, share in values.items():
                number_ok = isinstance(share, (int, float)) and 0 <= share <= 1
                if option not in numbers or not number_ok:
                    raise CulturespaError(
                        f"{where}: {code} {qid}: option {option!r} share {share!r} (options "
                        f"are {', '.join(sorted(numbers, key=int))}, shares in [0, 1])"
                    )


@survey_cached
def surveyed_countries() -> tuple[str, ...]:
    """The countries of the survey in use, in the country table's order (the paper's first)."""
    from culturespa.survey.countries import WAVE7_COUNTRIES

    present = load_survey_json("proportions_group_by_country.json")
    return tuple(code for code in WAVE7_COUNTRIES if code in present)
