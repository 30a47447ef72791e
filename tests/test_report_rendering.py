"""The run's two reports as a reader sees them: the sustainability report and the selection
report, built through the real selection and report code from realistic figures (an interleaved
benchmark's per-round series, Wilson accuracy intervals, a gate that moved training to a greener
region and hour), rendered in headless Chromium for a 4-candidate and a 30-candidate run.

Each page must load without console errors or requests (self-contained), carry its plots with
a title and description, name the chosen point without any two labels overlapping, collapse
long reasons, and print. Screenshots land in the test's tmp_path (``shots/``) for a person to
look at."""

from __future__ import annotations

import numpy as np
import pytest

from greenkfp.components.records import (
    GateDecisionRecord,
    SciEntry,
    SustainabilityReport,
    TrainingRecord,
    VariantEntry,
    VariantList,
)
from greenkfp.components.reporting import build_sustainability_report, sustainability_html
from greenkfp.components.reporting.sustainability import CAR_G_CO2_PER_KM, car_distance_text
from greenkfp.components.selection import Constraints, select_model, selection_html
from greenkfp.components.selection.collect import candidates_from_evaluations
from greenkfp.components.selection.report import spread_labels
from greenkfp.components.stats import bootstrap_median

TEST_ROWS = 5000  # accuracy intervals about +-1.2 points
ROUNDS = 120
INTENSITY = 226.5  # gCO2eq/kWh, the SCI's yearly mean
#: the reason the quantizers give for a tree ensemble, as the pipeline writes it (long on purpose)
TREE_REASON = ("nothing to quantize: the graph has no operator with weights that onnxruntime's quantize_dynamic "
               "handles (MatMul, Gemm, Conv, Gather, ... in the default ONNX domain); its operators are "
               "ai.onnx.ml.TreeEnsembleClassifier; the model stays fp32 (the fp32 variant)")


def _interval(series: np.ndarray) -> dict:
    return bootstrap_median(series).to_dict()


def _scored(candidate: str, variant: str, accuracy: float, per_inference_g: float, latency_ms: float,
            shared: np.ndarray, rng: np.random.Generator, macs: int) -> SciEntry:
    """A scored variant as benchmark_variants writes it: per-round series in one interleaved
    group (round r of every variant shares the machine's state), medians with intervals."""
    g = per_inference_g * shared * rng.normal(1.0, 0.03, ROUNDS)
    latency = latency_ms * shared * rng.normal(1.0, 0.04, ROUNDS)
    energy = g / INTENSITY
    sci = _interval(g * 1000)
    return SciEntry.from_dict({
        "candidate": candidate, "variant": variant, "status": "scored", "accuracy": accuracy,
        "precision": "float32" if variant == "fp32" else ("float16" if variant == "fp16" else "int8"),
        "sci": sci["estimate"], "sci_unit": "gCO2eq per 1,000 inferences", "energy_method": "modeled",
        "energy_per_inference_kwh": float(np.median(energy)), "latency_p95_ms": float(np.median(latency)),
        "intensity_g_per_kwh": INTENSITY, "intensity_basis": "mean of the 8784 hourly values of 2024",
        "sci_interval": sci, "per_inference_g_interval": _interval(g),
        "energy_per_inference_kwh_interval": _interval(energy), "latency_p95_ms_interval": _interval(latency),
        "rounds": {"group": "interleaved-0", "per_inference_g": g.tolist(), "energy_per_inference_kwh": energy.tolist(),
                   "time_per_inference_s": (latency / 1e3).tolist(), "cpu_time_per_inference_s": (latency / 1e3).tolist()},
        "macs": macs, "tree_comparisons": 0, "weight_bytes": macs * (1 if variant.startswith("int8") else 4)})


def _skipped(candidate: str, variant: str) -> SciEntry:
    return SciEntry.from_dict({"candidate": candidate, "variant": variant, "status": "skipped", "reason": TREE_REASON})


def _variant_list(candidate: str, entries: list[SciEntry]) -> VariantList:
    return VariantList(tuple(VariantEntry.from_dict({
        "name": e.variant, "produced": e.scored, "precision": e.precision or "float32", "method": "by the quantizer",
        "eligible": e.scored, "eligibility_reason": "within tolerance" if e.scored else e.reason,
        "tolerance_points": 1.0, "original_accuracy": 0.8, "source_path": f"/models/{candidate}.skops",
        "source_format": "skops", "source_estimator": "sklearn", "test_rows": TEST_ROWS,
        "file": f"{e.variant}.onnx" if e.scored else None}) for e in entries))


def _training(candidate: str, energy_kwh: float) -> TrainingRecord:
    return TrainingRecord.from_dict({
        "schema": TrainingRecord.SCHEMA, "candidate": {"name": candidate, "estimator": "sklearn"},
        "accuracy": 0.8, "macro_f1": 0.79, "fit_seconds": 3.5,
        "energy": {"available": True, "energy_kwh": energy_kwh, "method": "modeled",
                   "method_detail": "CodeCarbon's TDP model (no RAPL here)"},
        "emissions": {"codecarbon_g": energy_kwh * 300, "codecarbon_basis": "CodeCarbon's country average",
                      "hourly_g": energy_kwh * 290, "hourly_basis": "hourly grid intensity over the fit",
                      "hourly_pricing": {"provider": "embedded", "data_kind": "historical_replay"}}})


def _decision(window_intensity: float = 199.3, mode: str = "plan") -> GateDecisionRecord:
    """The gate as `make demo` records it: greenest window 12 h ahead in another region."""
    window = {"start": "2026-12-01T17:50:00+00:00", "end": "2026-12-01T18:50:00+00:00",
              "average_gco2_per_kwh": window_intensity}
    now = {"start": "2026-12-01T05:50:00+00:00", "end": "2026-12-01T06:50:00+00:00", "average_gco2_per_kwh": 303.2}
    region = {"provider": "embedded", "data_kind": "historical_replay", "signal": "average", "candidates": 12}
    return GateDecisionRecord.from_dict({
        "schema": GateDecisionRecord.SCHEMA, "decided_at": "2026-12-01T05:50:32+00:00", "should_run": True,
        "action": "wait", "reason": "greenest window in US-CAL-CISO, 34.3 % below running now in GB",
        "region": "US-CAL-CISO", "start_at": window["start"], "delay_seconds": 43200.0,
        "inputs": {"regions": ["GB", "DE-LU", "US-CAL-CISO"], "duration_seconds": 3600.0, "provider": "embedded",
                   "mode": mode, "max_delay_seconds": 43200.0},
        "chosen_window": window, "run_now_window": now, "home_region": "GB",
        "intensity_now_gco2_per_kwh": 303.2, "intensity_window_gco2_per_kwh": window_intensity,
        "regions": [{**region, "region": "GB", "best_window": now, "run_now_window": now},
                    {**region, "region": "US-CAL-CISO", "best_window": window, "run_now_window": now}]})


