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
                "delay_seconds": decision.delay_seconds,
                "window_start": decision.chosen_window.start if decision.chosen_window else None,
                "window_end": decision.chosen_window.end if decision.chosen_window else None}
    if energy_kwh is not None and now_i is not None:
        training["scheduled_g"] = energy_kwh * now_i
    if energy_kwh is not None and window_i is not None:
        training["optimized_g"] = energy_kwh * window_i
    training["basis"] = f"scheduled: {training['scheduled_basis']}; optimized: {training['optimized_basis']}"
    if training["scheduled_g"] is None or training["optimized_g"] is None:
        training["unavailable_reason"] = (
            "no gate forecast (failure policy applied)" if now_i is None or window_i is None
            else "no training records" if not training_records
            else f"no training energy for {', '.join(m.split(':')[0] for m in missing)}")
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
    if selection is not None:
        inference.update({
            "selection_rule": selection.rule, "selection_reason": selection.reason,
            "selection_candidates": selection.counts.get("candidates", len(selection.candidates)),
            "selection_front": len(selection.front),
            "selection_tie": selection.tie_break_choice,
            "selection_verdicts": {name: figures.get("verdict") for name, figures in (selection.significance or {}).items()
                                   if isinstance(figures, dict) and figures.get("verdict")} or None})

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


#: A familiar unit for grams of CO2: the distance an average new car drives for them. 108.1 g
#: CO2 per km is the average type-approval (WLTP) tailpipe emissions of the new passenger cars
#: registered in Europe (EU-27, Iceland, Norway) in 2022, per the European Environment Agency's
#: indicator "CO2 performance of new passenger cars in Europe"
#: (https://www.eea.europa.eu/en/analysis/indicators/co2-performance-of-new-passenger). It is
#: tailpipe CO2 on the test cycle, not CO2eq on the road: an order of magnitude a reader knows,
#: not an offset.
CAR_G_CO2_PER_KM = 108.1
CAR_SOURCE = ("108.1 g CO2 per km: the average type-approval (WLTP) emissions of new passenger cars registered "
              "in Europe in 2022, European Environment Agency, indicator 'CO2 performance of new passenger cars "
              "in Europe' (eea.europa.eu/en/analysis/indicators/co2-performance-of-new-passenger); tailpipe CO2 "
              "on the test cycle, so an order of magnitude, not an offset")


#: distance units from the largest down: (metres in one, symbol)
_DISTANCE_UNITS = ((1e3, "km"), (1.0, "m"), (1e-2, "cm"), (1e-3, "mm"), (1e-6, "µm"), (1e-9, "nm"))


def car_distance_text(grams: float) -> str:
    """``grams`` of CO2eq as the distance an average new car drives for them (:data:`CAR_G_CO2_PER_KM`),
    three significant figures in the unit that shows it as 1 or more: ``4.52 cm``, ``2.10 m``,
    ``350 m``, ``4.20 km``, ``92,500 km``, ``9.20 nm``. Its magnitude: the sign is the caller's to
    word ("more")."""
    from .svg import plain_number

    metres = abs(grams) / CAR_G_CO2_PER_KM * 1000
    if metres == 0:
        return "0 m"
    for size, unit in _DISTANCE_UNITS:
        if float(plain_number(metres / size).replace(",", "")) >= 1:  # 999.6 m shows as 1.00 km
            return f"{plain_number(metres / size)} {unit}"
    return f"{plain_number(metres / _DISTANCE_UNITS[-1][0])} {_DISTANCE_UNITS[-1][1]}"


def grams(value: float | None) -> str:
    """Grams for the report: three significant figures in plain decimals (``n/a`` for None)."""
    from .svg import plain_number

    return "n/a" if value is None else plain_number(value)


#: mass units from the largest down: (grams in one, symbol)
_MASS_UNITS = ((1e6, "t"), (1e3, "kg"), (1.0, "g"), (1e-3, "mg"), (1e-6, "µg"), (1e-9, "ng"))


