"""Scheduled against optimized: the carbon a run saved, as a team would present it.

Two parts, each compared the way the run could have gone without greenkfp:

* training: as scheduled, the energy the candidates' fits used (CodeCarbon; modeled on
  machines without RAPL) priced at the intensity of running at submission time (the gate's
  run-now counterfactual); as optimized, the training step's own hourly figure, each fit's
  energy at the intensity of the hours it actually ran (when a fit has none, the gate's chosen
  window stands in, and the basis says so);
* inference over the expected volume: the baseline (the most accurate candidate, fp32,
  unquantized) against the selected variant, each at its SCI per inference.

Figures are estimates from measured or modeled energy and recorded or replayed intensities;
every input says which, and the report carries those labels.
"""

from __future__ import annotations

import html
import io
import math
from typing import Sequence

from greenkfp.components.energy import MODELED_ERROR_RANGE
from greenkfp.components.stats import COMMON_RUN_TO_RUN, TRAINING_RUN_TO_RUN, VARIANT_RUN_TO_RUN
from greenkfp.components.records import (
    GateDecisionRecord,
    SciEntry,
    SelectionRecord,
    SustainabilityReport,
    TrainingRecord,
)

SCHEMA = SustainabilityReport.SCHEMA


def _training_energy(training_records: Sequence[TrainingRecord]) -> tuple[float | None, list[str], list[str]]:
    total, methods, missing = 0.0, set(), []
    for record in training_records:
        energy = record.energy
        if energy.available and energy.energy_kwh is not None:
            total += energy.energy_kwh
            methods.add(energy.method)
        else:
            missing.append(f"{record.name}: {energy.reason}")
    return (None if missing or not training_records else total), sorted(methods), missing


def _hourly_emissions(training_records: Sequence[TrainingRecord]) -> tuple[float | None, list[str], list[str]]:
    """The training step's own hourly figures: their sum, their sources, and the fits without one."""
    total, sources, missing = 0.0, set(), []
    for record in training_records:
        if record.emissions.hourly_g is None:
            missing.append(record.name)
            continue
        total += record.emissions.hourly_g
        pricing = record.emissions.hourly_pricing or {}
        sources.add(f"{pricing.get('provider', 'unknown')} {str(pricing.get('data_kind', 'unknown')).replace('_', ' ')}")
    return (None if missing or not training_records else total), sorted(sources), missing


def _baseline(entries: Sequence[SciEntry]) -> SciEntry | None:
    """The most accurate candidate's fp32 variant (ties: by candidate name)."""
    fp32 = [e for e in entries if e.variant == "fp32" and e.scored and e.accuracy is not None]
    if not fp32:
        return None
    return sorted(fp32, key=lambda e: (-e.accuracy, e.candidate))[0]


def _figures(entry: SciEntry, name: str, selection: SelectionRecord | None = None) -> dict:
    """A model's figures for the report; its accuracy interval (Wilson, from the test rows) from
    the selection's metrics of it, when the selection scored it."""
    metrics = next((c.metrics for c in (selection.candidates if selection else ()) if c.name == name), {})
    accuracy = ({"estimate": entry.accuracy, "low": metrics["accuracy_low"], "high": metrics["accuracy_high"]}
                if metrics.get("accuracy_low") is not None and metrics.get("accuracy_high") is not None else None)
    latency = entry.latency_p95_ms_interval
    return {"name": name, "accuracy": entry.accuracy, "per_inference_g": entry.per_inference_g, "sci": entry.sci,
            "sci_unit": entry.sci_unit, "energy_method": entry.energy_method, "accuracy_interval": accuracy,
            "latency_p95_ms": entry.latency_p95_ms,
            "latency_p95_ms_interval": None if latency is None else latency.to_dict()}


