"""CultureSPA end to end on one model and a CPU: build data -> train LoRA adapters -> evaluate -> report.

```bash
make loop        # = python recipes/loop.py --config recipes/loop/smollm2-135m-instruct.yaml
# a small run in minutes: 4 kept questions per topic, 20 WVS items per country
python recipes/loop.py --config recipes/loop/smollm2-135m-instruct.yaml \
    --per-topic 4 --limit 20 --output-dir runs/loop/small
python recipes/loop.py --config recipes/loop/smollm2-135m-instruct.yaml --dry-run   # the plan
# determinism: the data and the adapters of two run folders, file by file
python recipes/loop.py --compare runs/loop/a runs/loop/b
```

Stages, each a command of its own (their progress bars show), each skipped when its outputs are
complete, so the same command run again after a kill continues where it stopped:

1. data: `culturespa build-data` on the config the loop derives from `data_config` (the model,
   countries, seed and `filter.per_topic` of the loop), resumable by itself; complete when
   `data/sft/README.md` (written last) exists.
2. culture-joint adapter: `recipes/sft.py --config <joint_recipe>`; complete when
   `train/culture_joint/culturespa_training.json` (written last) exists, else trained afresh.
3. culture-specific adapters: `recipes/sft.py --config <specific_recipe> --countries <C>`, one
   process per country, each skipped when complete; a country without rows is reported and left out.
4. evaluation: `culturespa eval` (base model, joint adapter) and `recipes/eval_specific.py`
   (per country) on the culture-aware log-likelihood tasks, with sample logs (intervals); each
   results folder is skipped when it holds a results file.
5. report: `culturespa report`'s tables and plots (base vs joint bars, paired change), the
   training loss curves from the adapters' `trainer_state.json`, and `summary.md`: the table
   with intervals, the paired changes, pairs per country, and per stage the wall time, CPU time
   and peak memory (`loop_timings.json`).

Every stage gets the loop's seed; the run folder's `loop.json` holds the settings, and a rerun
with other settings into a folder that holds results is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python recipes/loop.py` from a clone: use that clone's package
    sys.path.insert(0, str(ROOT))

from culturespa.errors import CulturespaError  # noqa: E402
from culturespa.fields import check_field_types, invalid  # noqa: E402

MEMORY_LIMIT_MB = 4096
"""The loop's memory budget per process (peak resident set size), checked after every stage."""

IDLE_SECONDS: dict[str, float] = {
    "answer_prompt": 0.32,
    "train_example": 1.4,
    "eval_item": 0.19,
    "eval_item_adapter": 0.29,
    "process_start": 15.0,
}
"""Seconds per unit of work with SmolLM2-135M-Instruct on the project's 2-core CPU when nothing
else runs (culturespa/pluralise/README.md, recipes/README.md, README "The main job", this loop's
own run in the README); the time estimates printed before each stage scale these."""

EXPECTED_PAIR_SHARE = 0.06
"""Share of (question, country) pairs whose culture-aware answer differs from the culture-unaware
one with SmolLM2-135M-Instruct (measured: 5.8% on 104 released questions); only for the estimate
of training time before the data exist."""

STAGES: tuple[str, ...] = ("data", "train", "eval", "report")


