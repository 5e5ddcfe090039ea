"""Run the WVS lm-eval tasks: one lm-eval run per seed, results and sample logs written aside."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturespa.atomic import check_output_dir
from culturespa.errors import CulturespaError
from culturespa.evaluation.dedup import DeduplicatingLM
from culturespa.evaluation.intervals import alignment_intervals
from culturespa.evaluation.request_cache import check_request_cache, open_request_cache
from culturespa.evaluation.tasks import drop_covered, expand_tasks, sampled_tasks, task_manager
from culturespa.inference.model_args import WEIGHTS_BACKENDS, build_model_args, check_model_source
from culturespa.inference.models import (
    check_device,
    check_device_present,
    pick_device,
    resolve_model,
)
from culturespa.output_folder import claim_folder, write_errors
from culturespa.run_files import RESULTS_GLOB, RESULTS_PREFIX, SAMPLES_GLOB, samples_file_name

logger = logging.getLogger(__name__)

PAPER_SEEDS: tuple[int, ...] = (42, 41, 40)
"""The paper samples every reply three times, with these seeds, and reports the mean."""


def save_results(
    results: dict,
    samples: dict | None,
    output_path: str | Path,
    backend: str,
    lm: Any,
    apply_chat_template: bool,
) -> list[Path]:
    """Write lm-eval's results JSON (and sample logs) under output_path/<model name>/.

    lm-eval's tracker writes into a staging folder inside the claimed output folder
    (`culturespa.output_folder`; it only warns when it cannot write, so every file is checked
    whole and flushed to disk); the files move into place once all are there, the results file
    last, so a results file never lies next to half of its sample logs. Returns the paths written.
    """
    from lm_eval.loggers import EvaluationTracker

    expected_lines = {task: len(samples[task]) for task in results["configs"]} if samples else {}
    with (
        claim_folder(output_path, "output path", kind="eval") as folder,
        folder.staging() as stage,
        write_errors(output_path),
    ):
        tracker = EvaluationTracker(output_path=str(stage))
        tracker.general_config_tracker.log_experiment_args(
            model_source=backend,
            model_args=results["config"]["model_args"],
            system_instruction=None,
            chat_template=lm.chat_template(apply_chat_template) if apply_chat_template else None,
            fewshot_as_multiturn=False,
        )
        _name_outputs_after_the_model(tracker, results["config"]["model_args"])
        tracker.save_results_aggregated(results=results, samples=samples)
        if samples is not None:
            for task in results["configs"]:
                tracker.save_results_samples(task_name=task, samples=samples[task])
        written = list(stage.rglob(RESULTS_GLOB))
        if samples is not None:
            written += list(stage.rglob(SAMPLES_GLOB))
        expected = 1 + (len(results["configs"]) if samples is not None else 0)
        if len(written) < expected:
            raise CulturespaError(
                f"lm-eval wrote {len(written)} of {expected} result files (see its warning "
                f"above); nothing was written to {output_path}"
            )
        logs = {samples_file_name(t, tracker.date_id): n for t, n in expected_lines.items()}
        check_written_whole(stage, logs)
        return folder.commit(stage, replace=False, last=(RESULTS_GLOB,))


def check_written_whole(stage: Path, expected_lines: Mapping[str, int]) -> None:
    """Every staged file is whole: results files parse, each sample log (by file name in
    `expected_lines`) holds one line per sample (lm-eval's tracker only warns when a write fails
    half-way). The commit then flushes them to disk."""
    import json

    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name.startswith(RESULTS_PREFIX):
            try:
                json.loads(data)
            except ValueError:
                raise CulturespaError(
                    f"lm-eval wrote {path.name} only in part (see its warning above); nothing "
                    "was written"
                ) from None
        lines = data.count(b"\n")
        if path.name in expected_lines and lines != expected_lines[path.name]:
            raise CulturespaError(
                f"lm-eval wrote {lines} of {expected_lines[path.name]} lines of "
                f"{path.name} (see its warning above); nothing was written"
            )


def _name_outputs_after_the_model(tracker: Any, model_args: Mapping[str, Any]) -> None:
    """The default model's outputs go to a folder named after it, not after the cache path."""
    from lm_eval.utils import sanitize_model_name

    from culturespa.inference.default_model import HUB_ID, is_default_checkpoint

    pretrained = model_args.get("pretrained")
    if not model_args.get("peft") and pretrained and is_default_checkpoint(str(pretrained)):
        config = tracker.general_config_tracker
        config.model_name = HUB_ID
        config.model_name_sanitized = sanitize_model_name(HUB_ID)


