"""The quarterly report's renderings: one self-contained HTML file for leadership, the same
figures as JSON and CSV, and a one-page Markdown summary (:func:`write_report` writes all four).

The HTML has no external asset (no script, font, stylesheet or image from anywhere): styles are
inline and the three plots are inline SVG drawn by matplotlib (a dependency already), with text
kept as text. Plotly with its JavaScript embedded was the alternative: about 3.5 MB of script
per file and a page that needs JavaScript to draw anything, where these SVGs weigh tens of
kilobytes, print as vectors at any resolution and show without a script. Each plot is a
``<figure>`` whose SVG has ``role="img"``, a ``<title>`` and a ``<desc>`` (its alt text, which
also gives the plotted figures in words) and a visible caption. Print styles: A4, no page break
inside a figure or a table row, black on white. Colours are the Okabe-Ito palette (safe for
colour-blind readers) and text contrast is at least 7:1.

Every text that comes from the ledger (team names, reasons) is escaped for HTML, Markdown,
CSV (quoted by the csv module, and a text a spreadsheet would run as a formula, ``=...``,
``+...``, ``-...``, ``@...``, gets a leading single quote: ``_files.csv_cell``, numbers stay
numeric) and matplotlib's mathtext.
"""

from __future__ import annotations

import html
import io
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from .._files import SafeCsvWriter
from ..reporting.svg import font_rc, new_figure, svg_figure
from .._messages import markdown_text
from ..records import QuarterlyReport
from .quarterly import ReportError, lever_name
from .quarterly import mass as _mass

__all__ = ["PLOTS", "progress_line", "render_csv", "render_html", "render_markdown", "report_files", "write_report"]

#: The plots of the HTML report, by id: (caption title).
PLOTS = {"emissions": "Monthly emissions against budget, per team",
         "savings": "Savings by lever, with 95 % intervals",
         "trajectory": "Progress toward the reduction target"}
# Okabe-Ito
_BLUE, _ORANGE, _GREEN, _VERMILLION, _GREY, _SKY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#555555", "#56B4E9"


# --------------------------------------------------------------------------- formatting

def _unit(grams: float) -> tuple[float, str]:
    """A divisor and unit for grams of this size: g, kg or t CO2eq."""
    grams = abs(grams)
    if grams >= 1e6:
        return 1e6, "t CO2eq"
    if grams >= 1e3:
        return 1e3, "kg CO2eq"
    return 1.0, "g CO2eq"


def mass(grams: float | None) -> str:
    """``12.3 kg CO2eq``: grams in a readable unit (:func:`.quarterly.mass`, three significant figures)."""
    return _mass(grams, "CO2eq")


#: How a table's masses are given: each figure in its own unit, so that a small figure never reads 0.
_TABLE_UNIT = "CO2eq, each figure in its own unit (g, kg or t, three significant figures)"


def _scale(values: Iterable[float | None]):
    """A formatter of grams for a table's cells, each in its own unit (``250 g``, ``1.35 kg``),
    and the caption's words for the unit. One unit for the whole table showed a team's 5 g as
    ``0.0 kg`` beside a status that says it is over its budget."""
    return _mass, _TABLE_UNIT


def _unsigned_zero(value: float, digits: int) -> float:
    """``value`` rounded as it will be shown, with -0.0 made 0.0 (never ``-0.00``)."""
    return round(value, digits) + 0.0


def _num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "–" if value is None else f"{_unsigned_zero(value, digits):,.{digits}f}{suffix}"


