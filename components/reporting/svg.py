"""Plots for self-contained HTML reports: a matplotlib figure as inline SVG with its alt text.

Shared by the quarterly report (``governance/quarterly_render.py``) and the autoscaling
simulation's report (``serving/simulate.py``): text stays text in the SVG (``svg.fonttype:
none``), ids are made unique per plot, and each SVG has ``role="img"``, a ``<title>`` and a
``<desc>`` for screen readers.
"""

from __future__ import annotations

import html
import io
import math
import re

__all__ = ["svg_figure", "font_rc", "new_figure", "plain_number"]


def svg_figure(figure, name: str, title: str, description: str, hover: dict[str, str] | None = None) -> str:
    """The matplotlib ``figure`` as inline SVG: no XML prolog, ids made unique to ``name``, a
    ``<title>`` and ``<desc>`` for screen readers, and a size that follows the page.

    ``hover``: artist gid -> text; each artist drawn with that gid (``artist.set_gid``) gets it
    as its own ``<title>``, which browsers show on hover and screen readers read."""
    import matplotlib

    # drawn at most 1.2 times its own size (96 px an inch): text in the plots stays close to the page's
    max_width = round(figure.get_figwidth() * 96 * 1.2)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"greenkfp-{name}", "svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF about the file, not for readers
    text = re.sub(r'id="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r'url\(#([^)]+)\)', rf'url(#{name}-\1)', text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{name}-\1"', text)
    text = re.sub(r'href="#([^"]+)"', lambda m: m.group(0) if m.group(1).startswith(name + "-")
                  else f'href="#{name}-{m.group(1)}"', text)
    for gid, tip in (hover or {}).items():
        text = text.replace(f'<g id="{name}-{gid}">', f'<g id="{name}-{gid}"><title>{html.escape(tip)}</title>', 1)
    head = text[:text.index(">") + 1]
    opened = re.sub(r'\s(width|height)="[^"]*"', "", head)
    opened = opened.replace("<svg", f'<svg role="img" aria-labelledby="{name}-title {name}-desc" '
                                    f'class="plot" style="max-width: {max_width}px" '
                                    'preserveAspectRatio="xMidYMid meet"', 1)
    return (opened + f'<title id="{name}-title">{html.escape(title)}</title>'
            f'<desc id="{name}-desc">{html.escape(description)}</desc>' + text[len(head):])


#: Fonts for the plots' text, the first that has a glyph drawing it: DejaVu Sans (matplotlib's
#: own), then CJK fonts when installed (Debian's fonts-noto-cjk, ...). The SVG keeps text as text
#: (``svg.fonttype: none``) and names these families, so the browser draws any glyph with its fonts.
_FONT_FALLBACK = ("DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR",
                  "Source Han Sans", "WenQuanYi Zen Hei", "Droid Sans Fallback", "Noto Sans")


def font_rc() -> dict:
    """matplotlib settings: the fallback fonts that are installed, text kept as text in the SVG."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    families = [name for name in _FONT_FALLBACK if name in installed] or ["DejaVu Sans"]
    return {"font.family": "sans-serif", "font.sans-serif": families, "svg.fonttype": "none"}


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1):
    """A figure (inches) with ``rows`` x ``cols`` axes in the reports' style: no top/right
    spines, light horizontal grid, dark ticks."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(colors="#222222", labelsize=9)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    return figure, axes


def plain_number(value: float | None, significant: int = 3) -> str:
    """A figure for a report's tables: ``significant`` figures in plain decimals, never an
    exponent, thousands separated: ``403``, ``0.228``, ``0.00217``, ``12,345``; ``-`` for None
    or a value that is not finite."""
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return "-"
    if value == 0:
        return "0"
    value = float(f"{value:.{significant}g}")  # rounded first: 0.0009999 is 0.00100, not 0.001000
    digits = max(0, significant - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{digits}f}"


def plural(count: int, noun: str) -> str:
    """``1 front member``, ``2 front members``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def tie_words(tie: dict | None, rule: str | None, names: dict[str, str]) -> str:
    """", tied with the knee rule's pick, X (95 % intervals overlap on ...), and chosen by the
    tie-break on smaller model size ..." when the tie rule chose another front member than the
    rule's pick (a selection record's ``tie_break_choice``; ``names``: objectives' display
    names); "" otherwise."""
    if not tie:
        return ""
    on = ", ".join(names.get(name, name.replace("_", " ")) for name in tie.get("on") or ()) or "every scored objective"
    return (f", tied with the {rule or 'selection'} rule's pick, {tie['rule_pick']} (95 % intervals overlap on {on}), "
            f"and chosen by the tie-break on {tie['decided']}")
