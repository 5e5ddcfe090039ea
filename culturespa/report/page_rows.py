"""The page's view of the leaderboard rows: each score as text with its interval, each source
file with its run's provenance, and each row's name, setting and rank (unknown fields ignored).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from culturespa.prompts.task_names import WAY_LABELS
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.item_counts import items_text
from culturespa.report.page_numbers import (
    json_count,
    json_interval,
    json_number,
    runs_count,
    x100_text,
)
from culturespa.scoring.baselines import RULES
from culturespa.survey.countries import PAPER_COUNTRIES


@dataclass
class CellView:
    """One score: text x100, its 95% interval, and the value the table sorts by."""

    value: float | None
    low: float | None = None
    high: float | None = None
    coverage: float | None = None

    @property
    def text(self) -> str:
        return x100_text(self.value)

    @property
    def ci(self) -> str:
        if self.low is None or self.high is None:
            return ""
        return f"{x100_text(self.low)}–{x100_text(self.high)}"

    @property
    def sort(self) -> str:
        return "" if self.value is None else f"{100 * self.value:.4f}"

    @property
    def title(self) -> str:
        parts = [self.text]
        if self.ci:
            parts.append(f"95% interval {self.ci}")
        if self.coverage is not None:
            parts.append(f"coverage {x100_text(self.coverage, 0)}%")
        return ", ".join(parts)


@dataclass
class SourceView:
    """A file a row's scores come from, with what the report knows about its run."""

    path: str
    href: str
    shown: str
    provenance: dict[str, Any]

    @property
    def origin(self) -> str:
        return str(self.provenance.get("origin") or "lm-eval results")

    @property
    def task_versions(self) -> str:
        """'1.0 (10 tasks)' or '1.0 (8 tasks), 2.0 (2 tasks)'."""
        versions = self.provenance.get("task_versions")
        if not isinstance(versions, dict) or not versions:
            return ""
        counts: dict[str, int] = {}
        for version in versions.values():
            counts[str(version)] = counts.get(str(version), 0) + 1
        return ", ".join(f"{v} ({n} task{'s' * (n > 1)})" for v, n in counts.items())

    @property
    def facts(self) -> list[tuple[str, str]]:
        """(label, value) pairs worth showing, in reading order; empty ones left out."""
        p = self.provenance
        limit = p.get("limit")
        pairs = [
            ("model", p.get("model")),
            ("adapter", p.get("adapter")),
            ("backend", p.get("backend")),
            ("lm-eval version", p.get("lm_eval_version")),
            ("transformers version", p.get("transformers_version")),
            ("task versions", self.task_versions),
            ("date", p.get("date")),
            ("items per task", f"first {limit} only (--limit; not comparable)" if limit else ""),
            ("seed", p.get("seed")),
            ("chat template", {True: "applied", False: "not applied"}.get(p.get("chat_template"))),
            ("git commit", p.get("git_hash")),
            ("survey folder", p.get("survey")),  # None: the shipped survey
            ("format", p.get("release")),
            ("run", p.get("run_index")),
            ("countries scored", ", ".join(p.get("countries") or [])),
            ("replies", _replies_text(p)),
        ]
        return [(k, str(v)) for k, v in pairs if v not in (None, "")]


def _replies_text(p: dict[str, Any]) -> str:
    total, valid = p.get("replies"), p.get("valid_replies")
    if not isinstance(total, int) or not isinstance(valid, int):
        return ""
    return f"{total} ({valid} parse to an option number)"


