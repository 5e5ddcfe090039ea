"""One measured part of the benchmark, run in its own process so its peak memory is its own.

python benchmarks/parts.py PART CONFIG.json RESULT.json

`benchmarks/run.py` starts this once per part and reads RESULT.json. Every part times only its
work (model loading is reported apart) and records per-item answers, so that `run.py` can
compare the answers of the fast paths with the paper's loop.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_loop import load_paper_model, run_paper_loop

PARTS: dict[str, Callable[[dict], dict]] = {}


def part(name: str):
    """Register a part under `name`."""

    def register(func: Callable[[dict], dict]) -> Callable[[dict], dict]:
        PARTS[name] = func
        return func

    return register


def spread(seq: Sequence, n: int) -> list:
    """n elements evenly spread over seq, in order (all of it if n >= len(seq))."""
    if n >= len(seq):
        return list(seq)
    return [seq[(i * len(seq)) // n] for i in range(n)]


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


def _set_threads(cfg: dict) -> None:
    import torch

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))


# vLLM on the CPU (the parts named *_vllm run in the vLLM environment, README "vLLM"): float32 as
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
    from culturespa.evaluation.run import run_evaluation

    vllm = backend == "vllm"
    start = time.perf_counter()
    with lm_eval_probe(samples, backend) as probe:
        results = run_evaluation(
            cfg["model_path"],
            tasks,
            backend=backend,
            model_args=VLLM_ENGINE if vllm else None,
            batch_size="auto" if vllm else cfg["batch_size"],
            seed=cfg["seed"],
            limit=limit,
            log_samples=True,
            n_resamples=cfg.get("n_resamples", 200),
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
    """One lm-eval task (log-likelihood or generation) on all items or on the baseline items."""
    from culturespa.evaluation.tasks import task_manager

    items, baseline = eval_items(cfg)
    qids = baseline if subset else items
    prefix = "wvs_" if kind == "loglik" else "wvs_gen_"
    task = f"{prefix}{cfg['template']}_{cfg['country'].lower()}"
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
    return out


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


# -- 3. data builder, answer stage --------------------------------------------------------------


def builder_jobs(cfg: dict):
    """(questions, countries, jobs): the fixed question set, 19 countries, unaware + aware."""
    from culturespa.pluralise.answer import plan_jobs
    from culturespa.pluralise.filter import filter_questions
    from culturespa.pluralise.questions import read_raw_questions
    from culturespa.survey.countries import ALL_COUNTRIES

    questions, _ = filter_questions(read_raw_questions(cfg["questions_file"]))
    questions = questions[: cfg["builder_questions"]]
    countries = list(ALL_COUNTRIES)
    return questions, countries, plan_jobs(questions, countries, cross_culture_thinking=False)


def loop_jobs(cfg: dict, jobs: list) -> list:
    return spread(jobs, cfg["builder_loop_prompts"])


@part("builder_ours")
def builder_ours(cfg: dict) -> dict:
    """The answer stage's Python API (log-likelihood, batched transformers backend)."""
    from culturespa.inference.backends import build_backend
    from culturespa.pluralise.answer import answer_questions
    from culturespa.pluralise.config import AnswerSection

    _set_threads(cfg)
    questions, countries, _ = builder_jobs(cfg)
    start = time.perf_counter()
    backend = build_backend("hf", cfg["model_path"], batch_size=cfg["builder_batch_size"])
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    records = answer_questions(
        backend, questions, countries, AnswerSection(method="loglik", cross_culture_thinking=False)
    )
    seconds = time.perf_counter() - start
    return {
        "items": len(records),
        "questions": len(questions),
        "countries": len(countries),
        "seconds": seconds,
        "load_s": load_s,
        "batch_size": cfg["builder_batch_size"],
        "answers": {r["id"]: r["answer"] for r in records},
        "probs": {r["id"]: r["probs"] for r in records},
    }


@part("builder_ours_vllm")
def builder_ours_vllm(cfg: dict) -> dict:
    """The answer stage's Python API (log-likelihood) with the vLLM backend (CPU build)."""
    from culturespa.inference.backends import build_backend
    from culturespa.pluralise.answer import answer_questions
    from culturespa.pluralise.config import AnswerSection

    questions, countries, _ = builder_jobs(cfg)
    start = time.perf_counter()
    backend = build_backend("vllm", cfg["model_path"], **VLLM_ENGINE)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    records = answer_questions(
        backend, questions, countries, AnswerSection(method="loglik", cross_culture_thinking=False)
    )
    seconds = time.perf_counter() - start
    backend.close()
    return {
        "items": len(records),
        "questions": len(questions),
        "countries": len(countries),
        "seconds": seconds,
        "load_s": load_s,
        "batch_size": "engine",
        "answers": {r["id"]: r["answer"] for r in records},
        "probs": {r["id"]: r["probs"] for r in records},
    }


