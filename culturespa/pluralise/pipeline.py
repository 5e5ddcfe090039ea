"""The whole flow and its stages, each resumable: generate, filter, answer, collect, build.

Run folder layout (`output_dir`):

    manifest.json                    settings that fix the results; a rerun must match them
    questions/generation.log.jsonl   stage 1 log (one unit per round)   -> generated.jsonl
    questions/filtered.jsonl         stage 2 output, filter_report.{json,md}
    answers/answers.log.jsonl        stage 3 log (one unit per chunk)   -> answers.jsonl
    collected/collected.jsonl        stage 4 output, report.{json,md}
    sft/                             stage 5 training sets and dataset card
    timings.json                     wall time per stage (not part of the results)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from culturespa.atomic import (
    check_output_dir,
    remove_leftovers,
    write_json_atomic,
    write_text_atomic,
)
from culturespa.errors import CulturespaError
from culturespa.inference.backends import LOCAL_BACKENDS, Backend, build_backend
from culturespa.inference.models import check_device_present, check_remote_code, resolve_model
from culturespa.inference.replicas import InProcess, Replicas
from culturespa.output_folder import check_ours, claim_folder
from culturespa.pluralise.build import check_build_targets
from culturespa.pluralise.config import DataConfig, use_config_survey
from culturespa.pluralise.store import read_jsonl, write_jsonl_atomic
from culturespa.run_files import (
    ANSWERS_FILE,
    ANSWERS_FOLDER,
    COLLECTED_FILE,
    COLLECTED_FOLDER,
    FILTERED_QUESTIONS,
    GENERATED_QUESTIONS,
    QUESTIONS_FOLDER,
    SFT_FOLDER,
)

logger = logging.getLogger(__name__)

ANSWER_ORDER = "by_system_prompt"
"""How the answer stage orders (and so chunks) its prompts (`answer.plan_jobs`); recorded in the
manifest so that a run folder from a version that ordered them per question is not resumed."""

STAGES: tuple[str, ...] = ("generate", "filter", "answer", "collect", "build")
RUN_RECORD = "manifest.json"
"""The file that makes a folder a data-builder run folder: a non-empty folder without it is not
culturespa's and is refused."""


def check_stage(stage: str) -> None:
    """A known stage."""
    if stage not in STAGES:
        raise CulturespaError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")


def answer_settings(answer) -> dict:
    """The answer section as the manifest records it: `debias` only when not `none`, so that a
    folder from before the key existed (the paper's rule) still resumes."""
    settings = dict(vars(answer))
    if settings.get("debias") == "none":
        del settings["debias"]
    return settings