def _run(models: int, seed: int):
    """``models`` trained candidates; an MLP gets fp32, int8_dynamic, int8_static and fp16
    (4 variants), a tree ensemble fp32 and its two skipped int8 variants (the long reason)."""
    rng = np.random.default_rng(seed)
    shared = rng.lognormal(0, 0.05, ROUNDS)  # the machine's state, common to every variant in a round
    evaluations, trainings, all_entries = [], [], []
    per_model = 4 if models == 1 else 3
    for m in range(models):
        tree = models > 1 and m % 4 == 3
        name = f"random-forest-{m}" if tree else f"mlp-{m}"
        # accuracy and carbon rise together across models (a real trade-off: a front of several)
        base_accuracy = 0.62 + 0.30 * (m + 1) / (models + 1) - (0.02 if tree else 0.0)
        base_g = 2.0e-9 * (1 + 1.5 * m / max(models, 1)) * (4 if tree else 1)
        variants = ["fp32", "int8_dynamic", "int8_static", "fp16"][:per_model]
        entries = []
        for v, variant in enumerate(variants):
            if tree and variant != "fp32":
                entries.append(_skipped(name, variant))
                continue
            accuracy = round((base_accuracy + rng.normal(0, 0.004) * (v > 0)) * TEST_ROWS) / TEST_ROWS
            factor = {"fp32": 1.0, "int8_dynamic": 0.55, "int8_static": 0.5, "fp16": 1.1}[variant]
            entries.append(_scored(name, variant, accuracy, base_g * factor, 0.02 * factor * (1 + m / 10), shared, rng,
                                   macs=150_000 + 20_000 * m))
        evaluations.append((entries, f"/variants/{name}", _variant_list(name, entries)))
        trainings.append(_training(name, 2.5e-5 * (1 + m % 5)))
        all_entries += entries
    return evaluations, trainings, all_entries


def _reports(models: int, max_drop: float, seed: int = 7):
    evaluations, trainings, entries = _run(models, seed)
    record = select_model(candidates_from_evaluations(evaluations), rule="knee",
                          constraints=Constraints(max_accuracy_drop_points=max_drop)).to_record()
    report = build_sustainability_report(_decision(), trainings, entries, record, expected_lifetime_inferences=1e8)
    return record, report


#: every plot's accessible name, its points with a hover title, and its labels' boxes
PROBE = """() => {
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const plots = [...document.querySelectorAll('svg.plot')].map(svg => {
    const labels = [...svg.querySelectorAll('g[id*="-label-"] text')].map(t => {
      const r = t.getBoundingClientRect(); return {text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
    });
    const overlaps = [];
    labels.forEach((a, i) => labels.slice(i + 1).forEach(b => { if (overlap(a, b)) overlaps.push([a.text, b.text]); }));
    const box = svg.getBoundingClientRect();
    return {title: svg.querySelector(':scope > title')?.textContent || '', desc: svg.querySelector(':scope > desc')?.textContent || '',
            role: svg.getAttribute('role'), width: box.width, height: box.height,
            hovers: [...svg.querySelectorAll('g[id*="-pt-"] > title')].map(t => t.textContent),
            labels: labels.map(l => l.text), overlaps};
  });
  const details = [...document.querySelectorAll('details')];
  return {plots, details: details.length, closed: details.filter(d => !d.open).length,
          headline: document.querySelector('.headline, .verdict')?.innerText || '',
          headers: [...document.querySelectorAll('th[scope=col]')].map(th => th.innerText),
          cells: [...document.querySelectorAll('td.num')].map(td => td.innerText)};
}"""


