"""Benchmark culturespa against the paper's answering loop; print a table, write it as JSON.

    python benchmarks/run.py                       # the embedded SmolLM2-135M-Instruct
    python benchmarks/run.py --model tiny --items 8 --baseline-items 3   # CI smoke run
    .venv-vllm/bin/python benchmarks/run.py --vllm --parts eval_loglik,builder_ours   # + vLLM rows

Each part runs in its own process (peak memory per part) on the same model and machine:
evaluation of one country (the paper's loop, our log-likelihood task forward, with permuted orders
and calibrated, our generation task, all through lm-eval), scaling over templates, countries and
items, and the data builder's answer stage (ours vs the same per-question loop). The parts are in
parts.py (eval_parts.py, registry.py), the summary in summary.py, the table in table.py. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from summary import summarise
from table import table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PART_ORDER = (
    "eval_paper_loop",
    "eval_loglik_hf",
    "eval_loglik",
    "eval_debiased",
    "eval_gen_hf",
    "eval_gen",
    "scaling",
    "builder_loop",
    "builder_ours",
    "builder_ours_sample",
    "builder_batching",
)
VLLM_PARTS = ("eval_loglik_vllm", "eval_gen_vllm", "builder_ours_vllm")
"""Parts that need vLLM (the environment of scripts/setup_vllm_cpu.sh); added by --vllm."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's flags, every value checked before anything runs or is written."""
    from culturespa.command_line import ArgumentParser, nonnegative_int, positive_int

    parser = ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' (SmolLM2), 'tiny', or a path")
    parser.add_argument(
        "--items",
        type=positive_int,
        default=259,
        help="items of the log-likelihood runs (forward, permuted, calibrated)",
    )
    parser.add_argument(
        "--baseline-items",
        type=positive_int,
        default=30,
        help="items of the paper's loop, of the generation tasks and of lm-eval's own hf model (a spread subset of --items)",
    )
    parser.add_argument("--country", default="USA")
    parser.add_argument("--template", default="culture_aware")
    parser.add_argument(
        "--builder-batch-size",
        type=positive_int,
        default=None,
        help="data builder parts' batch size (default: the builder's own, model.batch_size)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, help="lm-eval and backend batch size"
    )
    parser.add_argument(
        "--scaling-items",
        type=positive_int,
        default=3,
        help="items per task in the 6x19 scaling runs",
    )
    parser.add_argument(
        "--growth-items",
        type=positive_int,
        default=8,
        help="items of the 1x run of the growth series",
    )
    parser.add_argument("--builder-questions", type=positive_int, default=8)
    parser.add_argument(
        "--builder-loop-prompts",
        type=positive_int,
        default=20,
        help="prompts the per-question loop answers (a spread subset of the stage's prompts)",
    )
    parser.add_argument("--builder-sample-tokens", type=positive_int, default=32)
    parser.add_argument(
        "--batching-questions",
        type=positive_int,
        default=128,
        help="questions per system prompt in the batching part (released Llama-3 questions)",
    )
    parser.add_argument(
        "--questions-file",
        default=str(REPO / "data" / "generated" / "sample_questions.jsonl"),
        help="generated questions (the paper's release format) for the data builder part",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--threads", type=nonnegative_int, default=0, help="torch threads (0: torch's default)"
    )
    parser.add_argument("--parts", default=",".join(PART_ORDER), help="comma-separated parts")
    parser.add_argument(
        "--vllm",
        action="store_true",
        help=f"also run {', '.join(VLLM_PARTS)} (vLLM's CPU build; run with .venv-vllm/bin/python)",
    )
    parser.add_argument("--out", default="runs/bench", help="output folder")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the parts in this process, not one child each: faster to start, but a part's "
        "peak memory is then this process's so far (for checking the script, e.g. the tests; "
        "never for published figures)",
    )
    return checked_args(parser, parser.parse_args(argv))


def checked_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """The parsed flags with parts, country, template, output folder and questions file checked."""
    from culturespa.atomic import check_output_dir
    from culturespa.errors import CulturespaError
    from culturespa.prompts.templates import get_template
    from culturespa.survey.countries import get_country

    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    known = PART_ORDER + VLLM_PARTS
    unknown = sorted(set(wanted) - set(known))
    if unknown or not wanted:
        parser.error(f"--parts {args.parts!r}: unknown or no parts; known: {', '.join(known)}")
    try:
        args.country = get_country(args.country).code
        get_template(args.template)
        check_output_dir(args.out, "--out")
        if not Path(args.questions_file).is_file():
            raise CulturespaError(f"--questions-file {args.questions_file} is not a file")
    except CulturespaError as exc:
        parser.error(str(exc))
    args.parts = ",".join(wanted)
    return args