class Run:
    """One pipeline run: the config, the model (built when a stage first needs it: a backend in
    this process, or replicas on Ray), and stage bookkeeping."""

    def __init__(
        self,
        config: DataConfig,
        backend: Backend | Replicas | None = None,
    ) -> None:
        self.config = config
        self._given = backend is not None
        self._replicas: Replicas | None = None
        if isinstance(backend, Replicas):
            self._replicas, backend = backend, None
        self._backend = backend
        self.out = config.out
        # Everything that can be checked is checked before the first file is written.
        check_output_dir(self.out, "output_dir")
        check_build_targets(self.out / SFT_FOLDER, config.build.variants, config.countries)
        if config.model.backend in ("hf", "vllm"):
            check_remote_code(config.model.name, False, "config: model.name")
        if backend is None and config.ray is None and config.model.backend == "hf":
            # The model loads in this process (on Ray, where each replica runs: checked there).
            check_device_present(config.model.device, "config: model.device")
        if config.questions_file:
            from culturespa.pluralise.questions import read_raw_questions

            read_raw_questions(config.questions_path)
        if config.ray is not None:
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                raise CulturespaError(
                    "config: the ray section needs Ray: pip install 'culturespa[ray]' "
                    "(or remove the section to run in this process)"
                )
        shard_logs = sorted(p.name for p in self.out.glob("*/*.shard-*.log.jsonl"))
        if shard_logs:
            raise CulturespaError(
                f"{self.out} holds logs of --shard runs ({shard_logs[0]}), which culturespa no "
                "longer merges: use a new output_dir (the ray section spreads a stage over replicas)"
            )
        check_ours(self.out, "output_dir", record=RUN_RECORD, hint="")
        self._check_manifest()
        if self.out.exists():  # a killed run's half-written temporary files
            remove_leftovers(self.out)

    # -- bookkeeping --------------------------------------------------------------------------

    def _manifest(self) -> dict:
        """Everything that fixes the results; a run folder made with other values is refused."""
        c = self.config
        return {
            "model": c.model.name,
            "backend": c.model.backend,
            "seed": c.seed,
            "countries": c.countries,
            "topics": c.topics,
            "questions_file": c.questions_file,
            "questions_limit_per_topic": c.questions_limit_per_topic,
            "generate": vars(c.generate),
            "filter": vars(c.filter),
            "answer": answer_settings(c.answer),
            "answer_order": ANSWER_ORDER,
            **({"survey": str(Path(c.survey).resolve())} if c.survey else {}),
        }

    def _holds_results(self) -> bool:
        """Whether the run folder holds any file besides the manifest."""
        manifest = self.out / "manifest.json"
        return any(p.is_file() and p != manifest for p in self.out.rglob("*"))

    def _check_manifest(self) -> None:
        path = self.out / "manifest.json"
        current = json.loads(json.dumps(self._manifest()))
        if path.exists():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CulturespaError(f"{path}: not a readable manifest ({exc})") from None
            saved = saved if isinstance(saved, dict) else {}
            changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
            if changed and self._holds_results():
                raise CulturespaError(
                    f"{self.out} holds a run made with other settings ({', '.join(changed)}); "
                    "use another output_dir or delete that folder"
                )
            if not changed:
                return
            logger.info("%s: no results yet, so the manifest takes the new settings", self.out)
        write_json_atomic(path, current)

    @property
    def backend(self) -> Backend:
        """The model in this process (built on first use)."""
        if self._backend is None:
            m = self.config.model
            logger.info("loading %s with backend %s", m.name, m.backend)
            # The name is resolved here, where the config's model becomes weights to load.
            weights = resolve_model(m.name) if m.backend in LOCAL_BACKENDS else m.name
            self._backend = build_backend(m.backend, weights, **m.backend_options())
        return self._backend

    @property
    def replicas(self) -> Replicas:
        """Where the model stages run: this process, or the replicas of the `ray` section."""
        if self._replicas is None:
            if self.config.ray is None or self._given:
                self._replicas = InProcess(self.backend)
            else:
                from culturespa.pluralise.distributed import ray_replicas

                self._replicas = ray_replicas(self.config)
        return self._replicas

    def _timed(self, stage: str, func: Callable[[], dict]) -> dict:
        start = time.perf_counter()
        summary = func()
        seconds = round(time.perf_counter() - start, 2)
        summary["seconds"] = seconds
        path = self.out / "timings.json"
        timings = json.loads(path.read_text()) if path.exists() else {}
        timings[stage] = seconds
        write_json_atomic(path, timings)
        return summary

    # -- stages -------------------------------------------------------------------------------

    def generate(self) -> dict:
        """Stage 1 (skipped when questions_file is set)."""
        if self.config.questions_file:
            return {"skipped": f"questions come from {self.config.questions_file}"}
        from culturespa.pluralise.generate import generate_questions

        return self._timed(
            "generate",
            lambda: generate_questions(
                self.replicas,
                self.out / QUESTIONS_FOLDER,
                self.config.topics,
                self.config.generate,
                seed=self.config.seed,
            ),
        )

    def raw_questions(self) -> list[dict]:
        from culturespa.pluralise.questions import read_raw_questions

        c = self.config
        if c.questions_file:
            rows = [r for r in read_raw_questions(c.questions_path) if r["topic"] in c.topics]
            if c.questions_limit_per_topic is not None:
                taken: dict[str, int] = {}
                limited = []
                for r in rows:
                    if taken.get(r["topic"], 0) < c.questions_limit_per_topic:
                        taken[r["topic"]] = taken.get(r["topic"], 0) + 1
                        limited.append(r)
                rows = limited
            return rows
        path = self.out / QUESTIONS_FOLDER / GENERATED_QUESTIONS
        if not path.exists():
            raise CulturespaError(f"{path} is missing: run the generate stage first")
        return read_raw_questions(path)

    def filter(self) -> dict:
        """Stage 2."""
        from culturespa.pluralise.filter import filter_questions, stratified_subset

        def run() -> dict:
            f = self.config.filter
            kept, report = filter_questions(self.raw_questions(), f.min_options, f.max_options)
            if f.per_topic is not None:
                kept, report.subset = stratified_subset(kept, f.per_topic, self.config.seed)
            folder = self.out / QUESTIONS_FOLDER
            write_jsonl_atomic(folder / FILTERED_QUESTIONS, (q.as_dict() for q in kept))
            write_json_atomic(folder / "filter_report.json", report.as_dict())
            write_text_atomic(folder / "filter_report.md", report.markdown())
            summary = {"input": report.total, "kept": report.kept, "dropped": dict(report.dropped)}
            if report.subset:
                summary["subset"] = report.subset["questions"]
            return summary

        return self._timed("filter", run)

    def questions(self):
        from culturespa.pluralise.questions import Question

        path = self.out / QUESTIONS_FOLDER / FILTERED_QUESTIONS
        if not path.exists():
            raise CulturespaError(f"{path} is missing: run the filter stage first")
        return [Question.from_dict(r) for r in read_jsonl(path)]

    def answer(self) -> dict:
        """Stage 3."""
        from culturespa.pluralise.answer import run_answer_stage

        return self._timed(
            "answer",
            lambda: run_answer_stage(
                self.replicas,
                self.questions(),
                self.config.countries,
                self.out / ANSWERS_FOLDER,
                self.config.answer,
                seed=self.config.seed,
            ),
        )

    def collect(self) -> dict:
        """Stage 4."""
        from culturespa.pluralise.collect import collect_differences, report_markdown

        def run() -> dict:
            path = self.out / ANSWERS_FOLDER / ANSWERS_FILE
            if not path.exists():
                raise CulturespaError(f"{path} is missing: finish the answer stage first")
            rows, report = collect_differences(
                self.questions(),
                read_jsonl(path),
                self.config.countries,
                self.config.answer.cross_culture_thinking,
            )
            folder = self.out / COLLECTED_FOLDER
            write_jsonl_atomic(folder / COLLECTED_FILE, rows)
            write_json_atomic(folder / "report.json", report)
            write_text_atomic(folder / "report.md", report_markdown(report))
            return {variant: parts["kept"] for variant, parts in report.items()}

        return self._timed("collect", run)

    def build(self) -> dict:
        """Stage 5."""
        from culturespa.pluralise.build import build_training_sets

        def run() -> dict:
            path = self.out / COLLECTED_FOLDER / COLLECTED_FILE
            if not path.exists():
                raise CulturespaError(f"{path} is missing: run the collect stage first")
            questions = self.questions()
            c = self.config
            info = {
                "model": c.model.name,
                "backend": c.model.backend,
                "method": c.answer.method,
                **({"debias": c.answer.debias} if c.answer.debias != "none" else {}),
                "seed": c.seed,
                "n_questions": len(questions),
                "questions_source": c.questions_file or "generated by the source model",
            }
            return build_training_sets(
                questions,
                list(read_jsonl(path)),
                c.countries,
                self.out / SFT_FOLDER,
                c.build.variants,
                info,
            )

        return self._timed("build", run)

    def run_stage(self, stage: str) -> dict:
        check_stage(stage)
        return getattr(self, stage)()

    def close(self) -> None:
        """Free what this run built (a given backend or replicas stay with their owner)."""
        if self._given:
            return
        if self._replicas is not None:
            self._replicas.close()
        if self._backend is not None:
            self._backend.close()


def run_pipeline(
    config: DataConfig,
    backend: Backend | Replicas | None = None,
    stages: tuple[str, ...] = STAGES,
    report: Callable[[str, dict], None] | None = None,
) -> dict[str, dict]:
    """Run stages in order (each resumes from its log); return each stage's summary.

    `culturespa build-data` calls this; `report` sees each stage's summary as it finishes.
    Without `backend` the model is built from the config, in this process or, with a `ray`
    section, as replicas on Ray."""
    for stage in stages:
        check_stage(stage)
    use_config_survey(config.survey)  # the personas and cross-culture prompts of its survey
    # One writer per run folder; whose folder it is, `Run` checks (after the more telling checks).
    with claim_folder(config.out, "output_dir", overwrite=True):
        run = Run(config, backend)
        summaries = {}
        try:
            for stage in stages:
                summaries[stage] = run.run_stage(stage)
                if report:
                    report(stage, summaries[stage])
        finally:
            run.close()
    return summaries