def _signed(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "–"
    value = _unsigned_zero(value, digits)
    return f"{value:+,.{digits}f}{suffix}" if value else f"{value:,.{digits}f}{suffix}"


def _money(value: float | None, currency: str, digits: int = 2) -> str:
    return "–" if value is None else f"{currency} {_unsigned_zero(value, digits):,.{digits}f}"


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _md(text: Any) -> str:
    """Text for a Markdown table cell or line: no pipes, no line breaks, no markup."""
    return markdown_text(text)


def _tex(text: str) -> str:
    """Text for a matplotlib label: a ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


def _when(moment: str) -> str:
    """An ISO time as ``2026-12-01 09:30 UTC``."""
    from datetime import datetime, timezone

    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _short(month: str) -> str:
    """``2026-10`` as ``Oct 2026``."""
    return f"{_MONTH_NAMES[int(month[5:]) - 1]} {month[:4]}"


def _relation(change_percent: float) -> str:
    """``12.6 % below`` / ``6.4 % above`` for a change in percent."""
    return f"{abs(change_percent):.1f} % {'below' if change_percent < 0 else 'above'}"


def _track(value: bool | None, report: QuarterlyReport | None = None) -> str:
    so_far = report is not None and report.progress.state == "in progress"
    return "–" if value is None else ("on track" if value else "behind") + (" so far" if so_far else "")


# --------------------------------------------------------------------------- plots

_svg, _font_rc, _figure = svg_figure, font_rc, new_figure  # shared with the serving simulation's report


def _plot_emissions(report: QuarterlyReport) -> tuple[str, str]:
    teams = [t.team for t in report.teams]
    cols = min(3, max(1, len(teams)))
    rows = math.ceil(len(teams) / cols) if teams else 1
    figure, axes = _figure(3.3 * cols, 2.9 * rows, rows, cols)
    top = max([m.emissions_g for m in report.team_months]
              + [m.allowed_g or 0 for m in report.team_months] + [m.baseline_g or 0 for m in report.team_months]
              + [1.0])
    divisor, unit = _unit(top)
    words = []
    for index, ax in enumerate(axes.flat):
        if index >= len(teams):
            ax.set_visible(False)
            continue
        team = teams[index]
        months = [m for m in report.team_months if m.team == team]
        x = range(len(months))
        labels = [m.month for m in months]
        colours = [_VERMILLION if m.status == "over allowance" else _ORANGE if m.status == "in overdraft or exception"
                   else _BLUE for m in months]
        ax.bar(x, [m.emissions_g / divisor for m in months], color=colours, width=0.6, label="settled")
        if any(m.limit_g is not None for m in months):
            def line(values):  # a month without a budget has no line (NaN leaves a gap), not a line at 0
                values = [math.nan if v is None else v / divisor for v in values]
                return values + values[-1:]

            ax.step([i - 0.5 for i in x] + [len(months) - 0.5], line([m.limit_g for m in months]),
                    where="post", color="#000000", linewidth=1.6, label="limit")
            if any((m.allowed_g or 0) > (m.limit_g or 0) + 1e-9 for m in months):
                ax.step([i - 0.5 for i in x] + [len(months) - 0.5], line([m.allowed_g for m in months]),
                        where="post", color=_ORANGE, linewidth=1.4, linestyle=(0, (4, 2)),
                        label="limit + overdraft + exceptions")
        if months and months[0].baseline_g is not None:
            ax.axhline(months[0].baseline_g / divisor, color=_GREY, linewidth=1.2, linestyle=(0, (1, 2)),
                       label="baseline month")
            ax.plot(list(x), [(m.trajectory_g or 0) / divisor for m in months], color=_GREEN, marker="o",
                    markersize=3, linewidth=1.2, label="target path")
        tier = next((m.tier for m in months if m.tier), None)
        ax.set_title(_tex(f"{team} ({tier} budget)" if tier else f"{team} (no budget)"), fontsize=10)
        ax.set_xticks(list(x), [_short(label)[:3] for label in labels])
        ax.set_ylim(0, top / divisor * 1.12)
        if index % cols == 0:
            ax.set_ylabel(unit, fontsize=9)
        words.append(f"{team}: " + ", ".join(
            f"{m.month} {mass(m.emissions_g)}"
            + ("" if m.limit_g is None else f" of a {mass(m.limit_g)} limit ({m.status})") for m in months))
    handles, names = [], []
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in names:
                handles.append(handle)
                names.append(label)
    from matplotlib.patches import Patch

    handles += [Patch(color=_ORANGE), Patch(color=_VERMILLION)]
    names += ["settled, in overdraft or exception", "settled, over allowance"]
    figure.legend(handles, names, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    description = ("Bar charts, one per team, of the settled emissions of each month of the quarter against the "
                   "team's monthly limit (a black step line), its allowance with overdraft and exceptions (dashed "
                   "orange), its baseline month (dotted grey) and the target path (green). " + "; ".join(words) + ".")
    return _svg(figure, "emissions", PLOTS["emissions"], description), description


def _plot_savings(report: QuarterlyReport) -> tuple[str, str]:
    levers = list(report.savings)
    figure, axes = _figure(7.2, 0.42 * len(levers) + 1.1)
    ax = axes[0, 0]
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    known = [s for s in levers if s.estimate_g is not None]
    top = max([abs(s.high_g) for s in known] + [abs(s.low_g) for s in known] + [1.0])
    divisor, unit = _unit(top)
    words = []
    for row, saving in enumerate(levers):
        label = lever_name(saving.lever)
        if saving.estimate_g is None:
            ax.annotate("no figures this quarter", (0, row), xytext=(6, 0), textcoords="offset points", va="center",
                        fontsize=8.5, color="#333333")
            words.append(f"{label}: no figures")
            continue
        estimate = saving.estimate_g / divisor
        low, high = saving.low_g / divisor, saving.high_g / divisor
        colour = _BLUE if saving.significant else _SKY
        ax.barh(row, estimate, color=colour, height=0.55)
        ax.errorbar(estimate, row, xerr=[[max(estimate - low, 0)], [max(high - estimate, 0)]], fmt="none",
                    ecolor="#000000", elinewidth=1.3, capsize=4)
        ax.annotate(f"{estimate:,.2f} [{low:,.2f}, {high:,.2f}]", (max(high, estimate, 0), row), xytext=(8, 0),
                    textcoords="offset points", va="center", fontsize=8.5, color="#222222")
        words.append(f"{label}: {mass(saving.estimate_g)} saved, 95 % interval {mass(saving.low_g)} to "
                     f"{mass(saving.high_g)} over {saving.runs:,} runs ({saving.method})"
                     + ("" if saving.significant else ", no significant difference"))
    ax.set_yticks(range(len(levers)), [_tex(lever_name(s.lever)) + ("\n(no significant difference)" if s.significant
                                                                     is False else "") for s in levers])
    ax.set_ylim(len(levers) - 0.5, -0.5)
    ax.axvline(0, color="#000000", linewidth=0.8)
    ax.set_xlim(min(0, min([s.low_g / divisor for s in known], default=0)) * 1.1, top / divisor * 1.9)
    ax.set_xlabel(f"saved in the quarter, {unit} (bar: estimate; whiskers: 95 % interval)", fontsize=9)
    description = ("Horizontal bar chart of the emissions each lever saved in the quarter, with 95 % interval "
                   "whiskers; a pale bar's interval includes zero. " + "; ".join(words) + ".")
    return _svg(figure, "savings", PLOTS["savings"], description), description


def _plot_trajectory(report: QuarterlyReport) -> tuple[str, str]:
    progress = report.progress
    points = progress.trajectory
    figure, axes = _figure(7.2, 3.6)
    ax = axes[0, 0]
    top = max([p.path_g for p in points] + [p.actual_g or 0 for p in points] + [1.0])
    divisor, unit = _unit(top)
    x = list(range(len(points)))
    ax.plot(x, [p.path_g / divisor for p in points], color=_GREEN, linewidth=1.8, linestyle=(0, (5, 2)),
            label=f"target path ({progress.reduction_percent:g} % below the baseline by {progress.by})")
    for kind, colour, label in (("baseline", _GREY, "baseline months (audit)"), ("quarter", _BLUE,
                                                                                 f"{report.quarter} (ledger)")):
        chosen = [(i, p) for i, p in enumerate(points) if p.kind == kind and p.actual_g is not None]
        ax.plot([i for i, _ in chosen], [p.actual_g / divisor for _, p in chosen], color=colour, marker="o",
                linewidth=1.6, markersize=5, label=label)
    ax.axhline(progress.target_monthly_g / divisor, color="#000000", linewidth=0.8, linestyle=(0, (1, 2)),
               label="target month")
    step = max(1, math.ceil(len(points) / 7))
    ax.set_xticks(x[::step], [_short(p.month) for p in points][::step], fontsize=8)
    ax.set_ylim(0, top / divisor * 1.15)
    ax.set_ylabel(f"all teams, {unit} per month", fontsize=9)
    figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    verdict = _verdict(report)
    ax.set_title(_tex(f"{report.quarter}: {progress.achieved_percent:.1f} % below the baseline month, "
                      f"{progress.required_percent:.1f} % needed by {report.months[-1]}: {verdict}"), fontsize=10)
    description = (f"Line chart of all teams' monthly emissions: the baseline months "
                   f"({', '.join(f'{p.month} {mass(p.actual_g)}' for p in points if p.kind == 'baseline')}), the "
                   f"quarter's months ({', '.join(f'{p.month} {mass(p.actual_g)}' for p in points if p.kind == 'quarter')})"
                   f" and the straight target path from the baseline's mean month of "
                   f"{mass(progress.baseline_monthly_g)} to {mass(progress.target_monthly_g)} by {progress.by}. "
                   f"The quarter's mean month is {progress.achieved_percent:.1f} % below the baseline; the path asks "
                   f"for {progress.required_percent:.1f} % by {report.months[-1]}: {verdict}.")
    return _svg(figure, "trajectory", PLOTS["trajectory"], description), description


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1a1a1a; background: #ffffff; }
header, main, footer { max-width: 1100px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; border-bottom: 3px solid #0072B2; padding-bottom: 12px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 34px 0 8px; border-bottom: 1px solid #cccccc; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
p.meta, .note, figcaption { color: #404040; font-size: 0.9em; }
nav { font-size: 0.9em; margin-top: 8px; }
nav a { color: #005a8e; margin-right: 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; margin: 16px 0; }
.card { border: 1px solid #cccccc; border-left: 5px solid #0072B2; padding: 10px 14px; border-radius: 4px; }
.card.good { border-left-color: #009E73; } .card.bad { border-left-color: #D55E00; }
.card .label { font-size: 0.8em; color: #404040; text-transform: uppercase; letter-spacing: 0.03em; }
.card .value { font-size: 1.35em; font-weight: 650; }
.card .sub { font-size: 0.85em; color: #404040; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; font-size: 0.88em; }
th, td { border-bottom: 1px solid #d9d9d9; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f5; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n, td.nw { white-space: nowrap; }
td, th, li, p, .card .sub, figcaption { overflow-wrap: anywhere; }
td { max-width: 28em; }
.wide { overflow-x: auto; }
caption { caption-side: bottom; text-align: left; padding-top: 4px; }
.status-over { color: #a33a00; font-weight: 600; }
.status-overdraft { color: #7a4f00; font-weight: 600; }
figure { margin: 14px 0 22px; }
svg.plot { width: 100%; height: auto; display: block; }
figcaption strong { color: #1a1a1a; }
footer { margin-top: 40px; padding-bottom: 30px; font-size: 0.85em; color: #404040; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 9.5pt; color: #000000; }
  header, main, footer { max-width: none; padding: 0; }
  nav { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, .cards, tr { break-inside: avoid; page-break-inside: avoid; }
  .wide { overflow: visible; }
  .cards { grid-template-columns: repeat(4, 1fr); gap: 8px; }
  svg.plot { max-width: 100% !important; }
  table { font-size: 8.5pt; }
  th { background: #eeeeee !important; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: #000000; text-decoration: none; }
}
"""


def _table(headers: Iterable[tuple[str, bool]], rows: Iterable[Iterable[tuple[str, str]]], caption: str = "") -> str:
    """A table: headers are (text, numeric); each cell is (html, class)."""
    head = "".join(f'<th scope="col"{" class=n" if numeric else ""}>{_e(text)}</th>' for text, numeric in headers)
    body = "".join("<tr>" + "".join(f'<td class="{cls}">{cell}</td>' if cls else f"<td>{cell}</td>"
                                    for cell, cls in row) + "</tr>" for row in rows)
    cap = f"<caption class='note'>{_e(caption)}</caption>" if caption else ""
    return f"<div class='wide'><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _status_cell(status: str) -> tuple[str, str]:
    cls = {"over allowance": "status-over", "in overdraft or exception": "status-overdraft"}.get(status, "")
    return (f'<span class="{cls}">{_e(status)}</span>' if cls else _e(status)), ""


def _verdict(report: QuarterlyReport) -> str:
    """The quarter's verdict in words: on track, behind the path, or in progress (not yet a verdict)."""
    progress = report.progress
    if progress.state == "in progress":
        return progress.status or "in progress"
    return "on track" if progress.on_track else "behind the path"


def progress_line(report: QuarterlyReport) -> str:
    """``12.3 % below the baseline month (10.0 % needed: on track)``, in progress said so."""
    p = report.progress
    if p.state == "in progress":
        return (f"{_relation(-p.achieved_percent)} the baseline month so far, {p.required_percent:.1f} % needed by "
                f"{report.months[-1]}; {_verdict(report)}")
    return f"{_relation(-p.achieved_percent)} the baseline month ({p.required_percent:.1f} % needed: {_verdict(report)})"


def _headline(report: QuarterlyReport) -> dict[str, str]:
    progress = report.progress
    significant = [s for s in report.savings if s.significant and (s.estimate_g or 0) > 0]
    saved = sum(s.estimate_g for s in significant)
    refused = sum(i.budget_refused + i.gate_refused for i in report.impact)
    delayed = sum(i.delayed_runs for i in report.impact)
    return {
        "emissions": mass(report.emissions_g),
        "runs": f"{sum(t.runs for t in report.teams):,}",
        "change": f"{-progress.achieved_percent:+.1f} %",
        "required": f"{progress.required_percent:.1f} %",
        "track": _verdict(report),
        "saved": mass(saved) if significant else "none significant",
        "levers": ", ".join(lever_name(s.lever) for s in significant) or "no lever's interval excludes zero",
        "refused": f"{refused:,}",
        "delayed": f"{delayed:,}",
    }


def render_html(report: QuarterlyReport) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no script, no external asset)."""
    progress, head = report.progress, _headline(report)
    import matplotlib

    import warnings

    with matplotlib.rc_context(_font_rc()), warnings.catch_warnings():
        # a glyph no installed font has (CJK without a CJK font) is still text in the SVG: the browser draws it
        warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
        plots = {"emissions": _plot_emissions(report), "savings": _plot_savings(report),
                 "trajectory": _plot_trajectory(report)}

    def figure(name: str, caption: str) -> str:
        svg, _ = plots[name]
        return (f'<figure id="figure-{name}" aria-labelledby="{name}-caption">{svg}'
                f'<figcaption id="{name}-caption"><strong>{_e(PLOTS[name])}.</strong> {_e(caption)}</figcaption>'
                "</figure>")

    g1, u1 = _scale(v for m in report.team_months for v in (m.emissions_g, m.limit_g, m.allowed_g, m.baseline_g))
    team_month_rows = [[(_e(m.team), ""), (_e(m.month), "nw"), (_e(m.tier or "–"), ""), (f"{m.runs:,}", "n"),
                        (g1(m.emissions_g), "n"), (g1(m.limit_g), "n"), (g1(m.allowed_g), "n"),
                        (_num(m.used_percent, 0, " %"), "n"), (g1(m.baseline_g), "n"), (g1(m.trajectory_g), "n"),
                        _status_cell(m.status)] for m in report.team_months]
    g2, u2 = _scale(v for t in report.teams for v in (t.emissions_g, t.baseline_monthly_g))
    team_rows = [[(_e(t.team), ""), (_e(t.tier or "–"), ""), (f"{t.runs:,}", "n"), (g2(t.emissions_g), "n"),
                  (g2(t.monthly_mean_g), "n"), (g2(t.baseline_monthly_g), "n"),
                  (_signed(t.change_percent, 1, " %"), "n"), (_num(t.required_percent, 1, " %"), "n"),
                  (_e(_track(t.on_track, report)), "")] for t in report.teams]

    g3, u3 = _scale(v for s in (*report.savings, *report.savings_by_team) for v in (s.low_g, s.high_g))

    def lever_rows(items):
        return [[*(([(_e(s.team), "")]) if s.team is not None else []), (_e(lever_name(s.lever)), ""),
                 (f"{s.runs:,}", "n"), (f"{s.runs_without_figure:,}", "n"), (g3(s.estimate_g), "n"),
                 ("–" if s.low_g is None else f"{g3(s.low_g)} to {g3(s.high_g)}", "n"), (_e(s.method), ""),
                 (_e(s.verdict), "")] for s in items]

    lever_head = [("lever", False), ("runs", True), ("runs without a figure", True), ("saved", True),
                  ("95 % interval", True), ("method", False), ("verdict", False)]
    basis_items = "".join(f"<li><strong>{_e(lever_name(s.lever))}</strong>: {_e(s.basis)}</li>"
                          for s in report.savings if s.basis)
    model_rows = [[(_e(i.team), ""), (f"{i.promoted_runs:,}", "n"), (_signed(i.accuracy_change_pp_mean, 2, " pp"), "n"),
                   (_signed(i.accuracy_change_pp_min, 2, " pp"), "n"), (f"{i.accuracy_worse_runs:,}", "n"),
                   (_signed(i.latency_change_ms_mean, 1, " ms"), "n"),
                   (_signed(i.latency_change_percent_mean, 1, " %"), "n")] for i in report.impact]
    delay_rows = [[(_e(i.team), ""), (f"{i.runs:,}", "n"), (f"{i.budget_refused:,}", "n"), (f"{i.gate_refused:,}", "n"),
                   (f"{i.delayed_runs:,}", "n"), (_num(i.delay_hours_mean, 1, " h"), "n"),
                   (_num(i.delay_hours_p95, 1, " h"), "n"), (_num(i.delay_hours_max, 1, " h"), "n"),
                   (_num(i.delay_hours_total, 0, " h"), "n")] for i in report.impact]
    reasons = "".join(f"<li><strong>{_e(i.team)}</strong>: " + "; ".join(
        f"{_e(reason)} ({count:,})" for reason, count in sorted(i.refusal_reasons.items(), key=lambda kv: -kv[1]))
        + "</li>" for i in report.impact if i.refusal_reasons)
    g4, u4 = _scale([*(x.amount_g for x in report.exceptions), *(t.amount_g for t in report.transfers)])
    exception_rows = [[(f"#{x.id}", "nw"), (_e(x.team), ""), (_e(x.month), "nw"), (g4(x.amount_g), "n"),
                       (_e(x.status), ""), (_e(x.requester), ""), (_e(x.reason), ""), (_e(x.approver or "–"), ""),
                       (_e(x.decision_reason or "–"), "")] for x in report.exceptions]
    transfer_rows = [[(f"#{t.id}", "nw"), (_e(t.month), "nw"), (_e(t.from_team), ""), (_e(t.to_team), ""),
                      (g4(t.amount_g), "n"), (_e(t.approver), ""), (_e(t.reason), "")] for t in report.transfers]
    a = report.assumptions
    cost_rows = [[(_e(c.team), ""), (_e(c.hardware_profile), "nw"), (_money(c.hourly_price_usd, "USD", 4), "n"),
                  (f"{c.machine_hours:,.1f}", "n"), (_money(c.cloud_cost_usd, "USD"), "n"),
                  (_mass(c.emissions_t * 1e6), "n"), (_money(c.carbon_exposure_eur, "EUR"), "n"),
                  (_money(c.avoided_exposure_eur, "EUR"), "n"),
                  (_money(c.total_eur, "EUR") if a.usd_per_eur else "–", "n"),
                  (f"{c.runs_unpriced:,}", "n")] for c in report.costs]
    machines: dict[str, list[str]] = {}
    for team, h in a.hardware.items():
        machines.setdefault(h["profile"], []).append(team)
    price_items = "".join(
        f"<li><strong>{_e(', '.join(teams))}</strong>: {_e(name)}, "
        f"{_money(a.hardware[teams[0]]['hourly_price_usd'], 'USD', 4)}/h "
        f"({_e(a.hardware[teams[0]]['hourly_price_source'])}); full-load power "
        f"{a.hardware[teams[0]]['full_load_kw'] * 1000:,.1f} W</li>" for name, teams in machines.items())
    track_class = "" if progress.state == "in progress" else "good" if progress.on_track else "bad"
    notes = ("<section id='notes' aria-label='notes'><ul class='notes'>"
             + "".join(f"<li>{_e(note)}</li>" for note in report.notes) + "</ul></section>") if report.notes else ""
    none = "<p class='note'>None this quarter.</p>"
    body = f"""
