"""The leaderboard as one self-contained web page (`index.html`), from the report's JSON payload.

The page is rendered from what `leaderboard.json` holds (rows, relations, run provenance), so
every field a row gains there can be shown here. The table is plain HTML (it reads without
JavaScript); a small inline script adds sorting and filters. The plots are inline SVG drawn here,
so the page needs no matplotlib, no network and no other file: it opens from a disk or any static
host. Rows with `kind: "reference"` (survey baselines) are drawn apart and never ranked; `runs`,
`spread` and `way` are shown when rows carry them.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from culturespa import __version__
from culturespa.prompts.task_names import WAY_LABELS
from culturespa.prompts.templates import TEMPLATES
from culturespa.report.item_counts import items_text
from culturespa.report.position import position_views
from culturespa.scoring.baselines import RULES
from culturespa.survey.countries import PAPER_COUNTRIES, WAVE7_COUNTRIES

MAX_BAR_ROWS = 6
# Perceptually uniform scales (viridis for scores, magma for similarities), as colour stops.
SCORE_COLOURS = (
    "#440154",
    "#472d7b",
    "#3b528b",
    "#2c728e",
    "#21918c",
    "#28ae80",
    "#5ec962",
    "#addc30",
    "#fde725",
)
SIMILARITY_COLOURS = (
    "#000004",
    "#1c1044",
    "#4f127b",
    "#812581",
    "#b5367a",
    "#e55064",
    "#fb8761",
    "#fec287",
    "#fcfdbf",
)
# Okabe-Ito: told apart with every common colour-vision deficiency.
SERIES_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")


# Numbers ---------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    """A finite number from JSON, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _x100(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _interval(pair: Any) -> tuple[float | None, float | None]:
    if isinstance(pair, (list, tuple)) and len(pair) == 2:
        return _num(pair[0]), _num(pair[1])
    return None, None


def _count(value: Any) -> int | None:
    """A count from JSON (a non-negative int), else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _count_text(value: Any) -> str:
    """A count for a table cell: the number, or '–' where the JSON holds none."""
    count = _count(value)
    return "–" if count is None else str(count)


def _n_runs(value: Any) -> int:
    """`runs` as a count (rows merged from several seeds carry it); one file per cell otherwise."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    return 1


# The view the template renders -----------------------------------------------------------


@dataclass
class CellView:
    """One score: text x100, its 95% interval, and the value the table sorts by."""

    value: float | None
    low: float | None = None
    high: float | None = None
    coverage: float | None = None

    @property
    def text(self) -> str:
        return _x100(self.value)

    @property
    def ci(self) -> str:
        if self.low is None or self.high is None:
            return ""
        return f"{_x100(self.low)}–{_x100(self.high)}"

    @property
    def sort(self) -> str:
        return "" if self.value is None else f"{100 * self.value:.4f}"

    @property
    def title(self) -> str:
        parts = [self.text]
        if self.ci:
            parts.append(f"95% interval {self.ci}")
        if self.coverage is not None:
            parts.append(f"coverage {_x100(self.coverage, 0)}%")
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
            low, high = _interval(cell.get("ci"))
            cells[cc] = CellView(_num(cell.get("score")), low, high, _num(cell.get("coverage")))
    avg_low, avg_high = _interval(record.get("average_ci"))
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
        avg=CellView(_num(record.get("average")), avg_low, avg_high),
        n_avg=len(over) if isinstance(over, list) else sum(cc in cells for cc in PAPER_COUNTRIES),
        coverage=CellView(_num(record.get("coverage"))),
        specific=CellView(_num(record.get("specific_average"))),
        runs=_n_runs(record.get("runs")),
        spread=_num(record.get("spread", record.get("average_run_sd"))),
        cells=cells,
        sources=sources,
        n_items=_count(record.get("n_items")),
        reference_items=_count(record.get("reference_items")),
    )


# SVG ---------------------------------------------------------------------------------------


def _mix(stops: tuple[str, ...], t: float) -> str:
    """The colour at t in [0, 1] along evenly spaced stops."""
    t = min(1.0, max(0.0, t))
    pos = t * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    frac = pos - i
    a = [int(stops[i][k : k + 2], 16) for k in (1, 3, 5)]
    b = [int(stops[i + 1][k : k + 2], 16) for k in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * frac):02x}" for x, y in zip(a, b))


def _ink(colour: str) -> str:
    """Black or white text, whichever reads better on `colour`."""
    r, g, b = (int(colour[k : k + 2], 16) / 255 for k in (1, 3, 5))
    return "#000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#fff"


