"""Files that ship inside the package, found by name: the recipes (`recipes/`, installed as
`culturespa.recipes`) and the data (`data/`, installed as `culturespa.data`).

A config names them the same way in a clone and in an installed wheel:

- a recipe (a loop, data-builder or training config) by its name, `tiny` for
  `recipes/loop/tiny.yaml`, or by its path inside the recipes folder, `recipes/data/tiny.yaml`
  or `data/tiny.yaml`; a path to a file of the user's wins over a packaged one;
- packaged data by `package:NAME`: `package:released` (the paper's 13,000 generated questions),
  `package:sample` (42 of them, for quick runs and tests).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from culturespa.errors import CulturespaError

PACKAGED_DATA: dict[str, str] = {
    "released": "generated/generated_questions_llama3_8b.jsonl",
    "sample": "generated/sample_questions.jsonl",
}
"""`package:NAME` -> the file inside `culturespa.data` (the repository's `data/`)."""

DATA_PREFIX = "package:"


def _package_root(package: str, folder: str) -> Path:
    """The folder of an installed package, or the clone's folder when culturespa runs from a
    checkout that is not installed (PYTHONPATH=<checkout>)."""
    try:
        return Path(str(resources.files(package)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / folder


def recipes_root() -> Path:
    return _package_root("culturespa.recipes", "recipes")


def data_root() -> Path:
    return _package_root("culturespa.data", "data")


def named_recipes(kind: str) -> list[str]:
    """The names of the packaged recipes of a kind (`loop`, `data`, ...): their file stems."""
    folder = recipes_root() / kind
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def recipe_file(spec: str | Path, kind: str, what: str) -> Path:
    """A config file: the user's path when it exists, else a packaged recipe by name (`tiny`)
    or by its path inside the recipes folder (`recipes/loop/tiny.yaml`, `loop/tiny.yaml`).
    `what` names the setting in the error (`--config`, `config: data_config`)."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        raise CulturespaError(f"{what} {text} is a folder; expected a YAML file")
    root = recipes_root()
    inside = Path(*path.parts[1:]) if path.parts[:1] == ("recipes",) else path
    candidates = [root / inside]
    if len(path.parts) == 1 and not path.suffix:
        candidates.insert(0, root / kind / f"{text}.yaml")
    for candidate in candidates:
        if candidate.is_file() and not path.is_absolute():
            return candidate
    names = named_recipes(kind)
    described = f"{kind} configs" if kind else "configs"  # kind "": the training recipes
    hint = f"; packaged {described}: {', '.join(names)}" if names else ""
    raise CulturespaError(f"{what} {text} does not exist{hint}")


def data_file(spec: str | Path, what: str) -> Path:
    """`package:NAME` -> the packaged file; anything else is the user's path, returned as is
    (the caller checks it)."""
    text = str(spec)
    if not text.startswith(DATA_PREFIX):
        return Path(text).expanduser()
    name = text[len(DATA_PREFIX) :]
    if name not in PACKAGED_DATA:
        raise CulturespaError(
            f"{what} {text}: no packaged data of that name; known: "
            + ", ".join(DATA_PREFIX + n for n in PACKAGED_DATA)
        )
    return data_root() / PACKAGED_DATA[name]
