"""A self-contained HTML page for a selection record (the KFP ``HTML`` output).

:func:`selection_html` takes the record of :meth:`~.select.SelectionDecision.to_record` (a
:class:`~greenkfp.components.records.SelectionRecord`, also as read back from JSON) and returns one HTML page: the verdict
and its reason, the settings, plots of the primary objective (accuracy) against SCI and against
latency p95 (and any other objective) with the front highlighted, the chosen model marked and
the constraint limits drawn, and a table of every candidate with its status and reasons.

Plots are inline SVG drawn with matplotlib (its SVG backend through ``Figure``, no pyplot state),
so the page needs no network and no files beside it. Every piece of text from the record is
escaped.
"""

from __future__ import annotations

import html
import math
from typing import Any

from ..records import SelectionCandidate, SelectionRecord
from .select import ACCURACY, LATENCY_P95, SCI, TRAINING_EMISSIONS

# status -> (label, colour, marker, size); every colour at least 3:1 against white (WCAG non-text contrast)
_STYLE = {
    "chosen": ("chosen", "#c62828", "*", 320),  # drawn hollow: a point under it stays visible
    "front": ("on the front", "#1f5fa8", "o", 60),
    "dominated": ("dominated", "#8a8a8a", "o", 34),
    "violates_constraints": ("violates a constraint", "#8a8a8a", "x", 40),
    "missing_objective": ("missing objective", "#7a7a7a", "s", 30),
    "ineligible": ("ineligible", "#7a7a7a", "^", 34),
}
_SHORT = {ACCURACY: "accuracy", LATENCY_P95: "latency p95", SCI: "SCI", TRAINING_EMISSIONS: "training emissions",
          "energy_per_inference_kwh": "energy per inference"}
