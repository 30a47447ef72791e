"""The quarterly sustainability report's figures: what the programme saved against what it cost
the business, per team, for leadership (``greenkfp report quarterly``).

:func:`quarterly_report` reads the budget ledger (budgets, settled runs with their
:class:`~greenkfp.components.records.RunFacts`, refusals, the review board's exceptions and
transfers) and the audit's :class:`~greenkfp.components.records.AuditBaseline`, and computes one
:class:`~greenkfp.components.records.QuarterlyReport`:

* **emissions** per team and month (settled grams, by the month a run was charged to) against the
  budget (the limit after transfers, the soft tier's overdraft, approved exceptions), against
  the team's baseline month, and progress toward the reduction target: the straight path from
  the baseline's mean month (at its last month) to ``reduction_percent`` below it by ``by``; a
  quarter is on track when its mean month is at least as far below the baseline as the path is
  at the quarter's last month;
* **savings by lever** (time shifting, model selection, quantization, autoscaling), each run's
  figure and 95 % interval from its RunFacts. The quarter's total is the sum of the point
  estimates; its interval is the sum of the runs' lows and of their highs. That is exact when
  the runs' errors move together (the same pipeline, model and energy model make them largely
  shared) and conservative (wider than needed) when they do not, so it never overstates the
  certainty of a saving; a total whose interval includes zero is reported as *no significant
  difference*. Runs whose RunFacts give no figure for a lever (time shifting in plan mode) are
  counted beside it, not as zero;
* **business impact**: accuracy (percentage points) and p95 latency (ms) of promoted models
  against their baselines; runs refused by the budget (the ledger's refused decisions) or by
  the carbon gate, and runs the gate delayed, with their delay;
* the **review board's** exceptions and transfers of the quarter, with their reasons;
* **total cost of ownership** per team: machine-hours x the hardware profile's hourly list price
  (:data:`greenkfp.components.energy.PRESETS`, each price with its source) and the carbon-price
  exposure, settled tonnes x a price per tonne (default :data:`DEFAULT_CARBON_PRICE_EUR_PER_T`,
  the EU ETS's 2025 average, :data:`CARBON_PRICE_SOURCE`). The ledger does not hold run
  durations: machine-hours are the runs' training energy divided by the profile's full-load
  power (the energy model's Teads curve at 100 % on all vCPUs, plus RAM), the same model the
  gatekeeper's ``hardware_default`` estimate uses, so a lower bound on billed hours.

Core code, no kfp import. The settlements' facts are read as the JSON the ledger validated when
it stored them (not re-validated per run: a 100,000-run quarter is read in seconds).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from .._checks import iso
from ..records import (LEVERS, AuditBaseline, BoardException, BoardTransfer, LeverTotal, QuarterAssumptions,
                       QuarterlyReport, QuarterProgress, QuarterSources, QuarterTeam, QuarterTeamMonth, RecordError,
                       TeamCost, TeamImpact, TrajectoryPoint, read_record)
from ..records import _NO_VALUE as _RECORD_NO_VALUE
from .errors import BudgetError

__all__ = ["CARBON_PRICE_SOURCE", "DEFAULT_CARBON_PRICE_EUR_PER_T", "Quarter", "ReportError", "load_baseline",
           "parse_quarter", "quarterly_report"]

#: The default carbon price, EUR per tonne CO2eq: the average price of the EU emission allowances
#: (EUAs) that changed hands in 2025 (Veyt's EU ETS year in review, "2025 EU ETS year in review:
#: turnover reaches all-time high": "The average price of the emission allowances (EUAs) that
#: changed hands last year was EUR 75/t").
DEFAULT_CARBON_PRICE_EUR_PER_T = 75.0
CARBON_PRICE_SOURCE = ("EU ETS: average price of the emission allowances (EUAs) traded in 2025, EUR 75/t "
                       "(Veyt, '2025 EU ETS year in review: turnover reaches all-time high')")
_LEVER_NAMES = {"time_shifting": "time shifting (carbon gate)", "model_selection": "model selection",
                "quantization": "quantization", "autoscaling": "serving autoscaling"}
INTERVAL_BASIS = ("95 % intervals. A lever's quarter total is the sum of its runs' point estimates; its interval is "
                  "the sum of their lows and of their highs: exact when the runs' errors move together (the same "
                  "pipeline, model and energy model), conservative otherwise. A total whose interval includes zero "
                  "is 'no significant difference'.")
EMISSIONS_BASIS = ("settled grams CO2eq of the ledger's runs, by the month each run was charged to (UTC); budgets "
                   "are the limit after transfers, plus the soft tier's overdraft and the board's approved "
                   "exceptions; the target path runs straight from the baseline's mean month at its last month "
                   "to the target by its month")


class ReportError(BudgetError):
    """Input the report cannot use (a quarter, a baseline file, a price, a ledger without data):
    names the option and the value, in one line; nothing was written."""


class Quarter:
    """A calendar quarter, ``2026Q4``: its name and its three months (``2026-10`` ...)."""

    def __init__(self, name: str, year: int, number: int):
        self.name, self.year, self.number = name, year, number
        self.months = tuple(f"{year:04d}-{3 * (number - 1) + i:02d}" for i in (1, 2, 3))

    def __repr__(self) -> str:
        return f"Quarter({self.name!r})"


def parse_quarter(text: Any) -> Quarter:
    """``2026Q4`` as a :class:`Quarter`; else a :class:`ReportError` naming ``quarter`` (the one
    check of a quarter, :func:`.ledger.check_quarter`)."""
    from .ledger import check_quarter

    try:
        year, number = check_quarter(text)
    except BudgetError as exc:
        raise ReportError(exc.field, exc.problem, text) from None
    return Quarter(text, year, number)


#: The largest baseline.json the report reads (the audit writes a few KiB per team).
MAX_BASELINE_BYTES = 16 * 1024 * 1024


def load_baseline(path: str | Path) -> AuditBaseline:
    """The audit's baseline (``baseline.json`` of ``greenkfp audit``); a missing, unreadable or
    malformed file is a :class:`ReportError` naming ``baseline``, the file and the reason
    (``baseline b.json: field 'target.reduction_percent' must be ..., got 150``)."""
    from .._files import FileReadError

    shown = os.fspath(path)
    try:
        return read_record(AuditBaseline, path, max_bytes=MAX_BASELINE_BYTES)
    except FileReadError as exc:
        hint = " (greenkfp audit writes the baseline.json)" if exc.reason == "no such file" else ""
        raise ReportError("baseline", f"{shown}: {exc.reason}{hint}") from None
    except RecordError as exc:
        what = exc.problem if exc.field == "(record)" else f"field {exc.field!r} {exc.problem}"  # (record): not JSON
        problem = f"{shown}: is not a valid audit baseline ({AuditBaseline.SCHEMA}): {what}"
        if exc.value is _RECORD_NO_VALUE:
            raise ReportError("baseline", problem) from None
        raise ReportError("baseline", problem, exc.value) from None


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:]) - 1


def _month_at(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


#: The carbon price the report takes, EUR per tonne CO2eq (above 0, at most this: 1,000 times the EU ETS's).
MAX_CARBON_PRICE_EUR_PER_T = 100_000.0
#: The US dollars per euro the report takes (a rate outside is a typo, not a currency).
USD_PER_EUR_RANGE = (0.01, 100.0)


def _price(field: str, value: Any, low: float, high: float, unit: str, *, low_included: bool) -> float:
    real = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not real or value > high or value < low or (value == low and not low_included):
        bound = f"from {low:g}" if low_included else f"above {low:g}"
        raise ReportError(field, f"must be a number {bound} to {high:,g} {unit}", value)
    return float(value)


def _profiles(hardware: str | Mapping[str, str], teams: Iterable[str]) -> dict[str, Any]:
    """Each team's hardware profile: ``hardware`` names one preset for all, or maps teams to
    presets (``"*"``: the others; default the energy module's)."""
    from ..energy import DEFAULT_PROFILE, PRESETS, UnknownProfileError, resolve_profile

    mapping = {"*": hardware} if isinstance(hardware, str) else dict(hardware)
    default = mapping.pop("*", DEFAULT_PROFILE)
    teams = list(teams)
    for team, name in mapping.items():
        if team not in teams:
            raise ReportError("hardware_profile", f"names team {team!r}, which is not in the report (its teams: "
                                                  f"{', '.join(teams) or 'none'})", f"{team}={name}")
    chosen = {}
    for team in teams:
        name = mapping.get(team, default)
        try:
            chosen[team] = resolve_profile(name)
        except UnknownProfileError:
            raise ReportError("hardware_profile", f"must name a preset ({', '.join(PRESETS)})", name) from None
    return chosen


def _full_load_kwh_per_hour(profile) -> float:
    from ..energy.model import model_energy

    return model_energy(profile, 100.0, 3600.0, profile.vcpus).total_kwh


class _Lever:
    __slots__ = ("runs", "without", "estimate", "low", "high", "measured", "modeled", "bases")

    def __init__(self):
        self.runs = self.without = self.measured = self.modeled = 0
        self.estimate = self.low = self.high = 0.0
        self.bases: Counter = Counter()

    def total(self, lever: str, team: str | None) -> LeverTotal:
        if self.runs:
            significant = self.low > 0 or self.high < 0
            span = f"{_g(self.estimate)} [{_g(self.low)}, {_g(self.high)}]"
            verdict = (f"saved {span}" if significant and self.estimate > 0 else
                       f"cost {_g(-self.estimate)} more [{_g(-self.high)}, {_g(-self.low)}]" if significant else
                       f"no significant difference ({span}: the interval includes zero)")
        else:
            significant, verdict = None, "no run with a figure for this lever"
        method = ("none" if not self.runs else "measured" if not self.modeled else "modeled" if not self.measured
                  else "mixed")
        common = self.bases.most_common(1)
        basis = "" if not common else common[0][0] + (f" (and {len(self.bases) - 1} other basis texts)"
                                                     if len(self.bases) > 1 else "")
        return LeverTotal(lever=lever, team=team, runs=self.runs, runs_without_figure=self.without,
                          estimate_g=self.estimate if self.runs else None, low_g=self.low if self.runs else None,
                          high_g=self.high if self.runs else None, measured_runs=self.measured,
                          modeled_runs=self.modeled, method=method, significant=significant, verdict=verdict,
                          basis=basis)


def mass(grams: float | None, unit: str = "") -> str:
    """Grams in a readable unit, three significant figures: ``250 g``, ``1.35 kg``, ``12.3 t``
    (``unit`` is appended, e.g. ``CO2eq``). The one helper every text of the report uses, so the
    same figure reads the same everywhere, and a figure that is not zero never shows as 0."""
    if grams is None:
        return "–"
    size = abs(grams)
    divisor, name = (1e6, "t") if size >= 999.5e3 else (1e3, "kg") if size >= 999.5 else (1.0, "g")
    value = grams / divisor
    if value == 0:
        text = "0"
    elif abs(value) >= 99.95:
        text = f"{value:,.0f}"
    elif abs(value) >= 9.995:
        text = f"{value:.1f}"
    elif abs(value) >= 0.9995:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    text = text.removeprefix("-") if text.lstrip("-").strip("0.,") == "" else text  # never "-0"
    return f"{text} {name}" + (f" {unit}" if unit else "")


_g = mass


class _Team:
    __slots__ = ("runs", "emissions", "month_runs", "month_g", "energy", "priced", "unpriced", "saved", "promoted",
                 "acc", "acc_min", "worse", "lat", "lat_pct", "gate_refused", "delays", "with_facts")

    def __init__(self):
        self.runs = self.priced = self.unpriced = self.promoted = self.worse = self.gate_refused = 0
        self.with_facts = 0
        self.emissions = self.energy = self.saved = 0.0
        self.month_runs: Counter = Counter()
        self.month_g: dict[str, float] = defaultdict(float)
        self.acc: list[float] = []
        self.acc_min: float | None = None
        self.lat: list[float] = []
        self.lat_pct: list[float] = []
        self.delays: list[float] = []


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), 95))


