"""The carbon-forecast gate: run now, wait for the greenest window before a deadline, or refuse.

:func:`decide` asks the providers (primary, then fallbacks) for each candidate region's forecast,
searches each for its greenest window (Carbon Aware SDK semantics, see :mod:`.windows`), picks
the greenest region and time, applies the threshold and minimum-savings rules, and returns a
:class:`GateDecision` whose :meth:`~GateDecision.to_record` is the full account (a
:class:`~greenkfp.components.records.GateDecisionRecord`):
inputs, data sources, fallbacks, the chosen window, the run-now counterfactual, delay, savings.

When no provider answers, the policy decides: ``fail_open`` runs now and records that it did;
``fail_closed`` raises :class:`~.errors.GateError` carrying the record.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Literal, Mapping

import numpy as np

from .._messages import listing, redact, shorten
from ..records import GateDecisionRecord
from .errors import GateError, ProviderError, UnknownRegionError, WindowSearchError
from .intensity import open_provider, parse_provider_options
from .providers import PROVIDER_NAMES, CarbonProvider, ProviderForecast
from .providers.base import utc_now
from .series import to_epoch_seconds
from .windows import Window, best_window

FailurePolicy = Literal["fail_open", "fail_closed"]
GateMode = Literal["plan", "wait"]
#: Fetch horizon when neither ``deadline`` nor ``max_delay`` bounds the search.
DEFAULT_HORIZON = timedelta(hours=48)
#: A job shorter than a minute is below every provider's granularity; a duration or a delay
#: longer than a year is a mistake (hours typed as seconds), not a plan.
MIN_DURATION = timedelta(minutes=1)
MAX_HORIZON = timedelta(days=366)
#: Longest the gate spends asking providers, all regions and fallbacks together, seconds: each
#: request has its own deadline, but many regions x providers x retries must not add up to hours.
FETCH_BUDGET_S = 180.0
#: One job's energy estimate at most, kWh (a gigawatt-hour): beyond it the grams overflow meaning.
MAX_ENERGY_KWH = 1e6


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None:
        if not isinstance(value, datetime):
            raise TypeError(f"{name} must be a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got the naive datetime {value.isoformat()}")


@dataclass(frozen=True)
class GatePolicy:
    """What the gate is asked to decide. Every field is validated on construction.

    Args:
        regions: Candidate regions, the first being home: the run-now counterfactual is there.
        duration: Expected job duration.
        provider: Primary provider name (see :data:`~.providers.PROVIDER_NAMES`).
        fallback_providers: Tried in order when the primary fails for a region.
        earliest_start: Earliest start (default: now, from the clock given to :func:`decide`).
        deadline: The job must end by then.
        max_delay: The job must start within this delay after ``earliest_start``.
        threshold_gco2_per_kwh: Refuse when the best window's average is above this.
        threshold_percentile: Refuse when the best window's average is above this percentile
            (0-100) of the chosen region's forecast over the search period.
        min_savings_percent: Wait only when the best window saves at least this much against
            running now; otherwise run now.
        on_provider_failure: ``fail_open`` (run now, recorded) or ``fail_closed`` (error).
        mode: ``plan`` returns the start time; ``wait`` also sleeps until it.
        energy_kwh: Optional energy estimate of the job, to express savings in grams.
        provider_options: Per-provider constructor options, e.g. ``{"uk": {"base_url": ...}}``,
            read by :func:`~.intensity.parse_provider_options`. Credentials are refused here:
            they come from environment variables.
    """

    regions: tuple[str, ...]
    duration: timedelta
    provider: str = "embedded"
    fallback_providers: tuple[str, ...] = ()
    earliest_start: datetime | None = None
    deadline: datetime | None = None
    max_delay: timedelta | None = None
    threshold_gco2_per_kwh: float | None = None
    threshold_percentile: float | None = None
    min_savings_percent: float = 0.0
    on_provider_failure: FailurePolicy = "fail_open"
    mode: GateMode = "plan"
    energy_kwh: float | None = None
    provider_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        regions = (self.regions,) if isinstance(self.regions, str) else tuple(self.regions)
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "fallback_providers", tuple(self.fallback_providers))
        if not regions or any(not isinstance(r, str) or not r.strip() for r in regions):
            raise ValueError(f"regions must be a non-empty list of region names, got {shorten(list(regions))}")
        repeated = sorted({r for r in regions if regions.count(r) > 1})
        if repeated:
            raise ValueError(f"regions must be unique; repeated: {listing(repeated)}")
        if not isinstance(self.duration, timedelta) or self.duration <= timedelta(0):
            raise ValueError(f"duration must be a positive timedelta, got {self.duration!r}")
        if not MIN_DURATION <= self.duration <= MAX_HORIZON:
            raise ValueError(f"duration must be between {MIN_DURATION} and {MAX_HORIZON.days} days (a job's "
                             f"length, not a delay), got {self.duration}")
        if self.max_delay is not None and isinstance(self.max_delay, timedelta) and self.max_delay > MAX_HORIZON:
            raise ValueError(f"max_delay must be at most {MAX_HORIZON.days} days, got {self.max_delay}")
        for name in (self.provider, *self.fallback_providers):
            if name not in PROVIDER_NAMES:
                raise ValueError(f"provider must be one of {', '.join(PROVIDER_NAMES)}; got {name!r}")
        for name in ("earliest_start", "deadline"):
            _require_aware(getattr(self, name), name)
            moment = getattr(self, name)
            if moment is not None and not 1970 <= moment.year <= 2100:
                raise ValueError(f"{name} must be between 1970 and 2100, got {moment.isoformat()}")
        # a provider already in the chain adds nothing (a pipeline may pass its provider parameter and a
        # fixed fallback that happen to agree): keep the first of each
        fallbacks = tuple(dict.fromkeys(p for p in self.fallback_providers if p != self.provider))
        object.__setattr__(self, "fallback_providers", fallbacks)
        if self.max_delay is not None and (not isinstance(self.max_delay, timedelta) or self.max_delay < timedelta(0)):
            raise ValueError(f"max_delay must be a timedelta >= 0, got {self.max_delay!r}")
        if self.threshold_gco2_per_kwh is not None and self.threshold_percentile is not None:
            raise ValueError("give threshold_gco2_per_kwh or threshold_percentile, not both")
        if self.threshold_gco2_per_kwh is not None and not (
            math.isfinite(self.threshold_gco2_per_kwh) and self.threshold_gco2_per_kwh >= 0
        ):
            raise ValueError(f"threshold_gco2_per_kwh must be a finite number >= 0, got {self.threshold_gco2_per_kwh!r}")
        if self.threshold_percentile is not None and not 0 <= self.threshold_percentile <= 100:
            raise ValueError(f"threshold_percentile must be between 0 and 100, got {self.threshold_percentile!r}")
        if not (math.isfinite(self.min_savings_percent) and 0 <= self.min_savings_percent <= 100):
            raise ValueError(f"min_savings_percent must be between 0 and 100, got {self.min_savings_percent!r}")
        if self.on_provider_failure not in ("fail_open", "fail_closed"):
            raise ValueError(f"on_provider_failure must be 'fail_open' or 'fail_closed', got {self.on_provider_failure!r}")
        if self.mode not in ("plan", "wait"):
            raise ValueError(f"mode must be 'plan' or 'wait', got {self.mode!r}")
        if self.energy_kwh is not None and not (math.isfinite(self.energy_kwh) and 0 <= self.energy_kwh <= MAX_ENERGY_KWH):
            raise ValueError(f"energy_kwh must be a number from 0 to {MAX_ENERGY_KWH:g} kWh (one job), "
                             f"got {self.energy_kwh!r}")
        # one shape, validated, kfp's widened integers restored (credentials refused)
        object.__setattr__(self, "provider_options", parse_provider_options(self.provider_options))
        if self.earliest_start is not None:
            self.latest_end(self.earliest_start)  # an impossible deadline fails now, not at decide()

    def latest_end(self, earliest: datetime) -> datetime | None:
        """The latest a window may end: the tighter of ``deadline`` and ``max_delay``."""
        bounds = []
        if self.deadline is not None:
            bounds.append(self.deadline)
        if self.max_delay is not None:
            bounds.append(earliest + self.max_delay + self.duration)
        if not bounds:
            return None
        latest = min(bounds)
        if latest < earliest + self.duration:
            raise ValueError(
                f"deadline {latest.isoformat()} is before earliest_start {earliest.isoformat()} plus "
                f"duration {self.duration} (= {(earliest + self.duration).isoformat()})"
            )
        return latest

    def to_dict(self) -> dict:
        def iso(value):
            return None if value is None else value.isoformat()

        return {
            "regions": list(self.regions),
            "duration_seconds": self.duration.total_seconds(),
            "provider": self.provider,
            "fallback_providers": list(self.fallback_providers),
            "earliest_start": iso(self.earliest_start),
            "deadline": iso(self.deadline),
            "max_delay_seconds": None if self.max_delay is None else self.max_delay.total_seconds(),
            "threshold_gco2_per_kwh": self.threshold_gco2_per_kwh,
            "threshold_percentile": self.threshold_percentile,
            "min_savings_percent": self.min_savings_percent,
            "on_provider_failure": self.on_provider_failure,
            "mode": self.mode,
            "energy_kwh": self.energy_kwh,
            "provider_options": {k: dict(v) for k, v in dict(self.provider_options).items()},
        }


@dataclass(frozen=True)
class RegionOutcome:
    """One region's answer: where its data came from and its best and run-now windows."""

    region: str
    forecast: ProviderForecast
    best: Window
    run_now: Window
    candidates: int
    fallback_used: bool

    def to_dict(self) -> dict:
        return {
            **self.forecast.describe(),
            "region": self.region,
            "fallback_used": self.fallback_used,
            "best_window": self.best.to_dict(),
            "run_now_window": self.run_now.to_dict(),
            "candidates": self.candidates,
        }


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict. ``action`` is ``run_now``, ``wait`` or ``refuse``."""

    should_run: bool
    action: Literal["run_now", "wait", "refuse"]
    reason: str
    region: str
    start_at: datetime
    delay: timedelta
    decided_at: datetime
    policy: GatePolicy
    chosen: Window | None = None
    run_now: Window | None = None
    home_region: str | None = None
    outcomes: tuple[RegionOutcome, ...] = ()
    attempts: tuple[dict, ...] = ()
    failure_policy_applied: FailurePolicy | None = None
    threshold_gco2_per_kwh: float | None = None
    waited_seconds: float = 0.0

    @property
    def savings_percent(self) -> float | None:
        if self.chosen is None or self.run_now is None or self.run_now.average == 0:
            return None
        return 100.0 * (self.run_now.average - self.chosen.average) / self.run_now.average

    @property
    def savings_g(self) -> float | None:
        """Expected emissions avoided, grams, given the policy's energy estimate."""
        if self.policy.energy_kwh is None or self.chosen is None or self.run_now is None:
            return None
        return self.policy.energy_kwh * (self.run_now.average - self.chosen.average)

    @property
    def fallback_used(self) -> bool:
        return any(o.fallback_used for o in self.outcomes)

    def to_record(self) -> GateDecisionRecord:
        """The decision record (free of credentials)."""
        energy = self.policy.energy_kwh

        def grams(window: Window | None):
            return None if energy is None or window is None else energy * window.average

        return GateDecisionRecord.from_dict(redact({  # a provider's base URL may carry user:secret@
            "schema": GateDecisionRecord.SCHEMA,
            "decided_at": self.decided_at.isoformat(),
            "should_run": self.should_run,
            "action": self.action,
            "reason": self.reason,
            "region": self.region,
            "start_at": self.start_at.isoformat(),
            "delay_seconds": self.delay.total_seconds(),
            "waited_seconds": self.waited_seconds,
            "chosen_window": None if self.chosen is None else self.chosen.to_dict(),
            "run_now_window": None if self.run_now is None else self.run_now.to_dict(),
            "home_region": self.home_region,
            "intensity_now_gco2_per_kwh": None if self.run_now is None else self.run_now.average,
            "intensity_window_gco2_per_kwh": None if self.chosen is None else self.chosen.average,
            "savings_percent": self.savings_percent,
            "emissions_now_g": grams(self.run_now),
            "emissions_window_g": grams(self.chosen),
            "savings_g": self.savings_g,
            "threshold_gco2_per_kwh": self.threshold_gco2_per_kwh,
            "fallback_used": self.fallback_used,
            "failure_policy_applied": self.failure_policy_applied,
            "regions": [o.to_dict() for o in self.outcomes],
            "attempts": list(self.attempts),
            "inputs": self.policy.to_dict(),
            "units": {"intensity": "gCO2eq/kWh", "energy": "kWh", "emissions": "g CO2eq", "delay": "s"},
        }))