@dataclass
class LoopConfig:
    """The loop's YAML config: what to run, on what, and where."""

    output_dir: str = field(default="", metadata={"help": "run folder of every stage's output"})
    data_config: str = field(
        default="",
        metadata={
            "help": "a `culturespa build-data` config; the loop sets its output_dir, model.name, "
            "countries, seed and filter.per_topic"
        },
    )
    joint_recipe: str = field(default="", metadata={"help": "recipes/sft.py recipe, joint"})
    specific_recipe: str = field(
        default="", metadata={"help": "recipes/sft.py recipe, one adapter per country"}
    )
    model: str = field(default="default", metadata={"help": "model folder or 'default'"})
    countries: str | list[str] = field(
        default_factory=lambda: ["USA", "CHN", "NGA", "DEU", "BRA"],
        metadata={"help": "ISO-3 codes (data, training and evaluation)"},
    )
    seed: int = field(default=42, metadata={"help": "seed of every stage"})
    per_topic: int | None = field(
        default=None,
        metadata={"help": "kept questions per topic after the filter (stratified subset)"},
    )
    eval_task: str = field(
        default="wvs_culture_aware", metadata={"help": "task group; the country is added"}
    )
    eval_backend: str = field(
        default="culturespa-hf", metadata={"help": "culturespa-hf or hf (lm-eval model type)"}
    )
    eval_batch_size: int = field(default=16, metadata={"help": "evaluation batch size"})
    eval_limit: int | None = field(
        default=None, metadata={"help": "WVS items per country (None: all, up to 259)"}
    )
    device: str = field(default="cpu", metadata={"help": "evaluation device"})

    def __post_init__(self) -> None:
        from culturespa.prompts.task_names import parse_task_name
        from culturespa.survey.countries import parse_countries

        check_field_types(self, "config: ")
        for key in ("output_dir", "data_config", "joint_recipe", "specific_recipe"):
            if not getattr(self, key):
                raise CulturespaError(f"config: {key} is missing")
        for key in ("data_config", "joint_recipe", "specific_recipe"):
            path = Path(getattr(self, key))
            if not path.is_file():
                what = "is a folder" if path.is_dir() else "does not exist"
                raise CulturespaError(f"config: {key} {path} {what}")
        if isinstance(self.countries, list) and not self.countries:
            raise invalid("config: countries", self.countries, "ISO-3 codes")
        self.countries = list(parse_countries(self.countries))
        for key in ("per_topic", "eval_limit"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise invalid(f"config: {key}", value, "an integer >= 1 or null")
        if self.eval_batch_size < 1:
            raise invalid("config: eval_batch_size", self.eval_batch_size, "an integer >= 1")
        task = parse_task_name(self.eval_task)
        if task is None or task.country is not None or task.generation:
            raise invalid(
                "config: eval_task",
                self.eval_task,
                "a log-likelihood task group such as wvs_culture_aware",
            )
        if self.eval_backend not in ("culturespa-hf", "hf"):
            raise invalid("config: eval_backend", self.eval_backend, "culturespa-hf or hf")

    @property
    def out(self) -> Path:
        return Path(self.output_dir)


def load_loop_config(path: str | Path, overrides: dict[str, Any]) -> LoopConfig:
    """Read the YAML config; flags (`overrides`, None: not given) win; unknown keys are errors."""
    import yaml

    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise CulturespaError(f"--config {path} {what}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise CulturespaError(f"{path}: not a readable YAML file ({reason})") from None
    if not isinstance(data, dict):
        raise CulturespaError(f"{path}: the config must be a mapping")
    known = {f.name for f in dataclasses.fields(LoopConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CulturespaError(
            f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return LoopConfig(**data)
    except CulturespaError as exc:
        raise CulturespaError(f"{path}: {exc}") from None


# -- the run folder -----------------------------------------------------------------------------


class Layout:
    """Where each stage writes inside the run folder, and when its output is complete."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.data = out / "data"
        self.data_config = out / "data_config.yaml"
        self.joint = out / "train" / "culture_joint"
        self.specific = out / "train" / "culture_specific"
        self.eval = out / "eval"
        self.report = out / "report"
        self.timings = out / "loop_timings.json"
        self.manifest = out / "loop.json"
        self.summary = out / "summary.md"

    def data_done(self) -> bool:
        return (self.data / "sft" / "README.md").is_file()

    def training_rows(self, country: str | None = None) -> int:
        """Rows of the joint set, or of one country's set (0 when the file is missing)."""
        sft = self.data / "sft"
        path = (
            sft / "culture_joint.jsonl"
            if country is None
            else sft / "culture_specific" / f"{country}.jsonl"
        )
        if not path.is_file():
            return 0
        with path.open(encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())

    @staticmethod
    def adapter_done(folder: Path) -> bool:
        return (folder / "culturespa_training.json").is_file()

    def eval_folder(self, which: str, country: str | None = None) -> Path:
        return self.eval / which / country if country else self.eval / which

    @staticmethod
    def results_done(folder: Path) -> bool:
        return folder.is_dir() and any(folder.rglob("results_*.json"))


def settings_record(config: LoopConfig) -> dict[str, Any]:
    """What fixes the results: the loop's settings and the content of the files it reads."""

    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    record = {k: v for k, v in dataclasses.asdict(config).items() if k != "output_dir"}
    for key in ("data_config", "joint_recipe", "specific_recipe"):
        record[f"{key}_sha256"] = digest(getattr(config, key))
    return record


def check_manifest(layout: Layout, config: LoopConfig, write: bool = True) -> None:
    """Refuse a run folder whose results were made with other settings; record the settings."""
    from culturespa.atomic import write_json_atomic

    current = json.loads(json.dumps(settings_record(config)))
    if layout.manifest.is_file():
        saved = json.loads(layout.manifest.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        holds_results = any(
            p.exists() for p in (layout.data, layout.joint, layout.specific, layout.eval)
        )
        if changed and holds_results:
            raise CulturespaError(
                f"{layout.out} holds a loop run made with other settings ({', '.join(changed)}); "
                "use another --output-dir or delete that folder"
            )
    if write:
        write_json_atomic(layout.manifest, current)


def derived_data_config(config: LoopConfig, layout: Layout) -> dict[str, Any]:
    """The build-data config the loop runs: `data_config` with the loop's model, countries, seed,
    output folder and subset; checked with build-data's own parser."""
    import yaml

    from culturespa.pluralise.config import config_from_dict

    data = yaml.safe_load(Path(config.data_config).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise CulturespaError(f"{config.data_config}: the config must be a mapping")
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    data["model"] = {**model, "name": config.model}
    data["output_dir"] = str(layout.data)
    data["countries"] = list(config.countries)
    data["seed"] = config.seed
    data["filter"] = {**(data.get("filter") or {}), "per_topic": config.per_topic}
    try:
        config_from_dict(data)
    except CulturespaError as exc:
        raise CulturespaError(f"{config.data_config}: {exc}") from None
    return data


# -- running one command ------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the loop dies (Linux), so that a killed loop leaves no
    stage running on its own and a rerun never races it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Usage:
    """What one or more commands of a stage cost."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def add(self, other: Usage) -> None:
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def run_command(unit: str, argv: list[str]) -> Usage:
    """Run a command with the loop's terminal (its progress bars show); its wall time, CPU time
    and peak memory. A failing command stops the loop."""
    print("$ " + " ".join(argv), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=child_env(), preexec_fn=_die_with_parent)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise CulturespaError(
            f"{unit}: the command failed (exit code {code}); fix the cause and run the loop "
            "again to continue"
        )
    return Usage(
        seconds=time.perf_counter() - start,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
    )


def culturespa_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "culturespa.cli.main", *args]


def script_command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "recipes" / script), *args]


# -- time estimates and bookkeeping -------------------------------------------------------------


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


class Timings:
    """Per unit of work (a stage, or one country's adapter or evaluation): seconds, CPU seconds
    and peak memory, summed over the runs that worked on it (a resumed stage adds up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict] = json.loads(path.read_text()) if path.is_file() else {}

    def add(self, unit: str, usage: Usage) -> None:
        from culturespa.atomic import write_json_atomic

        old = self.records.get(unit, {})
        self.records[unit] = {
            "seconds": round(old.get("seconds", 0.0) + usage.seconds, 1),
            "cpu_seconds": round(old.get("cpu_seconds", 0.0) + usage.cpu_seconds, 1),
            "peak_rss_mb": round(max(old.get("peak_rss_mb", 0.0), usage.peak_rss_mb), 1),
            "runs": old.get("runs", 0) + 1,
            "load_average": load_average(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json_atomic(self.path, self.records)
        if usage.peak_rss_mb > MEMORY_LIMIT_MB:
            print(
                f"WARNING: {unit} peaked at {usage.peak_rss_mb:.0f} MB, over {MEMORY_LIMIT_MB} MB"
            )


def announce(number: int, total: int, title: str, work: str, estimate: float | None) -> None:
    line = f"\n== [{number}/{total}] {title}: {work}"
    if estimate is not None:
        line += (
            f"; estimate {minutes(estimate)} on 2 idle cores (load average now {load_average()})"
        )
    print(line, flush=True)


def answer_prompts(config: LoopConfig, layout: Layout, data: dict) -> tuple[int, int]:
    """(prompts of the answer stage, prompts already answered), for the estimate; `data` is the
    build-data config the loop runs."""
    questions = config.per_topic * 13 if config.per_topic else 12808
    filtered = layout.data / "questions" / "filtered.jsonl"
    if filtered.is_file():
        with filtered.open(encoding="utf-8") as f:
            questions = sum(1 for line in f if line.strip())
    cct = (data.get("answer") or {}).get("cross_culture_thinking", True)
    total = questions * (1 + len(config.countries) * (2 if cct else 1))
    done = 0
    for log in (layout.data / "answers").glob("answers*.log.jsonl"):
        with log.open(encoding="utf-8") as f:
            done += sum(1 for line in f if line.strip())
    return total, min(done, total)


def eval_items(config: LoopConfig) -> int:
    """WVS items per country task (those with survey data, or the limit)."""
    from culturespa.survey.items import items_with_data

    return sum(
        min(len(items_with_data(c)), config.eval_limit or 10**6) for c in config.countries
    ) // len(config.countries)


# -- the stages ---------------------------------------------------------------------------------


class Loop:
    def __init__(self, config: LoopConfig, dry_run: bool = False) -> None:
        self.config = config
        self.layout = Layout(config.out)
        self.timings = Timings(self.layout.timings)
        self.dry_run = dry_run
        self.skipped: list[str] = []

    def run(self, unit: str, argv: list[str]) -> None:
        if self.dry_run:
            print("would run: " + " ".join(argv))
            return
        usage = run_command(unit, argv)
        self.timings.add(unit, usage)
        print(
            f"-- {unit}: {minutes(usage.seconds)} wall, {minutes(usage.cpu_seconds)} CPU, "
            f"peak {usage.peak_rss_mb:.0f} MB",
            flush=True,
        )

    def skip(self, unit: str, why: str) -> None:
        self.skipped.append(unit)
        print(f"-- {unit}: skipped ({why})", flush=True)

    # 1. data

    def data(self, number: int, total: int) -> None:
        c, lay = self.config, self.layout
        data = derived_data_config(c, lay)
        if not self.dry_run:
            import yaml

            from culturespa.atomic import write_text_atomic

            write_text_atomic(lay.data_config, yaml.safe_dump(data, sort_keys=False))
        prompts, done = answer_prompts(c, lay, data)
        subset = f"{c.per_topic} kept questions per topic" if c.per_topic else "every kept question"
        announce(
            number, total, "build data",
            f"{subset}, {prompts} prompts ({done} answered before)", self.estimate("data"),
        )  # fmt: skip
        if lay.data_done():
            return self.skip("data", f"{lay.data / 'sft' / 'README.md'} exists")
        self.run("data", culturespa_command("build-data", "--config", str(lay.data_config)))

    # 2. training

    def _sft(self, recipe: str, dataset: Path, output: Path, *extra: str) -> list[str]:
        return script_command(
            "sft.py", "--config", recipe, "--model_name_or_path", self.config.model,
            "--dataset_path", str(dataset), "--output_dir", str(output),
            "--seed", str(self.config.seed), *extra,
        )  # fmt: skip

    def _fresh(self, folder: Path) -> None:
        """An adapter folder without its last file is a killed run's: it is trained again."""
        if folder.exists() and not self.dry_run:
            shutil.rmtree(folder)

    def _estimated_rows(self, country: str | None = None) -> int:
        if self.layout.data_done():
            return self.layout.training_rows(country)
        questions = (self.config.per_topic or 985) * 13
        share = questions * EXPECTED_PAIR_SHARE
        return round(share if country else share * len(self.config.countries))

    def train(self, number: int, total: int) -> None:
        c, lay = self.config, self.layout
        rows = ", ".join(f"{cc} {self._estimated_rows(cc)}" for cc in c.countries)
        announce(
            number, total, "train LoRA adapters",
            f"culture-joint {self._estimated_rows()} rows; culture-specific {rows}"
            + ("" if lay.data_done() else " (expected; no data yet)"),
            self.estimate("train"),
        )  # fmt: skip
        if lay.adapter_done(lay.joint):
            self.skip("train/culture_joint", "adapter complete")
        else:
            self._fresh(lay.joint)
            self.run(
                "train/culture_joint",
                self._sft(c.joint_recipe, lay.data / "sft" / "culture_joint", lay.joint),
            )
        for cc in c.countries:
            unit, folder = f"train/culture_specific/{cc}", lay.specific / cc
            if lay.data_done() and lay.training_rows(cc) == 0:
                self.skip(unit, f"no training rows for {cc}")
                continue
            if lay.adapter_done(folder):
                self.skip(unit, "adapter complete")
            else:
                self._fresh(folder)
                self.run(
                    unit,
                    self._sft(
                        c.specific_recipe, lay.data / "sft" / "culture_specific", lay.specific,
                        "--countries", cc,
                    ),
                )  # fmt: skip
        self._write_index()

    def _write_index(self) -> None:
        """`adapters.json` of every complete culture-specific adapter: each per-country run of
        recipes/sft.py indexes its own country only."""
        from culturespa.inference.models import resolve_model
        from culturespa.training.outputs import write_adapter_index

        c, lay = self.config, self.layout
        done = {
            cc: str(lay.specific / cc) for cc in c.countries if lay.adapter_done(lay.specific / cc)
        }
        if done and not self.dry_run:
            write_adapter_index(lay.specific, done, resolve_model(c.model))

    # 3. evaluation

    def _eval_args(self) -> list[str]:
        c = self.config
        args = [
            "--backend", c.eval_backend, "--batch-size", str(c.eval_batch_size),
            "--device", c.device, "--log-samples", "--seed", str(c.seed),
        ]  # fmt: skip
        return args + (["--limit", str(c.eval_limit)] if c.eval_limit else [])

    def evaluate(self, number: int, total: int) -> None:
        from culturespa.prompts.task_names import task_of_group

        c, lay = self.config, self.layout
        tasks = ",".join(task_of_group(c.eval_task, cc) for cc in c.countries)
        items = eval_items(c) * len(c.countries)
        specific = [cc for cc in c.countries if lay.adapter_done(lay.specific / cc) or self.dry_run]
        self._write_index()
        announce(
            number, total, "evaluate",
            f"base, culture-joint and culture-specific on {c.eval_task} x "
            f"{len(c.countries)} countries, {items} items per model ({c.eval_backend})",
            self.estimate("eval"),
        )  # fmt: skip
        for which, peft in (("base", None), ("culture_joint", lay.joint)):
            unit, folder = f"eval/{which}", lay.eval_folder(which)
            if lay.results_done(folder):
                self.skip(unit, f"{folder} holds a results file")
                continue
            argv = culturespa_command(
                "eval", "--model", c.model, "--tasks", tasks, *self._eval_args(),
                "--output-path", str(folder),
            )  # fmt: skip
            if peft is not None:
                argv[argv.index("--tasks") : argv.index("--tasks")] = ["--peft", str(peft)]
            self.run(unit, argv)
        for cc in specific:
            unit, folder = f"eval/culture_specific/{cc}", lay.eval_folder("culture_specific", cc)
            if lay.results_done(folder):
                self.skip(unit, f"{folder} holds a results file")
                continue
            self.run(
                unit,
                script_command(
                    "eval_specific.py", str(lay.specific), "--countries", cc,
                    "--task", c.eval_task, "--model", c.model, *self._eval_args(),
                    "--output-path", str(folder),
                ),
            )  # fmt: skip

    # 4. report

    def report(self, number: int, total: int) -> None:
        announce(
            number, total, "report", f"tables, plots and summary -> {self.layout.report}",
            self.estimate("report"),
        )  # fmt: skip
        if self.dry_run:
            print("would write the report, the loss curves and summary.md")
            return
        start = time.perf_counter()
        text = write_report(self.config, self.layout, self.timings)
        self.timings.add("report", Usage(seconds=time.perf_counter() - start))
        print("\n" + text)

    def estimate(self, stage: str) -> float:
        """Seconds of the stage's work left on 2 idle cores (from IDLE_SECONDS)."""
        c, lay = self.config, self.layout
        start = IDLE_SECONDS["process_start"]
        if stage == "data":
            if lay.data_done():
                return 0.0
            prompts, done = answer_prompts(c, lay, derived_data_config(c, lay))
            return (prompts - done) * IDLE_SECONDS["answer_prompt"] + start
        if stage == "train":
            todo = [] if lay.adapter_done(lay.joint) else [self._estimated_rows()]
            for cc in c.countries:
                rows = self._estimated_rows(cc)
                if rows and not lay.adapter_done(lay.specific / cc):
                    todo.append(rows)
            return sum(todo) * IDLE_SECONDS["train_example"] + len(todo) * start
        if stage == "eval":
            items = eval_items(c) * len(c.countries)
            seconds = 0.0
            if not lay.results_done(lay.eval_folder("base")):
                seconds += items * IDLE_SECONDS["eval_item"] + start
            if not lay.results_done(lay.eval_folder("culture_joint")):
                seconds += items * IDLE_SECONDS["eval_item_adapter"] + start
            for cc in c.countries:
                if not lay.results_done(lay.eval_folder("culture_specific", cc)):
                    seconds += items / len(c.countries) * IDLE_SECONDS["eval_item_adapter"] + start
            return seconds
        return 10.0

    def run_stages(self, stages: tuple[str, ...]) -> None:
        steps = {
            "data": self.data,
            "train": self.train,
            "eval": self.evaluate,
            "report": self.report,
        }
        selected = [s for s in STAGES if s in stages]
        left = sum(self.estimate(s) for s in selected)
        print(
            f"CultureSPA loop -> {self.layout.out}: stages {', '.join(selected)}; estimate "
            f"{minutes(left)} for the work left, on 2 idle cores (load average now "
            f"{load_average()}: other jobs make it slower)",
            flush=True,
        )
        for number, stage in enumerate(selected, start=1):
            steps[stage](number, len(selected))


# -- report and summary -------------------------------------------------------------------------


def row_methods(config: LoopConfig, layout: Layout) -> dict[str, str]:
    """The report's row names ('model | template') of the base model, the joint adapter and the
    culture-specific adapters, built as the report builds them."""
    from culturespa.inference.models import resolve_model
    from culturespa.prompts.task_names import parse_task_name
    from culturespa.prompts.templates import TEMPLATES
    from culturespa.report.loading import model_label

    base = resolve_model(config.model)
    template = TEMPLATES[parse_task_name(config.eval_task).template].label
    first = config.countries[0]
    labels = {
        "base": model_label({"model_args": {"pretrained": base}}, set())[1],
        "joint": model_label(
            {"model_args": {"pretrained": base, "peft": str(layout.joint)}}, set()
        )[1],
        "specific": model_label(
            {"model_args": {"pretrained": base, "peft": str(layout.specific / first)}}, {first}
        )[1],
    }
    return {k: f"{v} | {template}" for k, v in labels.items()}


ROW_NAMES = {"base": "Base model", "joint": "CultureSPA joint", "specific": "CultureSPA specific"}


def _x100(value: float) -> str:
    import math

    return "–" if math.isnan(value) else f"{100 * value:.2f}"


def _ci(value: float, low: float, high: float) -> str:
    import math

    if math.isnan(low):
        return _x100(value)
    return f"{_x100(value)} [{_x100(low)}, {_x100(high)}]"


def write_report(config: LoopConfig, layout: Layout, timings: Timings) -> str:
    """`culturespa report` on the loop's results (base vs joint bars and paired change), the
    training loss plot, and summary.md; returns the summary."""
    from culturespa.atomic import write_json_atomic, write_text_atomic
    from culturespa.report import analysis
    from culturespa.report.loading import read_loss_history
    from culturespa.report.plots import plot_training_loss
    from culturespa.report.writer import build_report

    methods = row_methods(config, layout)
    report = build_report(
        [layout.eval], layout.report, compare=(methods["base"], methods["joint"]), seed=config.seed
    )
    by_method = {r.method: r for r in report.rows}
    rows = {k: by_method[m] for k, m in methods.items() if m in by_method}
    references = [r for r in report.rows if r.is_reference]

    curves = {}
    if Layout.adapter_done(layout.joint):
        curves["culture-joint"] = read_loss_history(layout.joint)
    for cc in config.countries:
        if Layout.adapter_done(layout.specific / cc):
            curves[f"specific {cc}"] = read_loss_history(layout.specific / cc)
    if curves:
        (layout.report / "plots").mkdir(exist_ok=True)
        plot_training_loss(
            curves,
            layout.report / "plots" / "training_loss.png",
            f"LoRA training loss, {ROW_NAMES['joint']} and {ROW_NAMES['specific']}",
        )

    changes = {
        k: analysis.paired_change(rows["base"], rows[k], seed=config.seed)
        for k in ("joint", "specific")
        if "base" in rows and k in rows
    }
    text = summary_markdown(config, layout, rows, references, changes, curves, timings)
    write_text_atomic(layout.summary, text)
    write_json_atomic(
        layout.out / "summary.json",
        {
            "rows": {
                k: {
                    "avg": r.avg, "avg_ci": [r.avg_low, r.avg_high],
                    "countries": {cc: [c.value, c.ci_low, c.ci_high] for cc, c in r.cells.items()},
                }
                for k, r in rows.items()
            },
            "changes": {k: ch.as_dict() for k, ch in changes.items() if ch},
            "training_rows": training_rows(config, layout),
            "timings": timings.records,
        },
    )  # fmt: skip
    return text


def training_rows(config: LoopConfig, layout: Layout) -> dict[str, int]:
    rows = {cc: layout.training_rows(cc) for cc in config.countries}
    return {**rows, "joint": layout.training_rows()}


def _train_facts(folder: Path) -> tuple[int, float, float] | None:
    """(optimizer steps, first logged loss, last logged loss) of an adapter."""
    from culturespa.report.loading import read_loss_history

    if not Layout.adapter_done(folder):
        return None
    points = read_loss_history(folder)
    if not points:
        return None
    return max(p.step for p in points), points[0].loss, points[-1].loss


def summary_markdown(config, layout, rows, references, changes, curves, timings) -> str:
    c = config
    countries = list(c.countries)
    head = ["", *countries, "AVG"]
    model = rows["base"].label if "base" in rows else c.model
    lines = [
        f"# CultureSPA loop: {model}, {', '.join(countries)}\n",
        f"Settings: `{layout.manifest}`; data subset: "
        + (f"{c.per_topic} kept questions per topic" if c.per_topic else "every kept question")
        + f"; seed {c.seed}; evaluation `{c.eval_task}` "
        + (
            f"(first {c.eval_limit} items per country)"
            if c.eval_limit
            else "(every item with survey data)"
        )
        + f", {c.eval_backend}.\n",
        "## Alignment (the paper's score x100, 95% bootstrap interval over items)\n",
        "| " + " | ".join(head) + " |",
        "|---" * len(head) + "|",
    ]
    for key, row in rows.items():
        cells = [
            _ci(row.cells[cc].value, row.cells[cc].ci_low, row.cells[cc].ci_high)
            if cc in row.cells
            else ""
            for cc in countries
        ]
        lines.append(
            f"| {ROW_NAMES[key]} | "
            + " | ".join(cells)
            + f" | {_ci(row.avg, row.avg_low, row.avg_high)} |"
        )
    for row in references:
        cells = [_x100(row.cells[cc].value) if cc in row.cells else "" for cc in countries]
        lines.append(
            f"| *{row.template_label}* (survey reference) | "
            + " | ".join(cells)
            + f" | {_x100(row.avg)} |"
        )
    lines += [
        "",
        "AVG: mean over the five countries, its interval from one draw of items for all of them.",
        "",
        "## Change against the base model (paired: same items, one draw for both rows)\n",
        "| | " + " | ".join(countries) + " | AVG | items closer / farther |",
        "|---" * (len(countries) + 3) + "|",
    ]  # fmt: skip
    for key, change in changes.items():
        if change is None:
            continue
        by_cc = {s.country: s for s in change.countries}
        cells = [
            _ci(by_cc[cc].delta, by_cc[cc].delta_low, by_cc[cc].delta_high) if cc in by_cc else ""
            for cc in countries
        ]
        avg = _ci(*change.average) if change.average else ""
        moved = [s for s in change.countries if s.n_items]
        closer = sum(s.closer * s.n_items for s in moved) / max(1, sum(s.n_items for s in moved))
        away = sum(s.away * s.n_items for s in moved) / max(1, sum(s.n_items for s in moved))
        lines.append(
            f"| {ROW_NAMES[key]} - base | "
            + " | ".join(cells)
            + f" | {avg} | {100 * closer:.1f}% / {100 * away:.1f}% |"
        )
    verdicts = []
    for key, change in changes.items():
        if change is None or change.average is None:
            continue
        mean, low, high = change.average
        inside = low <= 0 <= high
        verdicts.append(
            f"- {ROW_NAMES[key]}: AVG change {_ci(mean, low, high)}: "
            + ("the interval holds 0, so the change is **inside the intervals** (not distinguishable from no change on these items)." if inside
               else "the interval excludes 0, so the change is **outside the intervals**.")
        )  # fmt: skip
    lines += ["", *verdicts, ""]

    rows_per = training_rows(c, layout)
    lines += [
        "## Training pairs (culture-aware answer differs from the culture-unaware one)\n",
        "| set | " + " | ".join(countries) + " | joint |",
        "|---" * (len(countries) + 2) + "|",
        "| rows | "
        + " | ".join(str(rows_per[cc]) for cc in countries)
        + f" | {rows_per['joint']} |",
        "",
    ]
    facts = [("joint", _train_facts(layout.joint))] + [
        (cc, _train_facts(layout.specific / cc)) for cc in countries
    ]
    lines += ["| adapter | steps | loss first -> last logged step |", "|---|---|---|"]
    for name, fact in facts:
        if fact:
            lines.append(f"| {name} | {fact[0]} | {fact[1]:.3f} -> {fact[2]:.3f} |")
    lines += ["", "## Wall time, CPU time and peak memory per stage\n"]
    lines += [
        "| stage | wall | CPU | peak RSS | load average at the end |",
        "|---|---|---|---|---|",
    ]
    total = Usage()
    for stage in STAGES:
        units = [u for u in timings.records if u.split("/")[0] == stage]
        stage_usage = Usage()
        for unit in units:
            rec = timings.records[unit]
            usage = Usage(rec["seconds"], rec["cpu_seconds"], rec["peak_rss_mb"])
            stage_usage.add(usage)
            if len(units) > 1:
                lines.append(
                    f"| {unit} | {minutes(usage.seconds)} | {minutes(usage.cpu_seconds)} | "
                    f"{usage.peak_rss_mb:.0f} MB | {rec.get('load_average', '')} |"
                )
        if units:
            total.add(stage_usage)
            lines.append(
                f"| **{stage}** | **{minutes(stage_usage.seconds)}** | "
                f"{minutes(stage_usage.cpu_seconds)} | {stage_usage.peak_rss_mb:.0f} MB | |"
            )
    lines.append(
        f"| **total** | **{minutes(total.seconds)}** | {minutes(total.cpu_seconds)} | "
        f"{total.peak_rss_mb:.0f} MB | |"
    )
    lines += [
        "",
        f"Files: `{layout.report}/comparison.md`, `leaderboard.md`, `index.html`, `change.md`, "
        "`plots/bars.png` (base vs joint), `plots/training_loss.png`.",
    ]
    return "\n".join(lines) + "\n"


# -- determinism: two run folders compared ------------------------------------------------------


def compare_runs(first: Path, second: Path) -> list[tuple[str, str]]:
    """(file, verdict) for the data files and adapter weights the two run folders share: data
    byte for byte, adapters tensor by tensor (largest absolute difference)."""
    out = []
    data_files = sorted(
        p.relative_to(first)
        for pattern in ("data/questions/filtered.jsonl", "data/answers/answers.jsonl",
                        "data/collected/collected.jsonl", "data/sft/*.jsonl",
                        "data/sft/culture_specific/*.jsonl")
        for p in first.glob(pattern)
    )  # fmt: skip
    for rel in data_files:
        other = second / rel
        if not other.is_file():
            out.append((str(rel), "missing in the second run"))
        else:
            same = (first / rel).read_bytes() == other.read_bytes()
            out.append((str(rel), "identical" if same else "DIFFERENT"))
    for path in sorted(first.glob("train/**/adapter_model.safetensors")):
        rel = path.relative_to(first)
        other = second / rel
        if not other.is_file():
            out.append((str(rel), "missing in the second run"))
            continue
        out.append((str(rel), _compare_tensors(path, other)))
    return out


def _compare_tensors(a: Path, b: Path) -> str:
    from safetensors.numpy import load_file

    left, right = load_file(str(a)), load_file(str(b))
    if set(left) != set(right):
        return "DIFFERENT tensor names"
    if all(left[k].tobytes() == right[k].tobytes() for k in left):
        return f"identical ({len(left)} tensors, bit for bit)"
    import numpy as np

    diff = max(float(np.max(np.abs(left[k].astype(np.float64) - right[k]))) for k in left)
    return f"DIFFERENT (largest absolute difference {diff:.3g})"


# -- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    from culturespa.cli.parsing import ArgumentParser, exit_with_error, positive_int

    parser = ArgumentParser(
        prog="recipes/loop.py",
        description="CultureSPA end to end (build data, train, evaluate, report), resumable and "
        "seeded; run it again after a kill and it continues.",
    )
    parser.add_argument("--config", help="the loop's YAML config (recipes/loop/*.yaml)")
    parser.add_argument("--output-dir", default=None, help="run folder (overrides the config)")
    parser.add_argument(
        "--per-topic", type=positive_int, default=None, help="kept questions per topic (overrides)"
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="WVS items per country (overrides)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of every stage (overrides)")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="comma-separated stages to run, in the loop's order (default: %(default)s)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would run and what is skipped"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="compare the data and adapters of two run folders (exit 1 when they differ)",
    )
    args = parser.parse_args(argv)
    try:
        if args.compare:
            first, second = (Path(p) for p in args.compare)
            for folder in (first, second):
                if not (folder / "data").is_dir():
                    raise CulturespaError(f"{folder} is not a loop run folder (no data/)")
            verdicts = compare_runs(first, second)
            for rel, verdict in verdicts:
                print(f"{verdict:<45} {rel}")
            return 0 if all(v.startswith("identical") for _, v in verdicts) else 1
        if not args.config:
            raise CulturespaError(
                "--config is required (e.g. recipes/loop/smollm2-135m-instruct.yaml)"
            )
        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise CulturespaError(f"--stages {args.stages!r}: stages are {', '.join(STAGES)}")
        config = load_loop_config(
            args.config,
            {"output_dir": args.output_dir, "per_topic": args.per_topic, "eval_limit": args.limit,
             "seed": args.seed},
        )  # fmt: skip
        from culturespa.atomic import check_output_dir

        check_output_dir(config.out, "output_dir")
        loop = Loop(config, dry_run=args.dry_run)
        derived_data_config(config, loop.layout)  # checked before anything is written
        check_manifest(loop.layout, config, write=not args.dry_run)
        start = time.perf_counter()
        loop.run_stages(stages)
    except CulturespaError as exc:
        return exit_with_error(parser.prog, str(exc))
    except KeyboardInterrupt:
        print(
            "recipes/loop.py: interrupted; run the same command again to continue", file=sys.stderr
        )
        return 130
    if not args.dry_run:
        print(f"\nloop done in {minutes(time.perf_counter() - start)} ({config.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
