"""The GPU check: what CI cannot run, in one command, for the day a GPU machine is available.

    bash scripts/prepare_gpu_wheels.sh       # here, with network: the wheels the GPU machine lacks
    python3 scripts/gpu_check.py             # there: bf16 on the first CUDA device
    python3 scripts/gpu_check.py --cpu       # the same checks on a CPU (CI: tests/test_gpu_check.py)

Not yet run on a GPU (none has been available); on this project's 2-core CPU, `--cpu` takes 40 to
70 s. On a GPU expect a few minutes at most (each of the three processes starts CUDA once); the
budget is 8 minutes.

The GPU machine needs no network and no install: wheels in `.whl/` (trl, lm-eval, datasets and
the versions we pin) go to a temporary folder on `sys.path`, culturespa runs from this checkout,
and the model is the tiny random Llama of the tests, built on the spot. Checks, one line each
(`PASS name: ...` or `FAIL name: ...`):

1. environment: the device, bf16 support, the packages we pin at their versions, and the
   requirements those packages declare at versions they accept (missing ones are named: wheels
   travel without their dependencies, and lm-eval declares some that our tasks never import);
2. sft bf16 LoRA: `recipes/sft.py` on `recipes/tiny_cpu_smoke.yaml` in bf16 through `accelerate
   launch` with `recipes/accelerate/single_gpu.yaml`: the loss falls, the adapter is saved;
3. hf parity: `culturespa-hf` against lm-eval's `hf` on our tasks (plain, self-alignment and
   10-option items) in bf16, in bf16 with the adapter of 2, and in float32 (not with --cpu: CI's
   tests/test_lm_eval_hf.py runs it), by the rule of
   tests/test_lm_eval_hf.py::test_loglikelihoods_equal_lm_eval_hf (`support.lm_eval_parity`);
4. build-data answer: the data builder's transformers backend on the device, in bf16.

Exit code 0 when every check passes, 1 otherwise, 2 for a bad flag.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # culturespa and the tests' support, uninstalled

from culturespa.command_line import ArgumentParser, positive_int  # noqa: E402
from culturespa.run_files import TRAINING_RECORD  # noqa: E402

PINNED = ("transformers", "peft", "trl", "lm-eval")
"""Packages whose exact pin (pyproject.toml) changes results: the check fails on another version."""
CARRIED = ("transformers", "peft", "trl", "lm-eval", "datasets", "accelerate", "torch")
"""Packages whose own requirements must be met (what --no-deps wheels cannot promise)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python3 scripts/gpu_check.py",
        description="Train a bf16 LoRA step and compare culturespa-hf with lm-eval's hf on the "
        "first CUDA device (or the CPU with --cpu); one line per check.",
    )
    parser.add_argument("--cpu", action="store_true", help="run the checks on the CPU (CI)")
    parser.add_argument(
        "--wheels",
        default=str(ROOT / ".whl"),
        help="folder of carried wheels, installed into a temporary folder (default: .whl)",
    )
    parser.add_argument(
        "--out", help="keep the work files (model, adapter, data) in this folder (default: none)"
    )
    parser.add_argument(
        "--steps", type=positive_int, default=8, help="training steps, at least 2 (default: 8)"
    )
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error(f"--steps {args.steps}: expected at least 2 (the loss must fall)")
    wheels, out = Path(args.wheels), Path(args.out) if args.out else None
    if wheels.exists() and not wheels.is_dir():
        parser.error(f"--wheels {wheels} is a file, not a folder of wheels")
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        parser.error(f"--out {out} is {'a file' if not out.is_dir() else 'not empty'}")
    return args