def _tail(text: str, width: int) -> str:
    """Keep the end of a long name (the adapter and template are the telling part)."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _svg(width: float, height: float, label: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _gradient(gid: str, stops: tuple[str, ...]) -> str:
    parts = [f'<linearGradient id="{gid}">']
    for i, colour in enumerate(stops):
        parts.append(f'<stop offset="{i / (len(stops) - 1):.3f}" stop-color="{colour}"/>')
    return "<defs>" + "".join(parts) + "</linearGradient></defs>"


def heatmap_svg(rows: list[RowView], countries: list[str], metric: str) -> str:
    """Rows (models, then references) by countries and AVG; each cell's score x100 in colour."""
    values = [c.value for r in rows for c in [*r.cells.values(), r.avg] if c.value is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or 1.0
    columns = [*countries, "AVG"]
    cw, ch, top = (46 if len(columns) <= 12 else 44), 34, 30
    longest = max((max(len(r.label), 0.85 * len(r.setting)) for r in rows), default=10)
    label_w = min(320, max(150, 6.8 * min(longest, 46) + 12))
    n_refs = sum(r.reference for r in rows)
    gap = 22 if n_refs and n_refs < len(rows) else 0
    scale_w = min(260, cw * len(columns))
    width = label_w + max(cw * len(columns) + 8, scale_w + 48) + 12
    height = top + ch * len(rows) + gap + 56
    body = [_gradient("hm-scale", SCORE_COLOURS)]
    for j, name in enumerate(columns):
        x = label_w + cw * j + (8 if name == "AVG" else 0) + cw / 2
        body.append(
            f'<text x="{x:.0f}" y="{top - 10}" text-anchor="middle" class="axis">{name}</text>'
        )
    y = top
    for i, row in enumerate(rows):
        if gap and row.reference and (i == 0 or not rows[i - 1].reference):
            body.append(
                f'<text x="4" y="{y + 15}" class="axis muted">survey baselines (not ranked)</text>'
            )
            y += gap
        body.append(f'<g data-row="{row.id}">')
        body.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end" class="label">'
            f"<title>{escape(row.method)}</title>{escape(_tail(row.label, 46))}</text>"
            f'<text x="{label_w - 8}" y="{y + 27}" text-anchor="end" class="axis small muted">'
            f"{escape(_tail(row.setting, 50))}</text>"
        )
        for j, name in enumerate(columns):
            cell = row.avg if name == "AVG" else row.cells.get(name)
            x = label_w + cw * j + (8 if name == "AVG" else 0)
            if cell is None or cell.value is None:
                body.append(
                    f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" class="empty">'
                    f"<title>{escape(row.method)}, {name}: no score</title></rect>"
                )
                continue
            fill = _mix(SCORE_COLOURS, (cell.value - lo) / span)
            body.append(
                f'<rect x="{x}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}">'
                f"<title>{escape(row.method)}, {name}: {escape(cell.title)}</title></rect>"
                f'<text x="{x + (cw - 2) / 2:.0f}" y="{y + ch / 2 + 3:.0f}" text-anchor="middle" '
                f'class="value" fill="{_ink(fill)}">{cell.text}</text>'
            )
        body.append("</g>")
        y += ch
    y += 14
    scale_x = label_w
    body.append(
        f'<rect x="{scale_x}" y="{y}" width="{scale_w}" height="10" fill="url(#hm-scale)"/>'
        f'<text x="{scale_x - 6}" y="{y + 9}" text-anchor="end" class="axis">{_x100(lo)}</text>'
        f'<text x="{scale_x + scale_w + 6}" y="{y + 9}" class="axis">{_x100(hi)}</text>'
        f'<text x="{scale_x}" y="{y + 26}" class="axis muted">{escape(metric)} x100</text>'
    )
    label = f"Heatmap of {escape(metric)} x100 for {len(rows)} rows and {len(columns)} columns"
    return _svg(width, height, label, body)


