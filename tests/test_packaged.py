"""Configs and data by name (culturespa/packaged.py): the same names in a clone and a wheel."""

from __future__ import annotations

import json

import pytest

from culturespa.errors import CulturespaError
from culturespa.packaged import data_file, named_recipes, recipe_file


def test_packaged_data_names_resolve_to_the_shipped_files():
    released = data_file("package:released", "questions_file")
    sample = data_file("package:sample", "questions_file")
    assert sum(1 for _ in released.open(encoding="utf-8")) == 13000
    rows = [json.loads(line) for line in sample.open(encoding="utf-8")]
    assert len(rows) == 42 and {"topic", "question", "options"} <= set(rows[0])


def test_an_unknown_packaged_name_is_one_line_naming_the_known_ones():
    with pytest.raises(CulturespaError, match=r"questions_file package:nope: .*package:released"):
        data_file("package:nope", "questions_file")


def test_a_plain_path_is_the_users(tmp_path):
    assert data_file(str(tmp_path / "q.jsonl"), "x") == tmp_path / "q.jsonl"


def test_a_recipe_by_name_by_package_path_and_by_the_users_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the clone: only the package can answer
    by_path = recipe_file("recipes/data/tiny.yaml", "data", "config: data_config")
    assert by_path.is_file() and by_path.parent.name == "data"
    assert recipe_file("data/tiny.yaml", "data", "x") == by_path
    assert recipe_file("tiny", "data", "x") == by_path
    assert "tiny" in named_recipes("data")
    own = tmp_path / "recipes" / "data" / "tiny.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("seed: 1\n")
    assert recipe_file("recipes/data/tiny.yaml", "data", "x") == own.relative_to(tmp_path)


def test_a_missing_recipe_names_the_packaged_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        CulturespaError, match=r"--config nope does not exist; packaged data configs: .*tiny"
    ):
        recipe_file("nope", "data", "--config")
    (tmp_path / "d").mkdir()
    with pytest.raises(CulturespaError, match="is a folder"):
        recipe_file("d", "data", "--config")
