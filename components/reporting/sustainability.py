"""Scheduled against optimized: the carbon a run saved, as a team would present it.

Two parts, each compared the way the run could have gone without greenkfp:

* training: the energy the candidates' fits used (CodeCarbon; modeled on machines without
  RAPL), priced at the intensity of running at submission time (the gate's run-now
  counterfactual) and at the intensity of the window the gate chose;
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

SCHEMA = "greenkfp.sustainability_report/v1"


def _training_energy(training_records: Sequence[dict]) -> tuple[float | None, list[str], list[str]]:
    total, methods, missing = 0.0, set(), []
    for record in training_records:
        energy = record.get("energy", {})
        if energy.get("available") and energy.get("energy_kwh") is not None:
            total += float(energy["energy_kwh"])
            methods.add(energy.get("method", "unknown"))
        else:
            missing.append(f"{record['candidate']['name']}: {energy.get('reason')}")
    return (None if missing or not training_records else total), sorted(methods), missing


def _baseline(entries: Sequence[dict]) -> dict | None:
    """The most accurate candidate's fp32 variant (ties: by candidate name)."""
    fp32 = [e for e in entries if e["variant"] == "fp32" and e["status"] == "scored" and e.get("accuracy") is not None]
    if not fp32:
        return None
    return sorted(fp32, key=lambda e: (-e["accuracy"], e["candidate"]))[0]


def _per_inference_g(entry: dict) -> float:
    return float(entry["report"]["sci"]["per_item_g"])


def build_sustainability_report(
    decision: dict,
    training_records: Sequence[dict],
    sci_entries: Sequence[dict],
    selection: dict,
    *,
    expected_lifetime_inferences: float,
) -> dict:
    """The report record (JSON-ready). Missing inputs leave their part ``None`` with a reason."""
    if not (math.isfinite(expected_lifetime_inferences) and expected_lifetime_inferences >= 0):
        raise ValueError(f"expected_lifetime_inferences must be >= 0, got {expected_lifetime_inferences!r}")
    energy_kwh, methods, missing = _training_energy(training_records)
    now_i, window_i = decision.get("intensity_now_gco2_per_kwh"), decision.get("intensity_window_gco2_per_kwh")
    training = {"energy_kwh": energy_kwh, "energy_methods": methods, "energy_missing": missing,
                "intensity_scheduled_gco2_per_kwh": now_i, "intensity_optimized_gco2_per_kwh": window_i,
                "scheduled_g": None, "optimized_g": None,
                "basis": "all candidates' fit energy x the gate's run-now (scheduled) and chosen-window (optimized) "
                         "average intensity", "home_region": decision.get("home_region"),
                "chosen_region": decision.get("region"), "delay_seconds": decision.get("delay_seconds")}
    if energy_kwh is not None and now_i is not None and window_i is not None:
        training.update(scheduled_g=energy_kwh * now_i, optimized_g=energy_kwh * window_i)
    else:
        training["unavailable_reason"] = (
            "no gate forecast (failure policy applied)" if now_i is None else "training energy unavailable")

    baseline = _baseline(sci_entries)
    chosen_name = selection.get("chosen")
    chosen = next((e for e in sci_entries if f"{e['candidate']}/{e['variant']}" == chosen_name), None)
    inference = {"expected_inferences": expected_lifetime_inferences, "baseline": None, "selected": None,
                 "scheduled_g": None, "optimized_g": None,
                 "basis": "SCI per inference x expected inferences; baseline = most accurate candidate, fp32"}
    if baseline is not None:
        inference["baseline"] = {"name": f"{baseline['candidate']}/fp32", "accuracy": baseline["accuracy"],
                                 "per_inference_g": _per_inference_g(baseline), "sci": baseline["sci"],
                                 "sci_unit": baseline.get("sci_unit"), "energy_method": baseline.get("energy_method")}
        inference["scheduled_g"] = _per_inference_g(baseline) * expected_lifetime_inferences
    if chosen is not None:
        inference["selected"] = {"name": chosen_name, "accuracy": chosen["accuracy"],
                                 "per_inference_g": _per_inference_g(chosen), "sci": chosen["sci"],
                                 "sci_unit": chosen.get("sci_unit"), "energy_method": chosen.get("energy_method")}
        inference["optimized_g"] = _per_inference_g(chosen) * expected_lifetime_inferences

    parts = [(training["scheduled_g"], training["optimized_g"]), (inference["scheduled_g"], inference["optimized_g"])]
    complete = all(a is not None and b is not None for a, b in parts)
    scheduled = sum(a for a, _ in parts) if complete else None
    optimized = sum(b for _, b in parts) if complete else None
    saved = None if not complete else scheduled - optimized
    accuracy_given_up = None
    if inference["baseline"] and inference["selected"]:
        accuracy_given_up = 100.0 * (inference["baseline"]["accuracy"] - inference["selected"]["accuracy"])
    return {
        "schema": SCHEMA,
        "training": training,
        "inference": inference,
        "total": {
            "scheduled_g": scheduled, "optimized_g": optimized, "saved_g": saved,
            "saved_percent": None if not complete or not scheduled else 100.0 * saved / scheduled,
            "accuracy_given_up_points": accuracy_given_up,
            "unavailable_reason": None if complete else "a part is missing (see training and inference)",
        },
        "promoted": selection.get("promote"),
        "gate": {"action": decision.get("action"), "data_kinds": sorted({r["data_kind"] for r in decision.get("regions", [])}),
                 "failure_policy_applied": decision.get("failure_policy_applied")},
        "units": {"emissions": "g CO2eq", "energy": "kWh", "intensity": "gCO2eq/kWh", "accuracy": "percentage points"},
        "caveats": [
            f"Training energy is CodeCarbon's (modeled on machines without RAPL: {MODELED_ERROR_RANGE} per its documentation).",
            "Inference energy comes from the SCI benchmark (modeled from CPU utilisation unless RAPL was readable).",
            "Intensities are the gate's forecast or recorded data; replayed historical data is labelled as such.",
        ],
    }


