"""PNG plots of a report: country x method heatmap, paired bars with intervals, culture relations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from culturespa.report.analysis import relation_matrices
from culturespa.report.rows import Row, countries_in
from culturespa.survey.countries import WAVE7_COUNTRIES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tail(text: str, width: int) -> str:
    """Keep the end of a long name (adapter and template are the telling part)."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _two_lines(row: Row, width: int = 44) -> str:
    """'model\ntemplate' for axis labels."""
    return f"{_tail(row.label, width)}\n{row.method.rsplit(' | ', 1)[-1]}"


def plot_heatmap(rows: list[Row], path: Path, metric: str) -> Path:
    """Alignment (x100) of every method (rows) in every country (columns), AVG last."""
    plt = _pyplot()
    countries = countries_in(rows)
    columns = [*countries, "AVG"]
    data = np.full((len(rows), len(columns)), np.nan)
    for i, row in enumerate(rows):
        for j, cc in enumerate(countries):
            if cc in row.cells:
                data[i, j] = 100 * row.cells[cc].value
        data[i, -1] = 100 * row.avg
    width = max(7.0, 3.5 + 0.62 * len(columns))
    fig, ax = plt.subplots(figsize=(width, 1.6 + 0.62 * len(rows)))
    image = ax.imshow(np.ma.masked_invalid(data), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [_two_lines(r) for r in rows], fontsize=8)
    ax.axvline(len(columns) - 1.5, color="white", linewidth=2)
    finite = data[np.isfinite(data)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            if np.isfinite(data[i, j]):
                color = "black" if data[i, j] > mid else "white"
                ax.text(
                    j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=8, color=color
                )
    n_models = sum(not r.is_reference for r in rows)
    if 0 < n_models < len(rows):  # survey reference rows below a rule, their labels in italics
        ax.axhline(n_models - 0.5, color="white", linewidth=3)
        for label in ax.get_yticklabels()[n_models:]:
            label.set_fontstyle("italic")
            label.set_color("#555555")
    fig.colorbar(image, ax=ax, label=f"{metric} x100", fraction=0.03, pad=0.02)
    title = f"Cultural alignment ({metric} x100) by method and country"
    if n_models < len(rows):
        title += "\nbelow the line: survey references (answer rules without a model)"
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


BAR_REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("middle", "#7f7f7f", "--"),
    ("consensus", "#2ca02c", "--"),
    ("nearest_country", "#9467bd", "--"),
)
"""Survey references drawn across the bar plot's country groups (rule, colour, line style)."""


def _row_bars(ax, row: Row, countries: list[str], x: np.ndarray, offset: float, color: str):
    """One row's bars (countries, then AVG) with their interval whiskers; the bars' lowest reach."""
    values, err = [], [[], []]
    for cc in countries:
        cell = row.cells.get(cc)
        value = 100 * cell.value if cell else np.nan
        lo = 100 * cell.ci_low if cell and not math.isnan(cell.ci_low) else value
        hi = 100 * cell.ci_high if cell and not math.isnan(cell.ci_high) else value
        values.append(value)
        err[0].append(value - lo)
        err[1].append(hi - value)
    avg = 100 * row.avg
    values.append(avg)
    err[0].append(avg - 100 * row.avg_low if not math.isnan(row.avg_low) else 0)
    err[1].append(100 * row.avg_high - avg if not math.isnan(row.avg_high) else 0)
    # A percentile interval may miss the point estimate on tiny samples: clip at zero.
    err = np.clip(np.nan_to_num(np.array(err)), 0, None)
    ax.bar(
        x + offset,
        values,
        width=0.4,
        color=color,
        label=_tail(row.method, 90),
        yerr=err,
        capsize=3,
        error_kw={"linewidth": 1},
    )
    return [v - e for v, e in zip(values, err[0]) if np.isfinite(v)]


