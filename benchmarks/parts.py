"""One measured part of the benchmark, run in its own process so its peak memory is its own.

python benchmarks/parts.py PART CONFIG.json RESULT.json

`benchmarks/run.py` starts this once per part and reads RESULT.json. Every part times only its
work (model loading is reported apart) and records per-item answers, so that `run.py` can
compare the answers of the fast paths with the paper's loop. The evaluation and scaling parts are
in eval_parts.py, the data builder's here; registry.py holds the parts by name.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_parts import VLLM_ENGINE  # importing eval_parts registers sections 1 and 2's parts
from paper_loop import load_paper_model, run_paper_loop
from registry import PARTS, part, set_threads, spread

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
    from culturespa.pluralise.sections import AnswerSection

    set_threads(cfg)
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
    from culturespa.pluralise.sections import AnswerSection

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

    set_threads(cfg)
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
    real run): every prompt run whole vs each system prompt's prefix run once."""
    import culturespa.inference.option_scoring as option_scoring
    from culturespa.inference.backends import build_backend
    from culturespa.pluralise.answer import plan_jobs
    from culturespa.pluralise.filter import filter_questions
    from culturespa.pluralise.questions import read_raw_questions

    set_threads(cfg)
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
    default = option_scoring.MIN_SHARED_PREFIX
    for mode, shortest in (("no_prefix", 10**9), ("shared_prefix", default)):
        option_scoring.MIN_SHARED_PREFIX = shortest  # 10**9: no prefix is worth running alone
        start = time.perf_counter()
        scores = backend.option_logprobs(conversations, labels)
        result[f"{mode}_s"] = time.perf_counter() - start
        result[f"{mode}_answers"] = [max(range(len(r)), key=r.__getitem__) for r in scores]
    option_scoring.MIN_SHARED_PREFIX = default
    result["seconds"] = result["shared_prefix_s"]
    result["per_system_prompt"] = len(questions)
    return result


@part("builder_loop")
def builder_loop(cfg: dict) -> dict:
    """The same prompts answered one by one, the paper's way."""
    from culturespa.scoring.answers import parse_answer

    set_threads(cfg)
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
    from culturespa.command_line import ArgumentParser

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
    set_threads(cfg)
    result = PARTS[args.part](cfg)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["part"] = args.part
    write_text_atomic(args.result, json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
