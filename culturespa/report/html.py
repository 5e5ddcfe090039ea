"""The leaderboard as one self-contained web page (`index.html`), from the report's JSON payload.

The page is rendered from what `leaderboard.json` holds (rows, relations, run provenance), so
every field a row gains there can be shown here. The table is plain HTML (it reads without
JavaScript); a small inline script adds sorting and filters. The plots are inline SVG, so the page
needs no matplotlib, no network and no other file: it opens from a disk or any static host. Rows
with `kind: "reference"` (survey baselines) are drawn apart and never ranked; `runs`, `spread` and
`way` are shown when rows carry them.

Here the page is assembled; `page_rows` makes the rows' views, `page_plots` draws the SVG,
`page_analyses` makes the analyses' views and `page_numbers` reads the payload's numbers. The
template, CSS and script are in `page/`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from culturespa import __version__
from culturespa.report.page_analyses import (
    agreement_views,
    order_views,
    relation_views,
    steerability_views,
)
from culturespa.report.page_plots import MAX_BAR_ROWS, SERIES_COLOURS, bars_svg, heatmap_svg
from culturespa.report.page_rows import row_view
from culturespa.report.position import position_views
from culturespa.survey.countries import PAPER_COUNTRIES, WAVE7_COUNTRIES


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
        "relations": relation_views(payload.get("relations")),
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
