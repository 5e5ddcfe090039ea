"""The benchmark's summary: table rows from the parts' results and the derived figures (ratios,
agreement, scaling). `run.py` calls `summarise`; `table.py` writes the summary as Markdown."""

from __future__ import annotations

from typing import Any

EVAL = "1 evaluation"
SCALING = "2 scaling"
BUILDER = "3 data builder"
DEBIASED_ROWS = {
    "perm": "lm-eval `culturespa-hf`, permuted orders (`wvs_perm_`, every cyclic order)",
    "cal": "lm-eval `culturespa-hf`, calibrated (`wvs_cal_`, content-free prompt)",
}
"""The rows of the `eval_debiased` part's ways (docs/ways_debiased.md)."""


def _rate(r: dict | None) -> float | None:
    """Items per second of a result (None without one)."""
    if not r or not r.get("seconds"):
        return None
    return r["items"] / r["seconds"]


def agreement(a: dict, b: dict) -> dict[str, Any]:
    """Share of identical answers over the keys both have (invalid answers count as different)."""
    keys = [k for k in a if k in b]
    same = sum(a[k] is not None and a[k] == b[k] for k in keys)
    return {"n": len(keys), "identical": same, "share": same / len(keys) if keys else None}


def alignment(answers: dict[str, int | None], country: str) -> float | None:
    from culturespa.scoring.country_scores import score_country

    valid = {q: a for q, a in answers.items() if a is not None}
    if not valid:
        return None
    return score_country(valid, country, n_resamples=0).alignment


def max_gap(a: dict[str, list[float]], b: dict[str, list[float]]) -> float | None:
    """Largest absolute difference between two runs' per-option values on their common keys."""
    gaps = [abs(x - y) for k in a if k in b for x, y in zip(a[k], b[k], strict=True)]
    return max(gaps) if gaps else None


def make_row(section: str, name: str, r: dict, base: dict | None, note: str = "") -> dict:
    """One row of the table; `base` is the row whose rate the `x paper loop` column divides by."""
    rate, base_rate = _rate(r), _rate(base)
    return {
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


def debiased_results(part: dict | None) -> dict[str, dict]:
    """The `eval_debiased` part's result per way, each with the part's memory and load."""
    if not part:
        return {}
    shared = {k: part.get(k) for k in ("child_maxrss_mb", "load_avg_1min")}
    return {way: {**part[way], **shared} for way in DEBIASED_ROWS if way in part}


def summarise(parts: dict[str, dict], cfg: dict) -> dict[str, Any]:
    """Rows of the table and the derived figures (ratios, agreement, scaling)."""
    rows: list[dict[str, Any]] = []
    derived: dict[str, Any] = {}
    rows += evaluation_rows(parts)
    derived.update(evaluation_derived(parts, cfg["country"]))
    scaling_section(parts.get("scaling"), rows, derived)
    builder_section(parts, rows, derived)
    return {"rows": rows, "derived": derived}


def _scoring_note(r: dict) -> str:
    """Prompts and option scores of a log-likelihood row (empty for the other rows)."""
    if "option_scores" not in r:
        return ""
    note = f"; {r['prompts']} prompts, {r['option_scores']} option scores"
    if r["option_scores_sent"] != r["option_scores"]:
        note += f" ({r['option_scores_sent']} sent)"
    if r.get("no_answer"):
        note += f"; {r['no_answer']} tied (no answer)"
    return note


def evaluation_rows(parts: dict[str, dict]) -> list[dict]:
    """Section 1: the paper's loop, then our tasks through lm-eval, each against the loop."""
    loop = parts.get("eval_paper_loop")
    rows = []
    if loop:
        tokens = loop["new_tokens"]
        rows.append(
            make_row(
                EVAL,
                "paper's loop (generate per item, batch 1, sampled, <=256 tokens)",
                loop,
                loop,
                f"{loop['parseable']}/{loop['items']} parseable; reply tokens "
                f"{tokens['min']}-{tokens['max']} (mean {tokens['mean']:.0f}); spread subsample",
            )
        )
    debiased = debiased_results(parts.get("eval_debiased"))
    same_items = "the log-likelihood row's items"
    for r, name, note in (
        (parts.get("eval_loglik_hf"), "lm-eval `hf`, our log-likelihood task", "the loop's items"),
        (parts.get("eval_loglik"), "lm-eval `culturespa-hf`, our log-likelihood task", "all items"),
        (debiased.get("perm"), DEBIASED_ROWS["perm"], same_items),
        (debiased.get("cal"), DEBIASED_ROWS["cal"], same_items),
        (
            parts.get("eval_gen_hf"),
            "lm-eval `hf`, our generation task (batched)",
            "the loop's items",
        ),
        (
            parts.get("eval_gen"),
            "lm-eval `culturespa-hf`, our generation task (batched, stops once answered)",
            "the loop's items",
        ),
        (
            parts.get("eval_loglik_vllm"),
            "lm-eval `vllm` (CPU build), our log-likelihood task",
            "all items",
        ),
        (
            parts.get("eval_gen_vllm"),
            "lm-eval `vllm` (CPU build), our generation task",
            "the loop's items",
        ),
    ):
        if r is None:
            continue
        extra = f"; {r['parseable']}/{r['items']} parseable" if "parseable" in r else ""
        note = f"{note}; model calls {r['model_s']:.1f} s{extra}{_scoring_note(r)}"
        rows.append(make_row(EVAL, name, r, loop, note))
    return rows


def debiased_vs_forward(forward: dict, debiased: dict[str, dict]) -> dict[str, Any]:
    """Per debiased way: its time over the forward way's (`culturespa-hf`, the same items), its
    prompts and option scores beside the forward way's, and how often the answers agree."""
    out = {}
    for way, r in debiased.items():
        out[way] = {
            "same_items": sorted(r["answers"]) == sorted(forward["answers"]),
            "time_ratio": r["seconds"] / forward["seconds"],
            "seconds": [forward["seconds"], r["seconds"]],
            "prompts": [forward["prompts"], r["prompts"]],
            "option_scores": [forward["option_scores"], r["option_scores"]],
            "option_scores_sent": [forward["option_scores_sent"], r["option_scores_sent"]],
            "no_answer": r["no_answer"],
            "same_answer_as_forward": agreement(forward["answers"], r["answers"]),
            "alignment": [forward["alignment"], r["alignment"]],
        }
    return out


def evaluation_derived(parts: dict[str, dict], country: str) -> dict[str, Any]:
    """Section 1's derived figures: answer agreement between rows, alignment on the same items,
    the debiased ways' cost against the forward way's."""
    loop, ll_hf, ll, gen_hf, gen = (
        parts.get(k)
        for k in ("eval_paper_loop", "eval_loglik_hf", "eval_loglik", "eval_gen_hf", "eval_gen")
    )
    ll_vllm = parts.get("eval_loglik_vllm")
    derived: dict[str, Any] = {}
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
    debiased = debiased_results(parts.get("eval_debiased"))
    if ll and debiased:
        derived["eval_debiased_vs_forward"] = debiased_vs_forward(ll, debiased)
    return derived


def scaling_section(sc: dict | None, rows: list[dict], derived: dict[str, Any]) -> None:
    """Section 2: one task against many templates and countries, and item growth."""

    def row(*args: Any) -> None:
        rows.append(make_row(*args))

    if not sc:
        return
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
            SCALING,
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
            SCALING,
            f"lm-eval `culturespa-hf` log-likelihood, {k}x items",
            r,
            None,
            f"{r['seconds'] / runs['items_1x']['seconds']:.2f}x the 1x time",
        )