def _training_part(decision: GateDecisionRecord, training_records: Sequence[TrainingRecord]) -> dict:
    """Training as scheduled (all fits' energy at the gate's run-now intensity) against at the
    gate's window (the same energy at the window's intensity): one forecast, one averaging over the
    job's duration, so the difference is the window's and not two sources'. The training step's
    own hourly figure (the fits' energy at the hours they actually ran) is kept beside it as a
    cross-check. ``realized`` says whether the run waited for the window: in ``plan`` mode the
    candidates trained at once, and the saving is what waiting would have saved."""
    energy_kwh, methods, missing = _training_energy(training_records)
    now_i, window_i = decision.intensity_now_gco2_per_kwh, decision.intensity_window_gco2_per_kwh
    hourly_g, hourly_sources, unpriced = _hourly_emissions(training_records)
    waited = decision.inputs.mode == "wait" or decision.action == "run_now"
    training = {"energy_kwh": energy_kwh, "energy_methods": methods, "energy_missing": missing,
                "intensity_scheduled_gco2_per_kwh": now_i, "intensity_optimized_gco2_per_kwh": window_i,
                "scheduled_g": None, "optimized_g": None,
                "scheduled_basis": "all candidates' fit energy x the gate's run-now average intensity in the home "
                                   "region (the run as scheduled, at submission time)",
                "optimized_basis": "the same energy x the gate's chosen-window average intensity (same forecast, "
                                   "same averaging over the job's duration)"
                                   + ("" if waited else "; plan mode: the run did not wait, so this is what "
                                                        "waiting for the window would have saved"),
                "realized": waited, "hourly_g": hourly_g,
                "hourly_basis": (f"the training step's hourly pricing: each fit's energy x the time-weighted intensity "
                                 f"of the hours it actually ran ({', '.join(hourly_sources)})") if hourly_g is not None
                else f"no hourly pricing for {', '.join(unpriced) or 'any fit'}",
                "home_region": decision.home_region, "chosen_region": decision.region,
                "delay_seconds": decision.delay_seconds}
    if energy_kwh is not None and now_i is not None:
        training["scheduled_g"] = energy_kwh * now_i
    if energy_kwh is not None and window_i is not None:
        training["optimized_g"] = energy_kwh * window_i
    training["basis"] = f"scheduled: {training['scheduled_basis']}; optimized: {training['optimized_basis']}"
    if training["scheduled_g"] is None or training["optimized_g"] is None:
        training["unavailable_reason"] = (
            "no gate forecast (failure policy applied)" if now_i is None or window_i is None
            else "training energy unavailable")
    return training


#: The run-to-run uncertainties the savings' intervals add (measured; see greenkfp.components.stats).
RUN_TO_RUN_UNCERTAINTY = COMMON_RUN_TO_RUN
TRAINING_RUN_TO_RUN_UNCERTAINTY = TRAINING_RUN_TO_RUN

_SAVINGS_METHOD = (
    "each saving is scheduled - optimized with a 95 % interval from 2,000 seeded resamples. Inference: the "
    "expected inferences x (median carbon per inference of the baseline - of the selected variant), each resample "
    "a paired block bootstrap over the interleaved benchmark's rounds (round r of both variants ran together), "
    f"scaled by a common run-to-run factor (normal, mean 1, sd {COMMON_RUN_TO_RUN:g}: the machine's state "
    "changes every variant's absolute figures alike between runs, which one run cannot see; it cancels in the "
    f"variants' ratio but not in grams) and by one factor per variant (sd {VARIANT_RUN_TO_RUN:g}: what a rerun in a "
    "fresh process moves one variant by, which moves their ratio); without per-round figures, the point "
    "estimates with those factors. "
    "Training: the fits' energy priced at the gate's run-now and window intensities, scaled in each resample by "
    f"a run-to-run factor of its own (lognormal, mean 1, sigma {TRAINING_RUN_TO_RUN_UNCERTAINTY:g}: a fit is measured "
    "once); its percentage is the intensities' ratio, which the "
    "energy cancels from. Total: training + inference in each resample, so the total's percentage carries the "
    "uncertainty of their mix. 'no significant difference' where the grams' interval includes zero. The energy "
    "models' own error bands (modeled energy) are stated apart, in the caveats."
)


def _paired(baseline: SciEntry, chosen: SciEntry) -> bool:
    b, c = baseline.rounds, chosen.rounds
    return b is not None and c is not None and b.group == c.group and len(b.per_inference_g) == \
        len(c.per_inference_g) > 1