def _read_runs(runs: Iterable[Any], teams: dict[str, _Team], levers: dict, team_levers: dict) -> tuple[int, int]:
    """One pass over the settled runs: totals per team and month, savings, impact, energy."""
    settled = with_facts = 0
    for run in runs:
        settled += 1
        team = teams.get(run.team)
        if team is None:
            team = teams[run.team] = _Team()
        grams = run.actual_g
        team.runs += 1
        team.emissions += grams
        team.month_runs[run.period] += 1
        team.month_g[run.period] += grams
        facts = run.facts_data
        if not facts:
            team.unpriced += 1
            continue
        with_facts += 1
        team.with_facts += 1
        energy = facts.get("energy_kwh")
        if energy is None:
            team.unpriced += 1
        else:
            team.priced += 1
            team.energy += energy
        for saving in facts.get("savings") or ():
            lever = saving["lever"]
            for totals in (levers[lever], team_levers[run.team, lever]):
                figure = saving.get("saved_g")
                if figure is None:
                    totals.without += 1
                    continue
                totals.runs += 1
                totals.estimate += figure["estimate"]
                totals.low += figure["low"]
                totals.high += figure["high"]
                if saving.get("method") == "measured":
                    totals.measured += 1
                else:
                    totals.modeled += 1
                totals.bases[saving.get("basis") or ""] += 1
            figure = saving.get("saved_g")
            if figure is not None:
                team.saved += figure["estimate"]
        if facts.get("gate_refused"):
            team.gate_refused += 1
        delay = facts.get("gate_delay_hours") or 0.0
        if delay > 0:
            team.delays.append(delay)
        if facts.get("promoted"):
            team.promoted += 1
            selected, baseline = facts.get("selected"), facts.get("baseline")
            if selected and baseline:
                if selected.get("accuracy") is not None and baseline.get("accuracy") is not None:
                    change = (selected["accuracy"] - baseline["accuracy"]) * 100.0
                    team.acc.append(change)
                    team.acc_min = change if team.acc_min is None else min(team.acc_min, change)
                    s_int, b_int = selected.get("accuracy_interval"), baseline.get("accuracy_interval")
                    if s_int and b_int and s_int["high"] < b_int["low"]:
                        team.worse += 1
                s_lat, b_lat = selected.get("latency_p95_ms"), baseline.get("latency_p95_ms")
                if s_lat is not None and b_lat is not None:
                    team.lat.append(s_lat - b_lat)
                    if b_lat > 0:
                        team.lat_pct.append((s_lat - b_lat) / b_lat * 100.0)
    return settled, with_facts


