"""The main job: evaluate a model (by default the embedded SmolLM2) per country and report it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from culturespa.errors import CulturespaError
from culturespa.output_folder import claim_folder
from culturespa.prompts.task_names import task_name
from culturespa.prompts.templates import TEMPLATES, get_template
from culturespa.survey.countries import DEMO_COUNTRIES, parse_countries

logger = logging.getLogger(__name__)

DEMO_TEMPLATES: tuple[str, ...] = ("culture_unaware", "culture_aware")
DEMO_WAYS: tuple[str, ...] = ("loglik",)
"""Log-likelihood only by default: deterministic, one scoring pass per item, fast on a CPU."""


@dataclass
class DemoResult:
    """What the demo produced and how long each stage took (seconds)."""

    output: Path
    report: object
    timings: dict[str, float] = field(default_factory=dict)


def demo_tasks(
    templates: tuple[str, ...], countries: tuple[str, ...], ways: tuple[str, ...] = DEMO_WAYS
) -> list[str]:
    """Task names, e.g. wvs_culture_aware_usa, for every way of asking, template and country."""
    return [task_name(w, t, cc) for w in ways for t in templates for cc in countries]


def parse_templates(spec: str | None) -> tuple[str, ...]:
    """'culture_unaware,culture_aware' or 'all' -> template names (validated)."""
    if not spec:
        return DEMO_TEMPLATES
    if spec.strip() == "all":
        return tuple(TEMPLATES)
    names = tuple(dict.fromkeys(get_template(n.strip()).name for n in spec.split(",") if n.strip()))
    if not names:
        raise CulturespaError("no template given; e.g. --templates culture_unaware,culture_aware")
    return names


def run_demo(
    output: str | Path,
    model: str = "default",
    templates: tuple[str, ...] = DEMO_TEMPLATES,
    countries: tuple[str, ...] = DEMO_COUNTRIES,
    batch_size: int | str = 16,
    limit: int | None = None,
    seed: int = 42,
    plot: bool = True,
    backend: str = "culturespa-hf",
    ways: tuple[str, ...] = DEMO_WAYS,
    overwrite: bool = False,
    survey: str | Path | None = None,
) -> DemoResult:
    """Fetch the model, run the lm-eval tasks (every way of asking in `ways`) with sample logs,
    write the report; time each stage. The output folder is claimed first
    (`culturespa.output_folder`): `overwrite` writes into a folder of other files, beside them.
    `survey`: a survey folder (`culturespa survey build`) whose tasks are run and reported; it
    becomes the survey in use (`use_survey_folder`), so `countries` are of it."""
    from culturespa.evaluation.run import run_evaluation
    from culturespa.evaluation.survey_tasks import survey_task_folder
    from culturespa.inference.models import resolve_model
    from culturespa.report.tables import WAY_SUFFIXES
    from culturespa.report.writer import build_report

    out = Path(output)
    if survey is not None:
        from culturespa.survey.folder import use_survey_folder

        use_survey_folder(survey)  # checked before the output folder is claimed
    with claim_folder(out, "output folder", overwrite, kind="report"):
        result = DemoResult(output=out, report=None)
        countries = parse_countries(list(countries))
        start = time.perf_counter()
        model_path = resolve_model(model)
        result.timings["model"] = time.perf_counter() - start
        tasks = demo_tasks(templates, countries, ways)
        logger.info("%d tasks on %s: %s", len(tasks), model_path, ", ".join(tasks))
        before = set((out / "lm_eval").rglob("results_*.json"))
        start = time.perf_counter()
        try:
            with survey_task_folder(survey) as task_folder:
                run_evaluation(
                    model=model_path,
                    tasks=tasks,
                    backend=backend,
                    apply_chat_template=True,
                    batch_size=batch_size,
                    seed=seed,
                    limit=limit,
                    output_path=out / "lm_eval",
                    overwrite=overwrite,
                    log_samples=True,
                    task_folder=task_folder,
                )
        except OSError as exc:  # transformers: missing folder, unknown id, no network
            raise CulturespaError(
                f"could not load model {model!r} ({exc}); use --model default (the built-in SmolLM2), "
                "a local checkpoint folder, or a Hugging Face id with network access"
            ) from exc
        result.timings["evaluation"] = time.perf_counter() - start
        start = time.perf_counter()
        compare = None
        if "culture_unaware" in templates and "culture_aware" in templates:
            suffix = WAY_SUFFIXES[ways[0]]  # the first way's rows: their methods end with this
            compare = (
                TEMPLATES["culture_unaware"].label + suffix,
                TEMPLATES["culture_aware"].label + suffix,
            )
        # Only this run's results file: an earlier demo into the same folder must not mix in.
        fresh = sorted(set((out / "lm_eval").rglob("results_*.json")) - before)
        if not fresh:
            raise CulturespaError(f"lm-eval wrote no results file under {out / 'lm_eval'}")
        result.report = build_report(
            fresh, out, compare=compare, seed=seed, plot=plot, overwrite=overwrite
        )
        result.timings["report"] = time.perf_counter() - start
        return result