#: every plot's texts as drawn: any outside the plot's own box (clipped), any two overlapping (tick
#: labels, legend, annotations, names), a legend text on the axes' area (the bars and points), the
#: smallest text in CSS pixels; and the page's width against the viewport's
LAYOUT = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const plots = [...document.querySelectorAll('svg.plot')].map(svg => {
    const s = box(svg), scale = (s.right - s.left) / svg.viewBox.baseVal.width;
    const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => (
      {text: t.textContent, legend: !!t.closest('g[id*="legend_"]'), px: parseFloat(getComputedStyle(t).fontSize) * scale, ...box(t)}));
    const overlaps = [];
    texts.forEach((a, i) => texts.slice(i + 1).forEach(b => { if (hit(a, b)) overlaps.push([a.text, b.text]); }));
    const area = [...svg.querySelectorAll('g[id*="axes_"] > g[id*="patch_"] path')].map(box)[0];
    return {clipped: texts.filter(t => t.left < s.left - 0.5 || t.right > s.right + 0.5 || t.top < s.top - 0.5
                                      || t.bottom > s.bottom + 0.5).map(t => t.text),
            overlaps, legendOnPlot: area ? texts.filter(t => t.legend && hit(t, area)).map(t => t.text) : [],
            smallest: Math.min(...texts.map(t => t.px))};
  });
  const wide = [...document.body.querySelectorAll('*')].filter(e => !e.closest('svg') || e.tagName === 'svg')
    .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > innerWidth + 1
                   && !e.closest('.scroll, figure'); }).map(e => e.tagName + '.' + e.className);
  return {plots, wide, page: document.documentElement.scrollWidth, viewport: innerWidth};
}"""


def _check_layout(chromium, path, **load):
    """No plot text clipped or overlapping another, no legend on the plot's area, no text below
    7 px, and nothing wider than the page outside a box that scrolls on its own."""
    layout = chromium.load(path, probe=LAYOUT, **load).probe
    for plot in layout["plots"]:
        assert plot["clipped"] == [] and plot["overlaps"] == [] and plot["legendOnPlot"] == [], plot
        assert plot["smallest"] >= 7, plot["smallest"]
    assert layout["wide"] == [] and layout["page"] <= layout["viewport"], layout
    return layout


def _check_page(chromium, path, shot):
    result = chromium.load(path, screenshot=shot, probe=PROBE)
    assert result.problems == [], result.problems
    assert result.requests == []  # self-contained: no fonts, scripts, images or styles fetched
    for plot in result.probe["plots"]:
        assert plot["role"] == "img" and plot["title"] and plot["desc"]
        assert plot["width"] > 400 and plot["height"] > 150  # drawn, not collapsed
        assert plot["overlaps"] == []
    _check_layout(chromium, path)
    return result.probe


def _significant_digits(token: str) -> int:
    digits = token.replace(",", "").lstrip("-\u2212")
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.strip("0")) or 1


def _check_rounded(texts):
    """Every figure at 3 significant figures or fewer (years, dates and counts of inferences
    aside), no exponent, no interval whose ends are one figure."""
    import re

    for text in texts:
        assert "e-0" not in text and "e+0" not in text, text
        for token in re.findall(r"(?<![\w:-])\d[\d,]*(?:\.\d+)?(?![\w:-])", text):
            if re.fullmatch(r"\d{1,3}(,000)+", token) or re.fullmatch(r"20\d\d", token):
                continue  # a volume (100,000,000) or a year
            assert _significant_digits(token) <= 3, (token, text)
        for low, high in re.findall(r"\[([\d.,]+) to ([\d.,]+)", text):
            assert low != high, text


@pytest.mark.parametrize("models,max_drop,expected", [(1, 1.0, 4), (10, 20.0, 30)])
def test_both_reports_render_in_chromium(chromium, tmp_path, models, max_drop, expected):
    record, report = _reports(models, max_drop)
    assert len(record.candidates) == expected
    assert record.promote and record.chosen
    shots = tmp_path / "shots"
    sel_path, sus_path = tmp_path / "selection.html", tmp_path / "sustainability.html"
    sel_path.write_text(selection_html(record), encoding="utf-8")
    sus_path.write_text(sustainability_html(SustainabilityReport.from_json(report.to_json())), encoding="utf-8")

    selection = _check_page(chromium, sel_path, shots / f"selection-{expected}.png")
    assert len(selection["plots"]) == 2  # accuracy against SCI and against latency
    for plot in selection["plots"]:
        # the choice is named on the plot; every plotted candidate has its hover title
        assert f"{record.chosen} (chosen)" in plot["labels"]
        named = {label.removesuffix(" (chosen)") for label in plot["labels"]}
        assert named == set(record.front) | {record.chosen}  # the front and the choice, and no one else
        assert len(plot["hovers"]) == sum(c.status != "ineligible" for c in record.candidates)
        assert record.chosen in plot["desc"]
    assert "Promote " + record.chosen in selection["headline"]
    assert "accuracy (%)" in selection["headers"] and any("µg CO2eq per 1,000 inferences" in h
                                                          for h in selection["headers"])
    assert not any("e-0" in cell or len(cell.split("\n")[0]) > 8 for cell in selection["cells"])  # rounded
    _check_rounded(selection["cells"])
    if models > 1:  # the tree ensembles' long quantizer reasons are collapsed
        assert selection["closed"] >= sum(c.status == "ineligible" for c in record.candidates) > 0

    sustainability = _check_page(chromium, sus_path, shots / f"sustainability-{expected}.png")
    assert [p["title"] for p in sustainability["plots"]] == [
        "Carbon saved by lever, with 95 % intervals", "Carbon as scheduled and as optimized"]
    headline = sustainability["headline"]
    assert record.chosen in headline and "knee" in headline
    assert "US-CAL-CISO" in headline and "2026-12-01 17:50 UTC" in headline and "Plan mode" in headline
    assert "100,000,000 expected inferences" in headline and "modeled" in headline
    total, inference = report.saving("total"), report.saving("inference")
    assert total.significant and inference.significant  # the int8 variants save beyond the noise here
    # plan mode: the headline's saving is the model choice's, which happened; the gate's is "would have"
    assert headline.startswith("Saved ") and "by the model choice" in headline
    assert "would have saved a further" in headline and "so this did not happen" in headline
    assert f"{car_distance_text(inference.g.estimate)} [" in headline and "driven by an average new car" in headline
    assert "saved [95 % interval]" in sustainability["headers"]
    _check_rounded(sustainability["cells"] + [headline] + [p["desc"] for p in sustainability["plots"]])

    # collapsed on screen, open on paper: a closed <details> is as tall as its summary on screen only
    opened = ("() => [...document.querySelectorAll('details')].map(d => d.getBoundingClientRect().height > "
              "d.querySelector('summary').getBoundingClientRect().height + 4)")
    for path in (sus_path, sel_path):
        assert not any(chromium.load(path, probe=opened).probe)
        printed = chromium.load(path, media="print", probe=opened, pdf=tmp_path / f"{path.stem}.pdf")
        assert printed.problems == [] and printed.probe and all(printed.probe)
    assert (tmp_path / "sustainability.pdf").read_bytes()[:5] == b"%PDF-"


def test_a_saving_inside_the_noise_gets_no_familiar_unit(chromium, tmp_path):
    """One model whose fp32 is the only variant (the baseline is the choice) and a gate whose
    window is no greener than now: nothing saved, and the headline says so without a car."""
    evaluations, trainings, entries = _run(1, seed=3)
    entries = [e for e in entries if e.variant == "fp32"]
    evaluations = [(entries, "/variants/mlp-0", _variant_list("mlp-0", entries))]
    record = select_model(candidates_from_evaluations(evaluations)).to_record()
    report = build_sustainability_report(_decision(window_intensity=303.2), trainings, entries, record,
                                         expected_lifetime_inferences=1e8)
    page = tmp_path / "noise.html"
    page.write_text(sustainability_html(report), encoding="utf-8")
    probe = _check_page(chromium, page, tmp_path / "shots" / "noise.png")
    assert not report.saving("total").significant
    assert probe["headline"].startswith("No significant difference") and "driven" not in probe["headline"]


def test_labels_are_spread_apart_and_kept_in_order():
    ys = spread_labels([0.5, 0.5, 0.51, 0.99, 0.98, 0.0], gap=0.05)
    ordered = sorted(ys)
    assert all(b - a >= 0.05 - 1e-12 for a, b in zip(ordered, ordered[1:]))
    assert 0.0 <= min(ys) and max(ys) <= 1.0
    # the order of the points' heights is kept (ties by position)
    assert ys[5] < ys[0] < ys[1] < ys[2] < ys[4] < ys[3]


def test_the_car_conversion_is_the_eea_figure():
    assert CAR_G_CO2_PER_KM == 108.1
    assert car_distance_text(108.1) == "1.00 km"
    assert car_distance_text(0.2278) == "2.11 m"
    assert car_distance_text(108_100) == "1,000 km"


def test_a_front_of_fifty_names_twelve_along_it_and_the_choice_without_overlaps(chromium, tmp_path):
    """50 candidates on an exact trade-off curve, all on the front: the plot names 12 of them,
    evenly along it (both ends included), and the choice; every point keeps its hover title."""
    from greenkfp.components.selection import Candidate

    candidates = [Candidate(f"model-{k:02d}/int8", None, {"accuracy": 0.70 + 0.004 * k, "sci": 1e-6 * (1 + 0.1 * k),
                                                         "latency_p95_ms": 0.01 * (1 + 0.05 * k)}) for k in range(50)]
    record = select_model(candidates).to_record()
    assert len(record.front) == 50
    path = tmp_path / "front.html"
    path.write_text(selection_html(record), encoding="utf-8")
    probe = _check_page(chromium, path, tmp_path / "shots" / "front-50.png")
    for plot in probe["plots"]:
        named = [label.removesuffix(" (chosen)") for label in plot["labels"]]
        assert len(named) == 13 and record.chosen in named
        assert {"model-00/int8", "model-49/int8"} <= set(named)
        assert len(plot["hovers"]) == 50


# --------------------------------------------------------------------------- the hostile review's cases


def _fp32_only(seed: int = 3):
    evaluations, trainings, entries = _run(1, seed=seed)
    entries = [e for e in entries if e.variant == "fp32"]
    evaluations = [(entries, "/variants/mlp-0", _variant_list("mlp-0", entries))]
    return evaluations, trainings, entries


def test_a_net_increase_reads_as_emitted_more_in_a_warning_style(chromium, tmp_path):
    """The run waited for a window dirtier than running at once (400 against 303.2 gCO2eq/kWh)
    and the baseline serves: the run emitted more. The headline says "Emitted X more", never a
    negative saving, in the warning style; the car distance is positive and "more"; the bar is
    the increase's colour, not the saving's green."""
    import re

    evaluations, trainings, entries = _fp32_only()
    record = select_model(candidates_from_evaluations(evaluations)).to_record()
    report = build_sustainability_report(_decision(window_intensity=400.0, mode="wait"), trainings, entries, record,
                                         expected_lifetime_inferences=1e8)
    total = report.saving("total")
    assert total.significant and total.g.estimate < 0
    page = tmp_path / "increase.html"
    text = sustainability_html(report)
    page.write_text(text, encoding="utf-8")
    probe = _check_page(chromium, page, tmp_path / "shots" / "increase.png")
    headline = probe["headline"]
    assert headline.startswith("Emitted ") and " more" in headline.split("\n")[0], headline
    assert "Saved" not in headline and " -" not in headline and "\u2212" not in headline.split("\n")[0]
    assert "more [" in headline and "driven by an average new car" in headline  # ≈ 2.2 cm more [0.95 to 4.4 cm]
    near, far = sorted((total.g.low, total.g.high), key=abs)
    assert f"[{car_distance_text(near)} to {car_distance_text(far)}]" in headline  # in order
    assert 'class="headline increase"' in text
    savings = next(p for p in probe["plots"] if p["title"].startswith("Carbon saved"))
    assert "Emitted" in savings["desc"] and "Saved" not in savings["desc"]
    assert "#b34700" in text.split('id="savings-title"')[1].split("</svg>")[0]  # the increase's colour
    assert "#2e7d32" not in text.split('id="savings-title"')[1].split("</svg>")[0]  # no saving green
    assert any(cell.startswith("emitted ") and " more" in cell for cell in probe["cells"])
    assert not any(re.search(r"(^|[\s\[])[-\u2212]\d", cell) for cell in probe["cells"]), probe["cells"]  # none negative
    _check_rounded(probe["cells"] + [headline])


def test_a_blocked_selection_draws_no_zero_inference_and_says_promotion_was_blocked(chromium, tmp_path):
    """No candidate meets min_accuracy: promotion blocked. The chart must not draw the optimized
    inference as 0 g (a fake saving); the headline says promotion was blocked and still gives the
    training saving (the run waited: realized)."""
    from greenkfp.components.selection import selection_html

    evaluations, trainings, entries = _run(1, seed=5)
    record = select_model(candidates_from_evaluations(evaluations),
                          constraints=Constraints(min_accuracy=0.99), on_none="block").to_record()
    assert not record.promote and record.chosen is None
    report = build_sustainability_report(_decision(mode="wait"), trainings, entries, record,
                                         expected_lifetime_inferences=1e8)
    page = tmp_path / "blocked.html"
    page.write_text(sustainability_html(report), encoding="utf-8")
    probe = _check_page(chromium, page, tmp_path / "shots" / "blocked.png")
    headline = probe["headline"]
    assert headline.startswith("Promotion blocked"), headline
    training = report.saving("training")
    assert training.significant and "Saved " in headline and "by training in the gate's window" in headline
    comparison = next(p for p in probe["plots"] if p["title"] == "Carbon as scheduled and as optimized")
    optimized = comparison["desc"].split("as optimized:")[1]
    assert "inference n/a" in optimized and "no model selected" in optimized
    assert "of training's carbon as scheduled" in headline  # the percentage says what it is of
    assert "inference 0 " not in optimized and "inference 0." not in optimized
    sel = tmp_path / "blocked-selection.html"
    sel.write_text(selection_html(record), encoding="utf-8")
    assert _check_page(chromium, sel, tmp_path / "shots" / "blocked-selection.png")["headline"].startswith(
        "Promotion blocked")


def test_plan_mode_keeps_would_have_saved_apart_from_saved():
    """Plan mode: training ran at once, so the gate's saving is "would have saved", never
    "Saved"; the model choice's saving is the headline's."""
    record, report = _reports(1, 1.0)
    assert report.training.realized is False
    text = sustainability_html(report)
    headline = text.split('class="saved">')[1].split("</section>")[0]
    first, rest = headline.split("</p>", 1)
    assert first.startswith("Saved ") and "by the model choice" in first
    training = report.saving("training")
    assert "would have saved a further" in rest and "did not happen" in rest
    assert "Saved" not in rest  # the hypothetical saving is not called saved
    assert "training, had it waited (plan mode: not realized)" in text  # the savings chart's lever
    assert "as optimized (training: had it waited): training" in text  # the comparison chart's description


def _hostile_names():
    """Candidates with a 200-character name, markup, a backslash and dollar signs."""
    from greenkfp.components.selection import Candidate

    long = "mlp-" + "very-long-descriptive-name-" * 7 + "end"
    names = [long[:200], "<b>bold</b> & co", "C:\\models\\net $5$", "plain"]
    return [Candidate(f"{n}/int8", None, {"accuracy": 0.70 + 0.03 * k, "sci": 1e-6 * (1 + 0.5 * k),
                                         "latency_p95_ms": 0.01 * (1 + 0.3 * k)}) for k, n in enumerate(names)]


def test_long_and_hostile_names_are_shortened_on_plots_escaped_and_fit_the_page(chromium, tmp_path):
    """A 200-character name ends in an ellipsis on the plots (the hover title and the table keep
    it whole, wrapped); markup stays text; a backslash is drawn once; no layout warning; the
    page is no wider than the window, on a desktop and on a 390 px phone."""
    import warnings

    from greenkfp.components.selection import selection_html

    candidates = _hostile_names()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constrained_layout's "axes sizes collapsed" among them
        record = select_model(candidates).to_record()
        text = selection_html(record)
    path = tmp_path / "names.html"
    path.write_text(text, encoding="utf-8")
    probe = _check_page(chromium, path, tmp_path / "shots" / "names.png")
    long = candidates[0].name
    labels = [label for plot in probe["plots"] for label in plot["labels"]]
    assert any(label.startswith(long[:30]) and "\u2026" in label for label in labels)
    assert not any(long in label for label in labels)
    assert all(len(label.removesuffix(" (chosen)")) <= 40 for label in labels)
    assert any(long in hover for plot in probe["plots"] for hover in plot["hovers"])
    assert any("C:\\models\\net $5$/int8" in label for label in labels)  # one backslash, dollars kept
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text
    phone = _check_layout(chromium, path, width=390, height=844, screenshot=tmp_path / "shots" / "names-390.png")
    assert phone["page"] <= 390


def test_the_chosen_star_is_hollow_so_a_point_under_it_shows():
    """The chosen marker has no fill: a front member at (nearly) the same place stays visible; its
    leader line runs through no other point."""
    import math
    import re

    record, _ = _reports(1, 1.0)
    text = selection_html(record)
    for plot in re.findall(r"<svg.*?</svg>", text, flags=re.S):
        chosen = [g for g in re.findall(r'<g id="[^"]*-pt-\d+"><title>(.*?)</title>(.*?)</g>\s*</g>', plot, flags=re.S)
                  if "(chosen)" in g[0]]
        assert chosen and "fill: none" in chosen[0][1]
        # the chosen's leader line, if drawn, passes no other point closer than 7 pt (SVG units)
        centres = [tuple(map(float, m)) for m in re.findall(r'<use [^>]*x="([\d.]+)" y="([\d.]+)"', plot)]
        # the leader lines are quadratic paths; the chosen's in its colour
        for line in re.finditer(r'd="M ([\d.]+) ([\d.]+)\s*Q [\d.]+ [\d.]+ ([\d.]+) ([\d.]+)\s*" '
                                r'style="fill: none; stroke: #b71c1c', plot):
            x0, y0, x1, y1 = map(float, line.groups())
            for cx, cy in centres:
                if math.hypot(cx - x1, cy - y1) < 8:  # the chosen point itself, where the line ends
                    continue
                t = max(0.0, min(1.0, ((cx - x0) * (x1 - x0) + (cy - y0) * (y1 - y0))
                                 / (((x1 - x0) ** 2 + (y1 - y0) ** 2) or 1.0)))
                assert math.hypot(x0 + t * (x1 - x0) - cx, y0 + t * (y1 - y0) - cy) >= 7, (cx, cy)


@pytest.mark.parametrize("which", ["sustainability", "selection"])
def test_printed_pages_fit_the_paper(chromium, tmp_path, which):
    """Print media at A4's printable width (180 mm, 680 CSS px): no element wider than the page,
    headings kept with what follows, and a long reason printed once."""
    from greenkfp.components.selection import selection_html

    record, report = _reports(10, 20.0)
    text = sustainability_html(report) if which == "sustainability" else selection_html(record)
    path = tmp_path / f"{which}.html"
    path.write_text(text, encoding="utf-8")
    _check_layout(chromium, path, width=680, height=960, media="print")
    printed = chromium.load(path, media="print", width=680, height=960, probe="""() => ({
      h2: [...document.querySelectorAll('h2')].map(h => getComputedStyle(h).breakAfter),
      clipSummaries: [...document.querySelectorAll('details.clip > summary')].filter(s => s.getBoundingClientRect().height > 0).length})""",
                            pdf=tmp_path / f"{which}.pdf")
    assert printed.problems == [] and set(printed.probe["h2"]) == {"avoid"}
    assert printed.probe["clipSummaries"] == 0  # the whole text prints; its shortened start does not


def test_units_switch_for_tiny_and_huge_figures():
    from greenkfp.components.reporting.sustainability import mass_text
    from greenkfp.components.reporting.svg import plain_number

    assert mass_text(1.99e-9) == "1.99 ng CO2eq"
    assert mass_text(2.17e-6) == "2.17 µg CO2eq"
    assert mass_text(0.0229) == "22.9 mg CO2eq"
    assert mass_text(0.99996) == "1.00 g CO2eq"  # 999.96 mg rounds to 1 g, not "1,000 mg"
    assert mass_text(2500.0) == "2.50 kg CO2eq"
    assert car_distance_text(0.0123) == "11.4 cm"
    assert car_distance_text(-108.1) == "1.00 km"  # a magnitude: the caller says "more"
    assert car_distance_text(108.1 * 92507) == "92,500 km"  # three significant figures, not 92,507
    assert car_distance_text(1e-7) == "925 nm" and car_distance_text(1e-3) == "9.25 mm"  # never 0.00000092 cm
    assert car_distance_text(108.0) == "999 m" and car_distance_text(108.09) == "1.00 km"
    assert mass_text(3.2e6) == "3.20 t CO2eq" and mass_text(2.5e9) == "2,500 t CO2eq"  # tonnes from 1 t
    assert plain_number(0.00099999) == "0.00100" and plain_number(0.99996) == "1.00"


def test_a_local_run_names_its_reports_with_an_html_extension(chromium, tmp_path):
    """KFP writes an HTML artifact without an extension (its UI shows it as HTML); a local run
    gives a copy ending in .html, which a browser renders instead of showing the source."""
    from greenkfp.pipelines.local import html_copy

    artifact = tmp_path / "report"
    record, _ = _reports(1, 1.0)
    artifact.write_text(selection_html(record), encoding="utf-8")
    copy = html_copy(artifact)
    assert copy.endswith("report.html") and open(copy, encoding="utf-8").read() == artifact.read_text("utf-8")
    loaded = chromium.load(copy, probe="() => document.querySelectorAll('svg.plot').length")
    assert loaded.probe == 2  # parsed as HTML, not shown as text
    assert html_copy(tmp_path / "missing") is None


def test_the_two_most_accurate_references_are_told_apart():
    """The sustainability baseline (fp32 of the most accurate candidate) and the selection's
    accuracy reference (the most accurate variant of any precision) may differ; each report
    says which it is, so "the most accurate" never names two different variants unexplained."""
    record, report = _reports(10, 20.0)
    assert record.accuracy_reference["name"] != report.inference.baseline.name  # int8_static vs fp32 here
    assert "the unquantized fp32 of the most accurate candidate" in sustainability_html(report)
    text = selection_html(record)
    assert "the most accurate variant, any precision" in text
    # the accuracy-drop reasons in the table state the reference in %, as the table does, not as a fraction
    assert "against the most accurate variant (89.5 %)" in text and "candidate (0." not in text


def _desc(svg_html: str, name: str) -> str:
    import html as html_module

    return html_module.unescape(svg_html.split(f'<desc id="{name}-desc">')[1].split("</desc>")[0])


def test_each_levers_percentage_in_the_savings_chart_says_what_it_is_of():
    """Training's percentage is of training's carbon, inference's of inference's, the total's of
    the run: the chart's description (what a screen reader reads) must not call them all "of the run"."""
    record, report = _reports(1, 1.0)
    desc = _desc(sustainability_html(report), "savings")
    parts = dict(part.split(": ", 1) for part in desc.split("; "))
    training, inference, total = (next(v for k, v in parts.items() if k.startswith(p))
                                  for p in ("training", "which model", "total"))
    assert "of training's carbon as scheduled" in training and "of the run" not in training, training
    assert "of inference's carbon as scheduled" in inference and "of the run" not in inference, inference
    assert "of the run as scheduled" in total, total


