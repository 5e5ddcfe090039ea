"""The evaluation parts (sections 1 and 2 of the table): the paper's loop and our lm-eval tasks.

Every lm-eval part runs `culturespa.evaluation.run.run_evaluation` and times lm-eval's
`simple_evaluate` and the model's request methods inside it (`lm_eval_probe`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from typing import Any

from paper_loop import load_paper_model, run_paper_loop
from registry import part, spread


def eval_items(cfg: dict) -> tuple[list[str], list[str]]:
    """(log-likelihood items, baseline items): the baseline items are a spread subset of the first."""
    from culturespa.survey.items import items_with_data

    docs = items_with_data(cfg["country"])
    items = spread(docs, cfg["items"])
    return items, spread(items, cfg["baseline_items"])


def doc_indices(cfg: dict, qids: Sequence[str]) -> list[int]:
    """Positions of items among the task's docs (the task's docs are the items with data)."""
    from culturespa.survey.items import items_with_data

    position = {qid: i for i, qid in enumerate(items_with_data(cfg["country"]))}
    return [position[q] for q in qids]


# vLLM on the CPU (the parts named *_vllm run in the vLLM environment, docs/vllm.md): float32 as
# the transformers parts, no torch.compile (20 s more per start on two cores), a 2 GiB KV cache.
VLLM_ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048}
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")  # vLLM posts usage statistics otherwise


def _lm_class(backend: str) -> type:
    """The lm-eval model class whose request methods a backend runs."""
    if backend == "vllm":
        from lm_eval.models.vllm_causallms import VLLM

        return VLLM
    from lm_eval.models.huggingface import HFLM

    return HFLM


@contextmanager
def lm_eval_probe(samples: dict[str, list[int]] | None = None, backend: str = "hf"):
    """Time lm-eval's `simple_evaluate` and the model's request methods inside it.

    With `samples`, lm-eval evaluates exactly those doc indices per task (its `samples=` option)
    instead of the first `limit` docs.
    """
    import lm_eval

    model_class = _lm_class(backend)
    record: dict[str, float] = {"evaluate_s": 0.0, "model_s": 0.0}
    original_evaluate = lm_eval.simple_evaluate
    originals = {name: getattr(model_class, name) for name in ("loglikelihood", "generate_until")}

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        if samples is not None:
            kwargs["samples"] = samples
            kwargs["limit"] = None
        start = time.perf_counter()
        try:
            return original_evaluate(*args, **kwargs)
        finally:
            record["evaluate_s"] += time.perf_counter() - start

    def timed(name: str) -> Callable:
        method = originals[name]

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                record["model_s"] += time.perf_counter() - start

        return wrapper

    lm_eval.simple_evaluate = evaluate
    for name in originals:
        setattr(model_class, name, timed(name))
    try:
        yield record
    finally:
        lm_eval.simple_evaluate = original_evaluate
        for name, method in originals.items():
            setattr(model_class, name, method)


def _run_lm_eval(cfg: dict, tasks: str, backend: str, samples=None, limit=None) -> dict:
    """One `culturespa.evaluation.run.run_evaluation` call; wall times and lm-eval's results.

    lm-eval's vllm model takes batch size "auto" (all requests to the engine at once, which
    schedules them itself); a number would cut them into engine calls of that size."""
    from culturespa.evaluation.run import EvalOptions, run_evaluation

    vllm = backend == "vllm"
    start = time.perf_counter()
    with lm_eval_probe(samples, backend) as probe:
        results = run_evaluation(
            cfg["model_path"],
            tasks,
            options=EvalOptions(
                backend=backend,
                model_args=VLLM_ENGINE if vllm else None,
                batch_size="auto" if vllm else cfg["batch_size"],
                limit=limit,
                log_samples=True,
                n_resamples=cfg.get("n_resamples", 200),
            ),
            seed=cfg["seed"],
        )
    total = time.perf_counter() - start
    return {
        "results": results,
        "total_s": total,
        "evaluate_s": probe["evaluate_s"],
        "model_s": probe["model_s"],
    }


def _task_answers(samples: list[dict]) -> dict[str, int | None]:
    return {s["doc"]["qid"]: s["alignment"]["answer"] for s in samples}


# -- 1. evaluation, one country -----------------------------------------------------------------


@part("eval_paper_loop")
def eval_paper_loop(cfg: dict) -> dict:
    """The paper's loop over the baseline items, culture-aware template."""
    from culturespa.prompts.templates import render

    _, qids = eval_items(cfg)
    start = time.perf_counter()
    tokenizer, model = load_paper_model(cfg["model_path"])
    load_s = time.perf_counter() - start
    conversations = [render(cfg["template"], q, cfg["country"]).as_messages() for q in qids]
    start = time.perf_counter()
    replies = run_paper_loop(tokenizer, model, conversations, seed=cfg["seed"])
    seconds = time.perf_counter() - start
    tokens = [r.new_tokens for r in replies]
    return {
        "items": len(qids),
        "seconds": seconds,
        "load_s": load_s,
        "batch_size": 1,
        "answers": {q: r.answer for q, r in zip(qids, replies)},
        "replies": {q: r.reply[:300] for q, r in zip(qids, replies)},
        "new_tokens": {"min": min(tokens), "max": max(tokens), "mean": sum(tokens) / len(tokens)},
        "parseable": sum(r.answer is not None for r in replies),
    }


