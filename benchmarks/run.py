"""Benchmark culturespa against the paper's answering loop; print a table, write it as JSON.

    python benchmarks/run.py                       # the embedded SmolLM2-135M-Instruct
    python benchmarks/run.py --model tiny --items 8 --baseline-items 3   # CI smoke run
    .venv-vllm/bin/python benchmarks/run.py --vllm --parts eval_loglik,builder_ours   # + vLLM rows

Each part runs in its own process (peak memory per part) on the same model and machine:
evaluation of one country (the paper's loop, our log-likelihood task, our generation task, both
through lm-eval), scaling over templates, countries and items, and the data builder's answer
stage (ours vs the same per-question loop). See benchmarks/README.md.
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

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PART_ORDER = (
    "eval_paper_loop",
    "eval_loglik_hf",
    "eval_loglik",
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
    from culturespa.cli.parsing import ArgumentParser, nonnegative_int, positive_int

    parser = ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' (SmolLM2), 'tiny', or a path")
    parser.add_argument(
        "--items", type=positive_int, default=259, help="items of the log-likelihood run"
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
        default=str(REPO / "tests" / "data" / "pluralise_questions_sample.jsonl"),
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
    args = parser.parse_args(argv)
    from culturespa.atomic import check_output_dir
    from culturespa.countries import get_country
    from culturespa.errors import CulturespaError
    from culturespa.prompts import get_template

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


def resolve_model(name: str, out: Path) -> str:
    if name == "tiny":
        from culturespa.tiny_model import build_tiny_model

        target = out / "tiny_model"
        if not (target / "config.json").is_file():
            build_tiny_model(target)
        return str(target)
    from culturespa.default_model import resolve_model_path

    return str(resolve_model_path(name))


def builder_default_batch_size() -> int:
    """The data builder's default `model.batch_size` (what `culturespa build-data` runs with)."""
    from dataclasses import fields

    from culturespa.pluralise.config import ModelSection

    return next(f.default for f in fields(ModelSection) if f.name == "batch_size")


def run_part(name: str, cfg_path: Path, out: Path) -> dict[str, Any]:
    """Run one part in a child process; its result plus wall time, load and the child's RSS."""
    result_path = out / "parts" / f"{name}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "parts.py"), name, str(cfg_path), str(result_path)],
        cwd=REPO,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not result_path.is_file():
        raise SystemExit(f"benchmark part {name} failed (exit code {proc.returncode})")
    result = json.loads(result_path.read_text())
    result["process_wall_s"] = wall
    result["child_maxrss_mb"] = usage.ru_maxrss / 1024
    result["load_avg_1min"] = [load_before, os.getloadavg()[0]]
    return result


def _rate(r: dict | None) -> float | None:
    if not r or not r.get("seconds"):
        return None
    return r["items"] / r["seconds"]


def agreement(a: dict, b: dict) -> dict[str, Any]:
    """Share of identical answers over the keys both have (invalid answers count as different)."""
    keys = [k for k in a if k in b]
    same = sum(a[k] is not None and a[k] == b[k] for k in keys)
    return {"n": len(keys), "identical": same, "share": same / len(keys) if keys else None}


def alignment(answers: dict[str, int | None], country: str) -> float | None:
    from culturespa.scoring import score_country

    valid = {q: a for q, a in answers.items() if a is not None}
    if not valid:
        return None
    return score_country(valid, country, n_resamples=0).alignment


