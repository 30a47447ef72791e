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
import io
import math
from typing import Any

from ..records import SelectionCandidate, SelectionRecord
from .select import ACCURACY, LATENCY_P95, SCI, TRAINING_EMISSIONS

# status -> (label, colour, marker, size)
_STYLE = {
    "chosen": ("chosen", "#d62728", "*", 260),
    "front": ("on the front", "#1f77b4", "o", 60),
    "dominated": ("dominated", "#9e9e9e", "o", 36),
    "violates_constraints": ("violates a constraint", "#9e9e9e", "x", 40),
    "missing_objective": ("missing objective", "#bdbdbd", "s", 30),
    "ineligible": ("ineligible", "#bdbdbd", "^", 36),
}
_LABELS = {
    ACCURACY: "accuracy (fraction)",
    LATENCY_P95: "latency p95 (ms)",
    SCI: "SCI (g CO2eq per functional unit)",
    TRAINING_EMISSIONS: "training emissions (g CO2eq)",
}
_SHORT = {ACCURACY: "accuracy", LATENCY_P95: "latency p95", SCI: "SCI", TRAINING_EMISSIONS: "training emissions"}
# constraint -> the metric it limits (drawn as a dashed line)
_LIMITS = {"min_accuracy": ACCURACY, "max_latency_ms": LATENCY_P95, "max_sci": SCI}
_ANNOTATE_MAX = 20  # label front members with their names up to this many candidates

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em}
.verdict{padding:12px 16px;border-radius:6px;margin:12px 0;overflow-wrap:anywhere}
.ok{background:#e8f5e9;border:1px solid #66bb6a} .blocked{background:#ffebee;border:1px solid #e57373}
table{border-collapse:collapse;font-size:.9em} th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.chosen td{background:#fff3e0;font-weight:600} tr.front td{background:#e3f2fd}
.plots{display:flex;flex-wrap:wrap;gap:16px} .plot{flex:1 1 480px} .plot svg{width:100%;height:auto}
.muted{color:#666;font-size:.9em} code{background:#f5f5f5;padding:0 3px}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}"
    return _e(value)


def _label(metric: str, objectives: dict[str, str]) -> str:
    text = _LABELS.get(metric, metric)
    if metric in objectives:
        text += ", higher is better" if objectives[metric] == "max" else ", lower is better"
    return text


def _mpl_text(text: str) -> str:
    """Text for matplotlib: a ``$`` would start mathtext."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


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


def _group_names(pts) -> dict[tuple[float, float], list[str]]:
    """Names by point, so candidates at the same place share one label."""
    groups: dict[tuple[float, float], list[str]] = {}
    for point, name in pts:
        groups.setdefault(point, []).append(name)
    return groups


def _svg_plot(record: SelectionRecord, x: str, y: str) -> str:
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    objectives = {o.name: o.direction for o in record.objectives}
    candidates = record.candidates
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "greenkfp-selection", "font.size": 9}):
        fig = Figure(figsize=(6.4, 4.4), layout="constrained")
        ax = fig.subplots()
        drawn = set()
        labelled: dict[tuple[float, float], int] = {}  # point -> labels already drawn there
        for status in ("ineligible", "missing_objective", "violates_constraints", "dominated", "front", "chosen"):
            pts = [(p, c.name) for c in candidates if c.status == status and (p := _point(c, x, y))]
            if not pts:
                continue
            label, colour, marker, size = _STYLE[status]
            xs, ys = [p[0] for p, _ in pts], [p[1] for p, _ in pts]
            kwargs = {"edgecolors": "black", "linewidths": 0.6} if status in ("chosen", "front") else {}
            ax.scatter(xs, ys, s=size, c=colour, marker=marker, label=label, zorder=3 if status == "chosen" else 2,
                       **kwargs)
            drawn.add(status)
            # name the front and the choice; the rest crowd the plot and are in the table below
            if status == "chosen" or (status == "front" and len(candidates) <= _ANNOTATE_MAX):
                for (px, py), names in _group_names(pts).items():
                    ax.annotate(_mpl_text(", ".join(names)), (px, py), textcoords="offset points",
                                xytext=(6, 4 - 9 * labelled.get((px, py), 0)),
                                fontsize=9 if status == "chosen" else 7,
                                fontweight="bold" if status == "chosen" else "normal",
                                color="#b71c1c" if status == "chosen" else "#333")
                    labelled[(px, py)] = labelled.get((px, py), 0) + 1
        constraints = record.constraints
        for constraint, metric in _LIMITS.items():
            limit = constraints.get(constraint)
            if limit is None or metric not in (x, y):
                continue
            line = ax.axvline if metric == x else ax.axhline
            line(limit, color="#e65100", linestyle="--", linewidth=1, label=f"{constraint} = {limit:g}")
        ax.set_xlabel(_mpl_text(_label(x, objectives)))
        ax.set_ylabel(_mpl_text(_label(y, objectives)))
        ax.set_title(_mpl_text(f"{_SHORT.get(y, y)} against {_SHORT.get(x, x)}"))
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="best", framealpha=0.85)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


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
        f"<figcaption class=\"muted\">{_e(y)} against {_e(x)}</figcaption></figure>"
        for x, y in pairs
    )
    return f'<div class="plots">{figures}</div>{note}'


def _settings_html(record: SelectionRecord) -> str:
    objectives = ", ".join(f"{o.name} ({'max' if o.direction == 'max' else 'min'})" for o in record.objectives)
    constraints = ", ".join(f"{k} = {v:g}" for k, v in record.constraints.items() if v is not None)
    weights = record.weights
    ref = record.accuracy_reference
    rows = [
        ("rule", f"{record.rule}: {record.rule_definition or ''}"),
        ("objectives", objectives or "-"),
        ("constraints", constraints or "none"),
        ("weights", ", ".join(f"{k} {v:.3g}" for k, v in weights.items()) if weights else "-"),
        ("accuracy reference", f"{ref['name']} ({ref.get(ACCURACY)})" if ref else "-"),
        ("scores", record.score_direction or "-"),
        ("ties", record.tie_break or "-"),
        ("dominance", record.dominance or "-"),
        ("baseline", record.baseline or "-"),
        ("against the baseline (95 % intervals)",
         "; ".join(f"{k}: {v['verdict']}" for k, v in (record.significance or {}).items()) or "-"),
    ]
    if record.energy_guard:
        rows.append(("energy guard", record.energy_guard))
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</table>"


def _candidates_html(record: SelectionRecord) -> str:
    candidates = record.candidates
    metrics = [o.name for o in record.objectives]
    extra = [TRAINING_EMISSIONS] if any(TRAINING_EMISSIONS in c.metrics for c in candidates) else []
    metrics += [m for m in extra if m not in metrics]
    head = "".join(f"<th>{_e(h)}</th>" for h in ["candidate", "status", *metrics, "score", "why"])
    rows = []
    for c in candidates:
        values = "".join(f'<td class="num">{_num(c.metrics.get(m))}</td>' for m in metrics)
        status = _STYLE.get(c.status, (c.status,))[0]
        why = "; ".join(c.reasons)
        if c.status in ("chosen", "front") and c.normalized:
            why = "normalised: " + ", ".join(f"{k} {_num(v, 3)}" for k, v in c.normalized.items())
        rows.append(
            f'<tr class="{_e(c.status)}"><td>{_e(c.name)}</td><td>{_e(status)}</td>{values}'
            f'<td class="num">{_num(c.score)}</td><td>{_e(why)}</td></tr>'
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def selection_html(record: SelectionRecord) -> str:
    """The HTML report of one selection record (see the module docstring)."""
    if not isinstance(record, SelectionRecord):
        raise ValueError(f"record must be a SelectionRecord; got {type(record).__name__}")
    chosen = record.chosen
    if record.promote and chosen is not None:
        verdict = (f'<div class="verdict ok"><strong>Promote {_e(chosen)}</strong>'
                   f'{" (" + _e(record.chosen_model_uri) + ")" if record.chosen_model_uri else ""}'
                   f"<br>{_e(record.reason)}</div>")
    else:
        verdict = (f'<div class="verdict blocked"><strong>Promotion blocked: no model selected.</strong>'
                   f"<br>{_e(record.reason)}</div>")
    summary = (f'<p class="muted">{record.counts.get("candidates", len(record.candidates))} candidate(s); front: '
               f'{_e(", ".join(record.front) or "none")}.</p>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Model selection: {_e(chosen or 'blocked')}</title><style>{_CSS}</style></head><body>"
        f"<h1>Model selection</h1>{verdict}{summary}"
        f"<h2>Trade-offs</h2>{_plots_html(record)}"
        f"<h2>Candidates</h2>{_candidates_html(record)}"
        f"<h2>Settings</h2>{_settings_html(record)}"
        f'<p class="muted">Record schema {_e(record.schema)}. Accuracy is a fraction; accuracy drops are '
        "percentage points; SCI in g CO2eq per functional unit.</p>"
        "</body></html>\n"
    )