def bars_svg(rows: list[RowView], countries: list[str], metric: str) -> str:
    """Per-country bars of up to MAX_BAR_ROWS rows, side by side, with 95% interval whiskers."""
    columns = [*countries, "AVG"]
    k = len(rows)
    bw = max(7.0, min(18.0, 64.0 / max(k, 1)))
    group = bw * k + 12
    left, top, plot_h = 40, 12, 220
    cells = [(r.avg if c == "AVG" else r.cells.get(c)) for r in rows for c in columns]
    lows = [(c.low if c.low is not None else c.value) for c in cells if c and c.value is not None]
    highs = [
        (c.high if c.high is not None else c.value) for c in cells if c and c.value is not None
    ]
    floor = max(0.0, 10 * math.floor((100 * min(lows, default=0) - 5) / 10))
    ceiling = min(100.0, 10 * math.ceil((100 * max(highs, default=1) + 2) / 10))
    ceiling = max(ceiling, floor + 10)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (100 * value - floor) / (ceiling - floor))

    width = left + group * len(columns) + 8 + 10
    height = top + plot_h + 30
    body = []
    for tick in range(int(floor), int(ceiling) + 1, 10):
        y = y_of(tick / 100)
        body.append(
            f'<line x1="{left}" x2="{width - 10:.0f}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{tick}</text>'
        )
    for j, name in enumerate(columns):
        x0 = left + group * j + (8 if name == "AVG" else 0) + 6
        body.append(
            f'<text x="{x0 + bw * k / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle" '
            f'class="axis">{name}</text>'
        )
        for i, row in enumerate(rows):
            cell = row.avg if name == "AVG" else row.cells.get(name)
            if cell is None or cell.value is None:
                continue
            x = x0 + bw * i
            y = y_of(max(cell.value, floor / 100))
            colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw - 1:.1f}" '
                f'height="{top + plot_h - y:.1f}" fill="{colour}">'
                f"<title>{escape(row.method)}, {name}: {escape(cell.title)}</title></rect>"
            )
            if cell.low is not None and cell.high is not None:
                xm = x + (bw - 1) / 2
                y1, y2 = y_of(max(cell.low, floor / 100)), y_of(cell.high)
                body.append(
                    f'<path d="M{xm:.1f} {y1:.1f}V{y2:.1f}M{xm - 3:.1f} {y1:.1f}h6M{xm - 3:.1f} '
                    f'{y2:.1f}h6" class="whisker"/>'
                )
    body.append(
        f'<line x1="{left}" x2="{width - 10:.0f}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'class="axisline"/>'
    )
    label = (
        f"Bars of {escape(metric)} x100 per country for {k} rows, with 95% intervals; "
        f"axis from {floor:.0f}"
    )
    return _svg(width, height, label, body)


def relations_svg(countries: list[str], matrix: list[list[float | None]], title: str) -> str:
    """A country x country similarity matrix (x100), the diagonal left blank."""
    n = len(countries)
    size = 34 if n <= 8 else 22
    left, top = 40, 40 if size >= 34 else 50
    off = [
        v
        for i, line in enumerate(matrix)
        for j, v in enumerate(line)
        if i != j and isinstance(v, (int, float))
    ]
    lo, hi = (min(off), max(off)) if off else (0.0, 100.0)
    span = hi - lo or 1.0
    body = [f'<text x="{left}" y="14" class="label">{escape(title)}</text>']
    for j, cc in enumerate(countries):
        x = left + size * j + size / 2
        if size >= 34:
            body.append(
                f'<text x="{x:.0f}" y="{top - 6}" text-anchor="middle" class="axis small">{cc}</text>'
            )
        else:  # narrow columns: the codes read upwards
            body.append(
                f'<text x="{x + 3.5:.1f}" y="{top - 4}" transform="rotate(-90 {x + 3.5:.1f} '
                f'{top - 4})" class="axis small">{cc}</text>'
            )
        body.append(
            f'<text x="{left - 4}" y="{top + size * j + size / 2 + 3:.0f}" text-anchor="end" '
            f'class="axis small">{cc}</text>'
        )
    for i, line in enumerate(matrix):
        for j, value in enumerate(line):
            x, y = left + size * j, top + size * i
            if i == j or not isinstance(value, (int, float)):
                body.append(
                    f'<rect x="{x}" y="{y}" width="{size - 1}" height="{size - 1}" class="empty"/>'
                )
                continue
            fill = _mix(SIMILARITY_COLOURS, (value - lo) / span)
            body.append(
                f'<rect x="{x}" y="{y}" width="{size - 1}" height="{size - 1}" fill="{fill}">'
                f"<title>{countries[i]} and {countries[j]}: {value:.1f}</title></rect>"
            )
            if size >= 34:
                body.append(
                    f'<text x="{x + size / 2 - 0.5:.1f}" y="{y + size / 2 + 3.5:.1f}" '
                    f'text-anchor="middle" class="value" fill="{_ink(fill)}">{value:.0f}</text>'
                )
    width, height = left + size * n + 6, top + size * n + 6
    label = f"{title}: similarity of {n} countries, x100"
    return _svg(width, height, label, body)


# The page ----------------------------------------------------------------------------------