def mass_unit(*values: float | None) -> tuple[float, str]:
    """The unit that shows the largest magnitude of ``values`` (grams) as 1 to 999 (tonnes from
    1 t up): (1e-3, 'mg') for 0.0229, (1e3, 'kg') for 2,500, (1e6, 't') for 3.2e6; grams for zero
    or nothing."""
    from .svg import plain_number

    top = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)
    if top == 0:
        return 1.0, "g"
    for size, unit in _MASS_UNITS:
        if abs(float(plain_number(top / size).replace(",", ""))) >= 1:  # 999.96 mg shows as 1 g
            return size, unit
    return _MASS_UNITS[-1]


def mass_text(value: float | None, unit_of: tuple[float, str] | None = None) -> str:
    """Grams CO2eq with a readable unit: ``22.9 mg CO2eq``, ``1.99 µg CO2eq``, ``2.5 kg CO2eq``."""
    if value is None:
        return "n/a"
    size, unit = unit_of or mass_unit(value)
    return f"{grams(value / size)} {unit} CO2eq"


def _mass_interval(figure, sign: float = 1.0) -> str:
    """An estimate and its 95 % interval in one unit (the sign flipped by ``sign``; low and high
    kept in order); the estimate alone when the interval rounds to one figure."""
    est, a, b = sign * figure.estimate, sign * figure.low, sign * figure.high
    low, high = min(a, b), max(a, b)
    size, unit = mass_unit(est, low, high)
    if grams(low / size) == grams(high / size):
        return f"{grams(est / size)} {unit} CO2eq"
    return f"{grams(est / size)} {unit} CO2eq [{grams(low / size)} to {grams(high / size)} {unit}]"


def _interval_text(figure, unit: str = "", fmt=grams) -> str:
    """An estimate and its interval; the estimate alone when the interval rounds to one figure."""
    if fmt(figure.low) == fmt(figure.high):
        return f"{fmt(figure.estimate)}{unit}"
    return f"{fmt(figure.estimate)}{unit} [{fmt(figure.low)} to {fmt(figure.high)}{unit}]"


def _percent(value: float) -> str:
    from .svg import plain_number

    return plain_number(value)  # 3 significant figures: 0.497, 2.20, 50.3


_LEVERS = (("training", "when and where training ran (gate)"), ("inference", "which model serves (selection)"),
           ("total", "total"))
#: what each lever's percentage is of (its own part as scheduled; the total's, the run's)
_PERCENT_OF = {"training": "training's carbon", "inference": "inference's carbon", "total": "the run"}

#: bar colours, each 3:1 or more on white: a saving, an increase, no significant difference
_SAVED, _INCREASE, _NOISE = "#2e7d32", "#b34700", "#757575"


def _blocked(report: SustainabilityReport) -> bool:
    """The selection ran and refused to promote any model (not: a model was promoted but has no
    figures, nor: no selection was recorded)."""
    return report.promoted is False


def _plan(report: SustainabilityReport) -> bool:
    """Plan mode: training did not wait, so its saving (and the total's) did not happen."""
    return report.training.realized is False


def _lever_label(report: SustainabilityReport, part: str, label: str) -> str:
    if _plan(report) and part == "training":
        return "training, had it waited (plan mode: not realized)"
    if _plan(report) and part == "total":
        return "total, had training waited"
    return label


def _saving_words(saving, realized: bool = True, what: str = "", of: str = "the run") -> tuple[str, str]:
    """(the sentence's lead and figure, its kind: 'saved', 'increase' or 'none') for one saving:
    "Saved 22.9 mg CO2eq [...]", "Emitted 4.1 mg CO2eq [...] more", "Would have saved ...",
    "No significant difference: ..."."""
    g = saving.g
    if not saving.significant:
        return (f"No significant difference{what}: {_mass_interval(g)} (the 95 % interval includes zero)", "none")
    increase = g.estimate < 0
    sign = -1.0 if increase else 1.0
    percent = ""
    if saving.percent is not None:
        pct = saving.percent
        low, high = sorted((sign * pct.low, sign * pct.high))
        if _percent(low) == _percent(high):
            percent = f", {_percent(sign * pct.estimate)} % of {of} as scheduled"
        else:
            percent = (f", {_percent(sign * pct.estimate)} % [{_percent(low)} to {_percent(high)} %] "
                       f"of {of} as scheduled")
    if increase:
        verb = "Emitted" if realized else "Would have emitted"
        return f"{verb} {_mass_interval(g, -1.0)} more{what}{percent}", "increase"
    verb = "Saved" if realized else "Would have saved"
    return f"{verb} {_mass_interval(g)}{what}{percent}", "saved"


