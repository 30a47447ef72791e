"""Turn flat, string-friendly parameters (a KFP component's or a CLI's) into a `GatePolicy`,
and write a decision's outputs. Keeps the component body a thin adapter."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime, timedelta
from typing import Any, Iterable

from .gate import GateDecision, GatePolicy
from .._files import write_atomic
from ..records import GateDecisionRecord, write_record

_DURATION = re.compile(r"^\s*(?:(?P<d>\d+(?:\.\d+)?)d)?\s*(?:(?P<h>\d+(?:\.\d+)?)h)?\s*(?:(?P<m>\d+(?:\.\d+)?)m(?:in)?)?\s*$")


def parse_datetime(text: str | None, field: str) -> datetime | None:
    """An ISO 8601 datetime with a timezone (``Z`` accepted); empty means None."""
    if text is None or str(text).strip() == "":
        return None
    value = str(text).strip()
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise ValueError(f"{field} must be an ISO 8601 datetime such as 2026-11-26T18:00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{field} must be timezone-aware (add Z or +00:00), got the naive datetime {text!r}")
    return moment


def parse_duration(text: str | float | int, field: str) -> timedelta:
    """``2h``, ``90m``, ``1h30m``, ``1d`` or a number of hours."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        hours = float(text)
    else:
        match = _DURATION.match(str(text))
        if not match or not any(match.groupdict().values()):
            try:
                hours = float(text)
            except ValueError:
                raise ValueError(f"{field} must be a duration such as 2h, 90m or 1h30m, got {text!r}") from None
        else:
            parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
            hours = parts["d"] * 24 + parts["h"] + parts["m"] / 60
    if not math.isfinite(hours):
        raise ValueError(f"{field} must be finite, got {text!r}")
    return timedelta(hours=hours)


def parse_threshold(text: str | float | None) -> dict[str, float | None]:
    """``""``/None (no threshold), ``250`` (gCO2eq/kWh) or ``p25`` (25th percentile of the forecast)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {"threshold_gco2_per_kwh": None, "threshold_percentile": None}
    value = str(text).strip().lower()
    key = "threshold_percentile" if value.startswith("p") else "threshold_gco2_per_kwh"
    try:
        number = float(value[1:] if value.startswith("p") else value)
    except ValueError:
        raise ValueError(
            f"threshold must be empty, a number of gCO2eq/kWh such as 250, or a percentile such as p25; got {text!r}"
        ) from None
    return {"threshold_gco2_per_kwh": None, "threshold_percentile": None, key: number}


def _optional_hours(value: float | None, field: str) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{field} must be a number of hours >= 0, got {value!r}")
    return timedelta(hours=value)


def policy_from_params(
    regions: Iterable[str],
    duration_hours: float,
    provider: str = "embedded",
    fallback_providers: Iterable[str] | None = None,
    earliest_start: str | None = None,
    deadline: str | None = None,
    max_delay_hours: float | None = None,
    threshold: str | float | None = None,
    min_savings_percent: float = 0.0,
    on_provider_failure: str = "fail_open",
    mode: str = "plan",
    energy_kwh: float | None = None,
    provider_options: dict[str, Any] | None = None,
) -> GatePolicy:
    """A validated :class:`GatePolicy` from plain values (ISO strings, hours)."""
    if isinstance(duration_hours, bool) or not isinstance(duration_hours, (int, float)):
        raise ValueError(f"duration_hours must be a number of hours, got {duration_hours!r}")
    if not math.isfinite(duration_hours) or duration_hours <= 0:
        raise ValueError(f"duration_hours must be positive, got {duration_hours!r}")
    return GatePolicy(
        regions=tuple(regions) if not isinstance(regions, str) else (regions,),
        duration=timedelta(hours=duration_hours),
        provider=provider,
        fallback_providers=tuple(fallback_providers or ()),
        earliest_start=parse_datetime(earliest_start, "earliest_start"),
        deadline=parse_datetime(deadline, "deadline"),
        max_delay=_optional_hours(max_delay_hours, "max_delay_hours"),
        **parse_threshold(threshold),
        min_savings_percent=min_savings_percent,
        on_provider_failure=on_provider_failure,
        mode=mode,
        energy_kwh=energy_kwh,
        provider_options=provider_options or {},
    )


def announced_sleep(seconds: float) -> None:
    """``time.sleep``, saying first how long and why: a wait of hours shows in the task's log
    (and on ``run-local``'s screen) instead of looking like a hang."""
    import time

    print(f"waiting {timedelta(seconds=round(seconds))} for the green window", flush=True)
    time.sleep(seconds)


def check_fresh_decision(run_id: str, mode: str, earliest_start: str) -> None:
    """A decision that depends on "now" must be made afresh in every run. KFP caches a task on
    its inputs, so a gate with the same inputs (an empty earliest_start is the same on every run)
    would hand later runs an old decision: the run's id makes the inputs unique.

    Raises:
        ValueError: ``run_id`` is empty while the decision depends on the clock (``wait`` mode,
            or no ``earliest_start``).
    """
    if str(run_id or "").strip():
        return
    if mode == "wait" or not str(earliest_start or "").strip():
        raise ValueError(
            "run_id is empty: pass run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER so that each run decides afresh "
            "(with the same inputs, KFP would reuse an earlier run's cached decision); only a plan for a "
            "fixed earliest_start may go without it"
        )


def write_decision_outputs(
    decision: GateDecision | GateDecisionRecord, record_path: str, summary_path: str | None = None,
    run_id: str | None = None,
) -> GateDecisionRecord:
    """Write the decision record (JSON) and its Markdown summary; return the record."""
    record = decision.to_record() if isinstance(decision, GateDecision) else decision
    if run_id:
        record = dataclasses.replace(record, run_id=run_id)
    write_record(record, record_path)
    if summary_path:
        write_atomic(summary_path, record.markdown())
    return record
