"""The page's plots as inline SVG (no matplotlib, nothing fetched): the heatmap of every row, the
per-country bars of the first rows with their intervals, and the country x country relations.
"""

from __future__ import annotations

import math
from html import escape

from culturespa.report.page_numbers import x100_text
from culturespa.report.page_rows import RowView

MAX_BAR_ROWS = 6
"""The bar chart shows the first rows only: more side by side do not read."""

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
        f'<text x="{scale_x - 6}" y="{y + 9}" text-anchor="end" class="axis">{x100_text(lo)}</text>'
        f'<text x="{scale_x + scale_w + 6}" y="{y + 9}" class="axis">{x100_text(hi)}</text>'
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