def saving_cells(saving) -> tuple[str, str]:
    """One saving for a table's two cells, grams and percent, each with its 95 % interval, worded
    so a sign never has to be read: ``22.9 mg [18.1 to 27.0 mg]``, ``emitted 4.10 mg [...] more``,
    ``no significant difference (...)`` (the percent cell empty then)."""
    if not saving.significant:
        return f"no significant difference ({_mass_interval(saving.g).replace(' CO2eq', '')})", ""
    increase = saving.g.estimate < 0
    sign = -1.0 if increase else 1.0
    grams_cell = _mass_interval(saving.g, sign).replace(" CO2eq", "")
    share = ""
    if saving.percent is not None:
        pct = saving.percent
        flipped = type(pct)(sign * pct.estimate, *sorted((sign * pct.low, sign * pct.high)))
        share = _interval_text(flipped, " %", fmt=_percent)
    if increase:
        return f"emitted {grams_cell} more", (f"{share} more" if share else "")
    return grams_cell, share


def _tick(value: float) -> str:
    """A tick label: 3 significant figures, no trailing zeros (30, not 30.0), a true minus sign."""
    text = grams(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "\u2212")


def _savings_svg(report: SustainabilityReport) -> str | None:
    """Savings by lever, each its estimate with the 95 % interval as an error bar; an increase
    in its own colour and hatched; a saving inside the noise grey and says so. The figures are
    in the tick labels (laid out with the plot, never clipped)."""
    import matplotlib
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    from .svg import font_rc, new_figure, svg_figure

    bars = [(_lever_label(report, part, label), report.saving(part)) for part, label in _LEVERS
            if report.saving(part) is not None]
    if not bars:
        return None
    size, unit = mass_unit(*(v for _, s in bars for v in (s.g.estimate, s.g.low, s.g.high)))
    with matplotlib.rc_context(font_rc()):
        figure, axes = new_figure(7.2, 0.75 * len(bars) + 1.3)
        ax = axes[0, 0]
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ys = list(range(len(bars)))[::-1]
        ticks = []
        parts = [part for part, _ in _LEVERS if report.saving(part) is not None]
        for y, part, (label, saving) in zip(ys, parts, bars):
            g = saving.g
            increase = saving.significant and g.estimate < 0
            realized = not (_plan(report) and part != "inference")
            colour = _NOISE if not saving.significant else (_INCREASE if increase else _SAVED)
            if realized:
                ax.barh(y, g.estimate / size, facecolor=colour, height=0.55, hatch="///" if increase else None,
                        edgecolor="#ffffff" if increase else colour, linewidth=0)
            else:  # did not happen: outlined, dotted, never the solid bar of a saving
                ax.barh(y, g.estimate / size, facecolor="#ffffff", height=0.55, hatch="..", edgecolor=colour,
                        linewidth=1.5)
            ax.errorbar(g.estimate / size, y, xerr=[[(g.estimate - g.low) / size], [(g.high - g.estimate) / size]],
                        fmt="none", ecolor="#222222", elinewidth=1.2, capsize=4)
            words = ("no significant difference" if not saving.significant else
                     ("increase" if increase else "saved" if realized else "would have saved"))
            sign = -1.0 if increase else 1.0
            est, low, high = sign * g.estimate / size, *sorted((sign * g.low / size, sign * g.high / size))
            interval = "" if grams(low) == grams(high) else f" [{grams(low)} to {grams(high)}]"
            figure_text = f"{grams(est)}{interval} {unit}"
            more = f"emitted {figure_text} more" if realized else f"would have emitted {figure_text} more"
            ticks.append(f"{label}\n" + (more if increase else f"{figure_text}, {words}"))
        ax.axvline(0, color="#222222", linewidth=0.8)
        ax.set_yticks(ys, ticks, fontsize=8)
        ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
        ax.set_xlabel(f"{unit} CO2eq saved (below 0: emitted more)")
        low = min(0.0, *(s.g.low / size for _, s in bars))
        high = max(0.0, *(s.g.high / size for _, s in bars))
        span = (high - low) or 1.0
        ax.set_xlim(low - 0.05 * span, high + 0.05 * span)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick(v)))
        description = "; ".join(
            f"{label}: {_saving_words(s, not (_plan(report) and part != 'inference'), of=_PERCENT_OF[part])[0]}"
            for (part, _), (label, s) in zip([(p, l) for p, l in _LEVERS if report.saving(p) is not None], bars))
        svg = svg_figure(figure, "savings", "Carbon saved by lever, with 95 % intervals", description)
    return svg