def _savings(training: dict, baseline: SciEntry | None, chosen: SciEntry | None, volume: float,
             seed: int = 0, run_to_run: float = RUN_TO_RUN_UNCERTAINTY,
             training_run_to_run: float = TRAINING_RUN_TO_RUN_UNCERTAINTY,
             variant_run_to_run: float = VARIANT_RUN_TO_RUN) -> dict:
    """Training, inference and total savings as estimates with 95 % intervals (see _SAVINGS_METHOD)."""
    import numpy as np

    from greenkfp.components.stats import DEFAULT_RESAMPLES, Estimate, paired_bootstrap

    rng = np.random.default_rng(seed + 1)
    inference_factor = rng.normal(1.0, run_to_run, DEFAULT_RESAMPLES)
    variant_factor = {key: rng.normal(1.0, variant_run_to_run, DEFAULT_RESAMPLES) for key in ("b", "s")}
    # lognormal with mean 1: a multiplicative spread that large is skewed, and energy is never negative
    training_factor = rng.lognormal(-training_run_to_run ** 2 / 2, training_run_to_run, DEFAULT_RESAMPLES)

    def resampled(a) -> bool:  # False for the point estimate's single row
        return next(iter(a.values())).shape[0] != 1

    def part(g: Estimate, percent: Estimate | None, basis: str) -> dict:
        return {"g": g.to_dict(), "percent": None if percent is None else percent.to_dict(),
                "significant": g.significant, "basis": basis}

    def t_factor(a):
        return training_factor if resampled(a) else 1.0

    no_rounds = {"b": [0.0, 0.0]}  # a series to resample when only the run-to-run factors vary

    out: dict = {"training": None, "inference": None, "total": None, "method": _SAVINGS_METHOD}
    t_sched, t_opt = training["scheduled_g"], training["optimized_g"]
    t_saved = None if t_sched is None or t_opt is None else t_sched - t_opt
    if t_saved is not None:
        realized = "" if training.get("realized", True) else "; not realized: the run did not wait (plan mode)"
        out["training"] = part(paired_bootstrap(no_rounds, lambda a: t_saved * t_factor(a), seed=seed),
                               Estimate.exact(100.0 * t_saved / t_sched) if t_sched else None,
                               "run-to-run factor on the fits' energy; the percentage is the intensities' ratio"
                               + realized)
    if baseline is None or chosen is None:
        return out
    same = baseline.name == chosen.name
    if same:
        variant_factor["s"] = variant_factor["b"]  # one variant: one factor
    samples = None if same or not _paired(baseline, chosen) else \
        {"b": baseline.rounds.per_inference_g, "s": chosen.rounds.per_inference_g}
    point_b, point_s = baseline.per_inference_g, chosen.per_inference_g
    series = samples or no_rounds

    def per_inference(a, key):
        if samples is None:  # no rounds: the point estimates in every resample
            value = np.full(next(iter(a.values())).shape[0], point_b if key == "b" else point_s)
        else:
            value = np.median(a[key], axis=1)
        return value * (inference_factor * variant_factor[key] if resampled(a) else 1.0)

    if same:
        inference_g = inference_percent = Estimate.exact(0.0)
        basis = "the baseline itself was selected: nothing saved"
    else:
        inference_g = paired_bootstrap(series, lambda a: volume * (per_inference(a, "b") - per_inference(a, "s")),
                                       seed=seed)
        inference_percent = paired_bootstrap(
            series, lambda a: 100.0 * (per_inference(a, "b") - per_inference(a, "s")) / per_inference(a, "b"),
            seed=seed) if point_b else None
        basis = ("paired bootstrap over the interleaved rounds, with the run-to-run factors" if samples else
                 "point estimates (no per-round figures to pair), with the run-to-run factors")
    out["inference"] = part(inference_g, inference_percent, basis)
    if t_saved is None:
        return out

    def total_saved(a):
        return t_saved * t_factor(a) + volume * (per_inference(a, "b") - per_inference(a, "s"))

    def total_scheduled(a):
        return t_sched * t_factor(a) + volume * per_inference(a, "b")

    total_g = paired_bootstrap(series, total_saved, seed=seed)
    total_percent = paired_bootstrap(series, lambda a: 100.0 * total_saved(a) / total_scheduled(a), seed=seed) \
        if t_sched + volume * (baseline.per_inference_g or 0.0) else None
    out["total"] = part(total_g, total_percent, "training + inference, per resample")
    return out