# constraint -> the metric it limits (drawn as a dashed line)
_LIMITS = {"min_accuracy": ACCURACY, "max_latency_ms": LATENCY_P95, "max_sci": SCI}
#: front members named on a plot at most (the chosen one always); the rest are in the table and
#: on hover, so the names never crowd the points
_LABEL_MAX = 12
#: a reason longer than this is collapsed in the table (``<details>``)
_REASON_SHORT = 90

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px auto;color:#222;
max-width:1100px;padding:0 12px;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em}
.verdict{padding:12px 16px;border-radius:6px;margin:12px 0;overflow-wrap:anywhere}
.verdict .head{font-size:1.2em;font-weight:600;margin:0 0 .3em}
.ok{background:#e8f5e9;border:1px solid #66bb6a} .blocked{background:#ffebee;border:1px solid #e57373}
table{border-collapse:collapse;font-size:.9em} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top;
overflow-wrap:break-word} .scroll{overflow-x:auto;max-width:100%} h2{break-after:avoid}
figure.plot{overflow-x:auto} figure.plot svg{min-width:560px}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.num .ci{display:block;color:#555;font-size:.85em}
tr.chosen td{background:#fff3e0;font-weight:600} tr.front td{background:#e3f2fd}
figure.plot{margin:0 0 1.2em} figure.plot svg{width:100%;height:auto}
.muted{color:#555;font-size:.9em;overflow-wrap:anywhere} td:first-child,td:last-child{overflow-wrap:anywhere} code{background:#f5f5f5;padding:0 3px} details summary{cursor:pointer;color:#1a4f8b}
@media print{body{max-width:none;margin:0;font-size:10pt} figure,tr,.verdict{break-inside:avoid}
h2{break-after:avoid;break-inside:avoid} figure.plot svg{min-width:0} .scroll{overflow:visible}
table{table-layout:fixed;width:100%} td,th{overflow-wrap:anywhere} td.num{white-space:normal;overflow-wrap:normal}
details.clip>summary{display:none}
table.candidates{table-layout:auto} th{overflow-wrap:normal} table.candidates td{overflow-wrap:normal}
table.candidates td:first-child,table.candidates td:last-child{overflow-wrap:anywhere}
table.candidates td:last-child details{font-size:.88em;line-height:1.25}
details::details-content{content-visibility:visible;display:block} details summary{color:#222}}
@page{margin:1.5cm}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 3) -> str:
    """A figure rounded to ``digits`` significant figures, plain decimals."""
    from ..reporting.svg import plain_number

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return plain_number(float(value), digits)
    return "-" if value is None else _e(value)


_PREFIXES = ((1.0, ""), (1e3, "m"), (1e6, "µ"), (1e9, "n"), (1e12, "p"))


def _gram_scale(values: list[float]) -> tuple[float, str]:
    """The factor and prefix that bring grams' largest magnitude to at least 1: (1e6, 'µ') for 2.7e-6."""
    top = max((abs(v) for v in values), default=0.0)
    for factor, prefix in _PREFIXES:
        if top == 0 or top * factor >= 1:
            return factor, prefix
    return _PREFIXES[-1]


def _display(record: SelectionRecord, metric: str) -> tuple[float, str, str]:
    """How a metric is shown: (factor, unit, label with the unit): accuracy in %, latency in ms
    or µs, grams with the prefix that makes them readable, SCI in its functional unit."""
    values = [v for c in record.candidates if isinstance(v := c.metrics.get(metric), (int, float))
              and math.isfinite(v)]
    name = _SHORT.get(metric, metric.replace("_", " "))
    if metric == ACCURACY:
        return 100.0, "%", "accuracy (%)"
    if metric == LATENCY_P95:
        if values and max(abs(v) for v in values) < 1:
            return 1000.0, "µs", "latency p95 (µs)"
        return 1.0, "ms", "latency p95 (ms)"
    if metric == SCI:
        factor, prefix = _gram_scale(values)
        per = next((str(c.metadata.get("sci_unit")) for c in record.candidates if c.metadata.get("sci_unit")), "")
        per = per.split(" per ", 1)[1] if " per " in per else "functional unit"
        unit = f"{prefix}g CO2eq per {per}"
        return factor, unit, f"SCI ({unit})"
    if metric.endswith("_g") or metric == TRAINING_EMISSIONS:
        factor, prefix = _gram_scale(values)
        return factor, f"{prefix}g CO2eq", f"{name.removesuffix(' g')} ({prefix}g CO2eq)"
    if metric.endswith("_kwh"):
        return 1.0, "kWh", f"{name.removesuffix(' kwh')} (kWh)"
    return 1.0, "", name


def _direction(metric: str, objectives: dict[str, str]) -> str:
    if metric not in objectives:
        return ""
    return ", higher is better" if objectives[metric] == "max" else ", lower is better"


def _mpl_text(text: str) -> str:
    """Text for matplotlib: a ``$`` would start mathtext (a backslash outside mathtext is drawn as
    it is, so it stays single)."""
    return str(text).replace("$", r"\$")


#: a name on a plot at most this long; longer ones end in an ellipsis (the full name is in the
#: point's hover title and the table)
_NAME_MAX = 40


def _short_name(name: str, limit: int = _NAME_MAX) -> str:
    name = str(name)
    return name if len(name) <= limit else name[:limit - 1].rstrip() + "\u2026"


def plot_axes(record: SelectionRecord) -> list[tuple[str, str]]:
    """(x, y) metric pairs to plot: the primary objective against SCI, latency p95, then any
    other objective, each only when some candidate has both values."""
    y = record.primary or ACCURACY
    xs = [SCI, LATENCY_P95] + [o.name for o in record.objectives]
    pairs = []
    for x in dict.fromkeys(xs):
        if x == y:
            continue
        if any(_point(c, x, y) for c in record.candidates):
            pairs.append((x, y))
    return pairs


def _point(candidate: SelectionCandidate, x: str, y: str) -> tuple[float, float] | None:
    vx, vy = candidate.metrics.get(x), candidate.metrics.get(y)
    if isinstance(vx, (int, float)) and isinstance(vy, (int, float)) and math.isfinite(vx) and math.isfinite(vy):
        return float(vx), float(vy)
    return None


def _bounds(candidate: SelectionCandidate, metric: str) -> tuple[float, float] | None:
    low, high = candidate.metrics.get(f"{metric}_low"), candidate.metrics.get(f"{metric}_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and math.isfinite(low) and math.isfinite(high):
        return float(low), float(high)
    return None


def _figure_text(candidate: SelectionCandidate, metric: str, factor: float, unit: str) -> str:
    value = candidate.metrics.get(metric)
    if not isinstance(value, (int, float)):
        return "-"
    bounds = _bounds(candidate, metric)
    space = "" if unit == "%" else " "
    text = f"{_num(value * factor)}{space}{unit}"
    if bounds is not None and bounds[0] != bounds[1]:
        text += f" [{_num(bounds[0] * factor)} to {_num(bounds[1] * factor)}]"
    return text


def spread_labels(positions: list[float], gap: float) -> list[float]:
    """Label heights (axes fractions, 0-1) as close as can be to ``positions`` with at least
    ``gap`` between neighbours, in the same order; fits ``1 / gap + 1`` labels at most."""
    order = sorted(range(len(positions)), key=lambda k: positions[k])
    ys = [min(max(positions[k], 0.0), 1.0) for k in order]
    for k in range(1, len(ys)):
        ys[k] = max(ys[k], ys[k - 1] + gap)
    if ys and ys[-1] > 1.0:
        ys[-1] = 1.0
        for k in range(len(ys) - 2, -1, -1):
            ys[k] = min(ys[k], ys[k + 1] - gap)
    out = [0.0] * len(positions)
    for k, y in zip(order, ys):
        out[k] = y
    return out


def _drop_crossing_leader(figure, ax, text, label_at: tuple[float, float], at: tuple[float, float],
                          others: list[tuple[float, float]], clearance_pt: float = 7.0) -> bool:
    """Hide ``text``'s leader line (from its label to the point ``at``, data coordinates) when it
    passes within ``clearance_pt`` of another plotted point (after the figure's layout; the label
    at ``label_at``, axes fraction); the
    label stays, in the chosen's colour, and the hollow star is the only one. True if hidden."""
    figure.draw_without_rendering()
    transform = ax.transData
    end = transform.transform(at)
    start = ax.transAxes.transform(label_at)
    dx, dy = end[0] - start[0], end[1] - start[1]
    length2 = dx * dx + dy * dy or 1.0
    limit = clearance_pt * figure.dpi / 72.0
    for other in others:
        if other == at:
            continue
        ox, oy = transform.transform(other)
        t = min(1.0, max(0.0, ((ox - start[0]) * dx + (oy - start[1]) * dy) / length2))
        if math.hypot(start[0] + t * dx - ox, start[1] + t * dy - oy) < limit:
            text.arrow_patch.set_visible(False)
            return True
    return False


def _svg_plot(record: SelectionRecord, x: str, y: str) -> str:
    import matplotlib

    from ..reporting.svg import font_rc, new_figure, svg_figure

    objectives = {o.name: o.direction for o in record.objectives}
    fx, ux, label_x = _display(record, x)
    fy, uy, label_y = _display(record, y)
    points = [(c, p) for c in record.candidates if (p := _point(c, x, y))]
    name = f"plot-{x}-{y}".replace("_", "-")
    hover: dict[str, str] = {}
    height = 4.8
    with matplotlib.rc_context({**font_rc(), "font.size": 9}):
        figure, axes = new_figure(8.4, height)
        ax = axes[0, 0]
        ax.grid(True, color="#dddddd", linewidth=0.6)
        seen = set()
        order = ("ineligible", "missing_objective", "violates_constraints", "dominated", "front", "chosen")
        for status in order:
            for k, (c, (px, py)) in enumerate(points):
                if c.status != status:
                    continue
                label_text, colour, marker, size = _STYLE.get(c.status, (c.status, "#8a8a8a", "o", 30))
                bx, by = _bounds(c, x), _bounds(c, y)
                if bx or by:
                    ax.errorbar(px * fx, py * fy, fmt="none", ecolor="#8a8a8a", elinewidth=0.8, zorder=1,
                                xerr=None if bx is None else [[(px - bx[0]) * fx], [(bx[1] - px) * fx]],
                                yerr=None if by is None else [[(py - by[0]) * fy], [(by[1] - py) * fy]])
                if status == "chosen":  # hollow, thick outline: a front member under it shows through
                    edge = {"facecolors": "none", "edgecolors": colour, "linewidths": 1.8}
                elif status == "front":
                    edge = {"c": colour, "edgecolors": "#111111", "linewidths": 0.6}
                else:
                    edge = {"c": colour}
                dot = ax.scatter([px * fx], [py * fy], s=size, marker=marker,
                                 zorder={"chosen": 4, "front": 3}.get(status, 2),
                                 label=None if status in seen else
                                 (_mpl_text(f"chosen: {_short_name(c.name, 30)}") if status == "chosen" else label_text),
                                 **edge)
                seen.add(status)
                dot.set_gid(f"pt-{k}")
                hover[f"pt-{k}"] = (f"{c.name} ({label_text}): {_SHORT.get(y, y)} {_figure_text(c, y, fy, uy)}; "
                                    f"{_SHORT.get(x, x)} {_figure_text(c, x, fx, ux)}")
        for constraint, metric in _LIMITS.items():
            limit = record.constraints.get(constraint)
            if limit is None or metric not in (x, y):
                continue
            line = ax.axvline if metric == x else ax.axhline
            line(limit * (fx if metric == x else fy), color="#b34700", linestyle="--", linewidth=1,
                 label=f"{constraint} = {limit:g}")
        drop, reference = record.constraints.get("max_accuracy_drop_points"), record.accuracy_reference
        if drop is not None and reference and ACCURACY in (x, y) and isinstance(reference.get(ACCURACY), float):
            floor = (reference[ACCURACY] - drop / 100.0) * 100.0
            (ax.axvline if x == ACCURACY else ax.axhline)(floor, color="#b34700", linestyle="--", linewidth=1,
                                                          label=f"max_accuracy_drop_points = {drop:g}")
        ax.ticklabel_format(style="plain", useOffset=False)
        ax.set_xlabel(_mpl_text(label_x + _direction(x, objectives)))
        ax.set_ylabel(_mpl_text(label_y + _direction(y, objectives)))
        ax.set_title(_mpl_text(f"{_SHORT.get(y, y)} against {_SHORT.get(x, x)}"), fontsize=10)
        ax.autoscale_view()
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        # name the choice and the front in a column right of the plot, spread so no two overlap,
        # each joined to its point by a line; everything else is on hover and in the table
        named = [(c, p) for c, p in points if c.status == "chosen"]
        front = sorted(((c, p) for c, p in points if c.status == "front"), key=lambda cp: (cp[1][1], cp[1][0]))
        if len(front) > _LABEL_MAX:  # evenly along the front, its two ends included
            front = [front[round(k * (len(front) - 1) / (_LABEL_MAX - 1))] for k in range(_LABEL_MAX)]
        named += front
        chosen_label = None
        axes_height = height - 1.6  # inches: the figure less its title, axis labels and legend
        gap = 0.17 / axes_height  # one 8 pt line and its spacing, in axes fractions
        wanted = [((p[1] * fy) - y0) / ((y1 - y0) or 1.0) for _, p in named]
        for k, ((c, (px, py)), at) in enumerate(zip(named, spread_labels(wanted, gap))):
            chosen = c.status == "chosen"
            text = ax.annotate(_mpl_text(_short_name(c.name) + (" (chosen)" if chosen else "")), (px * fx, py * fy),
                               xycoords="data", xytext=(1.03, at), textcoords="axes fraction", va="center",
                               ha="left", fontsize=8, fontweight="bold" if chosen else "normal",
                               color="#b71c1c" if chosen else "#222222", annotation_clip=False,
                               zorder=1.5,  # the leader line passes behind the points it crosses
                               arrowprops={"arrowstyle": "-", "color": "#b71c1c" if chosen else "#777777",
                                           "linewidth": 0.7, "shrinkA": 1, "shrinkB": 5})
            text.set_gid(f"label-{k}")
            if chosen:
                chosen_label = (text, (1.03, at), (px * fx, py * fy))
        unnamed = sum(c.status == "front" for c, _ in points) - len(front)
        if unnamed > 0:
            ax.annotate(f"+{unnamed} more on the front: hover or see the table", (1.03, -0.08),
                        xycoords="axes fraction", fontsize=7.5, color="#555555", annotation_clip=False)
        figure.legend(loc="outside lower center", ncol=4, fontsize=8, frameon=False)
        if chosen_label is not None:  # its leader line must not run through other points: dropped if it would
            _drop_crossing_leader(figure, ax, *chosen_label, [(p[0] * fx, p[1] * fy) for _, p in points])
        chosen = next((c for c in record.candidates if c.status == "chosen"), None)
        description = (f"{len(points)} of {len(record.candidates)} candidates plotted, {label_y} against {label_x}; "
                       f"front: {', '.join(record.front) or 'none'}; "
                       + (f"chosen: {chosen.name} at {_SHORT.get(y, y)} {_figure_text(chosen, y, fy, uy)} and "
                          f"{_SHORT.get(x, x)} {_figure_text(chosen, x, fx, ux)}" if chosen else "none chosen")
                       + ". Every point's figures are in the candidates' table.")
        svg = svg_figure(figure, name, f"{_SHORT.get(y, y)} against {_SHORT.get(x, x)}: the Pareto front and "
                                       "the chosen model", description, hover=hover)
    return svg


def _plots_html(record: SelectionRecord) -> str:
    pairs = plot_axes(record)
    if not pairs:
        return '<p class="muted">No plot: no candidate has the values to plot.</p>'
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # a dependency of greenkfp, but the report must not fail for a picture
        return '<p class="muted">Plots unavailable: matplotlib is not installed.</p>'
    note = ""
    if len(record.objectives) > 2:
        note = ('<p class="muted">The front is computed over all objectives; in a two-objective view a front '
                "member may look dominated by another.</p>")
    figures = "".join(
        f'<figure class="plot" data-x="{_e(x)}" data-y="{_e(y)}">{_svg_plot(record, x, y)}'
        f'<figcaption class="muted">{_e(_SHORT.get(y, y))} against {_e(_SHORT.get(x, x))}; grey bars: 95 % '
        "intervals. Hover a point for its name and figures.</figcaption></figure>"
        for x, y in pairs
    )
    return f'<div class="plots">{figures}</div>{note}'


def _settings_html(record: SelectionRecord) -> str:
    objectives = ", ".join(f"{_SHORT.get(o.name, o.name.replace('_', ' '))} "
                           f"({'higher is better' if o.direction == 'max' else 'lower is better'})"
                           for o in record.objectives)
    constraints = ", ".join(f"{k} = {v:g}" for k, v in record.constraints.items() if v is not None)
    weights = record.weights
    ref = record.accuracy_reference
    reference = "-"
    if ref:
        value = ref.get(ACCURACY)
        reference = f"{ref['name']} ({value * 100:.1f} %)" if isinstance(value, (int, float)) else str(ref["name"])
    rows = [
        ("rule", f"{record.rule}: {record.rule_definition or ''}"),
        ("objectives", objectives or "-"),
        ("constraints", constraints or "none"),
        ("weights", ", ".join(f"{k} {v:.3g}" for k, v in weights.items()) if weights else "-"),
        ("accuracy reference (the most accurate variant, any precision: accuracy drops are measured from it; "
         "the baseline below is an fp32)", reference),
        ("scores", record.score_direction or "-"),
        ("ties", record.tie_break or "-"),
        ("dominance", record.dominance or "-"),
        ("baseline", record.baseline or "-"),
        ("against the baseline (95 % intervals)", _verdicts(record) or "-"),
    ]
    if record.energy_guard:
        rows.append(("energy guard", record.energy_guard))
    return ("<div class='scroll'><table>" + "".join(f"<tr><th scope='row'>{_e(k)}</th><td>{_collapsed(v, 160)}</td></tr>"
                                                    for k, v in rows) + "</table></div>")


def _verdicts(record: SelectionRecord) -> str:
    return "; ".join(f"{_SHORT.get(k, k.replace('_', ' '))}: {v['verdict']}"
                     for k, v in (record.significance or {}).items() if isinstance(v, dict) and v.get("verdict"))


def _collapsed(text: str, limit: int = _REASON_SHORT) -> str:
    """``text`` escaped; when longer than ``limit``, its start as a ``<details>`` summary and the
    whole inside."""
    text = str(text)
    if len(text) <= limit:
        return _e(text)
    head = text[:limit - 20].rsplit(" ", 1)[0].rstrip(",;:")
    # on paper the whole text shows and its summary (its start) does not: printed once
    return f"<details class=\"clip\"><summary>{_e(head)} &hellip;</summary>{_e(text)}</details>"


def _candidates_html(record: SelectionRecord) -> str:
    from ..reporting.svg import tie_words

    candidates = record.candidates
    metrics = [o.name for o in record.objectives]
    extra = [TRAINING_EMISSIONS] if any(TRAINING_EMISSIONS in c.metrics for c in candidates) else []
    metrics += [m for m in extra if m not in metrics]
    shown = {m: _display(record, m) for m in metrics}
    head = "".join(f"<th scope='col'>{_e(h)}</th>" for h in
                   ["candidate", "status", *(shown[m][2] for m in metrics), "score", "why"])
    rows = []
    for c in candidates:
        cells = []
        for m in metrics:
            factor = shown[m][0]
            value, bounds = c.metrics.get(m), _bounds(c, m)
            text = _num(value * factor) if isinstance(value, (int, float)) else "-"
            if bounds is not None and bounds[0] != bounds[1] and isinstance(value, (int, float)):
                text += f'<span class="ci">{_num(bounds[0] * factor)} to {_num(bounds[1] * factor)}</span>'
            cells.append(f'<td class="num">{text}</td>')
        status = _STYLE.get(c.status, (c.status,))[0]
        why = "; ".join(c.reasons)
        if c.status in ("chosen", "front") and c.normalized:
            why = "normalised: " + ", ".join(f"{_SHORT.get(k, k.replace('_', ' '))} {_num(v, 3)}"
                                             for k, v in c.normalized.items())
            if c.status == "chosen" and record.tie_break_choice:
                why = tie_words(record.tie_break_choice, record.rule, _SHORT).removeprefix(", ") + "; " + why
        rows.append(
            f'<tr class="{_e(c.status)}"><td>{_e(c.name)}</td><td>{_e(status)}</td>{"".join(cells)}'
            f'<td class="num">{_num(c.score)}</td><td>{_collapsed(why)}</td></tr>'
        )
    note = ('<p class="muted">Figures rounded to 3 significant figures; below each, its 95 % interval '
            "(accuracy: Wilson, from the test rows; the others: the benchmark's rounds).</p>")
    return f"{note}<div class=\"scroll\"><table class=\"candidates\"><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def selection_html(record: SelectionRecord) -> str:
    """The HTML report of one selection record (see the module docstring)."""
    if not isinstance(record, SelectionRecord):
        raise ValueError(f"record must be a SelectionRecord; got {type(record).__name__}")
    from ..reporting.svg import plural, tie_words

    chosen = record.chosen
    total = record.counts.get("candidates", len(record.candidates))
    verdicts = _verdicts(record)
    if record.promote and chosen is not None:
        among = (f"the {_e(record.rule)} rule's pick among {plural(len(record.front), 'front member')} of "
                 f"{plural(total, 'candidate')}" if not record.tie_break_choice else
                 f"among {plural(len(record.front), 'front member')} of {plural(total, 'candidate')}"
                 + _e(tie_words(record.tie_break_choice, record.rule, _SHORT)))
        against = f"; against the baseline {_e(record.baseline)}: {_e(verdicts)}" if record.baseline and verdicts else ""
        where = f"<br>Model: <code>{_e(record.chosen_model_uri)}</code>" if record.chosen_model_uri else ""
        verdict = (f'<div class="verdict ok"><p class="head">Promote {_e(chosen)}</p>{among}{against}.'
                   f"<details><summary>the full reason</summary>{_e(record.reason)}{where}</details></div>")
    else:
        verdict = (f'<div class="verdict blocked"><p class="head">Promotion blocked: no model selected.</p>'
                   f"{_collapsed(record.reason, 240)}</div>")
    summary = (f'<div class="muted">{plural(total, "candidate")}; front ({len(record.front)}): '
               f'{_collapsed(", ".join(record.front) or "none", 240)}</div>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>Model selection: {_e(chosen or 'blocked')}</title><style>{_CSS}</style></head><body>"
        f"<h1>Model selection</h1>{verdict}{summary}"
        f"<h2>Trade-offs</h2>{_plots_html(record)}"
        f"<h2>Candidates</h2>{_candidates_html(record)}"
        f"<h2>Settings</h2>{_settings_html(record)}"
        f'<p class="muted">Record schema {_e(record.schema)}. Accuracy in % (the record keeps fractions); accuracy '
        "drops in percentage points; SCI in g CO2eq per functional unit, shown with the prefix in its header.</p>"
        "</body></html>\n"
    )
