"""Stage 4: keep (question, country, culture-aware answer) where it differs from the
culture-unaware answer, for the culture-aware (`culture`) and cross-culture (`cross_culture_thinking`) answers."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from culturespa.pluralise.questions import Question

VARIANT_KINDS: dict[str, str] = {
    "culture": "aware",
    "cross_culture_thinking": "cross_culture_thinking",
}
"""Collected variant -> the answer kind it takes its answers from."""


def collect_differences(
    questions: Sequence[Question],
    answers: Iterable[dict],
    countries: Sequence[str],
    cross_culture_thinking: bool = True,
) -> tuple[list[dict], dict]:
    """Rows that differ from the culture-unaware answer, and the share that differs.

    A pair is compared only if both answers are valid. The report gives, per variant, the
    compared and differing counts per country and per topic.
    """
    table = {(a["question_id"], a["kind"], a["country"]): a["answer"] for a in answers}
    variants = ["culture", "cross_culture_thinking"] if cross_culture_thinking else ["culture"]
    rows: list[dict] = []
    counts = {v: {"country": defaultdict(Counter), "topic": defaultdict(Counter)} for v in variants}
    for q in questions:
        unaware = table.get((q.question_id, "unaware", None))
        for variant in variants:
            kind = VARIANT_KINDS[variant]
            for country in countries:
                answer = table.get((q.question_id, kind, country))
                if unaware is None or answer is None:
                    counts[variant]["country"][country]["invalid"] += 1
                    continue
                differs = answer != unaware
                for axis, key in (("country", country), ("topic", q.topic)):
                    counts[variant][axis][key]["compared"] += 1
                    counts[variant][axis][key]["differs"] += int(differs)
                if differs:
                    rows.append(
                        {
                            "question_id": q.question_id,
                            "topic": q.topic,
                            "country": country,
                            "variant": variant,
                            "answer": answer,
                            "unaware_answer": unaware,
                        }
                    )
    report = {}
    for variant in variants:
        report[variant] = {
            axis: {
                key: {
                    "compared": c["compared"],
                    "differs": c["differs"],
                    "share": round(c["differs"] / c["compared"], 4) if c["compared"] else None,
                    **({"invalid": c["invalid"]} if axis == "country" else {}),
                }
                for key, c in counts[variant][axis].items()
            }
            for axis in ("country", "topic")
        }
        report[variant]["kept"] = sum(1 for r in rows if r["variant"] == variant)
    return rows, report


def report_markdown(report: dict) -> str:
    """Share of answers that differ from the culture-unaware one, per country and per topic."""
    lines = []
    for variant, parts in report.items():
        lines += [f"### {variant}: {parts['kept']} rows kept", ""]
        for axis in ("country", "topic"):
            lines += [f"| {axis} | compared | differs | share |", "| --- | ---: | ---: | ---: |"]
            for key, c in parts[axis].items():
                share = "-" if c["share"] is None else f"{100 * c['share']:.1f}%"
                lines.append(f"| {key} | {c['compared']} | {c['differs']} | {share} |")
            lines.append("")
    return "\n".join(lines)
