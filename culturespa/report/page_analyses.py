"""The page's view of the analyses in `leaderboard.json`: culture relations (as SVG), steerability,
order consistency and agreement between ways of asking (malformed entries are left out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from culturespa.prompts.task_names import WAY_LABELS
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.page_numbers import count_text, json_interval, json_number, x100_text
from culturespa.report.page_plots import relations_svg


@dataclass
class RelationView:
    """One method's culture relations: its correlation with the survey's and both matrices as SVG."""

    method: str
    r: float | None
    model_svg: str
    survey_svg: str


def relation_views(relations: Any) -> list[RelationView]:
    """The `relations` part of the payload, each matrix drawn (records without countries skipped)."""
    from markupsafe import Markup

    views = []
    for method, rec in (relations or {}).items():
        if not isinstance(rec, dict) or not rec.get("countries"):
            continue
        views.append(
            RelationView(
                method=method,
                r=json_number(rec.get("r")),
                model_svg=Markup(relations_svg(rec["countries"], rec["model"], "model")),
                survey_svg=Markup(relations_svg(rec["countries"], rec["survey"], "survey")),
            )
        )
    return views


@dataclass
class SteerView:
    """One model's steerability as the page's table shows it (x100 text)."""

    name: str
    average: str
    countries: list[dict[str, str]]


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f}"


def steerability_views(records: Any) -> list[SteerView]:
    """The `steerability` part of the payload, for the page (records it cannot read are left out)."""
    views = []
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, dict) or not isinstance(record.get("countries"), dict):
            continue
        low, high = json_interval(record.get("average_delta_ci"))
        mean = json_number(record.get("average_delta"))
        average = "" if mean is None else f"{_signed(mean)} [{_signed(low)}, {_signed(high)}]"
        rows = []
        for code, c in record["countries"].items():
            if not isinstance(c, dict):
                continue
            c_low, c_high = json_interval(c.get("delta_ci"))
            rows.append(
                {
                    "country": str(code),
                    "n_items": count_text(c.get("n_items")),
                    "closer": f"{x100_text(json_number(c.get('closer')))}%",
                    "away": f"{x100_text(json_number(c.get('away')))}%",
                    "change": f"{_signed(json_number(c.get('delta')))} [{_signed(c_low)}, {_signed(c_high)}]",
                }
            )
        way = record.get("way") if record.get("way") in WAY_LABELS else None
        way = "generated" if record.get("generation") else WAY_LABELS[way or "loglik"]
        views.append(SteerView(f"{record.get('model') or '?'} | {way}", average, rows))
    return views


@dataclass
class OrderView:
    """One model and template asked with the options forward and reversed."""

    name: str
    average: str  # "same option on 71.3% of items; forward - reversed 2.1 [-0.4, 4.5]"
    lines: list[dict[str, str]]  # per country: items, same, forward, reversed, delta


def _pct_text(value: Any) -> str:
    number = json_number(value)
    return "–" if number is None else f"{100 * number:.1f}%"


def _delta_text(record: dict[str, Any]) -> str:
    low, high = json_interval(record.get("delta_ci"))
    text = x100_text(json_number(record.get("delta")))
    return text if low is None or high is None else f"{text} [{x100_text(low)}, {x100_text(high)}]"


def order_views(analyses: Any) -> list[OrderView]:
    """The order-consistency tables from `leaderboard.json` (malformed entries skipped)."""
    views = []
    for a in analyses if isinstance(analyses, list) else []:
        if not isinstance(a, dict) or not isinstance(a.get("countries"), dict):
            continue
        template = str(a.get("template") or "")
        label = TEMPLATES[template].label if template in TEMPLATES else template
        lines = [
            {
                "country": str(cc),
                "n_items": count_text(c.get("n_items")),
                "same": _pct_text(c.get("same")),
                "forward": x100_text(json_number(c.get("forward"))),
                "reversed": x100_text(json_number(c.get("reversed"))),
                "delta": _delta_text(c),
            }
            for cc, c in a["countries"].items()
            if isinstance(c, dict)
        ]
        avg = a.get("average") if isinstance(a.get("average"), dict) else None
        summary = (
            f"same option on {_pct_text(avg.get('same'))} of items; alignment forward - reversed "
            f"{_delta_text(avg)} (x100, mean over {count_text(avg.get('n_countries'))} of the paper's "
            "countries)"
            if avg
            else ""
        )
        views.append(OrderView(f"{a.get('model') or '?'} | {label}", summary, lines))
    return views


def agreement_views(agreements: Any) -> list[dict[str, str]]:
    """The agreement table's lines from `leaderboard.json` (malformed entries skipped)."""
    lines = []
    for a in agreements if isinstance(agreements, list) else []:
        ways = a.get("ways") if isinstance(a, dict) else None
        if not isinstance(ways, list) or len(ways) != 2:
            continue
        template = str(a.get("template") or "")
        lines.append(
            {
                "model": str(a.get("model") or "?"),
                "template": TEMPLATES[template].label if template in TEMPLATES else template,
                "first": WAY_LABELS.get(str(ways[0]), str(ways[0])),
                "second": WAY_LABELS.get(str(ways[1]), str(ways[1])),
                "n_items": count_text(a.get("n_items")),
                "same": _pct_text(a.get("same")),
            }
        )
    return lines