def builder_section(parts: dict[str, dict], rows: list[dict], derived: dict[str, Any]) -> None:
    """Section 3: the data builder's answer stage against the per-question loop."""

    def row(*args: Any) -> None:
        rows.append(make_row(*args))

    bl, bo, bs = (parts.get(k) for k in ("builder_loop", "builder_ours", "builder_ours_sample"))
    if bl:
        row(
            BUILDER,
            "per-question loop (paper's way, batch 1, <=256 tokens)",
            bl,
            bl,
            f"{bl['parseable']}/{bl['items']} valid; spread subsample of the stage's prompts",
        )
    if bo:
        row(
            BUILDER,
            "answer stage, log-likelihood (ours)",
            bo,
            bl,
            f"{bo['questions']} questions x (unaware + {bo['countries']} countries aware)",
        )
    if bs:
        row(
            BUILDER,
            "answer stage, sampled, batched (ours)",
            bs,
            bl,
            f"<= {bs['max_new_tokens']} new tokens (the stage's default); loop's prompts",
        )
    bb = parts.get("builder_batching")
    if bb:
        slow = dict(bb, seconds=bb["no_prefix_s"])
        what = f"{bb['per_system_prompt']} questions x 2 countries, culture-aware"
        row(BUILDER, "option scoring, every prompt whole (no shared prefix)", slow, bl, what)
        same = sum(a == b for a, b in zip(bb["no_prefix_answers"], bb["shared_prefix_answers"]))
        row(
            BUILDER,
            "option scoring, each system prompt's prefix once (ours)",
            bb,
            bl,
            f"{bb['no_prefix_s'] / bb['seconds']:.2f}x the whole prompts; "
            f"{same}/{bb['items']} same answers",
        )
    bv = parts.get("builder_ours_vllm")
    if bv:
        row(
            BUILDER,
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