def _eval_part(cfg: dict, kind: str, backend: str, subset: bool) -> dict:
    """One lm-eval task on all items or on the baseline items; `kind` is its way of asking
    (`loglik`, `gen`, `perm`, `cal`: culturespa.prompts.task_names.WAYS)."""
    from culturespa.evaluation.tasks import task_manager
    from culturespa.prompts.task_names import task_name

    items, baseline = eval_items(cfg)
    qids = baseline if subset else items
    task = task_name(kind, cfg["template"], cfg["country"])
    task_manager()  # index the task folder outside the timed call, as a long-lived process would
    run = _run_lm_eval(cfg, task, backend, samples={task: doc_indices(cfg, qids)})
    samples = run["results"]["samples"][task]
    answers = _task_answers(samples)
    out = {
        "items": len(samples),
        "seconds": run["evaluate_s"],
        "model_s": run["model_s"],
        "load_s": run["total_s"] - run["evaluate_s"],
        "batch_size": "auto" if backend == "vllm" else cfg["batch_size"],
        "backend": backend,
        "answers": answers,
        "alignment": run["results"]["results"][task]["alignment,none"],
        "requests": run["results"]["culturespa"]["requests"],
    }
    if kind == "gen":
        out["replies"] = {s["doc"]["qid"]: s["resps"][0][0][:300] for s in samples}
        out["parseable"] = sum(a is not None for a in answers.values())
    else:
        out["logliks"] = {
            s["doc"]["qid"]: [float(r[0]) for r in s["filtered_resps"]] for s in samples
        }
        out.update(_scoring_counts(samples, out["requests"]))
    return out


def _scoring_counts(samples: list[dict], requests: dict) -> dict[str, Any]:
    """Prompts and option scores of a log-likelihood task: the distinct prompts scored, the
    option log-likelihoods its items ask for and those sent to the model (each distinct one once)."""
    prompts = {args[0] for s in samples for args in s["arguments"]}
    return {
        "prompts": len(prompts),
        "option_scores": requests["received"].get("loglikelihood", 0),
        "option_scores_sent": requests["sent"].get("loglikelihood", 0),
        "no_answer": sum(s["alignment"]["answer"] is None for s in samples),
    }


@part("eval_loglik_hf")
def eval_loglik_hf(cfg: dict) -> dict:
    """Our log-likelihood task through lm-eval's own hf model, on the baseline items."""
    return _eval_part(cfg, "loglik", "hf", subset=True)


@part("eval_loglik")
def eval_loglik(cfg: dict) -> dict:
    """Our log-likelihood task through lm-eval with `culturespa-hf`, on all benchmark items."""
    return _eval_part(cfg, "loglik", "culturespa-hf", subset=False)


@part("eval_loglik_vllm")
def eval_loglik_vllm(cfg: dict) -> dict:
    """Our log-likelihood task through lm-eval's vllm model (CPU build), on all benchmark items."""
    return _eval_part(cfg, "loglik", "vllm", subset=False)


@part("eval_gen_vllm")
def eval_gen_vllm(cfg: dict) -> dict:
    """Our generation task through lm-eval's vllm model (CPU build), on the baseline items."""
    return _eval_part(cfg, "gen", "vllm", subset=True)


@part("eval_gen_hf")
def eval_gen_hf(cfg: dict) -> dict:
    """Our generation task through lm-eval's own hf model (batched), on the baseline items."""
    return _eval_part(cfg, "gen", "hf", subset=True)


@part("eval_gen")
def eval_gen(cfg: dict) -> dict:
    """Our generation task through lm-eval with `culturespa-hf` (batched, stops once answered)."""
    return _eval_part(cfg, "gen", "culturespa-hf", subset=True)


DEBIASED_WAYS = ("perm", "cal")
"""The ways of `eval_debiased`, in the order it runs them."""


@part("eval_debiased")
def eval_debiased(cfg: dict) -> dict:
    """The permuted and the calibrated way (docs/ways_debiased.md) through lm-eval with
    `culturespa-hf`, on the items of `eval_loglik`, one after the other in this process."""
    return {way: _eval_part(cfg, way, "culturespa-hf", subset=False) for way in DEBIASED_WAYS}


# -- 2. scaling ---------------------------------------------------------------------------------


@part("scaling")
def scaling(cfg: dict) -> dict:
    """Cost of 6 templates x 19 countries and of 19 unaware countries vs one task; item growth."""
    from culturespa.evaluation.tasks import task_manager
    from culturespa.prompts.templates import TEMPLATES

    task_manager()
    n = cfg["scaling_items"]
    cc = cfg["country"].lower()
    runs: dict[str, dict] = {}

    def measure(label: str, tasks: str, limit: int) -> None:
        run = _run_lm_eval(cfg, tasks, "culturespa-hf", limit=limit)
        requests = run["results"]["culturespa"]["requests"]
        runs[label] = {
            "tasks": tasks,
            "limit": limit,
            "n_tasks": len(run["results"]["samples"]),
            "docs": sum(len(s) for s in run["results"]["samples"].values()),
            "seconds": run["evaluate_s"],
            "model_s": run["model_s"],
            "requests_received": requests["received"].get("loglikelihood", 0),
            "requests_sent": requests["sent"].get("loglikelihood", 0),
        }

    measure("one_task", f"wvs_{cfg['template']}_{cc}", n)
    measure("unaware_one", f"wvs_culture_unaware_{cc}", n)
    measure("unaware_19", "wvs_culture_unaware_*", n)
    measure("all_114", ",".join(f"wvs_{t}_*" for t in TEMPLATES), n)
    for factor in (1, 2, 4):
        measure(f"items_{factor}x", f"wvs_{cfg['template']}_{cc}", cfg["growth_items"] * factor)
    return {"runs": runs, "batch_size": cfg["batch_size"], "items": n, "backend": "culturespa-hf"}