def test_a_promoted_model_without_sci_figures_is_unavailable_not_blocked(chromium, tmp_path):
    """The selection promoted a model, but no SCI entry of it reached the report: the model
    choice's saving is unavailable (-1 on the component's outputs), not "Promotion blocked" with
    a saving of 0, and the comparison chart's note fits the plot."""
    from greenkfp.components.reporting.sustainability import component_outputs

    evaluations, trainings, entries = _run(1, seed=5)
    record = select_model(candidates_from_evaluations(evaluations)).to_record()
    assert record.promote
    report = build_sustainability_report(_decision(mode="wait"), trainings, [], record, expected_lifetime_inferences=1e8)
    assert report.inference.selected is None and report.promoted is True
    page = tmp_path / "no-sci.html"
    text = sustainability_html(report)
    page.write_text(text, encoding="utf-8")
    probe = _check_page(chromium, page, tmp_path / "shots" / "no-sci.png")
    assert "blocked" not in probe["headline"].lower() and 'headline none blocked' not in text
    assert "the selected model has no SCI figures" in probe["headline"]
    assert "Saved " in probe["headline"] and "by training in the gate's window" in probe["headline"]
    comparison = next(p for p in probe["plots"] if p["title"] == "Carbon as scheduled and as optimized")
    assert "no model selected" not in comparison["desc"] and "inference unavailable" in comparison["desc"]
    outputs = component_outputs(report)
    assert outputs["saving_status"] == "unavailable" and outputs["saved_g"] == outputs["saved_percent"] == 0.0