def benchmark_model(name: str, out: Path) -> str:
    """'tiny' (the tests' tiny Llama, built here) or any name `culturespa` resolves."""
    if name == "tiny":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from support.tiny_model import build_tiny_model

        target = out / "tiny_model"
        if not (target / "config.json").is_file():
            build_tiny_model(target)
        return str(target)
    from culturespa.inference.models import resolve_model

    return resolve_model(name)


def builder_default_batch_size() -> int:
    """The data builder's default `model.batch_size` (what `culturespa build-data` runs with)."""
    from dataclasses import fields

    from culturespa.pluralise.sections import ModelSection

    return next(f.default for f in fields(ModelSection) if f.name == "batch_size")


def run_part(name: str, cfg_path: Path, out: Path, in_process: bool = False) -> dict[str, Any]:
    """Run one part in a child process (or, `in_process`, in this one); its result plus wall
    time, load and the peak RSS of the process that ran it."""
    import resource

    result_path = out / "parts" / f"{name}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    if in_process:
        import parts as part_runner  # benchmarks/parts.py: this script's folder is on sys.path

        part_runner.main([name, str(cfg_path), str(result_path)])
        code, maxrss = 0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    else:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "parts.py"), name, str(cfg_path), str(result_path)],
            cwd=REPO,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        code, maxrss = os.waitstatus_to_exitcode(status), usage.ru_maxrss
    wall = time.perf_counter() - start
    if code != 0 or not result_path.is_file():
        raise SystemExit(f"benchmark part {name} failed (exit code {code})")
    result = json.loads(result_path.read_text())
    result["process_wall_s"] = wall
    result["child_maxrss_mb"] = maxrss / 1024
    result["load_avg_1min"] = [load_before, os.getloadavg()[0]]
    return result


def machine_info(model_path: str, threads: int) -> dict[str, Any]:
    import torch
    import transformers

    try:
        import lm_eval

        lm_eval_version = getattr(lm_eval, "__version__", "?")
    except ImportError:
        lm_eval_version = None
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": threads or torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lm_eval": lm_eval_version,
        "python": platform.python_version(),
        "model_path": model_path,
        "load_avg_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from culturespa.atomic import write_text_atomic

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = benchmark_model(args.model, out)
    cfg = {
        "model": args.model,
        "model_path": model_path,
        "items": args.items,
        "baseline_items": args.baseline_items,
        "country": args.country.upper(),
        "template": args.template,
        "batch_size": args.batch_size,
        "builder_batch_size": args.builder_batch_size or builder_default_batch_size(),
        "scaling_items": args.scaling_items,
        "growth_items": args.growth_items,
        "builder_questions": args.builder_questions,
        "builder_loop_prompts": args.builder_loop_prompts,
        "builder_sample_tokens": args.builder_sample_tokens,
        "batching_questions": args.batching_questions,
        "batching_countries": ["USA", "CHN"],
        "batching_questions_file": str(
            REPO / "data" / "generated" / "generated_questions_llama3_8b.jsonl"
        ),
        "questions_file": args.questions_file,
        "seed": args.seed,
        "threads": args.threads,
        "n_resamples": 200,
    }
    cfg_path = write_text_atomic(out / "config.json", json.dumps(cfg, indent=1))
    info = machine_info(model_path, args.threads)
    wanted = args.parts.split(",")
    if args.vllm:
        wanted += [p for p in VLLM_PARTS if p not in wanted]
    parts = {}
    for name in PART_ORDER + VLLM_PARTS:
        if name in wanted:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            parts[name] = run_part(name, cfg_path, out, args.in_process)
            print(f"[bench] {name}: {parts[name]['process_wall_s']:.0f} s", file=sys.stderr)
    info["load_avg_end"] = os.getloadavg()
    summary = summarise(parts, cfg)
    report = {"machine": info, "config": cfg, **summary}
    write_text_atomic(out / "bench.json", json.dumps(report, indent=1, default=str))
    text = table(summary)
    write_text_atomic(out / "bench.md", text + "\n")
    print(
        f"culturespa benchmark, {info['date_utc']}, model {args.model} ({model_path}), "
        f"{info['cpus']} CPUs, torch threads {info['torch_threads']}, GPU {info['gpu']}, "
        f"load average at start {info['load_avg_start'][0]:.1f}"
    )
    print(text)
    print(f"\nwritten: {out / 'bench.json'}, {out / 'bench.md'}, {out / 'parts'}/")
    return report


if __name__ == "__main__":
    main()