<header>
<h1>Quarterly sustainability report, {_e(report.quarter)}</h1>
<p class="meta">Months {_e(report.months[0])} to {_e(report.months[-1])} (UTC) · generated {_e(_when(report.generated_at))} ·
ledger {_e(report.sources.ledger)} ({report.sources.settled_runs:,} settled runs, {report.sources.runs_with_facts:,}
with run facts) · baseline {_e(report.sources.baseline)} (audit of {_e(_when(report.sources.baseline_generated_at))})</p>
<nav aria-label="sections"><a href="#emissions">Emissions</a><a href="#progress">Target</a><a href="#savings">Savings</a>
<a href="#impact">Business impact</a><a href="#board">Review board</a><a href="#tco">Cost</a><a href="#method">Method</a></nav>
</header>
<main>
<section id="summary" aria-label="summary">
<div class="cards">
<div class="card"><div class="label">Emissions, quarter</div><div class="value">{head['emissions']}</div>
<div class="sub">{head['runs']} settled runs</div></div>
<div class="card {track_class}"><div class="label">Against the baseline month</div><div class="value">{head['change']}</div>
<div class="sub">{head['required']} reduction needed by {_e(report.months[-1])}: {head['track']}</div></div>
<div class="card"><div class="label">Significant savings</div><div class="value">{head['saved']}</div>
<div class="sub">{_e(head['levers'])}</div></div>
<div class="card"><div class="label">Runs refused / delayed</div><div class="value">{head['refused']} / {head['delayed']}</div>
<div class="sub">by the budget or the carbon gate</div></div>
</div>
</section>
{notes}
<section id="emissions">
<h2>Emissions per team and month</h2>
{figure("emissions", "Settled emissions per month against the team's limit after transfers, its allowance with "
                     "the soft tier's overdraft and approved exceptions, its baseline month and the target path.")}
{_table([("team", False), ("month", False), ("tier", False), ("runs", True), ("settled", True),
         ("limit", True), ("allowance", True), ("of limit", True), ("baseline month", True), ("target path", True),
         ("status", False)], team_month_rows, f"Masses in {u1}; the allowance adds the soft tier's overdraft and "
                                             "approved exceptions to the limit (after transfers).")}