def test_plan_mode_metrics_and_outputs_say_what_happened():
    """Plan mode (training did not wait): the KFP metrics' savings and the component's outputs are
    the realised saving (the model choice's); what waiting would have saved has names of its own,
    and training as optimized is what it emitted (its scheduled figure)."""
    from greenkfp.components.reporting.sustainability import component_outputs

    record, report = _reports(1, 1.0)
    assert report.training.realized is False
    metrics, outputs = report.metrics(), component_outputs(report)
    inference = report.saving("inference")
    assert metrics["total_saved_g"] == inference.g.estimate == outputs["saved_g"]
    assert metrics["total_saved_g_low"] == inference.g.low and metrics["total_saved_significant"] == 1.0
    assert metrics["total_saved_percent"] == pytest.approx(outputs["saved_percent"])
    assert metrics["total_saved_percent"] == pytest.approx(100 * inference.g.estimate / report.total.scheduled_g)
    assert "training_saved_g" not in metrics and "training_saved_significant" not in metrics
    assert metrics["training_saved_if_waited_g"] == report.saving("training").g.estimate == (
        outputs["unrealized_training_saved_g"])
    assert metrics["total_saved_if_waited_g"] == report.saving("total").g.estimate
    # the table's "as optimized" training figure (had it waited) has the same name here; none says "optimized"
    assert "training_optimized_g" not in metrics and metrics["training_scheduled_g"] == report.training.scheduled_g
    assert metrics["training_if_waited_g"] == report.training.optimized_g
    # the headline gives the same percentage of the run as the component's saved_percent
    headline = sustainability_html(report).split('class="saved">')[1].split("</p>")[0]
    from greenkfp.components.reporting.svg import plain_number
    assert f"({plain_number(outputs['saved_percent'])} % of the run as scheduled)" in headline, headline


