"""Run the WVS lm-eval tasks from Python: model resolution, task globs, deduplication, intervals."""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from culturespa.atomic import check_output_dir, merge_files, staging_dir
from culturespa.errors import CulturespaError
from culturespa.scoring import alignment_from_arrays, bootstrap_interval

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = (
    "hf",
    "vllm",
    "local-completions",
    "local-chat-completions",
    "culturespa-hf",
)
_WEIGHTS_BACKENDS = ("hf", "vllm", "culturespa-hf")
_ADAPTER_ARG = {"hf": "peft", "vllm": "lora_local_path", "culturespa-hf": "peft"}


def task_dir() -> Path:
    """The installed lm-eval task folder (what `--include_path` takes)."""
    from culturespa_tasks import TASK_DIR

    return TASK_DIR


def task_manager(include_defaults: bool = False):
    """An lm-eval TaskManager over our task folder (and lm-eval's own tasks if asked)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(task_dir()), include_defaults=include_defaults)


def expand_tasks(patterns: str | Iterable[str], names: Sequence[str]) -> list[str]:
    """Comma-separated names or globs -> task/group names in `names`, in order, without repeats."""
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    items = [part for item in items for part in item.split(",")]
    selected: list[str] = []
    for raw in items:
        pattern = raw.strip()
        if not pattern:
            continue
        if any(ch in pattern for ch in "*?["):
            matches = sorted(fnmatch.filter(names, pattern))
        else:
            matches = [pattern] if pattern in names else []
        if not matches:
            raise CulturespaError(
                f"no task matches {pattern!r}; `culturespa tasks` lists them, e.g. wvs_culture_aware_usa"
            )
        selected.extend(matches)
    if not selected:
        raise CulturespaError("no task given; e.g. --tasks 'wvs_culture_aware_*'")
    return list(dict.fromkeys(selected))


def group_members(manager: Any, name: str) -> set[str]:
    """The task names a group runs (itself for a plain task), through nested groups."""
    entry = manager.task_index.get(name)
    members = (entry.cfg or {}).get("task") if entry is not None else None
    if not isinstance(members, list):
        return {name}
    found: set[str] = set()
    for member in members:
        if isinstance(member, str):
            found |= group_members(manager, member)
    return found


def drop_covered(names: Sequence[str], manager: Any) -> list[str]:
    """Drop tasks that a selected group already runs; overlapping groups are an error.

    lm-eval refuses a task selected twice (alone and through a group, or through two groups).
    """
    groups = [n for n in names if group_members(manager, n) != {n}]
    covered: dict[str, str] = {}
    for group in groups:
        for task in group_members(manager, group):
            if task in covered:
                raise CulturespaError(
                    f"groups {covered[task]} and {group} both run {task}; select one of them"
                )
            covered[task] = group
    kept = [n for n in names if n in groups or n not in covered]
    if len(kept) < len(names):
        logger.info("dropped %d tasks that the selected groups run", len(names) - len(kept))
    return kept


def resolve_model(model: str) -> str:
    """A model name as the user typed it -> what lm-eval loads (see `resolve_model_path`)."""
    from culturespa.default_model import resolve_model_path

    return resolve_model_path(model)


def parse_model_args(model_args: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """'k=v,k2=v2' or a dict -> dict, values typed as lm-eval types them.

    The one parser of model arguments (`culturespa eval --model-args`, the `model_args` of a
    results file): values go through lm-eval's `handle_arg_string`, so "false" is the boolean
    False, "1" the integer 1, "none" None, and a quoted value stays text. `trust_remote_code`
    must come out a real boolean: the text "false" is truthy and would run the model folder's code.
    """
    if model_args is None:
        return {}
    if isinstance(model_args, Mapping):
        parsed = dict(model_args)
    else:
        from lm_eval.utils import handle_arg_string

        parsed = {}
        for part in model_args.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise CulturespaError(f"model argument {part!r} is not key=value")
            parsed[key.strip()] = handle_arg_string(value)
    trust = parsed.get("trust_remote_code", False)
    if not isinstance(trust, bool):
        raise CulturespaError(f"model argument trust_remote_code={trust!r}: expected true or false")
    return parsed


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def check_model_source(model: str, model_args: Mapping[str, Any]) -> None:
    """A local model folder must exist and hold a checkpoint (config.json); anything that is not
    shaped like a hub id ('name' or 'org/name') counts as a local folder."""
    path = Path(model).expanduser()
    if "gguf_file" in model_args:
        return
    if path.is_dir():
        if not (path / "config.json").is_file():
            what = "is empty" if not any(path.iterdir()) else "holds no config.json"
            raise CulturespaError(f"model folder {model} {what}; expected a model checkpoint")
    elif path.exists():
        raise CulturespaError(f"model {model} is a file; expected a model folder or a hub id")
    elif not _HUB_ID.fullmatch(model):
        raise CulturespaError(f"model folder {model} does not exist")


def build_model_args(
    model: str,
    backend: str,
    model_args: Mapping[str, Any] | str | None = None,
    peft: str | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """lm-eval model arguments for a backend: weights path or API model name, adapter, seed."""
    if backend not in BACKENDS:
        raise CulturespaError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    args: dict[str, Any] = {}
    if backend in _WEIGHTS_BACKENDS:
        args["pretrained"] = resolve_model(model)
    else:
        args["model"] = model
    if peft:
        if backend not in _ADAPTER_ARG:
            raise CulturespaError(
                f"an adapter (--peft) needs weights: use hf or vllm, not {backend}"
            )
        args[_ADAPTER_ARG[backend]] = peft
    if backend == "vllm" and seed is not None:
        args["seed"] = seed
    args.update(parse_model_args(model_args))
    return args


def default_device() -> str:
    """cuda when torch sees a GPU, else cpu."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def deduplicating_lm(lm):
    """Wrap an lm-eval model so identical requests from different tasks run once.

    The culture-unaware prompt does not depend on the country, so `wvs_culture_unaware_*` asks the
    same requests 19 times; this sends each once and gives every task the same answer (for sampled
    generation, one reply scored against every country, as the paper does). Repeats of one request
    (`repeats` > 1) stay separate.
    """
    from lm_eval.api.model import LM, hash_args

    class DeduplicatingLM(LM):
        """Forwards to `inner`, sending each distinct request once; counts what it sends."""

        def __init__(self, inner: LM) -> None:
            super().__init__()
            self.inner = inner
            self.sent: Counter[str] = Counter()
            self.received: Counter[str] = Counter()

        def __getattr__(self, name: str) -> Any:
            if name == "inner":
                raise AttributeError(name)
            return getattr(self.inner, name)

        def _run(self, kind: str, requests: list) -> list:
            seen_objects: Counter[int] = Counter()
            keys = []
            for req in requests:
                keys.append((hash_args(kind, req.args), seen_objects[id(req)]))
                seen_objects[id(req)] += 1
            first: dict[tuple[str, int], int] = {}
            unique = []
            for req, key in zip(requests, keys):
                if key not in first:
                    first[key] = len(unique)
                    unique.append(req)
            self.received[kind] += len(requests)
            self.sent[kind] += len(unique)
            logger.info("%s: %d requests, %d distinct", kind, len(requests), len(unique))
            answers = getattr(self.inner, kind)(unique) if unique else []
            return [answers[first[key]] for key in keys]

        def loglikelihood(self, requests):
            return self._run("loglikelihood", requests)

        def loglikelihood_rolling(self, requests):
            return self._run("loglikelihood_rolling", requests)

        def generate_until(self, requests):
            return self._run("generate_until", requests)

        def apply_chat_template(self, chat_history, add_generation_prompt=True):
            return self.inner.apply_chat_template(chat_history, add_generation_prompt)

        def chat_template(self, chat_template=False):
            return self.inner.chat_template(chat_template)

        def set_cache_hook(self, cache_hook) -> None:
            self.inner.set_cache_hook(cache_hook)

        @property
        def tokenizer_name(self) -> str:
            return self.inner.tokenizer_name

        @property
        def device(self):
            return self.inner.device

        @property
        def rank(self) -> int:
            return self.inner.rank

        @property
        def world_size(self) -> int:
            return self.inner.world_size

        def all_gather(self, tensor):
            return self.inner.all_gather(tensor)

        def gather_object(self, obj, dst=0):
            return self.inner.gather_object(obj, dst)

        def barrier(self) -> None:
            self.inner.barrier()

    return DeduplicatingLM(lm)


