"""The package as users install it: a wheel carries the survey data, task YAMLs and templates."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def _listed_packages() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return set(config["tool"]["setuptools"]["packages"])


def test_every_python_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = set(config["tool"]["setuptools"]["package-dir"])  # data/, recipes/ under other names
    for top in ("culturespa", "culturespa_tasks"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    assert found == _listed_packages()


@pytest.fixture(scope="module")
def wheel_install(tmp_path_factory) -> Path:
    from support.wheel import build_wheel

    out = tmp_path_factory.mktemp("wheel")
    with zipfile.ZipFile(build_wheel(out)) as archive:
        archive.extractall(out / "site")
    return out / "site"


def test_wheel_contains_data_and_tasks(wheel_install):
    assert (wheel_install / "culturespa/data/wvs/proportions_group_by_country.json").exists()
    assert (wheel_install / "culturespa/inference/templates/chatml.jinja").exists()
    assert (wheel_install / "culturespa/training/model_card.md.jinja").exists()
    for name in ("leaderboard.html.jinja", "page.css", "page.js"):  # the leaderboard page
        assert (wheel_install / "culturespa/report/page" / name).exists(), name
    # the training recipes, their accelerate configs and data configs, by the names a clone has
    recipes = ROOT / "recipes"
    for path in [*recipes.glob("*.yaml"), *recipes.glob("*/*.yaml")]:
        assert (wheel_install / "culturespa/recipes" / path.relative_to(recipes)).is_file(), path
    assert (wheel_install / "culturespa/recipes/accelerate/single_gpu.yaml").is_file()
    for module in ("cli/train.py", "cli/merge.py", "training/merge.py"):
        assert (wheel_install / "culturespa" / module).is_file(), module
    if (ROOT / "culturespa_tasks").exists():
        shipped = ROOT / "culturespa_tasks"
        yamls = {p.relative_to(shipped) for p in shipped.rglob("*.yaml")}
        installed_dir = wheel_install / "culturespa_tasks"
        installed = {p.relative_to(installed_dir) for p in installed_dir.rglob("*.yaml")}
        assert installed == yamls and len(yamls) > 700  # the ways' subfolders included
        assert (wheel_install / "culturespa_tasks/_wvs_loglikelihood_yaml").is_file()


def test_wheel_install_finds_the_survey(wheel_install, tmp_path):
    code = (
        "import culturespa.survey.items as s, culturespa; "
        "assert 'site' in culturespa.__file__, culturespa.__file__; "
        "print(len(s.scored_items()), s.survey_majority('USA', 'Q1'))"
    )
    env = {**os.environ, "PYTHONPATH": str(wheel_install)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["259", "1"]