def test_plan_mode_without_training_figures_gives_no_percentage_of_the_run():
    """No training records: the run's scheduled total is unknown, so saved_percent is unavailable
    (saved_percent_available False), never a figure beside a saving in grams."""
    from greenkfp.components.reporting.sustainability import component_outputs

    evaluations, _, entries = _run(1, seed=7)
    record = select_model(candidates_from_evaluations(evaluations)).to_record()
    report = build_sustainability_report(_decision(), [], entries, record, expected_lifetime_inferences=1e8)
    outputs = component_outputs(report)
    assert report.training.realized is False and outputs["saved_g"] > 0
    assert outputs["saving_status"] == "saved" and outputs["saved_percent_available"] is False
    assert outputs["saved_percent"] == 0.0
    assert "total_saved_percent" not in report.metrics() and report.metrics()["total_saved_g"] == outputs["saved_g"]


def test_the_cli_summary_words_an_increase_as_emitted_more(capsys):
    """The run's terminal summary: a net increase is "emitted ... more", never a negative saving."""
    import re

    from greenkfp.pipelines.cli import _print_report
    from greenkfp.pipelines.local import TrainingRun

    evaluations, trainings, entries = _fp32_only()
    record = select_model(candidates_from_evaluations(evaluations)).to_record()
    decision = _decision(window_intensity=400.0, mode="wait")
    report = build_sustainability_report(decision, trainings, entries, record, expected_lifetime_inferences=1e8)
    assert report.saving("total").significant and report.saving("total").g.estimate < 0
    _print_report(TrainingRun(decision, (), record, report, "report.html", "selection.html", "."))
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.lstrip("│ ").startswith(("training", "total"))]
    assert rows and all("emitted" in row and "more" in row for row in rows), out
    assert not re.search(r"[-−]\d", " ".join(rows)), rows  # no negative figure


