"""The loop's four stages, each a command of its own (or several), each skipped when its outputs
are complete, so the same command run again after a kill continues where it stopped."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from culturespa.loop.commands import (
    Timings,
    Usage,
    culturespa_command,
    load_average,
    minutes,
    run_command,
)
from culturespa.loop.config import LoopConfig, derived_data_config
from culturespa.loop.estimates import (
    EXPECTED_PAIR_SHARE,
    IDLE_SECONDS,
    WAY_COST,
    answer_prompts,
    eval_items,
    expected_questions,
    way_of_group,
)
from culturespa.loop.layout import STAGES, TINY_MODEL, Layout
from culturespa.loop.summary import write_report
from culturespa.output_folder import MANIFEST_NAME
from culturespa.run_files import BASE_MODEL_RUN, JOINT, SFT_FOLDER, SPECIFIC

WHAT_IS_EVALUATED = {"base": "base", "joint": "culture-joint", "specific": "culture-specific"}


def announce(number: int, total: int, title: str, work: str, estimate: float | None) -> None:
    line = f"\n== [{number}/{total}] {title}: {work}"
    if estimate is not None:
        line += (
            f"; estimate {minutes(estimate)} on 2 idle cores (load average now {load_average()})"
        )
    print(line, flush=True)


class Loop:
    """The stages of one loop config on its run folder; `overwrite`: the evaluations may write
    beside files culturespa did not make (the demo's --overwrite)."""

    def __init__(self, config: LoopConfig, dry_run: bool = False, overwrite: bool = False) -> None:
        self.config = config
        self.layout = Layout(config.out, config.base_eval_folder, config.report_folder)
        self.model = self.layout.model_path(config.model)
        self.timings = Timings(self.layout.timings)
        self.dry_run = dry_run
        self.overwrite = overwrite
        self.skipped: list[str] = []
        self.report_built = None  # the report of the report stage (`culturespa.report.writer`)

    def run(self, unit: str, argv: list[str]) -> None:
        if self.dry_run:
            print("would run: " + " ".join(argv))
            return
        usage = run_command(unit, argv, in_process=self.config.in_process)
        self.timings.add(unit, usage)
        print(
            f"-- {unit}: {minutes(usage.seconds)} wall, {minutes(usage.cpu_seconds)} CPU, "
            f"peak {usage.peak_rss_mb:.0f} MB",
            flush=True,
        )

    def skip(self, unit: str, why: str) -> None:
        self.skipped.append(unit)
        print(f"-- {unit}: skipped ({why})", flush=True)

    # 0. the tiny model of `model: tiny`

    def build_tiny_model(self) -> None:
        """`model: tiny`: the tiny random test model, built once into the run folder."""
        folder = self.layout.tiny_model
        if self.config.model != TINY_MODEL or (folder / "config.json").is_file():
            return
        if self.dry_run:
            print(f"would build the tiny random model -> {folder}")
            return
        from culturespa.inference.tiny_model import build_tiny_model

        start = time.perf_counter()
        build_tiny_model(folder)
        self.timings.add("model", Usage(seconds=time.perf_counter() - start))
        print(f"-- model: the tiny random model -> {folder}", flush=True)

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
        """`culturespa train` into a folder of the loop's: the loop claimed its run folder (it
        adopts none without its loop.json), so `--overwrite` lets the training folders that
        older versions made, without a manifest, be trained on."""
        return culturespa_command(
            "train", "--config", recipe, "--model_name_or_path", self.model,
            "--dataset_path", str(dataset), "--output_dir", str(output),
            "--seed", str(self.config.seed), "--overwrite", *extra,
        )  # fmt: skip

    def _fresh(self, folder: Path) -> None:
        """An adapter folder without its last file is a killed run's: it is trained again, from
        an empty folder when culturespa's training made it (its manifest says so); in a folder
        of other files (a loop adopted with --overwrite) training writes only its own names."""
        if (folder / MANIFEST_NAME).is_file() and not self.dry_run:
            shutil.rmtree(folder)

    def _estimated_rows(self, country: str | None = None) -> int:
        if self.layout.data_done():
            return self.layout.training_rows(country)
        questions = expected_questions(self.config, derived_data_config(self.config, self.layout))
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
        if "joint" in c.models:
            self._train_joint()
        if "specific" in c.models:
            self._train_specific()
            self._write_index()

    def _train_joint(self) -> None:
        c, lay = self.config, self.layout
        if lay.adapter_done(lay.joint):
            return self.skip("train/culture_joint", "adapter complete")
        self._fresh(lay.joint)
        self.run(
            "train/culture_joint",
            self._sft(c.joint_recipe, lay.data / SFT_FOLDER / JOINT, lay.joint),
        )

    def _train_specific(self) -> None:
        c, lay = self.config, self.layout
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
                        c.specific_recipe, lay.data / SFT_FOLDER / SPECIFIC, lay.specific,
                        "--countries", cc,
                    ),
                )  # fmt: skip

    def _write_index(self) -> None:
        """`adapters.json` of every complete culture-specific adapter: each per-country run of
        `culturespa train` indexes its own country only."""
        from culturespa.inference.models import resolve_model
        from culturespa.training.outputs import write_adapter_index

        c, lay = self.config, self.layout
        done = {
            cc: str(lay.specific / cc) for cc in c.countries if lay.adapter_done(lay.specific / cc)
        }
        if done and not self.dry_run:
            write_adapter_index(lay.specific, done, resolve_model(self.model))

    # 3. evaluation

    def _eval_args(self) -> list[str]:
        c = self.config
        args = [
            "--backend", c.eval_backend, "--batch-size", str(c.eval_batch_size),
            "--log-samples", "--seed", str(c.seed),
        ]  # fmt: skip
        args += ["--device", c.device] if c.device else []
        args += ["--survey", c.survey] if c.survey else []
        args += ["--overwrite"] if self.overwrite else []
        return args + (["--limit", str(c.eval_limit)] if c.eval_limit else [])

    def _evaluate_once(self, unit: str, folder: Path, *model_args: str) -> None:
        """One `culturespa eval` into `folder`, skipped when it holds a results file."""
        if self.layout.results_done(folder):
            return self.skip(unit, f"{folder} holds a results file")
        self.run(
            unit,
            culturespa_command(
                "eval", *model_args, *self._eval_args(), "--output-path", str(folder)
            ),
        )

    def evaluate(self, number: int, total: int) -> None:
        from culturespa.prompts.task_names import task_of_group

        c, lay = self.config, self.layout
        groups = c.eval_groups
        tasks = ",".join(task_of_group(g, cc) for g in groups for cc in c.countries)
        items = eval_items(c) * len(c.countries) * len(groups)
        if "specific" in c.models:
            self._write_index()
        names = [WHAT_IS_EVALUATED[m] for m in c.models]
        models = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        announce(
            number, total, "evaluate",
            f"{models} on {', '.join(groups)} x {len(c.countries)} countries, {items} items per "
            f"model ({c.eval_backend})",
            self.estimate("eval"),
        )  # fmt: skip
        model = ("--model", self.model)
        if "base" in c.models:
            self._evaluate_once(
                "eval/base", lay.eval_folder(BASE_MODEL_RUN), *model, "--tasks", tasks
            )
        if "joint" in c.models:
            self._evaluate_once(
                "eval/culture_joint", lay.eval_folder(JOINT),
                *model, "--peft", str(lay.joint), "--tasks", tasks,
            )  # fmt: skip
        if "specific" not in c.models:
            return
        for cc in c.countries:
            if not (lay.adapter_done(lay.specific / cc) or self.dry_run):
                continue
            self._evaluate_once(
                f"eval/culture_specific/{cc}", lay.eval_folder(SPECIFIC, cc),
                "--adapters", str(lay.specific), "--countries", cc, "--tasks", ",".join(groups),
                *model,
            )  # fmt: skip

    # 4. report

    def report(self, number: int, total: int) -> None:
        from culturespa.loop.summary import build_loop_report

        announce(
            number, total, "report", f"tables, plots and summary -> {self.layout.report}",
            self.estimate("report"),
        )  # fmt: skip
        if self.dry_run:
            print("would write the report" + (
                ", the loss curves and summary.md" if self.config.summary == "loop" else ""))  # fmt: skip
            return
        start = time.perf_counter()
        self.report_built = build_loop_report(self.config, self.layout, self.overwrite)
        if self.config.summary == "loop":
            text = write_report(self.config, self.layout, self.report_built, self.timings)
        self.timings.add("report", Usage(seconds=time.perf_counter() - start))
        if self.config.summary == "loop":
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
            return self._train_estimate()
        if stage == "eval":
            return self._eval_estimate()
        return 10.0

    def _train_estimate(self) -> float:
        c, lay = self.config, self.layout
        todo = []
        if "joint" in c.models and not lay.adapter_done(lay.joint):
            todo.append(self._estimated_rows())
        for cc in c.countries if "specific" in c.models else ():
            rows = self._estimated_rows(cc)
            if rows and not lay.adapter_done(lay.specific / cc):
                todo.append(rows)
        return sum(todo) * IDLE_SECONDS["train_example"] + len(todo) * IDLE_SECONDS["process_start"]

    def _eval_estimate(self) -> float:
        c, lay = self.config, self.layout
        start = IDLE_SECONDS["process_start"]
        per_group = eval_items(c) * len(c.countries)
        items = sum(per_group * WAY_COST.get(way_of_group(g), 1.0) for g in c.eval_groups)
        seconds = 0.0
        if "base" in c.models and not lay.results_done(lay.eval_folder(BASE_MODEL_RUN)):
            seconds += items * IDLE_SECONDS["eval_item"] + start
        if "joint" in c.models and not lay.results_done(lay.eval_folder(JOINT)):
            seconds += items * IDLE_SECONDS["eval_item_adapter"] + start
        for cc in c.countries if "specific" in c.models else ():
            if not lay.results_done(lay.eval_folder(SPECIFIC, cc)):
                seconds += items / len(c.countries) * IDLE_SECONDS["eval_item_adapter"] + start
        return seconds

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
        self.build_tiny_model()
        for number, stage in enumerate(selected, start=1):
            steps[stage](number, len(selected))