def check_model_folder(output_path: str | Path, model_args: Mapping[str, Any]) -> None:
    """The folder lm-eval's tracker writes into, output_path/<model name>, is not a file: a
    collision found before the model loads, not after the evaluation."""
    from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker
    from lm_eval.utils import sanitize_model_name

    from culturespa.inference.default_model import HUB_ID, is_default_checkpoint

    name = GeneralConfigTracker._get_model_name(dict(model_args))
    pretrained = model_args.get("pretrained")
    if not model_args.get("peft") and pretrained and is_default_checkpoint(str(pretrained)):
        name = HUB_ID  # as `_name_outputs_after_the_model` names it
    target = Path(output_path) / sanitize_model_name(name or "")
    if name and target.exists() and not target.is_dir():
        raise CulturespaError(
            f"output path {output_path}: {target} is a file, where the results folder of the "
            "model goes; move it or choose another --output-path"
        )


@dataclass(frozen=True)
class EvalOptions:
    """How `culturespa eval` runs lm-eval (the defaults are its own), the same for every seed.

    `output_path`: where results JSON (and with `log_samples` the sample logs) are written;
    `overwrite`: write into a non-empty folder culturespa did not make (its files stay);
    `use_cache`: the name of an lm-eval request cache (`culturespa.evaluation.request_cache`);
    `gen_kwargs`: lm-eval's generation arguments; `deduplicate`: send identical requests of
    different tasks once; `n_resamples`: bootstrap draws of each task's alignment interval;
    `task_folder`: a folder from `culturespa tasks build` instead of the shipped tasks.
    """

    backend: str = "hf"
    model_args: Mapping[str, Any] | str | None = None
    peft: str | None = None
    apply_chat_template: bool = True
    batch_size: int | str = 1
    limit: int | float | None = None
    output_path: str | Path | None = None
    overwrite: bool = False
    log_samples: bool = False
    use_cache: str | None = None
    device: str | None = None
    gen_kwargs: Mapping[str, Any] | None = None
    deduplicate: bool = True
    n_resamples: int = 1000
    task_folder: str | Path | None = None


def run_evaluation(
    model: str, tasks: str | Sequence[str], seed: int = 42, options: EvalOptions = EvalOptions()
) -> dict:
    """Evaluate a model on WVS tasks (names or globs) with lm-eval; return lm-eval's results dict.

    Adds `culturespa`: bootstrap intervals of each task's alignment and request counts. With
    `options.output_path` the results JSON (and with `log_samples` the sample logs) are written
    there.
    """
    return run_evaluations(model, tasks, (seed,), options)[0]


def run_evaluations(
    model: str,
    tasks: str | Sequence[str],
    seeds: Sequence[int] = (42,),
    options: EvalOptions = EvalOptions(),
) -> list[dict[str, Any]]:
    """`evaluate_seeds` with the output folder claimed (`culturespa.output_folder`) before the
    model loads and held to the end: one writer, never a folder of other files unless
    `options.overwrite`."""
    if options.output_path is None:
        return evaluate_seeds(model, tasks, seeds, options)
    with claim_folder(options.output_path, "output path", options.overwrite, kind="eval"):
        return evaluate_seeds(model, tasks, seeds, options)


def evaluate_seeds(
    model: str,
    tasks: str | Sequence[str],
    seeds: Sequence[int] = (42,),
    options: EvalOptions = EvalOptions(),
) -> list[dict[str, Any]]:
    """One lm-eval run per seed (the model loaded once); one results dict (and file) per run.

    The first seed runs every selected task; later seeds rerun only the tasks that sample their
    replies (log-likelihood tasks are deterministic: a rerun would only repeat them). `culturespa
    report` averages the runs of one model and template, as the paper does.
    """
    if not seeds:
        raise CulturespaError("no seed given")
    backend, output_path = options.backend, options.output_path
    check_device_present(check_device(options.device, "device"), "device")
    seeds = list(dict.fromkeys(seeds))
    if output_path is not None:
        check_output_dir(output_path, "output path")
    if options.use_cache is not None:
        check_request_cache(options.use_cache)  # a cache file is code: checked before it loads
    manager, names, resampled = _select_tasks(tasks, seeds, options.task_folder)
    first_args = build_model_args(model, backend, options.model_args, options.peft, seeds[0])
    weights = model
    if backend in WEIGHTS_BACKENDS:  # the name resolved once, here (the default model fetched)
        weights = first_args["pretrained"] = resolve_model(model)
    if output_path is not None:
        check_model_folder(output_path, first_args)
    if backend in WEIGHTS_BACKENDS:
        check_model_source(first_args["pretrained"], first_args)
    device = options.device or (pick_device() if backend in WEIGHTS_BACKENDS else None)
    if backend == "culturespa-hf":
        import culturespa.inference.lm_eval_model  # noqa: F401  (registers the backend with lm-eval)
    lm = None
    runs = []
    try:
        for i, seed in enumerate(seeds):
            run_names = names if i == 0 else resampled
            if not run_names:
                break
            args = build_model_args(weights, backend, options.model_args, options.peft, seed)
            # vLLM seeds its engine at start-up: a new seed needs a new engine.
            if lm is None or backend == "vllm":
                _stop_vllm_engine(lm, backend)
                logger.info(
                    "evaluating %s (%s) on %d tasks",
                    args.get("pretrained", model),
                    backend,
                    len(names),
                )
                lm = _load_model(model, backend, args, options.batch_size, device)
            runs.append(_evaluate_once(lm, run_names, manager, args, seed, options, device))
    finally:
        _stop_vllm_engine(lm, backend)
    return runs