def _reference_ticks(ax, by_rule: dict[str, Row], countries: list[str], x: np.ndarray):
    """The survey references' values as ticks across each pair of bars: (legend handles, values)."""
    from matplotlib.lines import Line2D

    handles, marked = [], []
    for rule, color, style in BAR_REFERENCES:
        ref = by_rule.get(rule)
        if ref is None:
            continue
        marks = [100 * ref.cells[cc].value if cc in ref.cells else np.nan for cc in countries]
        marks.append(100 * ref.avg)
        ax.hlines(
            marks,
            x - 0.42,
            x + 0.42,
            colors=color,
            linestyles=style,
            linewidth=1.4,
        )
        # A line collection with gaps (countries the reference lacks) draws no legend sample.
        handles.append(
            Line2D(
                [], [], color=color, linestyle=style, linewidth=1.4,
                label=f"reference: {ref.template_label}",
            )
        )  # fmt: skip
        marked.extend(v for v in marks if np.isfinite(v))
    return handles, marked


def plot_paired_bars(
    first: Row, second: Row, path: Path, metric: str, references: list[Row] | None = None
) -> Path:
    """Per-country bars of two rows side by side, with 95% bootstrap intervals where known, and
    the survey references' values as ticks across each country's pair of bars."""
    plt = _pyplot()
    countries = [cc for cc in WAVE7_COUNTRIES if cc in first.cells or cc in second.cells]
    x = np.arange(len(countries) + 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 + 0.75 * len(x)), 4.2))
    lows = []
    for offset, row, color in ((-0.2, first, "#4C72B0"), (0.2, second, "#DD8452")):
        lows.extend(_row_bars(ax, row, countries, x, offset, color))
    by_rule = {r.rule: r for r in references or [] if r.is_reference}
    reference_handles, marked = _reference_ticks(ax, by_rule, countries, x)
    lows.extend(marked)
    floor = max(0.0, 10 * math.floor((min(lows) - 5) / 10)) if lows else 0.0
    ax.set_ylim(bottom=floor)
    ax.set_xticks(x, [*countries, "AVG"])
    ax.axvline(len(countries) - 0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_ylabel(f"{metric} x100 (axis from {floor:.0f})")
    has_ci = any(not math.isnan(c.ci_low) for r in (first, second) for c in r.cells.values())
    note = "error bars: 95% bootstrap intervals" if has_ci else "no sample logs: no intervals"
    ax.set_title(f"Alignment per country ({note})", fontsize=10)
    bar_handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=bar_handles + reference_handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=1 if not by_rule else 2,
        fontsize=8,
        frameon=False,
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")  # the legend below the axes, whole
    plt.close(fig)
    return path


def plot_relations(row: Row, path: Path) -> tuple[Path, float]:
    """The paper's 'relations between cultures': model vs survey country similarity, with r."""
    plt = _pyplot()
    countries, model, survey, r = relation_matrices(row)
    size = 2.5 + 0.3 * len(countries)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1.5, size + 0.9))
    off_diagonal = ~np.eye(len(countries), dtype=bool)
    for ax, matrix, title in (
        (axes[0], model, "model (culture-aware answers)"),
        (axes[1], survey, "survey (WVS majority answers)"),
    ):
        # The diagonal (100) is left blank so that the colours spread over the pairs.
        shown = np.where(off_diagonal, matrix, np.nan)
        image = ax.imshow(np.ma.masked_invalid(shown), cmap="magma")
        ax.set_xticks(range(len(countries)), countries, rotation=90)
        ax.set_yticks(range(len(countries)), countries)
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="similarity x100")
        if len(countries) <= 8:
            for i in range(len(countries)):
                for j in range(len(countries)):
                    value = shown[i, j]
                    if np.isfinite(value):
                        ax.text(
                            j,
                            i,
                            f"{value:.0f}",
                            ha="center",
                            va="center",
                            fontsize=8,
                            color="black" if value > np.nanmean(shown) else "white",
                        )
    r_text = "n/a" if math.isnan(r) else f"{r:.2f}"
    fig.suptitle(
        f"Relations between cultures: {_tail(row.label, 70)}, {row.method.rsplit(' | ', 1)[-1]}\n"
        f"country similarity (alignment score x100 between two countries' answers); "
        f"Pearson r between the two matrices = {r_text}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path, r


def _change_panel(ax, rows, y, color: str, xlabel: str) -> None:
    """Each row's `delta` (x100) with its 95% interval as a horizontal error bar, and 0 marked."""
    delta = np.array([100 * r.delta for r in rows])
    low = np.array([100 * r.delta_low for r in rows])
    high = np.array([100 * r.delta_high for r in rows])
    # A percentile interval may miss the point estimate on tiny samples: clip at zero.
    err = np.clip(np.nan_to_num(np.vstack([delta - low, high - delta])), 0, None)
    ax.errorbar(delta, y, xerr=err, fmt="o", color=color, capsize=3)
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlabel(xlabel)


def plot_steerability(analysis, path: Path) -> Path:
    """The persona's effect per country: answers moved closer to / away from the survey majority
    (left), and the change in alignment with its 95% paired interval (right)."""
    plt = _pyplot()
    steers = analysis.countries
    countries = [s.country for s in steers]
    y = np.arange(len(countries))[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 1.2 + 0.38 * len(countries)), sharey=True)
    closer = np.array([100 * s.closer for s in steers])
    away = np.array([100 * s.away for s in steers])
    unchanged = np.array([100 * s.unchanged for s in steers])
    left.barh(y, closer, color="#009e73", label="closer to the majority")
    left.barh(y, unchanged, left=closer, color="#dddddd", label="unchanged")
    left.barh(y, away, left=closer + unchanged, color="#d55e00", label="away from it")
    left.set_xlim(0, 100)
    left.set_xlabel("share of items (%)")
    left.set_yticks(y, countries)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=3, fontsize=8, frameon=False)
    _change_panel(right, steers, y, "#0072b2", "change in alignment x100 (aware - unaware), 95% CI")
    title = f"Steerability: {_tail(analysis.name, 70)}"
    if analysis.average is not None:
        mean, lo, hi = (100 * v for v in analysis.average)
        title += f"\nmean change over the paper's countries {mean:.1f} [{lo:.1f}, {hi:.1f}]"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_training_loss(curves: dict[str, list], path: Path, title: str | None = None) -> Path:
    """Training loss per logged optimizer step of one or more adapters (`LossPoint`s, from
    `culturespa.report.loss_history.read_loss_history`), against the share of the epoch so that
    runs of different lengths (joint, one per country) share the x axis; the first curve is drawn
    bold, and the number of steps is in the legend."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for i, (label, points) in enumerate(curves.items()):
        if not points:
            continue
        epochs = [p.epoch for p in points]
        losses = [p.loss for p in points]
        steps = max(p.step for p in points)
        ax.plot(
            epochs,
            losses,
            linewidth=2.2 if i == 0 else 1.0,
            alpha=1.0 if i == 0 else 0.75,
            marker="o" if len(points) <= 30 else None,
            markersize=3,
            label=f"{label} ({steps} step{'s' if steps != 1 else ''})",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (answer + end of turn)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Training loss per optimizer step", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_order_consistency(analysis, path: Path) -> Path:
    """Forward against reversed options, per country: the share of items where both name the
    same option (left), and alignment forward minus reversed with its 95% paired interval (right)."""
    plt = _pyplot()
    rows = [c for c in analysis.countries if c.n_items]
    countries = [c.country for c in rows]
    y = np.arange(len(countries))[::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 1.4 + 0.38 * len(countries)), sharey=True)
    same = np.array([100 * c.same for c in rows])
    left.barh(y, same, color="#0072b2", label="same option")
    left.barh(y, 100 - same, left=same, color="#dddddd", label="another option")
    for yi, value in zip(y, same):
        left.text(min(value + 1, 90), yi, f"{value:.0f}%", va="center", fontsize=8)
    left.set_xlim(0, 100)
    left.set_xlabel("share of items (%)")
    left.set_yticks(y, countries)
    left.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2, fontsize=8, frameon=False)
    _change_panel(right, rows, y, "#d55e00", "alignment x100, forward - reversed options, 95% CI")
    title = f"Order consistency: {_tail(analysis.name, 70)}"
    if analysis.average is not None:
        avg = analysis.average
        title += (
            f"\nsame option on {100 * avg.same:.1f}% of items; alignment forward - reversed "
            f"{100 * avg.delta:.1f} [{100 * avg.delta_low:.1f}, {100 * avg.delta_high:.1f}] "
            f"over {avg.n_countries} of the paper's countries"
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path