class Report:
    """One line per check as it finishes; the count of failures at the end."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.passed = 0

    def run(self, name: str, check, *args):
        """Run a check that returns its line, or (its line, a value for later checks); return
        the value (the line if none), None if it failed."""
        start = time.perf_counter()
        try:
            result = check(*args)
        except Exception as exc:  # a check that breaks is a failed check, and the next one runs
            text = " ".join(str(exc).split())[-600:] or type(exc).__name__
            if not isinstance(exc, RuntimeError):  # the checks' own failures are RuntimeErrors
                text = f"{type(exc).__name__}: {text}"
            self.fail(name, text, start)
            return None
        detail, value = result if isinstance(result, tuple) else (result, result)
        self.ok(name, detail, start)
        return value

    def ok(self, name: str, detail, start: float) -> None:
        self.passed += 1
        print(f"PASS {name}: {detail} ({time.perf_counter() - start:.1f} s)", flush=True)

    def fail(self, name: str, detail: str, start: float) -> None:
        self.failed.append(name)
        print(f"FAIL {name}: {detail} ({time.perf_counter() - start:.1f} s)", flush=True)


def site_for(folder: Path) -> Path:
    """Where the carried wheels go: a folder of the machine's temporary space named after them,
    so that a second run installs nothing (lm-eval alone is thousands of files)."""
    import hashlib

    names = sorted(p.name for p in folder.glob("*.whl")) if folder.is_dir() else []
    digest = hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"culturespa-gpu-check-site-{digest}"


def install_wheels(folder: Path, site: Path) -> str:
    """Carried wheels into `site` (first on sys.path and on the subprocesses' PYTHONPATH)."""
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if not wheels:
        return f"none in {folder}: the installed packages are used"
    stamp = site / ".installed"
    if stamp.is_file():
        sys.path.insert(0, str(site))
        return f"{len(wheels)} wheels from {folder}, already in {site}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-index",
        "--no-deps",
        "--no-compile",
        "--no-cache-dir",
        "--upgrade",
        "--disable-pip-version-check",
        "--target",
        str(site),
        *map(str, wheels),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    stamp.write_text("\n".join(w.name for w in wheels) + "\n")
    sys.path.insert(0, str(site))
    return f"{len(wheels)} wheels from {folder} into {site}"


def pins() -> dict[str, str]:
    """The exact pins of pyproject.toml's extras: {name: version}."""
    import re

    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = {}
    for name, version in re.findall(r'"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^",;\s]+)"', text):
        found[name.lower()] = version
    return found


def environment(cpu: bool) -> str:
    """The device, and the packages we pin at their versions. Requirements that the installed
    packages declare but that are missing are named (wheels travel without their dependencies);
    a check that needs one of them fails on its import."""
    import importlib
    import importlib.metadata as metadata

    import torch
    from packaging.requirements import Requirement

    problems, unmet = [], []
    wanted = pins()
    versions = {}
    for name in CARRIED:
        try:
            versions[name] = metadata.version(name)
            importlib.import_module(name.replace("-", "_"))
        except (metadata.PackageNotFoundError, ImportError) as exc:
            problems.append(f"{name}: {exc}")
            continue
        if name in PINNED and versions[name] != wanted.get(name):
            problems.append(f"{name} {versions[name]}, pinned {wanted.get(name)}")
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                have = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                unmet.append(f"{requirement.name} (for {name})")
                continue
            if not requirement.specifier.contains(have, prereleases=True):
                problems.append(f"{name} needs {requirement}, found {have}")
    if cpu:
        device = "cpu"
    elif not torch.cuda.is_available():
        problems.append("no CUDA device (use --cpu to run the checks on the CPU)")
        device = "none"
    else:
        device = f"{torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}"
        if not torch.cuda.is_bf16_supported():
            problems.append("the GPU has no bf16")
    listed = ", ".join(f"{k} {v}" for k, v in versions.items())
    if problems:
        raise RuntimeError("; ".join(problems) + f" ({listed})")
    missing = f"; not installed: {', '.join(sorted(set(unmet)))}" if unmet else ""
    return f"{device}; torch CUDA {torch.version.cuda}; {listed}{missing}"


def prepare(work: Path) -> tuple[str, tuple[Path, Path]]:
    """The tiny model and a training set of 32 conversations in the data builder's format."""
    from support.tiny_model import build_tiny_model
    from support.training_sets import sft_rows, write_set

    model = build_tiny_model(work / "tiny_llama")
    rows = sft_rows("USA", "culture_joint", 16) + sft_rows("CHN", "culture_joint", 16)
    data = write_set(work / "culture_joint", rows)
    return f"a 2-layer random Llama and {len(rows)} training conversations", (model, data)


def child_env(site: Path) -> dict[str, str]:
    paths = [str(site), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def train(model: Path, data: Path, out: Path, steps: int, cpu: bool, env: dict) -> str:
    """A bf16 LoRA run of recipes/sft.py through accelerate's single-GPU config."""
    launcher = ["--config_file", "recipes/accelerate/single_gpu.yaml"]
    if cpu:
        launcher.append("--cpu")
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *launcher,
        "recipes/sft.py",
        "--config",
        "recipes/tiny_cpu_smoke.yaml",
        "--model_name_or_path",
        str(model),
        "--dataset_path",
        str(data),
        "--output_dir",
        str(out),
        "--dtype",
        "bfloat16",
        "--bf16",
        "true",
        "--use_cpu",
        "true" if cpu else "false",
        "--max_steps",
        str(steps),
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=420, check=False
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-12:]
        raise RuntimeError(f"exit {done.returncode}: " + " | ".join(tail))
    run = json.loads((out / TRAINING_RECORD).read_text())
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [e["loss"] for e in state["log_history"] if "loss" in e]
    device = run["distributed"]["device"]
    problems = []
    if len(losses) != steps or not losses[-1] < losses[0]:
        problems.append(f"losses {losses}")
    if run["hyperparameters"]["bf16"] is not True:
        problems.append("not bf16")
    if not device.startswith("cpu" if cpu else "cuda"):
        problems.append(f"trained on {device}")
    if not (out / "adapter_model.safetensors").is_file():
        problems.append("no adapter saved")
    if problems:
        raise RuntimeError("; ".join(problems))
    return f"loss {losses[0]:.3f} -> {losses[-1]:.3f} in {steps} steps, bf16 on {device}"


def parity(model: Path, dtype: str, cpu: bool, adapter: Path | None = None) -> str:
    """culturespa-hf against lm-eval's hf on the same items, by the tests' rule."""
    from support.lm_eval_parity import TOLERANCE, compare, loglikelihoods

    extra = {"peft": str(adapter)} if adapter is not None else {}
    stock, ours = loglikelihoods(model, device="cpu" if cpu else "cuda", dtype=dtype, **extra)
    result = compare(stock, ours, TOLERANCE[dtype], same_greedy=dtype == "float32")
    if result.decided < result.items // 2:
        result.problems.append(f"only {result.decided} of {result.items} items decided")
    if result.problems:
        raise RuntimeError(f"{len(result.problems)} problems, e.g. {result.problems[:3]}")
    return result.line() + f" (tolerance {TOLERANCE[dtype]:g})"


def build_data(model: Path, out: Path, cpu: bool, env: dict) -> str:
    """The answer stage of the data builder on the device, in bf16, one question per topic."""
    import yaml

    config = yaml.safe_load((ROOT / "recipes" / "data" / "tiny.yaml").read_text())
    config["model"].update(name=str(model), device="cpu" if cpu else "cuda", dtype="bfloat16")
    config.update(
        output_dir=str(out),
        questions_file=str(ROOT / "data" / "generated" / "sample_questions.jsonl"),
        questions_limit_per_topic=1,
    )
    path = out.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "culturespa.cli.main", "build-data", "--config", str(path)]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    answers = [json.loads(x) for x in (out / "answers" / "answers.jsonl").read_text().splitlines()]
    invalid = sum(a["answer"] is None for a in answers)
    if len(answers) != 12 * 7 or invalid:
        raise RuntimeError(f"{len(answers)} answers, {invalid} without an option")
    return f"{len(answers)} prompts answered on {config['model']['device']} in bf16"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="culturespa-gpu-check-") as scratch:
        work = Path(args.out) if args.out else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        site = site_for(Path(args.wheels))
        if report.run("wheels", install_wheels, Path(args.wheels), site) is None:
            return 1
        env = child_env(site)
        os.environ.update({k: env[k] for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")})
        if report.run("environment", environment, args.cpu) is None:
            return 1
        made = report.run("tiny model", prepare, work)
        if made is None:
            return 1
        model, data = made
        adapter = work / "adapter"
        trained = report.run(
            "sft bf16 LoRA", train, model, data, adapter, args.steps, args.cpu, env
        )
        report.run("hf parity bfloat16", parity, model, "bfloat16", args.cpu)
        if trained is not None:
            report.run("hf parity bfloat16 + adapter", parity, model, "bfloat16", args.cpu, adapter)
        if not args.cpu:  # on a CPU, tests/test_lm_eval_hf.py runs it in CI
            report.run("hf parity float32", parity, model, "float32", args.cpu)
        report.run("build-data answer", build_data, model, work / "data", args.cpu, env)
    seconds = time.perf_counter() - start
    if report.failed:
        print(
            f"FAIL {len(report.failed)} of {report.passed + len(report.failed)} checks: "
            f"{', '.join(report.failed)} ({seconds:.0f} s)"
        )
        return 1
    print(f"PASS all {report.passed} checks ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