</section>
<section id="progress">
<h2>Progress toward the target</h2>
{figure("trajectory", f"The target: {progress.reduction_percent:g} % below the baseline's mean month "
                      f"({mass(progress.baseline_monthly_g)}, {progress.baseline_months[0]} to "
                      f"{progress.baseline_months[-1]}) by {progress.by}, i.e. {mass(progress.target_monthly_g)} a "
                      "month, along a straight path.")}
{_table([("team", False), ("tier", False), ("runs", True), ("settled", True), ("mean month", True),
         ("baseline month", True), ("change", True), ("reduction needed", True), ("verdict", False)], team_rows,
        f"Masses in {u2}; change of the quarter's mean month against the baseline month.")}
</section>
<section id="savings">
<h2>Savings by lever</h2>
{figure("savings", "Each lever's quarter total with its 95 % interval (sums of the runs' bounds, see Method).")}
{_table(lever_head, lever_rows(report.savings), f"Masses in {u3}.")}
<h3>Per team</h3>
{_table([("team", False), *lever_head], lever_rows(report.savings_by_team), f"Masses in {u3}.")
   if report.savings_by_team else none}
<h3>How each lever was measured</h3>
<ul>{basis_items or "<li>No run reported a saving.</li>"}</ul>
</section>
<section id="impact">
<h2>Business impact</h2>
<h3>Promoted models against their baselines</h3>
<p class="note">Change of the promoted model against the baseline it replaced: accuracy in percentage points
(significantly less accurate: its 95 % interval lies wholly below the baseline's) and the p95 latency of an
inference batch.</p>
{_table([("team", False), ("promoted runs", True), ("accuracy change, mean", True), ("accuracy change, worst", True),
         ("significantly less accurate", True), ("p95 latency change", True), ("p95 latency change, relative", True)],
        model_rows)}
<h3>Runs refused or delayed</h3>
{_table([("team", False), ("settled runs", True), ("refused by the budget", True), ("refused by the gate", True),
         ("delayed by the gate", True), ("delay, mean", True), ("delay, p95", True), ("delay, longest", True),
         ("delay, total", True)], delay_rows)}
{f"<h3>Why runs were refused</h3><ul>{reasons}</ul>" if reasons else ""}
</section>
<section id="board">
<h2>Review board: exceptions and transfers</h2>
<h3>Exceptions</h3>
{_table([("id", False), ("team", False), ("month", False), ("amount", True), ("status", False),
         ("requested by", False),
         ("reason", False), ("decided by", False), ("decision", False)], exception_rows, f"Amounts in {u4}.")
   if exception_rows else none}
<h3>Transfers</h3>
{_table([("id", False), ("month", False), ("from", False), ("to", False), ("amount", True),
         ("approved by", False),
         ("reason", False)], transfer_rows, f"Amounts in {u4}.") if transfer_rows else none}
</section>
<section id="tco">
<h2>Total cost of ownership</h2>
<p class="note">Cloud cost = machine-hours x the hardware profile's hourly list price (USD); carbon-price exposure =
settled tonnes x EUR {a.carbon_price_eur_per_t:,.2f}/t ({_e(a.carbon_price_source)}).
{_e("The two are not added (no USD/EUR rate given: --usd-per-eur)." if a.usd_per_eur is None else
     f"Total in EUR at {a.usd_per_eur:g} USD per EUR ({a.usd_per_eur_source}).")}</p>
{_table([("team", False), ("machine", False), ("price per hour", True), ("machine-hours", True), ("cloud cost", True),
         ("CO2eq", True), ("carbon exposure", True), ("exposure avoided", True), ("total", True),
         ("runs unpriced", True)], cost_rows)}
</section>
<section id="method">
<h2>Method and sources</h2>
<ul>
<li><strong>Emissions</strong>: {_e(a.emissions_basis)}.</li>
<li><strong>Intervals</strong>: {_e(a.interval_basis)}</li>
<li><strong>Machine-hours</strong>: {_e(a.machine_hours_basis)}.</li>
<li><strong>Carbon price</strong>: EUR {a.carbon_price_eur_per_t:,.2f} per tonne: {_e(a.carbon_price_source)}.</li>
<li><strong>Hardware and prices</strong>:<ul>{price_items}</ul></li>
</ul>
</section>
</main>
<footer>greenkfp quarterly report · the same figures are in quarterly-{_e(report.quarter)}.json and
quarterly-{_e(report.quarter)}.csv · schema {_e(report.SCHEMA)}</footer>
"""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>Quarterly sustainability report, {_e(report.quarter)}</title>\n<style>{_CSS}</style>\n</head>\n"
            f"<body>{body}</body>\n</html>\n")


# --------------------------------------------------------------------------- CSV and Markdown

CSV_COLUMNS = ("section", "team", "month", "item", "figure", "value", "unit")


def render_csv(report: QuarterlyReport) -> str:
    """Every figure of the report, one per row (long format): section, team, month, item (a
    lever, an exception's id, ...), figure, value, unit."""
    out = io.StringIO()
    writer = SafeCsvWriter(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def row(section, team, month, item, figure, value, unit=""):
        if isinstance(value, float):
            value = repr(value)
        elif isinstance(value, bool):
            value = str(value).lower()
        writer.writerow((section, team or "", month or "", item or "", figure, "" if value is None else value, unit))

    for m in report.team_months:
        for figure, unit in (("tier", ""), ("runs", "runs"), ("emissions_g", "g CO2eq"), ("limit_g", "g CO2eq"),
                             ("transferred_g", "g CO2eq"), ("overdraft_g", "g CO2eq"), ("exceptions_g", "g CO2eq"),
                             ("allowed_g", "g CO2eq"), ("used_percent", "%"), ("baseline_g", "g CO2eq"),
                             ("trajectory_g", "g CO2eq"), ("status", "")):
            row("emissions", m.team, m.month, "", figure, getattr(m, figure), unit)
    for t in report.teams:
        for figure, unit in (("tier", ""), ("runs", "runs"), ("emissions_g", "g CO2eq"), ("monthly_mean_g", "g CO2eq"),
                             ("baseline_monthly_g", "g CO2eq"), ("change_percent", "%"), ("required_percent", "%"),
                             ("on_track", "")):
            row("team", t.team, "", "", figure, getattr(t, figure), unit)
    p = report.progress
    for figure, unit in (("baseline_monthly_g", "g CO2eq"), ("reduction_percent", "%"), ("by", ""),
                         ("target_monthly_g", "g CO2eq"), ("quarter_monthly_g", "g CO2eq"), ("achieved_percent", "%"),
                         ("required_percent", "%"), ("on_track", ""), ("state", ""), ("months_with_data", "months"),
                         ("data_to", ""), ("status", "")):
        row("progress", "", "", "", figure, getattr(p, figure), unit)
    for note in report.notes:
        row("notes", "", "", "", "note", note)
    for point in p.trajectory:
        row("trajectory", "", point.month, point.kind, "path_g", point.path_g, "g CO2eq")
        row("trajectory", "", point.month, point.kind, "actual_g", point.actual_g, "g CO2eq")
    for section, items in (("savings", report.savings), ("savings_by_team", report.savings_by_team)):
        for s in items:
            for figure, unit in (("runs", "runs"), ("runs_without_figure", "runs"), ("estimate_g", "g CO2eq"),
                                 ("low_g", "g CO2eq"), ("high_g", "g CO2eq"), ("measured_runs", "runs"),
                                 ("modeled_runs", "runs"), ("method", ""), ("significant", ""), ("verdict", "")):
                row(section, s.team, "", s.lever, figure, getattr(s, figure), unit)
    for i in report.impact:
        for figure, unit in (("runs", "runs"), ("promoted_runs", "runs"), ("accuracy_change_pp_mean", "pp"),
                             ("accuracy_change_pp_min", "pp"), ("accuracy_worse_runs", "runs"),
                             ("latency_change_ms_mean", "ms"), ("latency_change_percent_mean", "%"),
                             ("budget_refused", "runs"), ("gate_refused", "runs"), ("delayed_runs", "runs"),
                             ("delay_hours_total", "h"), ("delay_hours_mean", "h"), ("delay_hours_p95", "h"),
                             ("delay_hours_max", "h")):
            row("impact", i.team, "", "", figure, getattr(i, figure), unit)
        for reason, count in i.refusal_reasons.items():
            row("impact", i.team, "", reason, "refusals", count, "runs")
    for x in report.exceptions:
        for figure, unit in (("amount_g", "g CO2eq"), ("status", ""), ("requester", ""), ("reason", ""),
                             ("approver", ""), ("decision_reason", ""), ("run_id", ""), ("requested_at", "")):
            row("exceptions", x.team, x.month, f"exception {x.id}", figure, getattr(x, figure), unit)
    for t in report.transfers:
        for figure, unit in (("from_team", ""), ("to_team", ""), ("amount_g", "g CO2eq"), ("approver", ""),
                             ("reason", ""), ("at", "")):
            row("transfers", t.from_team, t.month, f"transfer {t.id}", figure, getattr(t, figure), unit)
    for c in report.costs:
        for figure, unit in (("hardware_profile", ""), ("hourly_price_usd", "USD/h"), ("runs_priced", "runs"),
                             ("runs_unpriced", "runs"), ("machine_hours", "h"), ("cloud_cost_usd", "USD"),
                             ("emissions_t", "t CO2eq"), ("carbon_exposure_eur", "EUR"), ("saved_t", "t CO2eq"),
                             ("avoided_exposure_eur", "EUR"), ("carbon_share_percent", "%"), ("total_eur", "EUR")):
            row("costs", c.team, "", "", figure, getattr(c, figure), unit)
    a = report.assumptions
    row("assumptions", "", "", "", "carbon_price_eur_per_t", a.carbon_price_eur_per_t, "EUR/t")
    row("assumptions", "", "", "", "carbon_price_source", a.carbon_price_source)
    row("assumptions", "", "", "", "usd_per_eur", a.usd_per_eur, "USD/EUR")
    return out.getvalue()


def render_markdown(report: QuarterlyReport) -> str:
    """A one-page summary for people who will not open the HTML."""
    p, head, a = report.progress, _headline(report), report.assumptions
    lines = [f"# Quarterly sustainability report, {report.quarter}", "",
             f"{report.months[0]} to {report.months[-1]} (UTC). Ledger: {_md(report.sources.ledger)}; baseline: "
             f"{_md(report.sources.baseline)}. Full figures: `quarterly-{report.quarter}.html`, `.json`, `.csv`.", "",
             f"**Emissions**: {head['emissions']} over {head['runs']} settled runs; the mean month is "
             f"{_relation(-p.achieved_percent)} the baseline month ({mass(p.baseline_monthly_g)}). The target, "
             f"{p.reduction_percent:g} % below it by {p.by}, needs {p.required_percent:.1f} % by {report.months[-1]}: "
             f"**{head['track']}**.", "",
             *(f"- _Note_: {_md(note)}" for note in report.notes), *([""] if report.notes else []),
             "| team | tier | settled | vs baseline | months in overdraft or exception (allowed) "
             "| months over allowance | verdict |", "|---|---|--:|--:|--:|--:|---|"]
    for t in report.teams:  # the same statuses as the HTML's table: overdraft/exception is allowed, over allowance not
        statuses = Counter(m.status for m in report.team_months if m.team == t.team)
        lines.append(f"| {_md(t.team)} | {t.tier or '–'} | {mass(t.emissions_g)} | {_signed(t.change_percent, 1, ' %')} "
                     f"| {statuses['in overdraft or exception']} | {statuses['over allowance']} "
                     f"| {_track(t.on_track, report)} |")
    lines += ["", "**Savings by lever** (95 % intervals, sums of the runs' bounds):", "",
              "| lever | saved | interval | method | verdict |", "|---|--:|--:|---|---|"]
    for s in report.savings:
        interval = "–" if s.low_g is None else f"{mass(s.low_g)} to {mass(s.high_g)}"
        lines.append(f"| {lever_name(s.lever)} | {mass(s.estimate_g)} | {interval} | {s.method} | {_md(s.verdict)} |")
    lines += ["", "**Business impact**:", ""]
    for i in report.impact:
        accuracy = ("no promoted model" if i.accuracy_change_pp_mean is None else
                    f"accuracy {_signed(i.accuracy_change_pp_mean, 2, ' pp')} on average (worst "
                    f"{_signed(i.accuracy_change_pp_min, 2, ' pp')}, {i.accuracy_worse_runs} significantly worse)")
        latency = "" if i.latency_change_ms_mean is None else f", p95 latency {_signed(i.latency_change_ms_mean, 1, ' ms')}"
        delay = ("" if not i.delayed_runs else
                 f", {i.delayed_runs:,} delayed by the gate ({_num(i.delay_hours_mean, 1, ' h')} on average)")
        lines.append(f"- {_md(i.team)}: {i.promoted_runs:,} promoted, {accuracy}{latency}; "
                     f"{i.budget_refused:,} refused by the budget, {i.gate_refused:,} by the gate{delay}.")
    statuses = {}
    for x in report.exceptions:
        statuses[x.status] = statuses.get(x.status, 0) + 1
    lines += ["", f"**Review board**: {len(report.exceptions)} exception(s) ("
              + (", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none") + f"), "
              f"{len(report.transfers)} transfer(s)."]
    for x in report.exceptions:
        lines.append(f"- exception #{x.id}, {_md(x.team)} {x.month}, {mass(x.amount_g)}: {x.status} "
                     f"({_md(x.reason)})")
    for t in report.transfers:
        lines.append(f"- transfer #{t.id}, {t.month}: {mass(t.amount_g)} from {_md(t.from_team)} to "
                     f"{_md(t.to_team)} ({_md(t.reason)})")
    lines += ["", f"**Cost** (cloud list prices; carbon at EUR {a.carbon_price_eur_per_t:g}/t, "
                  f"{_md(a.carbon_price_source)}):", "",
              "| team | cloud cost | CO2eq | carbon exposure |", "|---|--:|--:|--:|"]
    for c in report.costs:
        lines.append(f"| {_md(c.team)} | {_money(c.cloud_cost_usd, 'USD')} | {_mass(c.emissions_t * 1e6)} "
                     f"| {_money(c.carbon_exposure_eur, 'EUR')} |")
    lines += ["", f"_Machine-hours: {_md(a.machine_hours_basis)}._", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- files

def report_files(quarter: str, output: str | Path) -> dict[str, Path]:
    """The files :func:`write_report` writes for ``quarter`` into ``output``, by format."""
    folder = Path(output)
    return {kind: folder / f"quarterly-{quarter}.{suffix}"
            for kind, suffix in (("html", "html"), ("json", "json"), ("csv", "csv"), ("markdown", "md"))}


def write_report(report: QuarterlyReport, output: str | Path) -> dict[str, Path]:
    """Render the report in every format, then write the four files into the folder ``output``
    (created if missing) as one set (:func:`~greenkfp.components._files.write_files`): nothing is
    written when rendering fails, and a failed write leaves the previous files as they were
    (:class:`~greenkfp.components._files.OutputError` names ``--output``)."""
    from .._files import write_files

    texts = {"html": render_html(report), "json": report.to_json(), "csv": render_csv(report),
             "markdown": render_markdown(report)}
    paths = report_files(report.quarter, output)
    write_files(output, {path.name: texts[kind] for kind, path in paths.items()}, option="--output")
    return paths