def summarise(parts: dict[str, dict], cfg: dict) -> dict[str, Any]:
    """Rows of the table and the derived figures (ratios, agreement, scaling)."""
    rows: list[dict[str, Any]] = []
    derived: dict[str, Any] = {}

    def row(section: str, name: str, r: dict | None, base: dict | None, note: str = "") -> None:
        if r is None:
            return
        rate, base_rate = _rate(r), _rate(base)
        rows.append(
            {
                "section": section,
                "row": name,
                "items": r.get("items"),
                "seconds": r.get("seconds"),
                "items_per_s": rate,
                "x_baseline": rate / base_rate if rate and base_rate else None,
                "peak_rss_mb": r.get("child_maxrss_mb", r.get("peak_rss_mb")),
                "batch_size": r.get("batch_size"),
                "load_avg_1min": r.get("load_avg_1min"),
                "note": note,
            }
        )

    loop = parts.get("eval_paper_loop")
    ll_hf, ll, gen_hf, gen = (
        parts.get(k) for k in ("eval_loglik_hf", "eval_loglik", "eval_gen_hf", "eval_gen")
    )
    ll_vllm, gen_vllm = parts.get("eval_loglik_vllm"), parts.get("eval_gen_vllm")
    country = cfg["country"]
    sec = "1 evaluation"
    if loop:
        tokens = loop["new_tokens"]
        row(
            sec,
            "paper's loop (generate per item, batch 1, sampled, <=256 tokens)",
            loop,
            loop,
            f"{loop['parseable']}/{loop['items']} parseable; reply tokens "
            f"{tokens['min']}-{tokens['max']} (mean {tokens['mean']:.0f}); spread subsample",
        )
    for r, name, note in (
        (ll_hf, "lm-eval `hf`, our log-likelihood task", "the loop's items"),
        (ll, "lm-eval `culturespa-hf`, our log-likelihood task", "all items"),
        (gen_hf, "lm-eval `hf`, our generation task (batched)", "the loop's items"),
        (
            gen,
            "lm-eval `culturespa-hf`, our generation task (batched, stops once answered)",
            "the loop's items",
        ),
        (ll_vllm, "lm-eval `vllm` (CPU build), our log-likelihood task", "all items"),
        (gen_vllm, "lm-eval `vllm` (CPU build), our generation task", "the loop's items"),
    ):
        if r is None:
            continue
        extra = f"; {r['parseable']}/{r['items']} parseable" if "parseable" in r else ""
        row(sec, name, r, loop, f"{note}; model calls {r['model_s']:.1f} s{extra}")
    if loop and ll:
        derived["eval_agreement_loop_vs_loglik"] = agreement(loop["answers"], ll["answers"])
        same_items = {q: ll["answers"].get(q) for q in loop["answers"]}
        derived["eval_alignment"] = {
            "paper_loop": alignment(loop["answers"], country),
            "loglik_same_items": alignment(same_items, country),
            "loglik_all_items": alignment(ll["answers"], country),
            "generation_same_items": alignment(gen["answers"], country) if gen else None,
            "generation_hf_same_items": alignment(gen_hf["answers"], country) if gen_hf else None,
        }
    if ll_hf and ll:
        derived["eval_agreement_hf_vs_culturespa_hf"] = agreement(ll_hf["answers"], ll["answers"])
    if loop and gen:
        derived["eval_agreement_loop_vs_generation"] = agreement(loop["answers"], gen["answers"])
    if ll and ll_vllm:
        derived["eval_vllm_vs_culturespa_hf"] = {
            **agreement(ll["answers"], ll_vllm["answers"]),
            "max_abs_loglik_gap": max_gap(ll["logliks"], ll_vllm["logliks"]),
            "alignment": [ll["alignment"], ll_vllm["alignment"]],
            "load_s": ll_vllm["load_s"],
        }

    sc = parts.get("scaling")
    if sc:
        runs = sc["runs"]
        one, u1, u19, all_ = (runs[k] for k in ("one_task", "unaware_one", "unaware_19", "all_114"))
        derived["scaling"] = {
            "items_per_task": sc["items"],
            "unaware_19_vs_1": u19["seconds"] / u1["seconds"],
            "all_114_vs_one_task": all_["seconds"] / one["seconds"],
            "all_114_requests_received": all_["requests_received"],
            "all_114_requests_sent": all_["requests_sent"],
            "unaware_19_requests": [u19["requests_received"], u19["requests_sent"]],
            "growth": {k: runs[f"items_{k}x"]["seconds"] for k in (1, 2, 4)},
            "growth_items": {k: runs[f"items_{k}x"]["docs"] for k in (1, 2, 4)},
            "runs": runs,
        }
        for key, label in (
            ("one_task", "1 template x 1 country"),
            ("unaware_one", "culture-unaware, 1 country"),
            ("unaware_19", "culture-unaware, 19 countries"),
            ("all_114", "6 templates x 19 countries"),
        ):
            r = dict(runs[key], items=runs[key]["docs"], batch_size=sc["batch_size"])
            r["child_maxrss_mb"] = sc.get("child_maxrss_mb")
            r["load_avg_1min"] = sc.get("load_avg_1min")
            row(
                "2 scaling",
                f"lm-eval `culturespa-hf` log-likelihood: {label}",
                r,
                None,
                f"{r['seconds'] / one['seconds']:.2f}x the 1x1 time; "
                f"requests {r['requests_received']} received, {r['requests_sent']} sent",
            )
        for k in (1, 2, 4):
            r = dict(runs[f"items_{k}x"], items=runs[f"items_{k}x"]["docs"])
            r["child_maxrss_mb"], r["batch_size"] = sc.get("child_maxrss_mb"), sc["batch_size"]
            r["load_avg_1min"] = sc.get("load_avg_1min")
            row(
                "2 scaling",
                f"lm-eval `culturespa-hf` log-likelihood, {k}x items",
                r,
                None,
                f"{r['seconds'] / runs['items_1x']['seconds']:.2f}x the 1x time",
            )

    bl, bo, bs = (parts.get(k) for k in ("builder_loop", "builder_ours", "builder_ours_sample"))
    if bl:
        row(
            "3 data builder",
            "per-question loop (paper's way, batch 1, <=256 tokens)",
            bl,
            bl,
            f"{bl['parseable']}/{bl['items']} valid; spread subsample of the stage's prompts",
        )
    if bo:
        row(
            "3 data builder",
            "answer stage, log-likelihood (ours)",
            bo,
            bl,
            f"{bo['questions']} questions x (unaware + {bo['countries']} countries aware)",
        )
    if bs:
        row(
            "3 data builder",
            "answer stage, sampled, batched (ours)",
            bs,
            bl,
            f"<= {bs['max_new_tokens']} new tokens (the stage's default); loop's prompts",
        )
    bb = parts.get("builder_batching")
    if bb:
        slow = dict(bb, seconds=bb["by_length_s"])
        what = f"{bb['per_system_prompt']} questions x 2 countries, culture-aware"
        row("3 data builder", "option scoring, batches by length only", slow, bl, what)
        same = sum(a == b for a, b in zip(bb["by_length_answers"], bb["by_system_prompt_answers"]))
        row(
            "3 data builder",
            "option scoring, batches by system prompt (ours)",
            bb,
            bl,
            f"{bb['by_length_s'] / bb['seconds']:.2f}x by length; {same}/{bb['items']} same answers",
        )
    bv = parts.get("builder_ours_vllm")
    if bv:
        row(
            "3 data builder",
            "answer stage, log-likelihood, vLLM backend (CPU build)",
            bv,
            bl,
            f"{bv['questions']} questions x (unaware + {bv['countries']} countries aware)",
        )
    if bl and bo:
        derived["builder_agreement_loop_vs_loglik"] = agreement(bl["answers"], bo["answers"])
    if bo and bv:
        derived["builder_vllm_vs_hf"] = {
            **agreement(bo["answers"], bv["answers"]),
            "max_abs_prob_gap": max_gap(bo["probs"], bv["probs"]),
        }
    return {"rows": rows, "derived": derived}