def sustainability_metrics(report: dict) -> dict[str, float]:
    figures = {
        "training_scheduled_g": report["training"]["scheduled_g"],
        "training_optimized_g": report["training"]["optimized_g"],
        "inference_scheduled_g": report["inference"]["scheduled_g"],
        "inference_optimized_g": report["inference"]["optimized_g"],
        "total_saved_g": report["total"]["saved_g"],
        "total_saved_percent": report["total"]["saved_percent"],
        "accuracy_given_up_points": report["total"]["accuracy_given_up_points"],
    }
    return {k: float(v) for k, v in figures.items() if v is not None}


def _chart_svg(report: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["scheduled", "optimized"]
    training = [report["training"]["scheduled_g"] or 0.0, report["training"]["optimized_g"] or 0.0]
    inference = [report["inference"]["scheduled_g"] or 0.0, report["inference"]["optimized_g"] or 0.0]
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


def sustainability_html(report: dict) -> str:
    """A self-contained HTML page: the comparison table, a stacked bar chart, the caveats."""
    t, i, total = report["training"], report["inference"], report["total"]
    rows = [
        ("training", _g(t["scheduled_g"]), _g(t["optimized_g"]), t.get("basis", "")),
        ("inference", _g(i["scheduled_g"]), _g(i["optimized_g"]), i.get("basis", "")),
        ("total", _g(total["scheduled_g"]), _g(total["optimized_g"]), ""),
    ]
    table = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td>"
                    f"<td>{html.escape(d)}</td></tr>" for a, b, c, d in rows)
    saved = "n/a" if total["saved_g"] is None else f"{total['saved_g']:,.4g} g ({total['saved_percent']:.1f} %)"
    given_up = "n/a" if total["accuracy_given_up_points"] is None else f"{total['accuracy_given_up_points']:+.2f} points"
    caveats = "".join(f"<li>{html.escape(c)}</li>" for c in report["caveats"])
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>greenkfp sustainability report</title>"
        "<style>body{font-family:sans-serif;max-width:56rem;margin:2rem auto}td,th{padding:.3rem .6rem;"
        "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
        "<h1>Sustainability report</h1>"
        f"<p><b>Saved:</b> {html.escape(saved)} &middot; <b>accuracy given up:</b> {html.escape(given_up)}</p>"
        "<table><tr><th></th><th>scheduled</th><th>optimized</th><th>basis</th></tr>" + table + "</table>"
        + _chart_svg(report) + f"<h2>Caveats</h2><ul>{caveats}</ul></body></html>"
    )