@dataclass
class RowView:
    """One leaderboard row as the page shows it."""

    id: str
    rank: int | None
    label: str
    template: str
    template_label: str
    way: str
    reference: bool
    avg: CellView
    n_avg: int
    coverage: CellView
    specific: CellView
    runs: int
    spread: float | None
    cells: dict[str, CellView]
    sources: list[SourceView] = field(default_factory=list)
    n_items: int | None = None
    reference_items: int | None = None

    @property
    def fewer_items(self) -> bool:
        """Asked fewer items than the survey reference rows are scored on (not comparable)."""
        known = self.n_items is not None and self.reference_items is not None
        return known and self.n_items < self.reference_items

    @property
    def items_note(self) -> str:
        """'3 of 250 items' for a row asked fewer items than its reference rows, else ''."""
        return f"{items_text(self.n_items, self.reference_items)} items" if self.fewer_items else ""

    @property
    def method(self) -> str:
        """'model | template · way', the row's name in plots and lists."""
        parts = [self.label, self.template_label]
        name = " | ".join(p for p in parts if p)
        return f"{name} · {self.way_label}" if self.way else name

    @property
    def setting(self) -> str:
        """'Culture-aware (P1) · generation': the second line under the model in plots."""
        return " · ".join(p for p in (self.template_label, self.way and self.way_label) if p)

    @property
    def way_label(self) -> str:
        return WAY_LABELS.get(self.way, self.way) if self.way else "–"

    @property
    def from_replies(self) -> bool:
        return bool(self.sources) and all(s.origin == "reply file" for s in self.sources)

    @property
    def search(self) -> str:
        """What the search box matches: name and setting, lower case, whitespace folded."""
        return " ".join(f"{self.label} {self.setting}".lower().split())


def _template_label(record: dict[str, Any]) -> str:
    rule = record.get("rule")
    if record.get("kind") == "reference" and isinstance(rule, str) and rule in RULES:
        return RULES[rule].label
    name = record.get("template")
    if not isinstance(name, str) or not name:
        return ""
    return TEMPLATES[name].label if name in TEMPLATES else name


def _way(record: dict[str, Any]) -> str:
    if record.get("kind") == "reference" and record.get("rule"):
        return ""  # an answer rule, not a way of asking a model
    way = record.get("way")
    if isinstance(way, str) and way:
        return way
    if "generation" not in record:
        return ""
    return "gen" if record.get("generation") else "loglik"


def _href(path: str, out_dir: Path | None) -> tuple[str, str]:
    """A link to a source file relative to the page (works from a disk and a static host)."""
    if out_dir is None:
        return Path(path).resolve().as_uri(), path
    try:
        relative = Path(os.path.relpath(path, out_dir)).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(path).resolve().as_uri(), path
    return quote(relative), relative


def row_view(
    record: dict[str, Any], index: int, runs: dict[str, Any], out_dir: Path | None
) -> RowView:
    """The page's view of one leaderboard record (unknown fields are ignored)."""
    reference = record.get("kind") == "reference"
    cells = {}
    countries = record.get("countries") if isinstance(record.get("countries"), dict) else {}
    for cc, cell in countries.items():
        if isinstance(cell, dict):
            low, high = json_interval(cell.get("ci"))
            cells[cc] = CellView(
                json_number(cell.get("score")), low, high, json_number(cell.get("coverage"))
            )
    avg_low, avg_high = json_interval(record.get("average_ci"))
    over = record.get("average_over")
    sources = []
    for path in record.get("sources") or []:
        href, shown = _href(str(path), out_dir)
        provenance = runs.get(str(path)) if isinstance(runs.get(str(path)), dict) else {}
        sources.append(SourceView(str(path), href, shown, provenance))
    rank = record.get("rank")
    return RowView(
        id=f"row-{index}",
        rank=None if reference or not isinstance(rank, int) else rank,
        label=str(record.get("model") or record.get("label") or "?"),
        template=str(record.get("template") or ""),
        template_label=_template_label(record),
        way=_way(record),
        reference=reference,
        avg=CellView(json_number(record.get("average")), avg_low, avg_high),
        n_avg=len(over) if isinstance(over, list) else sum(cc in cells for cc in PAPER_COUNTRIES),
        coverage=CellView(json_number(record.get("coverage"))),
        specific=CellView(json_number(record.get("specific_average"))),
        runs=runs_count(record.get("runs")),
        spread=json_number(record.get("spread", record.get("average_run_sd"))),
        cells=cells,
        sources=sources,
        n_items=json_count(record.get("n_items")),
        reference_items=json_count(record.get("reference_items")),
    )