_BEYOND_SOFT = "estimate beyond the remaining budget and the soft tier's overdraft"
_BEYOND_HARD = "estimate beyond the remaining budget (hard tier)"
_FIGURES = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?")


def _refusal_reason(entry) -> str:
    """A refused decision's kind of reason, from the reasons the ledger stored with it (the
    policy's, then the ledger's own), its figures left out so that refusals can be counted.

    The bundled policy (``policy/budget.rego``) refuses with ``... estimate N g exceeds remaining
    ...`` (``+ overdraft`` on the soft tier) or, for a malformed submission, ``input.FIELD must
    be ...``; the ledger refuses a policy's ``allow: true`` that no longer fits with ``estimate N
    exceeds what team T may still spend``. Any other reason (a replaced policy's) is shown as it
    is, its numbers as ``N``."""
    detail = entry.detail or {}
    reasons = [r for r in detail.get("reasons") or () if isinstance(r, str) and r.strip()]
    tier = detail.get("tier")
    if detail.get("allow") is not False:  # the policy allowed; the ledger found no room
        return _BEYOND_SOFT if tier == "soft" else _BEYOND_HARD
    first = reasons[0] if reasons else ""
    if not first or first == "refused by the policy":
        return "refused by the policy (no reason given)"
    if " exceeds " in first and "estimate" in first:
        return _BEYOND_SOFT if "overdraft" in first or tier == "soft" else _BEYOND_HARD
    if first.startswith("input"):
        return "malformed submission (the policy's input checks)"
    if first.startswith("the policy reached no decision"):
        return "the policy reached no decision (a fault in the policy file)"
    text = _FIGURES.sub("N", " ".join(first.split()))
    return "refused by the policy: " + (text if len(text) <= 160 else text[:159] + "…")