def _fetch(
    policy: GatePolicy,
    region: str,
    earliest: datetime,
    latest_end: datetime | None,
    providers: dict[str, CarbonProvider],
    attempts: list[dict],
    budget_ends: float = math.inf,
) -> RegionOutcome | None:
    """Ask the provider chain for one region; the first usable answer wins. Once the gate's
    fetch budget is spent, the remaining providers are recorded as skipped, not asked."""
    fetch_end = latest_end or earliest + policy.duration + DEFAULT_HORIZON
    for position, name in enumerate((policy.provider, *policy.fallback_providers)):
        attempt = {"provider": name, "region": region, "ok": False, "error_kind": None, "error": None}
        attempts.append(attempt)
        if time.monotonic() > budget_ends:
            attempt.update(error_kind="unavailable",
                           error=f"{name} ({region}): not asked, the gate's {FETCH_BUDGET_S:g} s for providers was spent")
            continue
        try:
            if name not in providers:
                providers[name] = open_provider(name, policy.provider_options)
            answer = providers[name].forecast(region, earliest, fetch_end)
        except UnknownRegionError as exc:
            if position == 0:
                raise  # bad input, not an outage: no policy hides it
            attempt.update(error_kind="unknown_region", error=str(exc))
            continue
        except ProviderError as exc:  # an outage, a missing key or URL, a bad answer: the policy decides
            attempt.update(error_kind=exc.kind, error=str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - whatever a provider's answer breaks, the policy decides
            attempt.update(error_kind="unexpected", error=f"{name} ({region}): {type(exc).__name__}: {exc}")
            continue
        series = answer.series
        start = earliest
        try:
            # A forecast whose first slot starts a little after "now" (the next half hour, say)
            # is still usable: run-now then means the first forecast slot.
            if series.start > earliest:
                if series.start - earliest >= series.granularity:
                    raise WindowSearchError(
                        f"forecast starts at {series.start.isoformat()}, after the earliest start {earliest.isoformat()}"
                    )
                start = series.start
            choice = best_window(series, policy.duration, start, latest_end)
        except WindowSearchError as exc:  # our own errors (a bug) are not hidden as outages
            attempt.update(error_kind="insufficient_data", error=f"{name} ({region}): {exc}")
            continue
        attempt["ok"] = True
        return RegionOutcome(answer.region, answer, choice.best, choice.run_now, choice.candidates, position > 0)
    return None


def _fetch_all(policy: GatePolicy, earliest: datetime, latest_end: datetime | None,
               providers: Mapping[str, CarbonProvider] | None) -> tuple[list[RegionOutcome | None], list[dict]]:
    """Every region's outcome (None where no provider answered) and every provider attempt;
    the providers the gate opened itself are closed again."""
    pool: dict[str, CarbonProvider] = dict(providers or {})
    owned = set(PROVIDER_NAMES) - set(pool)
    attempts: list[dict] = []
    budget_ends = time.monotonic() + FETCH_BUDGET_S
    try:
        return [_fetch(policy, r, earliest, latest_end, pool, attempts, budget_ends) for r in policy.regions], attempts
    finally:
        for name in owned & set(pool):
            pool[name].close()


def _no_answer(policy: GatePolicy, earliest: datetime, common: dict) -> GateDecision:
    """No provider answered for any region: the failure policy decides, and says so."""
    failures = "; ".join(a["error"] for a in common["attempts"] if a["error"])
    if policy.on_provider_failure == "fail_closed":
        decision = GateDecision(
            False, "refuse", f"no provider answered ({failures}); fail_closed policy: not running",
            policy.regions[0], earliest, timedelta(0), failure_policy_applied="fail_closed", **common,
        )
        raise GateError(decision.reason, decision.to_record())
    return GateDecision(
        True, "run_now", f"no provider answered ({failures}); fail_open policy: running now",
        policy.regions[0], earliest, timedelta(0), failure_policy_applied="fail_open", **common,
    )


def _choose(policy: GatePolicy, home: RegionOutcome | None,
            outcomes: tuple[RegionOutcome, ...]) -> tuple[RegionOutcome, Window, str]:
    """The region and window to run in, and why. The baseline is running now in the home region
    (the first), never another region: without it no saving is claimed."""
    chosen = min(outcomes, key=lambda o: o.best.average)  # min() keeps the first among ties
    window = chosen.best
    where = f"greenest window in {chosen.region} starts {window.start.isoformat()} at {window.average:.1f} gCO2eq/kWh"
    if home is None:
        savings = None
        reason = f"{where}; no baseline: the home region {policy.regions[0]} did not answer, so no saving is claimed"
    else:
        savings = 0.0 if home.run_now.average == 0 else \
            100.0 * (home.run_now.average - window.average) / home.run_now.average
        reason = f"{where}, {savings:.1f}% below running now in {home.region}"
    later = window.start > (home or chosen).run_now.start
    if later and policy.min_savings_percent > 0 and (savings is None or savings < policy.min_savings_percent):
        shown = "unknown (no baseline)" if savings is None else f"{savings:.1f}%"
        reason = f"best window saves {shown}, under min_savings_percent {policy.min_savings_percent}: running now"
        chosen = home or chosen
        window = chosen.run_now
    return chosen, window, reason


def _threshold(policy: GatePolicy, chosen: RegionOutcome, earliest: datetime, latest_end: datetime | None) -> float | None:
    """The refusal threshold, gCO2eq/kWh: given, or a percentile of the chosen region's forecast."""
    if policy.threshold_percentile is None:
        return policy.threshold_gco2_per_kwh
    series = chosen.forecast.series
    search_end = latest_end or series.end
    mask = (series.starts + series.granularity_s > to_epoch_seconds(earliest)) & (
        series.starts < to_epoch_seconds(search_end)
    )
    return float(np.percentile(series.values[mask], policy.threshold_percentile))


def _wait_until(start_at: datetime, clock: Callable[[], datetime], sleep: Callable[[float], None]) -> float:
    """Sleep until ``start_at``; return the seconds waited. Never returns before it: a sleep may
    end early (a signal, a coarse clock), so sleep again, at least a second at a time."""
    began = clock()
    for _ in range(10_000):
        remaining = (start_at - clock()).total_seconds()
        if remaining <= 0:
            return (clock() - began).total_seconds()
        sleep(max(remaining, 1.0))
    raise GateError(f"the process never reached start_at {start_at.isoformat()} while waiting")


def decide(
    policy: GatePolicy,
    *,
    providers: Mapping[str, CarbonProvider] | None = None,
    clock: Callable[[], datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
) -> GateDecision:
    """Decide when (and where) to run, per ``policy``; in ``wait`` mode, sleep until then.

    Args:
        policy: The validated request.
        providers: Provider instances by name; missing ones are built from
            ``policy.provider_options`` (and closed again afterwards).
        clock: Source of now (UTC).
        sleep: Called with seconds to wait in ``wait`` mode.

    Raises:
        GateError: no provider answered and the policy is ``fail_closed``.
        UnknownRegionError: the primary provider does not serve a region.
    """
    decided_at = clock()
    # "Now" counts from the whole minute, so windows read 03:13, not 03:13:12.734.
    now = decided_at.replace(second=0, microsecond=0)
    earliest = policy.earliest_start or now
    if policy.mode == "wait" and earliest < now:  # a job cannot start in the past: a past earliest_start means now
        earliest = now
    latest_end = policy.latest_end(earliest)
    fetched, attempts = _fetch_all(policy, earliest, latest_end, providers)
    outcomes = tuple(o for o in fetched if o)
    common = dict(decided_at=decided_at, policy=policy, attempts=tuple(attempts), outcomes=outcomes)
    if not outcomes:
        return _no_answer(policy, earliest, common)

    home = fetched[0]
    chosen, window, reason = _choose(policy, home, outcomes)
    threshold = _threshold(policy, chosen, earliest, latest_end)
    base = dict(
        region=chosen.region, chosen=window, run_now=None if home is None else home.run_now,
        home_region=policy.regions[0] if home is None else home.region, threshold_gco2_per_kwh=threshold, **common,
    )
    delay = window.start - (home or chosen).run_now.start
    if threshold is not None and window.average > threshold:
        return GateDecision(
            False, "refuse",
            f"the greenest window ({window.average:.1f} gCO2eq/kWh in {chosen.region}) is above the threshold "
            f"{threshold:.1f} gCO2eq/kWh: not running",
            start_at=window.start, delay=delay, **base,
        )
    # max_delay counts from the earliest start, and the window search kept start_at within it
    waited = _wait_until(window.start, clock, sleep) if policy.mode == "wait" else 0.0
    action = "wait" if delay > timedelta(0) else "run_now"
    return GateDecision(True, action, reason, start_at=window.start, delay=delay, waited_seconds=waited, **base)
