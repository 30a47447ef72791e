"""Human-readable views of a gate decision record (Markdown for the KFP UI, rows for the CLI)."""

from __future__ import annotations

from datetime import datetime


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")


def decision_rows(record: dict) -> list[tuple[str, str]]:
    """(label, value) pairs summarising one decision, in reading order."""
    chosen = record.get("chosen_window") or {}
    region_info = next((r for r in record.get("regions", []) if r["region"] == record["region"]), None)
    source = "-"
    if region_info:
        source = f"{region_info['provider']} ({region_info['data_kind'].replace('_', ' ')}, {region_info['signal']})"
    rows = [
        ("decision", f"{record['action'].replace('_', ' ')} (should_run={record['should_run']})"),
        ("region", record["region"]),
        ("data source", source),
        ("intensity if run now", _num(record.get("intensity_now_gco2_per_kwh"), " gCO2eq/kWh")
         + (f" in {record['home_region']}" if record.get("home_region") else "")),
        ("best window", f"{_when(chosen.get('start'))} to {_when(chosen.get('end'))}" if chosen else "-"),
        ("intensity in window", _num(record.get("intensity_window_gco2_per_kwh"), " gCO2eq/kWh")),
        ("delay", _hours(record.get("delay_seconds"))),
        ("savings", _num(record.get("savings_percent"), " %")),
    ]
    if record.get("savings_g") is not None:
        energy = record["inputs"]["energy_kwh"]
        rows.append(("savings (modeled)", f"{record['savings_g']:.1f} g CO2eq for an estimated {energy} kWh"))
    if record.get("failure_policy_applied"):
        rows.append(("provider failure", f"policy {record['failure_policy_applied']} applied"))
    if record.get("fallback_used"):
        rows.append(("fallback", "a fallback provider answered"))
    rows.append(("reason", record["reason"]))
    return rows


def decision_markdown(record: dict) -> str:
    """A Markdown summary for the KFP UI: the verdict, a table, and every region and attempt."""
    lines = ["# Carbon-forecast gate", "", "| | |", "|---|---|"]
    lines += [f"| {label} | {value.replace('|', '/')} |" for label, value in decision_rows(record)]
    if record.get("regions"):
        lines += ["", "## Regions", "", "| region | source | data | run now | best window | best average |", "|---|---|---|---|---|---|"]
        for r in record["regions"]:
            lines.append(
                f"| {r['region']} | {r['provider']} | {r['data_kind']} | "
                f"{r['run_now_window']['average_gco2_per_kwh']:.1f} | {_when(r['best_window']['start'])} | "
                f"{r['best_window']['average_gco2_per_kwh']:.1f} |"
            )
        notes = sorted({r["note"] for r in record["regions"] if r.get("note")})
        lines += [""] + [f"> {note}" for note in notes]
    failed = [a for a in record.get("attempts", []) if not a["ok"]]
    if failed:
        lines += ["", "## Provider failures", ""] + [f"- {a['error']}" for a in failed]
    lines += ["", "Intensities in gCO2eq/kWh; windows are time-weighted averages over the job's duration."]
    return "\n".join(lines) + "\n"
