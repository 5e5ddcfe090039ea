"""The benchmark's summary (`summary.summarise`) as Markdown: the table, then the derived figures."""

from __future__ import annotations

from typing import Any


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
    lines += debiased_lines(d.get("eval_debiased_vs_forward", {}))
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


WAY_NAMES = {"perm": "Permuted orders", "cal": "Calibrated"}


def debiased_lines(ways: dict[str, dict]) -> list[str]:
    """One sentence per debiased way: its time, prompts and option scores against the forward
    way's, its answers against the forward answers."""
    lines = []
    for way, a in ways.items():
        same = a["same_answer_as_forward"]
        items = f"the same {same['n']} items" if a["same_items"] else "NOT the same items"
        sent = a["option_scores_sent"][1]
        lines.append(
            f"{WAY_NAMES.get(way, way)} vs the forward log-likelihood way (`culturespa-hf`, "
            f"{items}): {_fmt(a['time_ratio'])}x its time; {a['prompts'][1]} vs "
            f"{a['prompts'][0]} prompts, {a['option_scores'][1]} vs {a['option_scores'][0]} "
            f"option scores ({sent} sent); {same['identical']}/{same['n']} answers the same as "
            f"forward, {a['no_answer']} tied; alignment x100 {_fmt(_x100(a['alignment'][1]))} vs "
            f"{_fmt(_x100(a['alignment'][0]))}."
        )
    return lines


def _x100(value: float | None) -> float | None:
    return None if value is None else 100 * value