def build_sustainability_report(
    decision: GateDecisionRecord,
    training_records: Sequence[TrainingRecord],
    sci_entries: Sequence[SciEntry],
    selection: SelectionRecord | None,
    *,
    expected_lifetime_inferences: float,
    run_to_run_uncertainty: float = RUN_TO_RUN_UNCERTAINTY,
    training_run_to_run_uncertainty: float = TRAINING_RUN_TO_RUN_UNCERTAINTY,
    variant_run_to_run_uncertainty: float = VARIANT_RUN_TO_RUN,
) -> SustainabilityReport:
    """The report record. Missing inputs leave their part ``None`` with a reason.

    ``run_to_run_uncertainty``: relative standard uncertainty of absolute per-inference figures
    between runs (see :data:`RUN_TO_RUN_UNCERTAINTY`); 0 keeps only the run's own noise.
    ``training_run_to_run_uncertainty``: the same for the fits' total energy (see
    :data:`TRAINING_RUN_TO_RUN_UNCERTAINTY`); ``variant_run_to_run_uncertainty``: each variant's own
    (see :data:`greenkfp.components.stats.VARIANT_RUN_TO_RUN`). All 0: only the run's own noise.

    Raises:
        ValueError: ``decision`` not a GateDecisionRecord, ``training_records`` not a list of
            TrainingRecord or naming a candidate twice, ``sci_entries`` not a list of SciEntry,
            ``selection`` not a SelectionRecord or None, ``expected_lifetime_inferences`` not a
            real number >= 0, or an uncertainty not within [0, 1) (the message names the argument
            and the value).
    """
    import numbers

    from greenkfp.components._checks import non_negative, shown

    if not isinstance(decision, GateDecisionRecord):
        raise ValueError(f"decision must be a GateDecisionRecord, got {type(decision).__name__}: {shown(decision)}")
    if selection is not None and not isinstance(selection, SelectionRecord):
        raise ValueError(f"selection must be a SelectionRecord or None, got {type(selection).__name__}: "
                         f"{shown(selection)}")
    training_records = _records("training_records", training_records, TrainingRecord)
    sci_entries = _records("sci_entries", sci_entries, SciEntry)
    seen: dict[str, int] = {}
    for i, record in enumerate(training_records):
        if record.name in seen:
            raise ValueError(f"training_records name candidate {record.name!r} twice (at {seen[record.name]} and {i}); "
                             "each candidate's fit counts once")
        seen[record.name] = i
    non_negative("expected_lifetime_inferences", expected_lifetime_inferences)
    expected_lifetime_inferences = (int(expected_lifetime_inferences)  # numpy's scalars as Python's
                                    if isinstance(expected_lifetime_inferences, numbers.Integral)
                                    else float(expected_lifetime_inferences))
    for name, value in (("run_to_run_uncertainty", run_to_run_uncertainty),
                        ("training_run_to_run_uncertainty", training_run_to_run_uncertainty),
                        ("variant_run_to_run_uncertainty", variant_run_to_run_uncertainty)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value)
                                                                                   and 0 <= value < 1):
            raise ValueError(f"{name} must be a number within [0, 1), got {value!r}")
    training = _training_part(decision, training_records)

    baseline = _baseline(sci_entries)
    chosen_name = selection.chosen if selection else None
    chosen = next((e for e in sci_entries if e.name == chosen_name), None)
    inference_scheduled = None if baseline is None else baseline.per_inference_g * expected_lifetime_inferences
    inference_optimized = None if chosen is None else chosen.per_inference_g * expected_lifetime_inferences
    inference = {"expected_inferences": expected_lifetime_inferences,
                 "baseline": None if baseline is None else _figures(baseline, f"{baseline.candidate}/fp32",
                                                                    selection),
                 "selected": None if chosen is None else _figures(chosen, chosen_name, selection),
                 "scheduled_g": inference_scheduled, "optimized_g": inference_optimized,
                 "basis": "SCI per inference x expected inferences; baseline = most accurate candidate, fp32"}

    parts = [(training["scheduled_g"], training["optimized_g"]), (inference_scheduled, inference_optimized)]
    complete = all(a is not None and b is not None for a, b in parts)
    scheduled = sum(a for a, _ in parts) if complete else None
    optimized = sum(b for _, b in parts) if complete else None
    saved = None if not complete else scheduled - optimized
    accuracy_given_up = None
    if baseline is not None and chosen is not None:
        accuracy_given_up = 100.0 * (baseline.accuracy - chosen.accuracy)
    return SustainabilityReport.from_dict({
        "schema": SCHEMA,
        "training": training,
        "inference": inference,
        "total": {
            "scheduled_g": scheduled, "optimized_g": optimized, "saved_g": saved,
            "saved_percent": None if not complete or not scheduled else 100.0 * saved / scheduled,
            "accuracy_given_up_points": accuracy_given_up,
            "accuracy_verdict": ((selection.significance or {}).get("accuracy") or {}).get("verdict")
            if selection else None,
            "unavailable_reason": None if complete else "a part is missing (see training and inference)",
        },
        "savings": _savings(training, baseline, chosen, expected_lifetime_inferences,
                            run_to_run=run_to_run_uncertainty,
                            training_run_to_run=training_run_to_run_uncertainty,
                            variant_run_to_run=variant_run_to_run_uncertainty),
        "promoted": selection.promote if selection else None,
        "gate": {"action": decision.action, "data_kinds": decision.data_kinds,
                 "failure_policy_applied": decision.failure_policy_applied},
        "units": {"emissions": "g CO2eq", "energy": "kWh", "intensity": "gCO2eq/kWh", "accuracy": "percentage points"},
        "caveats": [
            f"Training energy is CodeCarbon's (modeled on machines without RAPL: {MODELED_ERROR_RANGE} per its documentation).",
            "Inference energy comes from the SCI benchmark (modeled from CPU utilisation unless RAPL was readable).",
            "Intensities are the gate's forecast or recorded data, and the training step's hourly figures; "
            "replayed historical data is labelled as such.",
            "Savings carry 95 % intervals (the benchmark's paired rounds, a run-to-run factor for the machine's "
            "state, and one for the fits' energy); 'no significant difference' where the interval includes zero. "
            "The energy models' own error bands are apart from them.",
        ],
    })