def _stop_vllm_engine(lm: Any, backend: str) -> None:
    """Stop lm-eval's vLLM engine before the next seed's starts (two would hold the GPU's memory
    at once) and before Python exits (see `culturespa.inference.vllm_shutdown`)."""
    if backend == "vllm" and lm is not None:
        from culturespa.inference.vllm_shutdown import shutdown_engine

        shutdown_engine(getattr(lm, "model", None))


def _select_tasks(
    tasks: str | Sequence[str], seeds: Sequence[int], task_folder: str | Path | None
) -> tuple[Any, list[str], list[str]]:
    """The task manager, the tasks of the first seed and those later seeds rerun (sampled)."""
    manager = task_manager(folder=task_folder)
    names = drop_covered(expand_tasks(tasks, manager.all_tasks), manager)
    resampled = sampled_tasks(names, manager)
    if len(seeds) > 1 and not resampled:
        logger.warning(
            "none of the selected tasks samples its replies: the seeds after %d are not run",
            seeds[0],
        )
    return manager, names, resampled


def _load_model(model: str, backend: str, args: dict[str, Any], batch_size, device) -> Any:
    """lm-eval's model object; a model that cannot be loaded is a one-line error."""
    from lm_eval.api.registry import get_model

    try:
        return get_model(backend).create_from_arg_obj(
            args, {"batch_size": batch_size, "max_batch_size": None, "device": device}
        )
    except (OSError, ValueError) as exc:  # transformers: unknown id, no network, remote code
        reason = " ".join(str(exc).split())[:300]
        raise CulturespaError(f"cannot load model {model!r}: {reason}") from exc


def _evaluate_once(
    lm: Any,
    names: list[str],
    manager: Any,
    args: dict[str, Any],
    seed: int,
    options: EvalOptions,
    device: str | None,
) -> dict[str, Any]:
    """One lm-eval run of `names` with `seed` (`device`: the one the model was loaded on)."""
    import lm_eval

    wrapped = DeduplicatingLM(lm) if options.deduplicate else lm
    cache = open_request_cache(options.use_cache)
    gen_kwargs = options.gen_kwargs
    results = lm_eval.simple_evaluate(
        model=wrapped,
        tasks=names,
        task_manager=manager,
        batch_size=options.batch_size,
        device=device,
        use_cache=cache.lm_eval_prefix if cache else None,
        limit=options.limit,
        log_samples=True,
        apply_chat_template=options.apply_chat_template,
        gen_kwargs=dict(gen_kwargs) if gen_kwargs else None,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    if cache is not None:
        cache.commit(lm)
    if results is None:  # not rank 0
        return {}
    samples = results.pop("samples", {})
    results["config"]["model"] = options.backend
    results["config"]["model_args"] = args
    results["culturespa"] = {
        "alignment_ci95": alignment_intervals(samples, n_resamples=options.n_resamples, seed=seed),
        "requests": {
            "received": dict(getattr(wrapped, "received", {})),
            "sent": dict(getattr(wrapped, "sent", {})),
        },
    }
    if options.output_path is not None:
        save_results(
            results,
            copy.deepcopy(samples) if options.log_samples else None,  # the tracker edits them
            options.output_path,
            options.backend,
            wrapped,
            options.apply_chat_template,
        )
    if options.log_samples:
        results["samples"] = samples
    return results