@dataclass
class RelationView:
    method: str
    r: float | None
    model_svg: str
    survey_svg: str


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
        low, high = _interval(record.get("average_delta_ci"))
        mean = _num(record.get("average_delta"))
        average = "" if mean is None else f"{_signed(mean)} [{_signed(low)}, {_signed(high)}]"
        rows = []
        for code, c in record["countries"].items():
            if not isinstance(c, dict):
                continue
            c_low, c_high = _interval(c.get("delta_ci"))
            rows.append(
                {
                    "country": str(code),
                    "n_items": _count_text(c.get("n_items")),
                    "closer": f"{_x100(_num(c.get('closer')))}%",
                    "away": f"{_x100(_num(c.get('away')))}%",
                    "change": f"{_signed(_num(c.get('delta')))} [{_signed(c_low)}, {_signed(c_high)}]",
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
    number = _num(value)
    return "–" if number is None else f"{100 * number:.1f}%"


def _delta_text(record: dict[str, Any]) -> str:
    low, high = _interval(record.get("delta_ci"))
    text = _x100(_num(record.get("delta")))
    return text if low is None or high is None else f"{text} [{_x100(low)}, {_x100(high)}]"


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
                "n_items": _count_text(c.get("n_items")),
                "same": _pct_text(c.get("same")),
                "forward": _x100(_num(c.get("forward"))),
                "reversed": _x100(_num(c.get("reversed"))),
                "delta": _delta_text(c),
            }
            for cc, c in a["countries"].items()
            if isinstance(c, dict)
        ]
        avg = a.get("average") if isinstance(a.get("average"), dict) else None
        summary = (
            f"same option on {_pct_text(avg.get('same'))} of items; alignment forward - reversed "
            f"{_delta_text(avg)} (x100, mean over {_count_text(avg.get('n_countries'))} of the paper's "
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
                "n_items": _count_text(a.get("n_items")),
                "same": _pct_text(a.get("same")),
            }
        )
    return lines


def page_context(
    payload: dict[str, Any], out_dir: Path | None = None, generated: str | None = None
) -> dict[str, Any]:
    """Everything the template shows, from the leaderboard payload."""
    from markupsafe import Markup

    runs = payload.get("runs") if isinstance(payload.get("runs"), dict) else {}
    views = [
        row_view(record, i, runs, out_dir)
        for i, record in enumerate(payload.get("rows") or [], 1)
        if isinstance(record, dict)
    ]
    models = [v for v in views if not v.reference]
    references = [v for v in views if v.reference]
    present = {cc for v in views for cc in v.cells}
    countries = [cc for cc in WAVE7_COUNTRIES if cc in present]
    metric = str(payload.get("metric") or "alignment")
    bar_rows = models[:MAX_BAR_ROWS]
    relations = []
    for method, rec in (payload.get("relations") or {}).items():
        if not isinstance(rec, dict) or not rec.get("countries"):
            continue
        relations.append(
            RelationView(
                method=method,
                r=_num(rec.get("r")),
                model_svg=Markup(relations_svg(rec["countries"], rec["model"], "model")),
                survey_svg=Markup(relations_svg(rec["countries"], rec["survey"], "survey")),
            )
        )
    origins = [p.get("origin") for p in runs.values() if isinstance(p, dict)]
    return {
        "metric": metric,
        "models": models,
        "references": references,
        "countries": countries,
        "country_names": {cc: WAVE7_COUNTRIES[cc].name for cc in countries},
        "paper_countries": PAPER_COUNTRIES,
        "templates": list(
            dict.fromkeys((v.template, v.template_label) for v in models if v.template)
        ),
        "labels": sorted({v.label for v in models}, key=str.lower),
        "ways": list(dict.fromkeys((v.way, v.way_label) for v in models if v.way)),
        "heatmap": Markup(heatmap_svg(models + references, countries, metric)) if views else "",
        "bars": Markup(bars_svg(bar_rows, countries, metric)) if bar_rows else "",
        "bar_rows": bar_rows,
        "series_colours": SERIES_COLOURS,
        "relations": relations,
        "steerability": steerability_views(payload.get("steerability")),
        "order": order_views(payload.get("order_consistency")),
        "agreement": agreement_views(payload.get("agreement")),
        "position_led": position_views(payload.get("position_led")),
        "notes": [str(n) for n in payload.get("notes") or []],
        "n_results": origins.count("lm-eval results"),
        "n_replies": origins.count("reply file"),
        "generated": generated or time.strftime("%Y-%m-%d %H:%M %Z"),
        "version": __version__,
    }


def render_page(
    payload: dict[str, Any], out_dir: str | Path | None = None, generated: str | None = None
) -> str:
    """The whole page as one HTML string: CSS, script and plots inline, nothing fetched."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("culturespa.report", "page"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    folder = Path(out_dir) if out_dir is not None else None
    context = page_context(payload, folder, generated)
    page = env.get_template("leaderboard.html.jinja")
    assets = {name: env.loader.get_source(env, name)[0] for name in ("page.css", "page.js")}
    return page.render(css=assets["page.css"], js=assets["page.js"], **context)