@part("builder_ours_sample")
def builder_ours_sample(cfg: dict) -> dict:
    """The answer stage's sampled method (batched generation) on the loop's prompts."""
    from culturespa.inference.backends import build_backend
    from culturespa.inference.backends.base import SamplingSettings
    from culturespa.pluralise.answer import answer_chunk

    _set_threads(cfg)
    _, _, jobs = builder_jobs(cfg)
    jobs = loop_jobs(cfg, jobs)
    start = time.perf_counter()
    backend = build_backend("hf", cfg["model_path"], batch_size=cfg["builder_batch_size"])
    load_s = time.perf_counter() - start
    settings = SamplingSettings(cfg["builder_sample_tokens"], 0.6, 0.9, cfg["seed"])
    start = time.perf_counter()
    records = answer_chunk(backend, jobs, "sample", settings)
    seconds = time.perf_counter() - start
    return {
        "items": len(records),
        "seconds": seconds,
        "load_s": load_s,
        "batch_size": cfg["builder_batch_size"],
        "max_new_tokens": cfg["builder_sample_tokens"],
        "answers": {r["id"]: r["answer"] for r in records},
    }


@part("builder_batching")
def builder_batching(cfg: dict) -> dict:
    """Option scoring of many prompts per system prompt (as the answer stage's chunks hold in a
    real run): batches by length alone vs by system prompt (the shared prefix run once)."""
    import culturespa.inference.option_scoring as option_scoring
    from culturespa.inference.backends import build_backend
    from culturespa.pluralise.answer import plan_jobs
    from culturespa.pluralise.filter import filter_questions
    from culturespa.pluralise.questions import read_raw_questions

    _set_threads(cfg)
    questions, _ = filter_questions(read_raw_questions(cfg["batching_questions_file"]))
    questions = spread(questions, cfg["batching_questions"])
    jobs = [
        j
        for j in plan_jobs(questions, cfg["batching_countries"], cross_culture_thinking=False)
        if j.country
    ]
    conversations = [j.conversation() for j in jobs]
    labels = [[str(n) for n in j.question.option_numbers] for j in jobs]
    start = time.perf_counter()
    backend = build_backend("hf", cfg["model_path"], batch_size=cfg["builder_batch_size"])
    load_s = time.perf_counter() - start
    backend.option_logprobs(conversations[:4], labels[:4])  # warm-up
    result: dict[str, Any] = {
        "items": len(jobs),
        "load_s": load_s,
        "batch_size": cfg["builder_batch_size"],
    }
    default = option_scoring.MIN_GROUP_BATCHES
    for mode, min_batches in (("by_length", 10**9), ("by_system_prompt", default)):
        option_scoring.MIN_GROUP_BATCHES = min_batches
        start = time.perf_counter()
        scores = backend.option_logprobs(conversations, labels)
        result[f"{mode}_s"] = time.perf_counter() - start
        result[f"{mode}_answers"] = [max(range(len(r)), key=r.__getitem__) for r in scores]
    option_scoring.MIN_GROUP_BATCHES = default
    result["seconds"] = result["by_system_prompt_s"]
    result["per_system_prompt"] = len(questions)
    return result


@part("builder_loop")
def builder_loop(cfg: dict) -> dict:
    """The same prompts answered one by one, the paper's way."""
    from culturespa.scoring.answers import parse_answer

    _set_threads(cfg)
    _, _, jobs = builder_jobs(cfg)
    jobs = loop_jobs(cfg, jobs)
    start = time.perf_counter()
    tokenizer, model = load_paper_model(cfg["model_path"])
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    replies = run_paper_loop(tokenizer, model, [j.conversation() for j in jobs], seed=cfg["seed"])
    seconds = time.perf_counter() - start
    answers = {}
    for job, reply in zip(jobs, replies):
        number = parse_answer(reply.reply)
        answers[job.id] = number if number in job.question.option_numbers else None
    return {
        "items": len(jobs),
        "seconds": seconds,
        "load_s": load_s,
        "batch_size": 1,
        "answers": answers,
        "parseable": sum(a is not None for a in answers.values()),
    }


def main(argv: list[str] | None = None) -> None:
    from culturespa.atomic import write_text_atomic
    from culturespa.cli.parsing import ArgumentParser

    parser = ArgumentParser(
        prog="benchmarks/parts.py", description="Run one benchmark part (started by run.py)."
    )
    parser.add_argument("part", choices=sorted(PARTS), help="the part to run")
    parser.add_argument("config", type=Path, help="config.json written by benchmarks/run.py")
    parser.add_argument("result", type=Path, help="where the part writes its result JSON")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        parser.error(f"config {args.config} is not a file")
    cfg = json.loads(args.config.read_text())
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _set_threads(cfg)
    result = PARTS[args.part](cfg)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["part"] = args.part
    write_text_atomic(args.result, json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
