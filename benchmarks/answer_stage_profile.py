"""Where the data builder's answer stage spends its time, and what a lower precision would change.

    python benchmarks/answer_stage_profile.py [--model default] [--questions 8] [--batch-size 32]
        [--dtypes float32,bfloat16] [--top 12] [--threads N] [--questions-file FILE]

Answers the same prompts (each question culture-unaware and culture-aware for the 19 countries,
by log-likelihood, as `culturespa build-data` does) once per dtype, then once more in the first
dtype under torch's profiler. Prints prompts/s per dtype, how many of the first dtype's answers
each other dtype keeps and the largest probability gap, and the first dtype's torch operators by
self CPU time. Run it alone on the machine: the figures are wall clock.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from culturespa.pluralise.sections import DTYPES  # the builder's `model.dtype` values

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None):
    from culturespa.command_line import ArgumentParser, positive_int

    parser = ArgumentParser(
        prog="benchmarks/answer_stage_profile.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", default="default", help="'default' (SmolLM2) or a path")
    parser.add_argument(
        "--questions-file",
        default=str(REPO / "data" / "generated" / "sample_questions.jsonl"),
        help="raw questions, one JSON object per line (default: the benchmark's 8)",
    )
    parser.add_argument("--questions", type=positive_int, default=8, help="questions to ask")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--dtypes", default="float32,bfloat16", help=f"comma-separated, of {', '.join(DTYPES)}"
    )
    parser.add_argument("--top", type=positive_int, default=12, help="operators to list")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in args.dtypes if d not in DTYPES]
    if unknown or not args.dtypes:
        parser.error(f"--dtypes {','.join(unknown) or '(none)'}: use {', '.join(DTYPES)}")
    if not Path(args.questions_file).is_file():
        parser.error(f"--questions-file {args.questions_file} is not a file")
    return args


def answer_once(model_path: str, dtype: str, questions: list, batch_size: int, profiler=None):
    """(seconds, {job id: probabilities}) of one answer stage over `questions`."""
    from culturespa.inference.backends import build_backend
    from culturespa.pluralise.answer import answer_questions
    from culturespa.pluralise.sections import AnswerSection
    from culturespa.survey.countries import ALL_COUNTRIES

    backend = build_backend("hf", model_path, batch_size=batch_size, dtype=dtype)
    section = AnswerSection(method="loglik", cross_culture_thinking=False)
    start = time.perf_counter()
    if profiler is None:
        records = answer_questions(backend, questions, list(ALL_COUNTRIES), section)
    else:
        with profiler:
            records = answer_questions(backend, questions, list(ALL_COUNTRIES), section)
    seconds = time.perf_counter() - start
    backend.close()
    return seconds, {r["id"]: r["probs"] for r in records}


def top_choice(probs: list[float]) -> int:
    return max(range(len(probs)), key=probs.__getitem__)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import torch
    from torch.profiler import ProfilerActivity, profile

    from culturespa.inference.models import resolve_model
    from culturespa.pluralise.filter import filter_questions
    from culturespa.pluralise.questions import read_raw_questions

    if args.threads:
        torch.set_num_threads(args.threads)
    model_path = resolve_model(args.model)
    questions = filter_questions(read_raw_questions(args.questions_file))[0][: args.questions]
    runs = {d: answer_once(model_path, d, questions, args.batch_size) for d in args.dtypes}
    first = args.dtypes[0]
    reference = runs[first][1]
    print(
        f"answer stage, {len(reference)} prompts, batch {args.batch_size}, "
        f"{torch.get_num_threads()} torch threads, model {model_path}\n"
    )
    print("| dtype | s | prompts/s | x first | same answer as first | largest prob. gap |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for dtype, (seconds, probs) in runs.items():
        same = sum(top_choice(probs[k]) == top_choice(reference[k]) for k in reference)
        gap = max(abs(a - b) for k in reference for a, b in zip(probs[k], reference[k]))
        print(
            f"| {dtype} | {seconds:.1f} | {len(probs) / seconds:.3f} | "
            f"{runs[first][0] / seconds:.2f} | {same}/{len(reference)} | {gap:.6f} |"
        )
    profiler = profile(activities=[ProfilerActivity.CPU])
    answer_once(model_path, first, questions, args.batch_size, profiler)
    ops = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops) or 1
    print(f"\n{first}, under torch.profiler: operators by self CPU time\n")
    print("| operator | calls | self CPU s | share |")
    print("| --- | ---: | ---: | ---: |")
    for event in ops[: args.top]:
        share = event.self_cpu_time_total / total
        print(
            f"| {event.key} | {event.count} | {event.self_cpu_time_total / 1e6:.2f} | {share:.1%} |"
        )


if __name__ == "__main__":
    sys.exit(main())