def _alignment_of_rows(rows: Sequence[Mapping[str, Any]]) -> float:
    return alignment_from_arrays(
        [r["answer"] for r in rows],
        [r["majority"] for r in rows],
        [r["max_distance"] for r in rows],
    )


def alignment_interval(
    rows: Sequence[Mapping[str, Any]], n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a task's alignment from its logged per-item rows."""
    valid = [r for r in rows if r.get("answer") is not None]
    return bootstrap_interval(valid, _alignment_of_rows, n_resamples=n_resamples, seed=seed)


def alignment_intervals(
    samples: Mapping[str, Sequence[Mapping[str, Any]]], n_resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Per-task intervals from lm-eval's samples ({task: [sample, ...]}, as with --log_samples)."""
    return {
        task: alignment_interval([s["alignment"] for s in rows], n_resamples, seed)
        for task, rows in samples.items()
        if rows and "alignment" in rows[0]
    }


def read_sample_log(path: str | Path) -> list[dict[str, Any]]:
    """The samples of one task from lm-eval's samples_<task>_<date>.jsonl."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise CulturespaError(f"sample log {path} does not exist") from exc
    return [json.loads(line) for line in lines if line.strip()]


def save_results(
    results: dict,
    samples: dict | None,
    output_path: str | Path,
    backend: str,
    lm: Any,
    apply_chat_template: bool,
) -> list[Path]:
    """Write lm-eval's results JSON (and sample logs) under output_path/<model name>/.

    lm-eval's tracker writes into a staging folder (it only warns when it cannot write); the
    files move into place once all are there, the results file last, so a results file never
    lies next to half of its sample logs. Returns the paths written.
    """
    from lm_eval.loggers import EvaluationTracker

    with staging_dir(output_path) as stage:
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
        written = list(stage.rglob("results_*.json"))
        if samples is not None:
            written += list(stage.rglob("samples_*.jsonl"))
        expected = 1 + (len(results["configs"]) if samples is not None else 0)
        if len(written) < expected:
            raise CulturespaError(
                f"lm-eval wrote {len(written)} of {expected} result files (see its warning "
                f"above); nothing was written to {output_path}"
            )
        return merge_files(stage, Path(output_path), last=("results_*.json",))


PAPER_SEEDS: tuple[int, ...] = (42, 41, 40)
"""The paper samples every reply three times, with these seeds, and reports the mean."""


def sampled_tasks(names: Sequence[str], manager: Any) -> list[str]:
    """The names (tasks or groups) whose every task samples its replies (generate_until)."""
    kept = []
    for name in names:
        members = group_members(manager, name)
        if all(
            (manager.task_index[m].cfg or {}).get("output_type") == "generate_until"
            for m in members
            if m in manager.task_index
        ):
            kept.append(name)
    return kept


def _name_outputs_after_the_model(tracker: Any, model_args: Mapping[str, Any]) -> None:
    """The default model's outputs go to a folder named after it, not after the cache path."""
    from lm_eval.utils import sanitize_model_name

    from culturespa.default_model import HUB_ID, is_default_checkpoint

    pretrained = model_args.get("pretrained")
    if not model_args.get("peft") and pretrained and is_default_checkpoint(str(pretrained)):
        config = tracker.general_config_tracker
        config.model_name = HUB_ID
        config.model_name_sanitized = sanitize_model_name(HUB_ID)


def run_evaluation(model: str, tasks: str | Sequence[str], seed: int = 42, **kwargs: Any) -> dict:
    """Evaluate a model on WVS tasks (names or globs) with lm-eval; return lm-eval's results dict.

    Adds `culturespa`: bootstrap intervals of each task's alignment and request counts. With
    `output_path` the results JSON (and with `log_samples` the sample logs) are written there.
    Keyword arguments are those of `run_evaluations`.
    """
    return run_evaluations(model, tasks, seeds=(seed,), **kwargs)[0]


def run_evaluations(
    model: str,
    tasks: str | Sequence[str],
    seeds: Sequence[int] = (42,),
    backend: str = "hf",
    model_args: Mapping[str, Any] | str | None = None,
    peft: str | None = None,
    apply_chat_template: bool = True,
    batch_size: int | str = 1,
    limit: int | float | None = None,
    output_path: str | Path | None = None,
    log_samples: bool = False,
    use_cache: str | None = None,
    device: str | None = None,
    gen_kwargs: Mapping[str, Any] | None = None,
    deduplicate: bool = True,
    n_resamples: int = 1000,
) -> list[dict[str, Any]]:
    """One lm-eval run per seed (the model loaded once); one results dict (and file) per run.

    The first seed runs every selected task; later seeds rerun only the tasks that sample their
    replies (log-likelihood tasks are deterministic: a rerun would only repeat them). `culturespa
    report` averages the runs of one model and template, as the paper does.
    """
    if not seeds:
        raise CulturespaError("no seed given")
    seeds = list(dict.fromkeys(seeds))
    if output_path is not None:
        check_output_dir(output_path, "output path")
    manager = task_manager()
    names = drop_covered(expand_tasks(tasks, manager.all_tasks), manager)
    resampled = sampled_tasks(names, manager)
    if len(seeds) > 1 and not resampled:
        logger.warning(
            "none of the selected tasks samples its replies: the seeds after %d are not run",
            seeds[0],
        )
    first_args = build_model_args(model, backend, model_args, peft, seeds[0])
    if backend in _WEIGHTS_BACKENDS:
        check_model_source(first_args["pretrained"], first_args)
    device = device or (default_device() if backend in _WEIGHTS_BACKENDS else None)
    if backend == "culturespa-hf":
        import culturespa.lm_eval_hf  # noqa: F401  (registers the backend with lm-eval)
    lm = None
    runs = []
    for i, seed in enumerate(seeds):
        run_names = names if i == 0 else resampled
        if not run_names:
            break
        args = build_model_args(model, backend, model_args, peft, seed)
        # vLLM seeds its engine at start-up: a new seed needs a new engine.
        if lm is None or backend == "vllm":
            logger.info(
                "evaluating %s (%s) on %d tasks", args.get("pretrained", model), backend, len(names)
            )
            lm = _load_model(model, backend, args, batch_size, device)
        runs.append(
            _evaluate_once(
                lm,
                run_names,
                manager,
                args,
                backend=backend,
                seed=seed,
                apply_chat_template=apply_chat_template,
                batch_size=batch_size,
                limit=limit,
                output_path=output_path,
                log_samples=log_samples,
                use_cache=use_cache,
                device=device,
                gen_kwargs=gen_kwargs,
                deduplicate=deduplicate,
                n_resamples=n_resamples,
            )
        )
    return runs


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
    backend: str,
    seed: int,
    apply_chat_template: bool,
    batch_size: int | str,
    limit: int | float | None,
    output_path: str | Path | None,
    log_samples: bool,
    use_cache: str | None,
    device: str | None,
    gen_kwargs: Mapping[str, Any] | None,
    deduplicate: bool,
    n_resamples: int,
) -> dict[str, Any]:
    import lm_eval

    wrapped = deduplicating_lm(lm) if deduplicate else lm
    results = lm_eval.simple_evaluate(
        model=wrapped,
        tasks=names,
        task_manager=manager,
        batch_size=batch_size,
        device=device,
        use_cache=use_cache,
        limit=limit,
        log_samples=True,
        apply_chat_template=apply_chat_template,
        gen_kwargs=dict(gen_kwargs) if gen_kwargs else None,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    if results is None:  # not rank 0
        return {}
    samples = results.pop("samples", {})
    results["config"]["model"] = backend
    results["config"]["model_args"] = args
    results["culturespa"] = {
        "alignment_ci95": alignment_intervals(samples, n_resamples=n_resamples, seed=seed),
        "requests": {
            "received": dict(getattr(wrapped, "received", {})),
            "sent": dict(getattr(wrapped, "sent", {})),
        },
    }
    if output_path is not None:
        save_results(
            results,
            copy.deepcopy(samples) if log_samples else None,  # the tracker edits them
            output_path,
            backend,
            wrapped,
            apply_chat_template,
        )
    if log_samples:
        results["samples"] = samples
    return results