def quarterly_report(ledger: Any, quarter: str | Quarter, baseline: AuditBaseline, *, baseline_source: str = "",
                     carbon_price_eur_per_t: float = DEFAULT_CARBON_PRICE_EUR_PER_T, usd_per_eur: float | None = None,
                     usd_per_eur_source: str = "", hardware: str | Mapping[str, str] | None = None,
                     now: datetime | None = None) -> QuarterlyReport:
    """The quarter's figures from ``ledger`` (a :class:`~.ledger.Ledger`) and the audit's ``baseline``.

    Args:
        ledger: The budget ledger.
        quarter: ``2026Q4`` (or a parsed :class:`Quarter`); it must come after the baseline's months.
        baseline: The audit's baseline (:func:`load_baseline`).
        baseline_source: Where the baseline was read from (shown in the report).
        carbon_price_eur_per_t: EUR per tonne CO2eq for the carbon-price exposure (> 0).
        usd_per_eur: US dollars per euro, to add cloud cost and carbon exposure into one EUR
            total; None leaves each figure in its own currency.
        usd_per_eur_source: Where that rate comes from (shown with it).
        hardware: The machines the teams' runs use, for the cloud cost: a preset name for all
            teams, or ``{team: preset}`` (``"*"``: every other team); default the energy
            module's default profile.
        now: The report's time (default: now, UTC).

    Raises:
        ReportError: a malformed quarter, a quarter not after the baseline or not begun at
            ``now`` (a quarter under way is reported *in progress*), a baseline without emissions,
            a bad price or rate, an unknown hardware profile or one for a team not in the report,
            or a ledger without data for the quarter.
    """
    from ..energy import DEFAULT_PROFILE

    quarter = quarter if isinstance(quarter, Quarter) else parse_quarter(quarter)
    if not isinstance(baseline, AuditBaseline):
        raise ReportError("baseline", "must be an AuditBaseline record (see load_baseline)", type(baseline).__name__)
    price = _price("carbon_price_eur_per_t", carbon_price_eur_per_t, 0.0, MAX_CARBON_PRICE_EUR_PER_T,
                   "EUR per tonne CO2eq", low_included=False)
    rate = None if usd_per_eur is None else _price("usd_per_eur", usd_per_eur, *USD_PER_EUR_RANGE,
                                                   "US dollars per euro", low_included=True)
    months, first, last = quarter.months, quarter.months[0], quarter.months[-1]
    if first <= baseline.months[-1]:
        raise ReportError("quarter", f"must come after the baseline's months ({baseline.months[0]} to "
                                     f"{baseline.months[-1]}): progress is measured against them", quarter.name)
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    today = now.strftime("%Y-%m")
    if today < first:
        raise ReportError("quarter", f"has not begun (it starts on {first}-01; today is {now:%Y-%m-%d} UTC): "
                                     "there is nothing to report yet", quarter.name)
    # a quarter still under way: only the months that have begun count, and it is labelled so
    elapsed = len(months) if today > last else months.index(today) + 1
    in_progress = today <= last
    if baseline.mean_monthly_g <= 0:
        raise ReportError("baseline", "holds no baseline emissions (field teams: " + (
            "no team" if not baseline.teams else "every team's mean_monthly_g is 0") + "): progress toward the "
            "target cannot be measured against it", baseline_source or "(given)")

    limits = ledger.entries_of(["limit"])
    if not limits:
        raise ReportError("ledger", "holds no budgets: nothing to report (set limits with greenkfp budget set-limit, "
                                    "or seed a demo with make demo-governance)", ledger.url)
    limits = [e for e in limits if first <= e.period <= last]
    refusals = ledger.entries_of(["decision"], actions=["refused"], since=first, until=last)
    teams: dict[str, _Team] = {}
    levers = {lever: _Lever() for lever in LEVERS}
    team_levers: dict = defaultdict(_Lever)
    latest: list[datetime] = []  # the latest settled run's time: what "data to" means

    def tracked(runs: Iterable[Any]) -> Iterable[Any]:
        for run in runs:
            at = run.settled_at if run.settled_at.tzinfo else run.settled_at.replace(tzinfo=timezone.utc)
            if not latest or at > latest[0]:
                latest[:] = [at]
            yield run

    settled, with_facts = _read_runs(tracked(ledger.settled_runs(since=first, until=last)), teams, levers, team_levers)
    # never after now (a run dated in the future is data the ledger should not hold yet)
    data_to = f"{min(latest[0], now):%Y-%m-%d}" if latest else "no settled run yet"
    if not settled and not limits and not refusals:
        raise ReportError("quarter", f"has no data in the ledger: no budget, settled run or refusal in {first} to "
                                     f"{last}", quarter.name)
    exceptions = _exceptions(ledger.entries_of(["exception"], since=first, until=last), now)
    transfers = tuple(BoardTransfer(id=e.id, month=e.period, from_team=e.team, to_team=e.to_team,
                                    amount_g=e.amount_g, approver=e.actor, reason=(e.detail or {}).get("reason", ""),
                                    at=e.at)
                      for e in ledger.entries_of(["transfer"], since=first, until=last))

    budgeted = sorted({(e.team, e.period) for e in limits})
    names = sorted(set(teams) | {t for t, _ in budgeted} | {e.team for e in refusals} | set(baseline.teams))
    for name in names:
        teams.setdefault(name, _Team())
    statuses = {(team, month): ledger.status(team, month) for team, month in budgeted}
    approved = defaultdict(float)
    for grant in exceptions:
        if grant.status == "approved":
            approved[grant.team, grant.month] += grant.amount_g

    # the target path: straight from the baseline's mean month at its last month to the target by its month
    target = baseline.target
    start, end = _month_index(baseline.months[-1]), _month_index(target.by)
    span = end - start

    def path_share(month: str) -> float:
        """The share of the reduction the path asks for by ``month`` (0 to 1)."""
        return min(max(_month_index(month) - start, 0), span) / span

    required = target.reduction_percent * path_share(last)
    team_months, team_rows = [], []
    for name in names:
        team, base = teams[name], baseline.teams.get(name)
        base_g = None if base is None else base.mean_monthly_g
        tier = next((statuses[name, m].tier for m in reversed(months) if (name, m) in statuses),
                    None if base is None else base.tier)
        for month in months:
            status = statuses.get((name, month))
            grams = team.month_g.get(month, 0.0)
            trajectory = None if base_g is None else base_g * (1 - target.reduction_percent / 100 * path_share(month))
            if status is None:
                team_months.append(QuarterTeamMonth(
                    team=name, month=month, tier=None, runs=team.month_runs.get(month, 0), emissions_g=grams,
                    limit_g=None, transferred_g=0.0, overdraft_g=0.0, exceptions_g=approved.get((name, month), 0.0),
                    allowed_g=None, used_percent=None, baseline_g=base_g, trajectory_g=trajectory, status="no budget"))
                continue
            excepted = approved.get((name, month), 0.0)
            allowed = status.limit_g + status.overdraft_g + excepted
            verdict = ("within limit" if grams <= status.limit_g + 1e-9 else
                       "in overdraft or exception" if grams <= allowed + 1e-9 else "over allowance")
            team_months.append(QuarterTeamMonth(
                team=name, month=month, tier=status.tier, runs=team.month_runs.get(month, 0), emissions_g=grams,
                limit_g=status.limit_g, transferred_g=status.transferred_g, overdraft_g=status.overdraft_g,
                exceptions_g=excepted, allowed_g=allowed,
                used_percent=grams / status.limit_g * 100 if status.limit_g > 0 else None,
                baseline_g=base_g, trajectory_g=trajectory, status=verdict))
        mean = team.emissions / elapsed
        change = None if not base_g else (mean - base_g) / base_g * 100
        team_rows.append(QuarterTeam(team=name, tier=tier, runs=team.runs, emissions_g=team.emissions,
                                     monthly_mean_g=mean, baseline_monthly_g=base_g, change_percent=change,
                                     required_percent=None if base_g is None else required,
                                     on_track=None if change is None else -change >= required - 1e-9))

    # the target is the baseline teams' sum: a team without a baseline is left out of it (and said so)
    base_total = baseline.mean_monthly_g
    quarter_total = sum(t.emissions for n, t in teams.items() if n in baseline.teams)
    quarter_mean = quarter_total / elapsed
    achieved = (1 - quarter_mean / base_total) * 100
    notes = []
    for name in names:
        base = baseline.teams.get(name)
        if base is None:
            notes.append(f"team {name} has no baseline: excluded from the target (its {mass(teams[name].emissions)} "
                         "count in the quarter's emissions, not in the progress toward the target)")
        elif not teams[name].runs:
            notes.append(f"team {name} in the baseline has no settled runs this quarter")
        elif base.mean_monthly_g <= 0:
            notes.append(f"team {name} has no baseline emissions (0 g a month): its own progress cannot be measured")
    if in_progress:
        notes.insert(0, f"{quarter.name} is in progress: {elapsed} of 3 months, data to {data_to}; the "
                        f"figures are for its months so far and the mean month is over {elapsed} month"
                        f"{'s' if elapsed > 1 else ''}")
    points = []
    for index in range(_month_index(baseline.months[0]), max(end, _month_index(last)) + 1):
        month = _month_at(index)
        if month in baseline.months:
            actual, kind = sum(t.monthly_g.get(month, 0.0) for t in baseline.teams.values()), "baseline"
        elif month in months[:elapsed]:
            actual = sum(t.month_g.get(month, 0.0) for n, t in teams.items() if n in baseline.teams)
            kind = "quarter"
        else:
            actual, kind = None, "path"
        points.append(TrajectoryPoint(month=month, path_g=base_total * (1 - target.reduction_percent / 100
                                                                         * path_share(month)),
                                      actual_g=actual, kind=kind))
    progress = QuarterProgress(
        baseline_months=baseline.months, baseline_monthly_g=base_total, reduction_percent=target.reduction_percent,
        by=target.by, target_monthly_g=baseline.target_monthly_g(), quarter_monthly_g=quarter_mean,
        achieved_percent=achieved, required_percent=required, on_track=achieved >= required - 1e-9,
        trajectory=tuple(points), state="in progress" if in_progress else "complete", months_with_data=elapsed,
        data_to=data_to if in_progress else None,
        status=(f"in progress ({elapsed} of 3 months, data to {data_to})" if in_progress
                else "on track" if achieved >= required - 1e-9 else "behind"))

    refused_by_team: dict[str, Counter] = defaultdict(Counter)
    for entry in refusals:
        refused_by_team[entry.team][_refusal_reason(entry)] += 1
    impact = tuple(TeamImpact(
        team=name, runs=teams[name].runs, promoted_runs=teams[name].promoted,
        accuracy_change_pp_mean=_mean(teams[name].acc), accuracy_change_pp_min=teams[name].acc_min,
        accuracy_worse_runs=teams[name].worse, latency_change_ms_mean=_mean(teams[name].lat),
        latency_change_percent_mean=_mean(teams[name].lat_pct),
        budget_refused=sum(refused_by_team[name].values()), gate_refused=teams[name].gate_refused,
        delayed_runs=len(teams[name].delays), delay_hours_total=sum(teams[name].delays),
        delay_hours_mean=_mean(teams[name].delays), delay_hours_p95=_p95(teams[name].delays),
        delay_hours_max=max(teams[name].delays, default=None), refusal_reasons=dict(refused_by_team[name]))
        for name in names)

    profiles = _profiles(hardware if hardware is not None else DEFAULT_PROFILE, names)
    costs = []
    for name in names:
        team, profile = teams[name], profiles[name]
        hours = team.energy / _full_load_kwh_per_hour(profile)
        cloud = None if profile.hourly_price_usd is None else hours * profile.hourly_price_usd
        tonnes, saved_t = team.emissions / 1e6, team.saved / 1e6
        exposure = tonnes * price
        share = total = None
        if rate is not None and cloud is not None:
            total = cloud / rate + exposure
            share = exposure / total * 100 if total > 0 else None
        costs.append(TeamCost(team=name, hardware_profile=profile.name, hourly_price_usd=profile.hourly_price_usd,
                              runs_priced=team.priced, runs_unpriced=team.unpriced, machine_hours=hours,
                              cloud_cost_usd=cloud, emissions_t=tonnes, carbon_exposure_eur=exposure, saved_t=saved_t,
                              avoided_exposure_eur=saved_t * price, carbon_share_percent=share, total_eur=total))

    hardware_figures = {}
    for name in names:
        profile = profiles[name]
        hardware_figures[name] = {"profile": profile.name, "hourly_price_usd": profile.hourly_price_usd,
                                  "hourly_price_source": profile.sources["hourly_price_usd"],
                                  "full_load_kw": _full_load_kwh_per_hour(profile)}
    assumptions = QuarterAssumptions(
        carbon_price_eur_per_t=price,
        carbon_price_source=(CARBON_PRICE_SOURCE if price == DEFAULT_CARBON_PRICE_EUR_PER_T
                             else "given with --carbon-price-eur-per-t"),
        usd_per_eur=rate,
        usd_per_eur_source=("not given: cloud cost (USD) and carbon exposure (EUR) are not added" if rate is None
                            else usd_per_eur_source or "given with --usd-per-eur"),
        hardware=hardware_figures,
        machine_hours_basis=("training energy (RunFacts.energy_kwh) / the hardware profile's full-load power "
                             "(Teads curve at 100 % on all vCPUs, plus RAM): a lower bound on billed hours; runs "
                             "without an energy figure are counted as unpriced"),
        interval_basis=INTERVAL_BASIS, emissions_basis=EMISSIONS_BASIS)
    sources = QuarterSources(ledger=ledger.url, baseline=baseline_source, baseline_generated_at=baseline.generated_at,
                             settled_runs=settled, runs_with_facts=with_facts)
    return QuarterlyReport(
        quarter=quarter.name, months=months, generated_at=iso(now), sources=sources, team_months=tuple(team_months),
        teams=tuple(team_rows), progress=progress,
        savings=tuple(levers[lever].total(lever, None) for lever in LEVERS),
        savings_by_team=tuple(team_levers[name, lever].total(lever, name) for name in names for lever in LEVERS
                              if (name, lever) in team_levers),
        impact=impact, exceptions=exceptions, transfers=transfers, costs=tuple(costs), assumptions=assumptions,
        notes=tuple(notes))


def _exceptions(entries: list, now: datetime) -> tuple[BoardException, ...]:
    """The exception requests of the quarter, each as its decision left it (pending requests past
    their expiry are ``expired``)."""
    decisions = {e.ref_id: e for e in entries if e.action != "requested"}
    rows = []
    for request in (e for e in entries if e.action == "requested"):
        decision = decisions.get(request.id)
        if decision is not None:
            status = decision.action
        else:
            expired = request.expires_at and datetime.fromisoformat(request.expires_at.replace("Z", "+00:00")) <= now
            status = "expired" if expired else "pending"
        detail = request.detail or {}
        rows.append(BoardException(
            id=request.id, team=request.team, month=request.period, amount_g=request.amount_g, status=status,
            requester=request.actor, reason=detail.get("reason", ""),
            approver=None if decision is None else decision.actor,
            decision_reason=None if decision is None else (decision.detail or {}).get("reason"),
            run_id=request.run_id, requested_at=request.at))
    return tuple(rows)


def lever_name(lever: str) -> str:
    """A lever as people say it: ``time_shifting`` -> ``time shifting (carbon gate)``."""
    return _LEVER_NAMES.get(lever, lever.replace("_", " "))