def max_gap(a: dict[str, list[float]], b: dict[str, list[float]]) -> float | None:
    """Largest absolute difference between two runs' per-option values on their common keys."""
    gaps = [abs(x - y) for k in a if k in b for x, y in zip(a[k], b[k], strict=True)]
    return max(gaps) if gaps else None


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(summary: dict) -> str:
    """The rows as a Markdown table, then the derived figures."""
    lines = [
        "| part | measured | items | s | items/s | x paper loop | peak RSS MB | batch | load | note |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in summary["rows"]:
        load = r.get("load_avg_1min") or [None]
        lines.append(
            f"| {r['section']} | {r['row']} | {_fmt(r['items'])} | {_fmt(r['seconds'], 1)} | "
            f"{_fmt(r['items_per_s'], 3)} | {_fmt(r['x_baseline'], 1)} | "
            f"{_fmt(r['peak_rss_mb'], 0)} | {_fmt(r['batch_size'])} | {_fmt(load[0], 1)} | "
            f"{r['note']} |"
        )
    d = summary["derived"]
    if "eval_agreement_loop_vs_loglik" in d:
        a, al = d["eval_agreement_loop_vs_loglik"], d["eval_alignment"]
        lines.append("")
        lines.append(
            f"Evaluation agreement, paper's loop vs log-likelihood argmax: {a['identical']}/{a['n']}"
            f" identical ({_fmt(a['share'], 2)}). Alignment x100: paper's loop "
            f"{_fmt(_x100(al['paper_loop']))}, log-likelihood on the same items "
            f"{_fmt(_x100(al['loglik_same_items']))}, log-likelihood on all items "
            f"{_fmt(_x100(al['loglik_all_items']))}, generation task on the same items "
            f"{_fmt(_x100(al['generation_same_items']))} (`culturespa-hf`), "
            f"{_fmt(_x100(al['generation_hf_same_items']))} (`hf`)."
        )
    if "eval_agreement_hf_vs_culturespa_hf" in d:
        a = d["eval_agreement_hf_vs_culturespa_hf"]
        lines.append(
            f"Log-likelihood answers, lm-eval `hf` vs `culturespa-hf`: {a['identical']}/{a['n']} "
            "identical."
        )
    if "eval_agreement_loop_vs_generation" in d:
        a = d["eval_agreement_loop_vs_generation"]
        lines.append(
            f"Paper's loop vs generation task (two samples of the same distribution): "
            f"{a['identical']}/{a['n']} identical."
        )
    if "eval_vllm_vs_culturespa_hf" in d:
        a = d["eval_vllm_vs_culturespa_hf"]
        lines.append(
            f"Log-likelihood answers, lm-eval `vllm` (CPU) vs `culturespa-hf`: "
            f"{a['identical']}/{a['n']} identical; largest option log-likelihood gap "
            f"{_fmt(a['max_abs_loglik_gap'], 7)}; alignment {_fmt(a['alignment'][0], 6)} vs "
            f"{_fmt(a['alignment'][1], 6)}; vLLM engine start {_fmt(a['load_s'], 0)} s (not in the row)."
        )
    if "scaling" in d:
        s = d["scaling"]
        lines.append(
            f"Scaling ({s['items_per_task']} items per task): culture-unaware over 19 countries "
            f"costs {_fmt(s['unaware_19_vs_1'])}x one country; 6 templates x 19 countries cost "
            f"{_fmt(s['all_114_vs_one_task'], 1)}x one template and one country "
            f"({s['all_114_requests_sent']} of {s['all_114_requests_received']} requests sent: "
            "the 19 culture-unaware tasks share theirs; the self-alignment prompts are about 3.4x "
            "as long as the 1x1 task's). Items "
            + ", ".join(f"{s['growth_items'][k]}: {_fmt(s['growth'][k], 1)} s" for k in s["growth"])
            + "."
        )
    if "builder_agreement_loop_vs_loglik" in d:
        a = d["builder_agreement_loop_vs_loglik"]
        lines.append(
            f"Data builder agreement, loop vs log-likelihood argmax: {a['identical']}/{a['n']} "
            f"identical ({_fmt(a['share'], 2)})."
        )
    if "builder_vllm_vs_hf" in d:
        a = d["builder_vllm_vs_hf"]
        lines.append(
            f"Data builder answers, vLLM vs transformers backend: {a['identical']}/{a['n']} "
            f"identical; largest probability gap {_fmt(a['max_abs_prob_gap'], 7)}."
        )
    return "\n".join(lines)


def _x100(value: float | None) -> float | None:
    return None if value is None else 100 * value


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
    model_path = resolve_model(args.model, out)
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
            parts[name] = run_part(name, cfg_path, out)
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