# --------------------------------------------------------------------------- re-check 2's cases


def _headline_paragraphs(text: str) -> list[str]:
    """The headline's paragraphs (before its list), as text, in order."""
    import html as html_module
    import re

    section = text.split('aria-label="summary">')[1].split("<dl>")[0]
    return [html_module.unescape(re.sub(r"<[^>]+>", "", p)) for p in re.findall(r"<p[^>]*>(.*?)</p>", section)]


def test_a_run_without_training_records_leads_with_the_model_choices_saving():
    """Wait mode, no training records: the headline gives the model choice's (significant) saving
    with its car distance right after it, and says why training's is missing; never a bare
    "Saved: n/a". Plan mode: "what waiting would have saved" is unavailable, for the same reason."""
    evaluations, _, entries = _run(1, seed=7)
    record = select_model(candidates_from_evaluations(evaluations), rule="knee",
                          constraints=Constraints(max_accuracy_drop_points=1.0)).to_record()
    for mode, missing in (("wait", "Training's saving is unavailable: no training records."),
                          ("plan", "What waiting for the window would have saved is unavailable: no training records.")):
        report = build_sustainability_report(_decision(mode=mode), [], entries, record, expected_lifetime_inferences=1e8)
        inference = report.saving("inference")
        assert inference.significant and report.saving("total") is None
        lines = _headline_paragraphs(sustainability_html(report))
        assert lines[0].startswith("Saved ") and "by the model choice" in lines[0], lines
        assert "n/a" not in lines[0] and "of inference's carbon as scheduled" in lines[0]
        assert lines[1].startswith(f"\u2248 {car_distance_text(inference.g.estimate)}")  # the car follows its figure
        assert missing in lines[2:], lines


def test_the_car_distance_follows_the_sentence_it_converts():
    """Plan mode: the car distance converts the realised saving, so it comes right after it, not
    after what waiting would have saved."""
    _, report = _reports(1, 1.0)
    lines = _headline_paragraphs(sustainability_html(report))
    assert lines[0].startswith("Saved ") and lines[1].startswith("\u2248 ")
    assert lines[2].startswith("Waiting for the window would have saved a further")


def test_a_model_without_sci_figures_in_plan_mode_names_no_missing_section_and_no_bare_na():
    """Plan mode, the promoted model has no SCI figures: the lead says the model choice's saving is
    unavailable and why, pointing to what the page has; no "Saved: n/a"; no "a further" saving
    beyond a saving that is not there."""
    evaluations, trainings, _ = _run(1, seed=5)
    record = select_model(candidates_from_evaluations(evaluations)).to_record()
    report = build_sustainability_report(_decision(mode="plan"), trainings, [], record, expected_lifetime_inferences=1e8)
    text = sustainability_html(report)
    lines = _headline_paragraphs(text)
    assert lines[0].startswith("The model choice's saving is unavailable: the selected model has no SCI figures")
    assert not any("Saved: n/a" in line for line in lines) and "see Inference below" not in text
    assert any(line.startswith("Waiting for the window would have saved 2.") for line in lines), lines


def test_the_component_outputs_say_unavailable_apart_from_any_figure():
    """An increase of exactly 1.0 % (or 1 g) is a figure, not "unavailable": the outputs carry a
    status, and an unavailable saving is its own status with figures of 0."""
    from greenkfp.components.reporting.sustainability import SAVING_STATUSES, component_outputs

    evaluations, trainings, entries = _fp32_only()
    record = select_model(candidates_from_evaluations(evaluations)).to_record()

    def outputs(window: float, training=trainings, sci=entries):
        report = build_sustainability_report(_decision(window_intensity=window, mode="wait"), training, sci, record,
                                             expected_lifetime_inferences=1e8)
        return report, component_outputs(report)

    report, out = outputs(303.2 * 1.0101)  # a dirtier window: about 1.0 % more than running at once
    assert report.saving("total").significant and out["saving_status"] == "increase"
    assert out["saved_percent"] == pytest.approx(report.saving("total").percent.estimate) and out["saved_percent"] < 0
    assert out["saved_percent_available"] is True
    for missing in ({"training": []}, {"sci": []}):
        _, out = outputs(199.3, **missing)
        assert out["saving_status"] == "unavailable" and out["saved_g"] == 0.0 and out["saved_percent"] == 0.0
    _, out = outputs(199.3)
    assert out["saving_status"] == "saved" and out["saved_g"] > 0
    assert out["unrealized_training_status"] == "not_applicable" and out["unrealized_training_saved_g"] == 0.0
    assert {out["saving_status"], out["unrealized_training_status"]} <= set(SAVING_STATUSES)


def _named_run(names: list[str]):
    """Two or more candidates by name (the first the most accurate), three variants each; the
    selection (up to 3 points given up) and the sustainability report of a run that waited."""
    rng = np.random.default_rng(1)
    shared = rng.lognormal(0, 0.05, ROUNDS)
    evaluations, trainings = [], []
    for m, name in enumerate(names):
        entries = []
        for v, variant in enumerate(["fp32", "int8_dynamic", "int8_static"]):
            factor = {"fp32": 1.0, "int8_dynamic": 0.55, "int8_static": 0.5}[variant]
            accuracy = round((0.8 - 0.05 * m + rng.normal(0, 0.004) * (v > 0)) * TEST_ROWS) / TEST_ROWS
            entries.append(_scored(name, variant, accuracy, 2e-9 * (2 - m) * factor, 0.02 * factor, shared, rng,
                                   150_000))
        evaluations.append((entries, f"/variants/{m}", _variant_list(name, entries)))
        trainings.append(_training(name, 2.5e-5 * (1 + m)))
    record = select_model(candidates_from_evaluations(evaluations),
                          constraints=Constraints(max_accuracy_drop_points=3)).to_record()
    report = build_sustainability_report(_decision(mode="wait"), trainings, [e for ev in evaluations for e in ev[0]],
                                         record, expected_lifetime_inferences=1e9)
    return record, report