def _records(name: str, records, kind: type) -> list:
    """``records`` as a list, each a ``kind``; an error naming ``name`` and the first bad item."""
    from collections.abc import Iterable, Mapping

    from greenkfp.components._checks import shown

    if records is None or isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
        raise ValueError(f"{name} must be a list of {kind.__name__}, got {type(records).__name__}: {shown(records)}")
    records = list(records)
    for i, record in enumerate(records):
        if not isinstance(record, kind):
            raise ValueError(f"{name}[{i}] must be a {kind.__name__}, got {type(record).__name__}: {shown(record)}")
    return records


def _chart_svg(report: SustainabilityReport) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["scheduled", "optimized"]
    training = [report.training.scheduled_g or 0.0, report.training.optimized_g or 0.0]
    inference = [report.inference.scheduled_g or 0.0, report.inference.optimized_g or 0.0]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.bar(labels, training, label="training", color="#7aa974")
    ax.bar(labels, inference, bottom=training, label="inference over the expected volume", color="#4c78a8")
    ax.set_ylabel("g CO2eq (estimated)")
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _g(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4g} g"


def sustainability_html(report: SustainabilityReport) -> str:
    """A self-contained HTML page: the comparison table, a stacked bar chart, the caveats."""
    rows = [(part, _g(scheduled), _g(optimized), report.saving(part).text if report.saving(part) else _g(saved), basis)
            for part, scheduled, optimized, saved, basis in report.rows()]
    table = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td>"
                    f"<td>{html.escape(d)}</td><td>{html.escape(e)}</td></tr>" for a, b, c, d, e in rows)
    caveats = "".join(f"<li>{html.escape(c)}</li>" for c in report.caveats)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>greenkfp sustainability report</title>"
        "<style>body{font-family:sans-serif;max-width:56rem;margin:2rem auto}td,th{padding:.3rem .6rem;"
        "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
        "<h1>Sustainability report</h1>"
        f"<p><b>Saved:</b> {html.escape(report.saved_text)} &middot; <b>accuracy given up:</b> "
        f"{html.escape(report.accuracy_given_up_text)}</p>"
        "<table><tr><th></th><th>scheduled</th><th>optimized</th><th>saved [95 % interval]</th><th>basis</th></tr>" + table + "</table>"
        + _chart_svg(report) + f"<h2>Caveats</h2><ul>{caveats}</ul></body></html>"
    )
