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
    script_command,
)
from culturespa.loop.config import LoopConfig, derived_data_config
from culturespa.loop.estimates import (
    EXPECTED_PAIR_SHARE,
    IDLE_SECONDS,
    answer_prompts,
    eval_items,
)
from culturespa.loop.layout import STAGES, Layout
from culturespa.loop.summary import write_report


def announce(number: int, total: int, title: str, work: str, estimate: float | None) -> None:
    line = f"\n== [{number}/{total}] {title}: {work}"
    if estimate is not None:
        line += (
            f"; estimate {minutes(estimate)} on 2 idle cores (load average now {load_average()})"
        )
    print(line, flush=True)


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
        return culturespa_command(
            "train", "--config", recipe, "--model_name_or_path", self.config.model,
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
        args += ["--survey", c.survey] if c.survey else []
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