@pytest.mark.parametrize("name", ["hgb-" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                                  "x" * 120], ids=["sha256-suffixed", "120-characters"])
def test_names_that_cannot_break_at_a_word_still_fit_a_phone_and_the_paper(chromium, tmp_path, name):
    """A hash-suffixed candidate name (68 characters) or a 120-character one has no place to break
    at a word: the headline, the table and the selection's summary line break it anywhere, so no
    page is wider than a 390 px phone or than A4's printable width (680 CSS px)."""
    record, report = _named_run([name, "mlp-small"])
    assert name in record.chosen
    for which, text in (("sustainability", sustainability_html(report)), ("selection", selection_html(record))):
        path = tmp_path / f"{which}.html"
        path.write_text(text, encoding="utf-8")
        phone = _check_layout(chromium, path, width=390, height=844, screenshot=tmp_path / f"{which}-390.png")
        assert phone["page"] <= 390, (which, phone["page"])
        paper = _check_layout(chromium, path, width=680, height=960, media="print")
        assert paper["page"] <= 680, (which, paper["page"])


def _pdf_pages(path) -> int:
    import re

    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def test_the_selection_report_of_thirty_candidates_prints_on_few_pages_with_words_whole(chromium, tmp_path):
    """A4, print media: the candidates table gives its "why" column room (the opened reasons do
    not stand one word to a line, a row to a page), so 30 candidates print on 6 pages or fewer;
    a column header breaks between words, never inside one."""
    record, _ = _reports(10, 20.0)
    path = tmp_path / "selection.html"
    path.write_text(selection_html(record), encoding="utf-8")
    # each header's longest word, set alone in the header's font, fits the header's content box
    probe = """() => [...document.querySelectorAll('th[scope=col]')].map(th => {
      const style = getComputedStyle(th);
      const box = th.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      const longest = th.innerText.split(/\\s+/).reduce((a, b) => b.length > a.length ? b : a, '');
      const span = document.createElement('span'); span.textContent = longest;
      span.style.cssText = 'position:absolute;white-space:nowrap;font:' + style.font;
      document.body.appendChild(span); const word = span.getBoundingClientRect().width; span.remove();
      return {text: th.innerText, longest, word, box};
    })"""
    printed = chromium.load(path, media="print", width=680, height=960, probe=probe, pdf=tmp_path / "selection.pdf")
    assert printed.problems == []
    for header in printed.probe:
        assert header["word"] <= header["box"] + 0.5, header  # no word split over two lines
    pages = _pdf_pages(tmp_path / "selection.pdf")
    assert pages <= 6, pages


def _tied_selection():
    """Two int8 variants whose 95 % intervals overlap on every objective: the knee rule picks
    int8_static, and the tie rule chooses int8_dynamic, the smaller model (as in `make demo`)."""
    from greenkfp.components.selection import Candidate

    def candidate(name, accuracy, sci, latency, size):
        return Candidate(name, None, {
            "accuracy": accuracy, "accuracy_low": accuracy - 0.012, "accuracy_high": accuracy + 0.012,
            "sci": sci, "sci_low": sci * 0.9, "sci_high": sci * 1.1, "latency_p95_ms": latency,
            "latency_p95_ms_low": latency * 0.9, "latency_p95_ms_high": latency * 1.1, "macs": 150_000,
            "weight_bytes": size})

    return select_model([candidate("mlp-wide/fp32", 0.90, 2.0e-6, 0.04, 600_000),
                         candidate("mlp-wide/int8_static", 0.897, 1.00e-6, 0.020, 160_000),
                         candidate("mlp-wide/int8_dynamic", 0.899, 1.05e-6, 0.021, 150_000),
                         candidate("small/fp32", 0.86, 0.9e-6, 0.019, 10_000)]).to_record()


def test_a_tie_break_choice_is_said_in_both_headlines_and_the_chosen_row():
    """The knee rule picked int8_static; int8_dynamic won the tie-break on size. Neither headline
    may call the choice "the knee rule's pick": each names the pick, the tie and what decided, and
    so does the chosen row's "why" (its normalised figures alone would contradict the headline)."""
    import html as html_module
    import re

    record = _tied_selection()
    assert record.chosen == "mlp-wide/int8_dynamic"
    assert record.tie_break_choice["rule_pick"] == "mlp-wide/int8_static"
    expected = ("tied with the knee rule's pick, mlp-wide/int8_static (95 % intervals overlap on accuracy, latency "
                "p95, SCI), and chosen by the tie-break on smaller model size")

    def text(fragment: str) -> str:
        return html_module.unescape(re.sub(r"<[^>]+>", "", fragment))

    page = selection_html(record)
    verdict = text(page.split('class="verdict')[1].split("<details")[0])
    assert expected in verdict and "rule's pick among" not in verdict, verdict
    assert "2 front members of 4 candidates" in verdict and "member(s)" not in page and "candidate(s)" not in page
    assert expected in text(page.split('<tr class="chosen">')[1].split("</tr>")[0])

    rng = np.random.default_rng(2)
    shared = rng.lognormal(0, 0.05, ROUNDS)
    entries = [_scored(*c.name.split("/"), c.metrics["accuracy"], c.metrics["sci"] / 1000,
                       c.metrics["latency_p95_ms"], shared, rng, macs=150_000) for c in record.candidates]
    report = build_sustainability_report(_decision(mode="wait"), [], entries, record, expected_lifetime_inferences=1e8)
    selected = text(sustainability_html(report).split("<dt>Selected</dt><dd>")[1].split("<details")[0])
    assert selected.startswith("mlp-wide/int8_dynamic by the knee rule among 2 front members of 4 candidates, " + expected)


def test_plan_mode_draws_what_would_have_been_saved_apart_from_what_was():
    """Plan mode: the savings chart's training and total bars did not happen. Their tick labels
    say "would have saved" and they are outlined and dotted, not the realised saving's solid green
    (only the model choice's bar is)."""
    import re

    _, report = _reports(1, 1.0)
    svg = sustainability_html(report).split('id="savings-title"')[1].split("</svg>")[0]
    ticks = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert any(t.endswith("would have saved") for t in ticks), ticks
    assert sum(t.endswith(", saved") for t in ticks) == 1, ticks  # the model choice's, which happened
    bars = re.findall(r'<g id="savings-patch_\d+">\s*<path [^>]*style="([^"]*)"', svg)
    assert sum(style == "fill: #2e7d32" for style in bars) == 1, bars  # solid green: the realised saving only
    assert sum(style.startswith("fill: url(") and "stroke: #2e7d32" in style for style in bars) == 2, bars