def _comparison_svg(report: SustainabilityReport) -> str | None:
    """Scheduled against optimized, training and inference stacked (inference hatched, not told
    apart by hue alone); the legend below the bars. A part that is unavailable is not drawn and
    its row says so: never a zero that reads as a saving."""
    import matplotlib

    from .svg import font_rc, new_figure, svg_figure

    t, i = report.training, report.inference
    if all(v is None for v in (t.scheduled_g, t.optimized_g, i.scheduled_g, i.optimized_g)):
        return None
    optimized = "as optimized\n(training: had it waited)" if _plan(report) else "as optimized"
    rows = [("as scheduled", t.scheduled_g, i.scheduled_g), (optimized, t.optimized_g, i.optimized_g)]
    size, unit = mass_unit(*(a + b for _, a, b in rows if a is not None and b is not None),
                           *(v for _, a, b in rows for v in (a, b)))
    noun = "inference" if i.expected_inferences == 1 else "inferences"
    with matplotlib.rc_context(font_rc()):
        figure, axes = new_figure(7.2, 2.6)
        ax = axes[0, 0]
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ys = [1, 0]
        described, top = [], 0.0
        for y, (label, a, b) in zip(ys, rows):
            ax.barh(y, (a or 0.0) / size, color="#5b8c51", height=0.55, label="training" if y == 1 else None)
            ax.barh(y, (b or 0.0) / size, left=(a or 0.0) / size, facecolor="#3b6ea5", height=0.55, hatch="//",
                    edgecolor="#ffffff", linewidth=0,
                    label=f"inference over {i.expected_inferences:,.0f} {noun}" if y == 1 else None)
            missing = [part for part, v in (("training", a), ("inference", b)) if v is None]
            if missing:
                reason = ("no model selected" if "inference" in missing and _blocked(report) else "unavailable")
                note = f"total n/a: {' and '.join(missing)} {reason if reason == 'unavailable' else 'n/a (' + reason + ')'}"
            else:
                note = f"{grams((a + b) / size)} {unit}"
            # room for the note to the right of the bar (8 pt text, ~6 px a character on ~520 px of axes)
            text_share = min(0.8, (len(note) * 6 + 12) / 520)
            top = max(top, ((a or 0.0) + (b or 0.0)) / size / (1 - text_share))
            ax.annotate(note, ((a or 0.0) / size + (b or 0.0) / size, y), xytext=(6, 0), textcoords="offset points",
                        va="center", fontsize=8, color="#222222")
            described.append(f"{label.replace(chr(10), ' ')}: training {mass_text(a)} + inference {mass_text(b)}"
                             + (f" ({note})" if missing else ""))
        ax.set_yticks(ys, [r[0] for r in rows])
        ax.set_xlim(0, top or 1.0)
        ax.set_xlabel(f"{unit} CO2eq (estimated)")
        figure.legend(loc="outside lower center", ncol=2, frameon=False, fontsize=8)
        svg = svg_figure(figure, "comparison", "Carbon as scheduled and as optimized", "; ".join(described))
    return svg


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;color:#222;max-width:60rem;
margin:2rem auto;padding:0 1rem;line-height:1.45}
h1{font-size:1.6em;margin:0 0 .3em} h2{font-size:1.15em;margin-top:1.8em}
.headline{border:1px solid #66bb6a;background:#f1f8e9;border-radius:6px;padding:14px 18px}
.headline.none{border-color:#9e9e9e;background:#f5f5f5}
.headline.increase{border-color:#b34700;background:#fff3e0} .headline.blocked{border-color:#c62828;background:#ffebee}
.also{font-weight:600;margin:0 0 .3em}
.saved{font-size:1.35em;font-weight:600;margin:0 0 .2em} .familiar{font-size:1.1em;margin:0 0 .6em}
.headline dl{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1em;margin:.4em 0 0}
.headline dt{font-weight:600} .headline dd{margin:0}
table{border-collapse:collapse;font-size:.92em;width:100%} th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;
text-align:left;vertical-align:top} th{background:#f5f5f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#555;font-size:.9em} details.basis{font-weight:normal;font-size:.88em;max-width:26rem} details summary{cursor:pointer;color:#1a4f8b}
figure{margin:1em 0} svg.plot{width:100%;height:auto} figcaption{color:#555;font-size:.9em}
.scroll{overflow-x:auto;max-width:100%} td,th{overflow-wrap:break-word} figure{overflow-x:auto}
/* names without a word break (a hash suffix) break anywhere rather than widen the page */
.headline,.muted,li{overflow-wrap:anywhere}
svg.plot{min-width:560px}
h2{break-after:avoid}
@media print{body{max-width:none;margin:0;font-size:10.5pt} .headline{break-inside:avoid}
h2{break-after:avoid;break-inside:avoid} svg.plot{min-width:0} .scroll{overflow:visible}
table{table-layout:fixed;width:100%} td,th{overflow-wrap:anywhere} td.num{white-space:normal}
thead th:first-child{width:28%} thead th{overflow-wrap:break-word;hyphens:auto}
figure,tr{break-inside:avoid} details::details-content{content-visibility:visible;display:block}
details summary{color:#222} details summary::marker{content:""}}
@page{margin:1.5cm}
"""


_OBJECTIVE_NAMES = {"sci": "SCI", "latency_p95_ms": "latency p95", "energy_per_inference_kwh": "energy per inference"}


def _when(iso: str | None) -> str:
    from datetime import datetime

    return "-" if not iso else datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def _unavailable_lines(report: SustainabilityReport) -> list[str]:
    """The headline's sentences for a lever whose saving is unavailable, each with its reason."""
    lines = []
    if report.inference.selected is None and not _blocked(report):
        lines.append("The model choice's saving is unavailable: "
                     + ("no selection was recorded." if report.promoted is None else
                        "the selected model has no SCI figures (the table's inference row is n/a)."))
    if report.saving("training") is None:
        what = "What waiting for the window would have saved" if _plan(report) else "Training's saving"
        reason = report.training.unavailable_reason or "training figures are missing"
        lines.append(html.escape(f"{what} is unavailable: {reason}."))
    return lines


def _headline(report: SustainabilityReport) -> str:
    from .svg import plural, tie_words

    e = html.escape
    total, t, i = report.saving("total"), report.training, report.inference
    items: list[tuple[str, str]] = []
    plan = _plan(report)
    blocked = _blocked(report)
    inference_saving, training_saving = report.saving("inference"), report.saving("training")
    lines: list[str] = []  # the headline's figures, the first the main one
    kind = "none"
    if blocked:
        lines.append("Promotion blocked: no model was selected, so the model choice saved nothing.")
        main, of = training_saving, _PERCENT_OF["training"]
        main_realized = not plan
        what = " by training in the gate's window"
    elif plan:  # the training saving did not happen: the model choice's did (over the expected volume)
        main, main_realized, what = inference_saving, True, " by the model choice (over the expected inferences)"
        of = _PERCENT_OF["inference"]
    elif total is None and training_saving is not None:  # no inference figures: what training saved
        main, main_realized, what, of = training_saving, True, " by training in the gate's window", _PERCENT_OF["training"]
    elif total is None and inference_saving is not None:  # no training figures: what the model choice saved
        main, main_realized, of = inference_saving, True, _PERCENT_OF["inference"]
        what = " by the model choice (over the expected inferences)"
    else:
        main, main_realized, what, of = total, True, "", _PERCENT_OF["total"]
    lines += _unavailable_lines(report)
    familiar = ""
    if main is not None:
        text, kind = _saving_words(main, main_realized, what, of)
        _, run_percent, _ = _realised(report)  # the component's saved_percent
        if plan and kind != "none" and main is inference_saving and run_percent is not None:
            text += f" ({_percent(abs(run_percent))} % of the run as scheduled)"
        lines.insert(0 if not blocked else 1, e(text))
        if kind != "none":
            more = " more" if kind == "increase" else ""
            would = "" if main_realized else "would have been "
            near, far = sorted((main.g.low, main.g.high), key=abs)
            familiar = (f'<p class="familiar">&asymp; {e(car_distance_text(main.g.estimate))}{more} '
                        f"[{e(car_distance_text(near))} to {e(car_distance_text(far))}] "
                        f"{would}driven by an average new car in Europe<sup>*</sup></p>")
    elif not lines:
        lines.insert(0, f"Saved: {e(report.saved_text)}")
    if plan and training_saving is not None and not blocked:
        g = training_saving.g
        if not training_saving.significant:
            hypothetical = f"Waiting for the window would have made no significant difference: {_mass_interval(g)}"
        elif g.estimate >= 0:
            further = " a further" if kind == "saved" else ""  # beyond the model choice's saving
            hypothetical = f"Waiting for the window would have saved{further} {_mass_interval(g)}"
        else:
            hypothetical = f"Waiting for the window would have emitted {_mass_interval(g, -1.0)} more"
        if training_saving.percent is not None and training_saving.significant:
            hypothetical += f" ({_percent(abs(training_saving.percent.estimate))} % of training's carbon)"
        lines.append(e(hypothetical) + "; plan mode: the candidates trained at once, so this did not happen")
    cls = {"saved": "headline", "increase": "headline increase", "none": "headline none"}[kind]
    if blocked:
        cls += " blocked"
    # the car distance follows the sentence it converts (the main figure's)
    main_at = (1 if blocked else 0) if familiar else len(lines)
    saved = "".join(f'<p class="{"saved" if k == 0 else "also"}">{line}</p>' + (familiar if k == main_at else "")
                    for k, line in enumerate(lines))
    s, b = i.selected, i.baseline
    if s is not None:
        why = f"the {e(i.selection_rule)} rule" if i.selection_rule else "the selection"
        among = (f" among {plural(i.selection_front, 'front member')} of {plural(i.selection_candidates, 'candidate')}"
                 if i.selection_front is not None and i.selection_candidates is not None else "")
        among += e(tie_words(i.selection_tie, i.selection_rule, _OBJECTIVE_NAMES))
        verdicts = ", ".join(f"{e(_OBJECTIVE_NAMES.get(k, k.replace('_', ' ')))} {e(v)}"
                             for k, v in (i.selection_verdicts or {}).items())
        against = (f"; against the baseline {e(b.name)} (the unquantized fp32 of the most accurate candidate; the selection's accuracy reference "
                   f"is the most accurate variant of any precision): {verdicts}"
                   if b is not None and verdicts else "")
        accuracy = "" if b is None else (f" Accuracy {s.accuracy * 100:.1f} % against {b.accuracy * 100:.1f} %; "
                                         f"accuracy given up: {e(report.accuracy_given_up_text)}.")
        reason = (f"<details><summary>the selection's full reason</summary><p>{e(i.selection_reason)}</p></details>"
                  if i.selection_reason else "")
        items.append(("Selected", f"<b>{e(s.name)}</b> by {why}{among}{against}.{accuracy}{reason}"))
    elif report.promoted and i.selection_reason:  # promoted, but its SCI figures did not reach the report
        items.append(("Selected", "a model was promoted, but no SCI figures of it reached the report, so its "
                                  "inference carbon is unavailable."
                                  f"<details><summary>the selection's full reason</summary><p>{e(i.selection_reason)}"
                                  "</p></details>"))
    elif i.selection_reason:
        items.append(("Selection", f"promotion blocked.<details><summary>why</summary><p>{e(i.selection_reason)}</p>"
                                   "</details>"))
    if t.chosen_region:
        window = (f" in the window {e(_when(t.window_start))} to {e(_when(t.window_end))}"
                  if t.window_start else "")
        delay = "" if not t.delay_seconds else f", {t.delay_seconds / 3600:.1f} h after submission"
        intensity = ""
        if t.intensity_optimized_gco2_per_kwh is not None and t.intensity_scheduled_gco2_per_kwh is not None:
            intensity = (f" at {t.intensity_optimized_gco2_per_kwh:.0f} gCO2eq/kWh, against "
                         f"{t.intensity_scheduled_gco2_per_kwh:.0f} gCO2eq/kWh running at once"
                         + (f" in {e(t.home_region)}" if t.home_region else ""))
        realized = ("" if t.realized is not False else
                    " <em>Plan mode: the candidates trained at once; this is what waiting for the window would "
                    "have saved.</em>")
        data = ", ".join(k.replace("_", " ") for k in report.gate.data_kinds) or "no"
        items.append(("Training", f"{e(t.chosen_region)}{window}{delay}{intensity} ({e(data)} intensity data)."
                                  f"{realized}"))
    if i.expected_inferences:
        inference = report.saving("inference")
        per = ""
        if inference is not None and i.expected_inferences:
            per_million = inference.g.estimate * 1e6 / i.expected_inferences
            per = ((f"; the model choice saves {mass_text(per_million)} per million inferences" if per_million >= 0
                    else f"; the model choice emits {mass_text(-per_million)} more per million inferences")
                   if inference.significant else
                   "; the model choice makes no significant difference per inference")
        noun = "inference" if i.expected_inferences == 1 else "inferences"
        items.append(("Scaled to", f"{i.expected_inferences:,.0f} expected {noun} over the model's service "
                                   f"life{per}."))
    methods = sorted({*t.energy_methods, *(m.energy_method for m in (s, b) if m is not None and m.energy_method)})
    items.append(("Energy", f"{e(', '.join(methods) or 'unknown')} (training: CodeCarbon; inference: the SCI "
                            "benchmark); every figure here is an estimate from it."))
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    footnote = (f'<p class="muted"><sup>*</sup> Conversion: {e(CAR_SOURCE)}.</p>' if familiar else "")
    return (f'<section class="{cls}" aria-label="summary">{saved}<dl>{rows}</dl>'
            f"</section>{footnote}")


def _table(report: SustainabilityReport) -> str:
    e = html.escape
    t, i = report.training, report.inference
    energy = {"training": ", ".join(t.energy_methods) or "-",
              "inference": ", ".join(sorted({m.energy_method for m in (i.baseline, i.selected)
                                             if m is not None and m.energy_method})) or "-",
              "total": "-"}
    out = []
    for part, scheduled, optimized, saved, basis in report.rows():
        saving = report.saving(part)
        if saving is None:
            grams_cell, percent_cell = mass_text(saved), "-"
        else:
            grams_cell, percent_cell = saving_cells(saving)
            percent_cell = percent_cell or "-"
        label = {"training": "training (fits' energy at the gate's intensities)",
                 "inference": f"inference ({i.expected_inferences:,.0f} "
                              f"{'inference' if i.expected_inferences == 1 else 'inferences'})"}.get(part, part)
        if _plan(report) and part in ("training", "total"):
            label += " (plan mode: had training waited; not realized)"
        basis_cell = f"<details class='basis'><summary>basis</summary>{e(basis)}</details>" if basis else ""
        out.append(f"<tr><th scope='row'>{e(label)}{basis_cell}</th><td class='num'>{e(mass_text(scheduled))}</td>"
                   f"<td class='num'>{e(mass_text(optimized))}</td><td class='num'>{e(grams_cell)}</td>"
                   f"<td class='num'>{e(percent_cell)}</td><td>{e(energy[part])}</td></tr>")
    head = ("<tr><th scope='col'>part</th><th scope='col'>as scheduled</th>"
            "<th scope='col'>as optimized</th><th scope='col'>saved [95 % interval]</th>"
            "<th scope='col'>saved, % of its part as scheduled [95 % interval]</th><th scope='col'>energy</th></tr>")
    return f"<div class='scroll'><table><thead>{head}</thead><tbody>{''.join(out)}</tbody></table></div>"


def _figure(svg: str | None, caption: str) -> str:
    return "" if svg is None else f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def sustainability_html(report: SustainabilityReport) -> str:
    """A self-contained HTML page: the headline (what was selected and why, where and when
    training ran, what was saved with its interval and as car distance), the savings by lever
    with their intervals, the comparison table and chart, the caveats. No scripts, no external
    assets; print styles open the collapsed texts."""
    e = html.escape
    caveats = "".join(f"<li>{e(c)}</li>" for c in report.caveats)
    method = report.savings.method if report.savings is not None else ""
    chosen = report.inference.selected.name if report.inference.selected is not None else "no model selected"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Sustainability report: {e(chosen)}</title><style>{_CSS}</style></head><body>"
        "<h1>Sustainability report</h1>"
        + _headline(report)
        + "<h2>Savings by lever</h2>"
        + _figure(_savings_svg(report), "Each bar is the estimated saving; the error bar its 95 % interval. Green: "
                                        "saved; orange, hatched, left of zero: emitted more; grey: the interval "
                                        "includes zero (no significant difference)"
                                        + ("; outlined and dotted: would have been, had training waited (plan "
                                           "mode: did not happen)." if _plan(report) else "."))
        + "<h2>As scheduled against as optimized</h2>" + _table(report)
        + _figure(_comparison_svg(report), "Training and inference carbon, as scheduled and as optimized (estimates).")
        + f"<h2>Caveats</h2><ul>{caveats}</ul>"
        + (f"<details><summary>How the intervals are computed</summary><p>{e(method)}</p></details>" if method else "")
        + f"<p class='muted'>Record schema {e(report.SCHEMA)}. Units: g CO2eq (emissions), kWh (energy), "
          "gCO2eq/kWh (intensity), percentage points (accuracy).</p>"
        "</body></html>\n"
    )


#: What a saving output says: the run saved, emitted more, no significant difference (the 95 %
#: interval includes zero), the figures are unavailable, nothing changed (a blocked promotion in
#: plan mode: no model served and training ran as scheduled), or not applicable (outside plan mode,
#: for what waiting would have saved).
SAVING_STATUSES = ("saved", "increase", "no_significant_difference", "unavailable", "nothing_changed",
                   "not_applicable")


def saving_status(saving) -> str:
    """One saving's status (see :data:`SAVING_STATUSES`; None is unavailable)."""
    if saving is None:
        return "unavailable"
    if not saving.significant:
        return "no_significant_difference"
    return "increase" if saving.g.estimate < 0 else "saved"


def _significant_g(saving) -> float:
    """Grams for an output: the estimate when significant (negative: an increase), else 0."""
    return saving.g.estimate if saving is not None and saving.significant else 0.0


def _realised(report: SustainabilityReport):
    """(the saving that happened, its percentage of the run as scheduled or None, its status)."""
    plan, blocked = _plan(report), _blocked(report)
    if blocked and plan:  # no model serves, training ran at once: the run is as scheduled
        return None, None, "nothing_changed"
    if blocked:  # the run is its training
        saving = report.saving("training")
        percent = None if saving is None or saving.percent is None else saving.percent.estimate
    elif plan:  # training did not wait: the model choice's saving is what happened
        saving, scheduled = report.saving("inference"), report.total.scheduled_g
        percent = None if saving is None or not scheduled else 100.0 * saving.g.estimate / scheduled
    else:
        saving = report.saving("total")
        percent = None if saving is None or saving.percent is None else saving.percent.estimate
    return saving, percent, saving_status(saving)


def component_outputs(report: SustainabilityReport) -> dict[str, float | str | bool]:
    """The sustainability component's outputs, saying what the headline says.

    ``saved_g``: grams CO2eq the run saved, as realised (negative: it emitted more). A run that
    waited (or ran at once because now was best): the total. Plan mode (the run did not wait):
    only the model choice's saving over the expected inferences. A blocked promotion serves no
    model: the run is its training, and saved_g is training's saving (nothing changed in plan mode).
    ``saved_percent``: ``saved_g`` as a percentage of the run's carbon as scheduled.
    ``saving_status``: which of :data:`SAVING_STATUSES` ``saved_g`` is; read it before the figures,
    which are 0 unless it is ``saved`` or ``increase``. ``saved_percent_available``: False when the
    run's carbon as scheduled is unknown (saved_percent 0 then). ``unrealized_training_saved_g``
    and ``unrealized_training_status``: plan mode, what waiting for the window would have saved on
    training (it did not happen); ``not_applicable`` and 0 outside plan mode."""
    saving, percent, status = _realised(report)
    counted = status in ("saved", "increase")
    training = report.saving("training")
    plan = _plan(report)
    return {"saved_g": _significant_g(saving), "saved_percent": percent if counted and percent is not None else 0.0,
            "saving_status": status, "saved_percent_available": status != "unavailable" and (
                percent is not None or not counted),
            "unrealized_training_saved_g": _significant_g(training) if plan else 0.0,
            "unrealized_training_status": saving_status(training) if plan else "not_applicable"}
