"""The gatekeeper: a FastAPI service between teams and Kubeflow Pipelines that refuses a
submission whose estimated carbon exceeds the team's remaining budget.

Start it with ``greenkfp gatekeeper serve`` or build the app with :func:`create_app`. It serves:

* **the subset of the KFP v2beta1 REST API that ``kfp.Client`` uses to create runs and
  recurring runs** (:data:`KFP_ROUTES`): a team points ``kfp.Client(host=<gatekeeper>,
  existing_token=<team token>)`` at it unchanged. Creating a run or a recurring run is
  estimated (:func:`~.estimate.estimate_submission` from the team's settled history of the
  pipeline, the run's ``energy_kwh`` parameter or its steps, priced at the run-now window of a
  gated pipeline or the region's annual average), put to the policy
  (:mod:`~.policy`) with the team's budget, and reserved in the ledger (which enforces the
  decision atomically), then forwarded to the real KFP API and its answer returned unchanged
  (the reservation's run id in the ``X-Greenkfp-Run-Id`` header). A refusal is HTTP 403 in
  KFP's error format (gRPC code 7) with the reasons, which ``kfp.Client`` raises as an
  ``ApiException`` whose body shows them. When the KFP API fails after a reservation, the
  reservation is released. The other calls of the subset are forwarded as they are. Every other
  path is 404 in the same format. ``/apis/v2beta1/healthz`` needs no token (``kfp.Client``
  calls it first, with retries that would hide a bad token for 25 s); the rest needs a team's.
  A run is reserved under a provisional id, from the ``Idempotency-Key`` header
  (``<team>/<key>``) or a new UUID; once KFP has created the run, the reservation is moved
  (:meth:`~.ledger.Ledger.rekey`) to KFP's run id, which the ``X-Greenkfp-Run-Id`` header then
  carries: a ``carbon_budget_gate`` step in the run, asking under that id, gets the same
  decision back instead of reserving again, and the run is settled under it.
* **the greenkfp admission API** (:data:`GREENKFP_API`) for other clients: the
  ``carbon_budget_gate`` component (for runs that bypass the proxy), scripts:

  - ``POST /apis/greenkfp/v1/admissions`` ``{pipeline, run_id, period?, energy_kwh?, steps?,
    hardware_profile?, region?, window_start?, window_end?, labels?}``: the estimate, the
    policy's decision and the ledger's reservation; 200 when granted, 403 when refused (the
    same JSON), idempotent by ``run_id``;
  - ``GET /apis/greenkfp/v1/whoami``: ``{role, name}`` of the token (any valid token);
  - ``POST /apis/greenkfp/v1/releases`` ``{run_id}``: give a reservation of the team's back (the
    run was not submitted after all: ``greenkfp submit vertex`` does so when Vertex refuses);
    a run id the team has not reserved is 404, a settled one 400;
  - ``POST /apis/greenkfp/v1/settlements`` ``{run_id, actual_g, facts?}``: a finished run's
    emissions, and its RunFacts (schema ``greenkfp.run_facts/v1``), kept with the settlement (a
    run id the team has not reserved, another team's included, is 404: run ids are per team);
  - ``GET /apis/greenkfp/v1/budgets/{team}/{period}``: the team's budget (its own team only;
    the admin any);
  - admin and board actions with their own tokens: ``PUT /apis/greenkfp/v1/budgets/{team}/{period}``
    ``{limit_g, tier, overdraft_percent?}`` and ``POST /apis/greenkfp/v1/board/members`` ``{name}``
    (admin); ``POST /apis/greenkfp/v1/exceptions`` ``{period, amount_g, reason, expires_at,
    run_id?}`` (a team, for itself); ``POST /apis/greenkfp/v1/exceptions/{id}:approve`` and
    ``:reject`` ``{reason}``, ``POST /apis/greenkfp/v1/transfers`` ``{from_team, to_team,
    period, amount_g, reason}`` (a board member, who is the approver).

Identity is the bearer token (:mod:`.tokens`): a team cannot reserve, settle or read another
team's budget (403). Errors everywhere are KFP's error JSON (:mod:`.kfp_api`).

What the gatekeeper does not do: it does not police the KFP objects a team reads or lists
(KFP's own multi-user mode does that), and a recurring run is admitted on one run's estimate
(its later runs are gated only by a ``carbon_budget_gate`` step in the pipeline; the recurring
run's own reservation keeps the proxy's id). Settle a proxied run with its
``X-Greenkfp-Run-Id`` (KFP's run id).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import re
import threading
import time
import uuid
from urllib.parse import quote
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

from fastapi import Request  # at module level: FastAPI resolves the handlers' (string) annotations here

from .._checks import iso, strict_json
from .._messages import redact_urls
from .bounds import MAX_AHEAD
from .errors import MAX_PIPELINE_CHARS, MAX_RUN_ID_CHARS
from .kfp_api import API, MAX_ENERGY_KWH, KfpApiError, Submission, check_id, parse_submission, quota_failure, with_spec
from .tokens import Identity, Tokens, bearer

__all__ = ["Admission", "AdmissionRequest", "Gatekeeper", "GatekeeperSettings", "KFP_ROUTES", "create_app"]

logger = logging.getLogger("greenkfp.gatekeeper")

#: The KFP v2beta1 calls served (method, path): run and recurring-run creation is gated, the rest forwarded.
KFP_ROUTES = (
    ("GET", f"{API}/healthz"),
    ("POST", f"{API}/experiments"), ("GET", f"{API}/experiments"), ("GET", f"{API}/experiments/{{experiment_id}}"),
    ("POST", f"{API}/runs"), ("GET", f"{API}/runs"), ("GET", f"{API}/runs/{{run_id}}"),
    ("POST", f"{API}/recurringruns"), ("GET", f"{API}/recurringruns"),
    ("GET", f"{API}/recurringruns/{{recurring_run_id}}"),
)
GREENKFP_API = "/apis/greenkfp/v1"
RUN_ID_HEADER = "X-Greenkfp-Run-Id"
#: The largest request body read by default (``--max-body-mib``): 4 MiB. The largest compiled
#: pipeline spec here (compiled/kubeflow/carbon_aware_training.yaml) is 135 KiB, its run request
#: 107 KiB of JSON: the cap leaves 30 times that. A body is held while it is read, as text and
#: parsed (about 6 times its size in all), by each of a process's ``threads`` requests at once:
#: with the Deployment's 2 workers x 8 threads, 16 x 6 x 4 MiB = 384 MiB at worst, plus the
#: bodies being read meanwhile (:data:`READING_BODIES` x 4 MiB per process, 64 MiB), beside the
#: processes' own ~375 MiB (uvicorn's parent and two workers, ~125 MiB each, measured): 823 MiB,
#: inside its 1 GiB limit (tests/test_gatekeeper_http.py checks the sum against the manifest).
#: The old 32 MiB cap, read whole, would have been 3 GiB.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: How many bodies of the largest size a process reads at once (a byte allowance, so small
#: bodies are never held up); beyond it a request is answered 503 with ``Retry-After``.
READING_BODIES = 8
#: The largest cap that can be set (``--max-body-mib`` 256).
MAX_BODY_LIMIT_BYTES = 256 * 1024 * 1024
#: Upper bounds of the settings in seconds (beyond them a value is a typo: 1e308 s); a
#: reservation lives at most as long as anything else ahead (:data:`~.bounds.MAX_AHEAD`).
MAX_SECONDS = {"reservation_ttl_s": MAX_AHEAD.total_seconds(), "upstream_timeout_s": 3600.0, "status_cache_s": 3600.0,
               "history_cache_s": 86400.0}
#: The longest a request waits for a ledger or policy call (seconds; with worker threads), and
#: ``/readyz`` for the ledger's answer.
CALL_DEADLINE_S = 20.0
READY_DEADLINE_S = 2.0
#: How many times one Idempotency-Key may be tried while the KFP API fails (each failed try
#: is released; the n-th try reserves under ``<team>/<key>~<n>``).
MAX_KEY_TRIES = 10
_PERIOD = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class GatekeeperSettings:
    """How the gatekeeper runs.

    Attributes:
        ledger_url: The budget ledger's database (``sqlite:///...`` or ``postgresql+psycopg://...``).
        kfp_url: The real KFP API that granted submissions are forwarded to (``http://ml-pipeline.kubeflow:8888``).
        tokens: Who may ask (:class:`~.tokens.Tokens`, usually ``Tokens.from_env()``); its
            ``upstream`` token, if any, is sent to the KFP API.
        policy_url: An OPA server's URL; empty: the in-process engine on ``policy_file``.
        policy_file: A Rego file replacing the bundled policy (with the in-process engine).
        region: The region a submission is priced in when it names none (its ``regions``).
        provider: The carbon provider pricing a planned window (``embedded``: offline).
        hardware_profile: The hardware preset a submission's steps are modeled on when it names none.
        reservation_ttl_s: How long an unsettled reservation counts, seconds.
        upstream_timeout_s: Timeout of one request to the KFP API, seconds.
        status_cache_s: How old a team's budget status may be as the *policy's input* for a
            grant, seconds (0: read it for every request). The ledger checks every grant against
            its own current balance in the same transaction that records it, whatever the policy
            saw; the cached status is brought up to date by every answer of this process (the
            ledger says what remains), and a refusal is always decided again on a fresh status.
        history_cache_s: How old a team's settled history of a pipeline may be for an estimate, seconds.
        threads: Worker threads per server process for the ledger's and the policy's calls (each
            mostly waits on the database; more only contend for the GIL). 0: call them on the event
            loop itself, one at a time per process, as a synchronous server would: no thread
            hand-off or GIL contention (the lowest latency on a small machine), but a slow
            database holds up that process's other requests until the call ends.
        max_body_bytes: The largest request body, bytes (:data:`MAX_BODY_BYTES` by default, at
            most :data:`MAX_BODY_LIMIT_BYTES`): a larger one is answered 413 as soon as its
            ``Content-Length`` says so or its bytes pass the cap, without reading the rest.
        actor: The name the gatekeeper writes into the ledger's entries.
        create_ledger: Create the ledger when the database holds none (a library's or a test's
            choice); ``greenkfp gatekeeper serve`` opens it with False: a ``--ledger`` typo is an
            error at start-up, not a new empty ledger every team is refused by.
        clock: Returns the current time (timezone-aware); the system's UTC clock by default.
    """

    ledger_url: str
    kfp_url: str
    tokens: Tokens = field(default_factory=Tokens, repr=False)
    policy_url: str = ""
    policy_file: str = ""
    region: str = "GB"
    provider: str = "embedded"
    hardware_profile: str = "n2-standard-4"
    reservation_ttl_s: float = 86400.0
    upstream_timeout_s: float = 30.0
    status_cache_s: float = 1.0
    history_cache_s: float = 30.0
    threads: int = 8
    max_body_bytes: int = MAX_BODY_BYTES
    actor: str = "gatekeeper"
    create_ledger: bool = True
    clock: Callable[[], datetime] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ..carbon.providers.base import check_base_url

        if not isinstance(self.tokens, Tokens):
            raise ValueError(f"tokens must be a Tokens, got {type(self.tokens).__name__}")
        try:
            check_base_url(self.kfp_url)
        except ValueError as exc:
            raise ValueError(str(exc).replace("base_url", "kfp_url")) from None
        for name, highest in MAX_SECONDS.items():
            value = getattr(self, name)
            lowest = "0 (excluded)" if name in ("reservation_ttl_s", "upstream_timeout_s") else "0"
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
                    or (value == 0 and "excluded" in lowest) or value > highest:
                raise ValueError(f"{name} must be a number of seconds from {lowest} to {highest:g}, got {value!r}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or not 0 <= self.threads <= 256:
            raise ValueError(f"threads must be a whole number from 0 to 256, got {self.threads!r}")
        if isinstance(self.max_body_bytes, bool) or not isinstance(self.max_body_bytes, int) \
                or not 1024 <= self.max_body_bytes <= MAX_BODY_LIMIT_BYTES:
            raise ValueError(f"max_body_bytes must be a whole number from 1024 to {MAX_BODY_LIMIT_BYTES}, "
                             f"got {self.max_body_bytes!r}")
        if self.policy_url and self.policy_file:
            raise ValueError("give policy_url or policy_file, not both")


# --------------------------------------------------------------------------- admission


def _text(body: Mapping, name: str, *, limit: int, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or value != value.strip():
        raise ValueError(f"{name} must be a non-empty text of at most {limit} characters without spaces around it, "
                         f"got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "..."


def _moment(body: Mapping, name: str) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{name} must be an ISO 8601 time with a time zone, got {_shown(value)}")
    return moment.astimezone(timezone.utc)


def _number(body: Mapping, name: str, *, positive: bool = False, highest: float | None = None) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 \
            or (positive and value == 0) or (highest is not None and value > highest):
        bound = f"from 0 to {highest:g}" if highest is not None else f"{'>' if positive else '>='} 0"
        raise ValueError(f"{name} must be a number {bound}, got {_shown(value)}")
    return float(value)


@dataclass(frozen=True)
class AdmissionRequest:
    """What a submission asks: reserve the estimate of run ``run_id`` of ``pipeline``.

    Attributes:
        pipeline: The pipeline's name (the settled history is read by it).
        run_id: The run's id; a request with an id already decided gets the first answer.
        period: The budget's month ``YYYY-MM`` (UTC); None: the current one.
        energy_kwh: The run's expected energy, kWh (None: unknown).
        steps: The pipeline's container steps, >= 1.
        hardware_profile: The preset the steps are modeled on (None: the gatekeeper's).
        region: Where the run's energy is priced (None: the gatekeeper's).
        window_start, window_end: The planned window (both or neither).
        labels: The submission's labels (the policy may read them; they never widen a budget).
    """

    pipeline: str
    run_id: str
    period: str | None = None
    energy_kwh: float | None = None
    steps: int = 1
    hardware_profile: str | None = None
    region: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    FIELDS = ("pipeline", "run_id", "period", "energy_kwh", "steps", "hardware_profile", "region", "window_start",
              "window_end", "labels")

    @classmethod
    def from_json(cls, body: Any) -> AdmissionRequest:
        """From the admission endpoint's JSON body.

        Raises:
            ValueError: an unknown field, or a field of the wrong type; the message names it.
        """
        if not isinstance(body, Mapping):
            raise ValueError("the admission request must be a JSON object")
        unknown = sorted(set(body) - set(cls.FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; the fields are {', '.join(cls.FIELDS)}")
        period = _text(body, "period", limit=7)
        if period is not None and not _PERIOD.fullmatch(period):
            raise ValueError(f"period must be a calendar month YYYY-MM, got {_shown(period)}")
        steps = body.get("steps", 1)
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 10000:
            raise ValueError(f"steps must be a whole number from 1 to 10000, got {_shown(steps)}")
        labels = body.get("labels") or {}
        if not isinstance(labels, Mapping) or not all(isinstance(k, str) and isinstance(v, str) and len(k) <= 253
                                                      and len(v) <= 253 for k, v in labels.items()):
            raise ValueError("labels must be an object of texts (at most 253 characters each)")
        start, end = _moment(body, "window_start"), _moment(body, "window_end")
        if (start is None) != (end is None) or (start is not None and end <= start):
            raise ValueError("window_start and window_end go together, the end after the start")
        energy = _number(body, "energy_kwh", highest=MAX_ENERGY_KWH)
        return cls(pipeline=_text(body, "pipeline", required=True, limit=MAX_PIPELINE_CHARS),
                   run_id=_text(body, "run_id", required=True, limit=MAX_RUN_ID_CHARS),
                   period=period, energy_kwh=energy or None, steps=steps,
                   hardware_profile=_text(body, "hardware_profile", limit=64), region=_text(body, "region", limit=64),
                   window_start=start, window_end=end, labels=dict(labels))


@dataclass(frozen=True)
class Admission:
    """The answer to an :class:`AdmissionRequest`: the estimate, the policy's decision and the
    ledger's reservation (whose ``granted`` is the answer)."""

    team: str
    period: str
    region: str
    estimate: Any  # SubmissionEstimate
    decision: Any  # PolicyDecision
    reservation: Any  # Reservation

    @property
    def granted(self) -> bool:
        return bool(self.reservation.granted)

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(self.reservation.reasons)

    def to_dict(self) -> dict:
        """JSON-ready: the answer first, then how it came about."""
        r = self.reservation
        return {"granted": r.granted, "run_id": r.run_id, "team": self.team, "period": self.period,
                "region": self.region, "reserved_g": r.amount_g if r.granted else 0.0, "remaining_g": r.remaining_g,
                "review_required": r.review_required, "reasons": list(r.reasons), "replayed": r.replayed,
                "estimate": self.estimate.to_dict(), "policy": self.decision.to_dict(),
                "reservation": r.to_dict(), "units": {"grams": "g CO2eq"}}


#: How far ahead a planned window may start and still be charged to its own month.
MAX_PLANNED_AHEAD = timedelta(days=31)


def charged_period(request: AdmissionRequest, now: datetime) -> str:
    """The month a run is charged to: the month it starts (now, or its planned window's start, at
    most :data:`MAX_PLANNED_AHEAD` away). A team does not choose: a ``period`` naming another
    month, or a window beyond that horizon, is refused (else a run could spend a future month)."""
    start = request.window_start or now
    if start > now + MAX_PLANNED_AHEAD:
        raise ValueError(f"window_start must be within {MAX_PLANNED_AHEAD.days} days, got {iso(start)}")
    expected = max(start, now).strftime("%Y-%m")
    if request.period is not None and request.period != expected:
        raise ValueError(f"period must be the month the run starts ({expected}), got {_shown(request.period)}")
    return expected


class NoBudgetError(Exception):
    """The team has no budget for the period: refused, and nothing written."""


class _Recent:
    """Values kept for ``seconds`` (0: not kept), shared by a server's threads; at most ``size``."""

    def __init__(self, seconds: float, size: int = 10000):
        self.seconds, self.size = seconds, size
        self._items: dict = {}
        self._lock = threading.Lock()

    def get(self, key, compute: Callable[[], Any]) -> tuple[Any, bool]:
        """``(value, cached)``: the kept value if it is recent enough, else ``compute()``'s, kept."""
        now = time.monotonic()
        with self._lock:
            kept = self._items.get(key)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1], True
        value = compute()
        self.put(key, value, now)
        return value, False

    def put(self, key, value, at: float | None = None) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (time.monotonic() if at is None else at, value)

    def update(self, key, change: Callable[[Any], Any]) -> None:
        """Replace the kept value by ``change(value)``, keeping its age (nothing when none is kept)."""
        with self._lock:
            kept = self._items.get(key)
            if kept is not None and kept[1] is not None:
                self._items[key] = (kept[0], change(kept[1]))

    def drop(self, key) -> None:
        with self._lock:
            self._items.pop(key, None)


class Gatekeeper:
    """The admission logic, synchronous (a server calls it from a worker thread): the ledger,
    the policy and the settings. :func:`create_app` wraps it in HTTP."""

    def __init__(self, settings: GatekeeperSettings):
        from .ledger import Ledger
        from .policy import policy_from

        self.settings = settings
        self._clock = settings.clock or (lambda: datetime.now(timezone.utc))
        self._statuses = _Recent(settings.status_cache_s)
        self._histories = _Recent(settings.history_cache_s)
        self._averages: dict[str, Any] = {}  # region -> its annual average (IntensityEstimate)
        self.policy = policy_from(settings.policy_url or None, settings.policy_file or None)
        try:
            self.ledger = Ledger(settings.ledger_url, clock=settings.clock, create=settings.create_ledger)
        except BaseException:
            self.policy.close()
            raise

    def close(self) -> None:
        self.ledger.close()
        self.policy.close()

    def now(self) -> datetime:
        return self._clock()

    def status(self, team: str, period: str):
        """The team's budget for ``period`` (:class:`NoBudgetError` when it has none)."""
        from .._messages import shorten
        from .errors import BudgetError

        try:
            return self.ledger.status(team, period)
        except BudgetError as exc:
            if exc.field == "team":
                raise NoBudgetError(f"team {team if len(team) <= 80 else shorten(team)} has no carbon budget for {period}: the platform lead sets one "
                                    f"(greenkfp budget set-limit)") from None
            raise

    def estimate(self, team: str, request: AdmissionRequest):
        """The run's estimate (see :mod:`.estimate`), priced in its region and window."""
        from .estimate import estimate_submission, planned_intensity

        region = request.region or self.settings.region
        if request.window_start is None:  # the region's annual average: fixed data, read once per region
            intensity = self._averages.get(region)
            if intensity is None:
                intensity = planned_intensity(region, provider=self.settings.provider)
                if len(self._averages) < 1000:
                    self._averages[region] = intensity
        else:
            intensity = planned_intensity(region, request.window_start, request.window_end,
                                          provider=self.settings.provider)
        history, _ = self._histories.get((team, request.pipeline),
                                         lambda: self.ledger.settled_history(team, request.pipeline))
        return estimate_submission(history_g=history, energy_kwh=request.energy_kwh, steps=request.steps,
                                   hardware_profile=request.hardware_profile or self.settings.hardware_profile,
                                   intensity_g_per_kwh=intensity.gco2_per_kwh, intensity_basis=intensity.basis)

    def admit(self, team: str, request: AdmissionRequest) -> Admission:
        """Estimate, ask the policy, reserve (atomic and idempotent by run id in the ledger).

        Raises:
            NoBudgetError: the team has no budget for the period.
            PolicyError: the policy could not decide (nothing is recorded: a retry may pass).
            BudgetError: the ledger refused the request's values (RunIdTakenError: the team's run id
                was decided for another month).
            LedgerUnavailableError: the ledger cannot be reached.
            ValueError, UnknownRegionError: a bad region, profile or window.
        """
        now = self.now()
        period = charged_period(request, now)
        status, cached = self._statuses.get((team, period), lambda: self.status(team, period))
        estimate = self.estimate(team, request)
        decision = self.policy.decide(self._policy_input(team, period, status, estimate, request, now))
        if cached and not decision.allow:  # a refusal is never decided on a kept status
            status = self.status(team, period)
            self._statuses.put((team, period), status)
            decision = self.policy.decide(self._policy_input(team, period, status, estimate, request, now))
        reservation = self.ledger.reserve(
            team, period, estimate.estimate_g, request.run_id, actor=self.settings.actor, allow=decision.allow,
            overdraft_allowed_g=decision.overdraft_allowed_g, review_required=decision.review_required,
            reasons=decision.reasons, pipeline=request.pipeline, ttl_seconds=self.settings.reservation_ttl_s)
        if not reservation.replayed:  # the ledger's answer says what remains now
            self._statuses.update((team, period), lambda kept: replace(
                kept, remaining_g=reservation.remaining_g,
                reserved_g=max(kept.limit_g - kept.settled_g - reservation.remaining_g, 0.0)))
        admission = Admission(team, period, request.region or self.settings.region, estimate, decision, reservation)
        logger.info("admission team=%s run=%s pipeline=%s estimate_g=%.6g granted=%s replayed=%s", team,
                    request.run_id, request.pipeline, estimate.estimate_g, admission.granted, reservation.replayed)
        return admission

    @staticmethod
    def _policy_input(team: str, period: str, status, estimate, request: AdmissionRequest, now: datetime) -> dict:
        from .policy import budget_input

        return budget_input(status, estimate_g=estimate.estimate_g, pipeline=request.pipeline,
                            labels=request.labels, run_id=request.run_id, now=now)

    def settle(self, team: str, run_id: str, actual_g: float, facts: Mapping[str, Any] | None = None):
        """Settle ``team``'s run (see :meth:`Ledger.settle`; a run id the team has not reserved,
        another team's included, is an UnknownRunError; ``facts``: the run's RunFacts JSON, kept
        with the settlement); the kept status and history it changes are dropped."""
        entry = self.ledger.settle(team, run_id, actual_g, actor=f"team:{team}", facts=facts)
        self.forget(team, entry.period)
        self._histories.drop((team, entry.pipeline or ""))
        return entry

    def forget(self, team: str, period: str) -> None:
        """Drop the kept status of (team, period): its limit, transfers or exceptions changed here."""
        self._statuses.drop((team, period))

    def release(self, team: str, run_id: str) -> None:
        """Give a reservation back (the KFP API did not create the run); a failure is logged, not raised."""
        try:
            self.ledger.release(team, run_id, actor=self.settings.actor)
        except Exception as exc:  # noqa: BLE001 - the upstream's answer matters more; the reservation expires anyway
            logger.warning("could not release the reservation of run %s: %s", run_id, redact_urls(str(exc)))

    def run_outcome(self, team: str, run_id: str) -> tuple[str, str | None]:
        """What became of ``team``'s reservation ``run_id``: ``("released", None)`` when it was
        given back (the KFP API did not create the run), ``("moved", <KFP's run id>)`` when KFP
        created the run, else ``(<the release's action, or "open">, None)``."""
        from .ledger import Ledger

        found = self.ledger._run(lambda connection: Ledger._run_entries(connection, team, run_id), write=False)
        release = found.get("release")
        if release is None:
            return ("settled" if "settlement" in found else "open"), None
        if release.action == "rekeyed":
            return "moved", release.detail.get("to_run_id")
        return release.action, None

    def rekey(self, team: str, run_id: str, kfp_run_id: str) -> bool:
        """Move the reservation of the proxy's provisional ``run_id`` to the id KFP gave the run
        (see :meth:`Ledger.rekey`), so a ``carbon_budget_gate`` step in it replays the same
        decision; False (logged) when it cannot: the run keeps its provisional id. When the run's
        step got there first (KFP's run id is decided already: the run has its own reservation),
        the provisional one is released instead, so the run is still charged once."""
        from .errors import RunIdTakenError

        try:
            self.ledger.rekey(team, run_id, kfp_run_id, actor=self.settings.actor)
            return True
        except RunIdTakenError:
            self.release(team, run_id)
            return True
        except Exception as exc:  # noqa: BLE001 - KFP created the run: its answer goes back whatever happens here
            logger.warning("could not move the reservation of run %s to KFP's run id %s: %s", run_id, kfp_run_id,
                           redact_urls(str(exc)))
            return False


# --------------------------------------------------------------------------- HTTP


def _refusal(admission: Admission) -> KfpApiError:
    reasons = admission.reasons
    message = (f"carbon budget: submission refused for team {admission.team} in {admission.period}: "
               + "; ".join(reasons))
    return KfpApiError("PERMISSION_DENIED", message, reason="CARBON_BUDGET_REFUSED",
                       details=[quota_failure(f"team:{admission.team}/period:{admission.period}", reasons)],
                       metadata={"team": admission.team, "period": admission.period,
                                 "run_id": admission.reservation.run_id,
                                 "estimate_g": f"{admission.reservation.amount_g:.6g}",
                                 "remaining_g": f"{admission.reservation.remaining_g:.6g}"})


def _unauthenticated() -> KfpApiError:
    error = KfpApiError("UNAUTHENTICATED", "a valid bearer token is required (Authorization: Bearer <token>)",
                        reason="UNAUTHENTICATED")
    error.headers = {"WWW-Authenticate": 'Bearer realm="greenkfp-gatekeeper"'}
    return error


def _forbidden(message: str) -> KfpApiError:
    return KfpApiError("PERMISSION_DENIED", message, reason="FORBIDDEN")


def _invalid(message: str) -> KfpApiError:
    return KfpApiError("INVALID_ARGUMENT", message, reason="INVALID_ARGUMENT")


def _busy(allowance: int) -> KfpApiError:
    """503 in KFP's format: the bodies being read at once would pass the process's allowance."""
    error = KfpApiError("UNAVAILABLE", f"the gatekeeper is reading other large request bodies (together at most "
                                       f"{allowance / 1048576:g} MiB): retry", reason="BUSY")
    error.headers = {"Connection": "close", "Retry-After": "1"}
    return error


def _too_large(limit: int) -> KfpApiError:
    """413 in KFP's format (gRPC RESOURCE_EXHAUSTED, as grpc-gateway says of a message too large)."""
    error = KfpApiError("RESOURCE_EXHAUSTED", f"the request body is larger than the gatekeeper's limit of "
                                              f"{limit:,} bytes ({limit / 1048576:g} MiB)", reason="REQUEST_TOO_LARGE")
    error.status = 413
    error.headers = {"Connection": "close"}  # the rest of the body is not read
    return error


class _Unexpected:
    """ASGI middleware: an unexpected error of a request is one log line and a 500 in KFP's
    format. (A FastAPI handler for ``Exception`` answers too, but Starlette then raises the error
    again and uvicorn logs its traceback, with whatever the error's text carries.) The traceback
    goes to the debug level, URLs' credentials redacted."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def sending(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:  # noqa: BLE001 - the last line of defence: answer, log one line
            import traceback

            logger.error("internal error on %s %s: %s", scope.get("method"), scope.get("path"),
                         " ".join(redact_urls(f"{type(error).__name__}: {error}").split()))
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s", redact_urls("".join(traceback.format_exception(error))))
            if started:  # the answer is under way: nothing better than closing it
                return
            from .kfp_api import error_body

            body = json.dumps(error_body("INTERNAL", "internal error of the gatekeeper (see its log)",
                                         reason="INTERNAL")).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


def _created_run_id(body: bytes) -> str | None:
    """The ``run_id`` of KFP's answer to a created run, if it has a usable one."""
    try:
        created = json.loads(body)
    except ValueError:
        return None
    run_id = created.get("run_id") if isinstance(created, dict) else None
    if isinstance(run_id, str) and run_id.strip() and len(run_id) <= MAX_RUN_ID_CHARS and run_id.isprintable():
        return run_id
    return None


def _lone_surrogate(value: Any) -> str | None:
    """Where in a parsed JSON value a text (a key or a value) has a lone surrogate (``"run_id"``,
    ``"labels.team"``, ``"items[2]"``; ``""``: the value itself), or None. Iterative: a body
    nested as deep as the parser allows is walked without recursion."""
    def bad(text: str) -> bool:
        return any("\ud800" <= c <= "\udfff" for c in text)

    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if bad(item):
                return where
        elif isinstance(item, dict):
            for key, inner in item.items():
                if bad(key):
                    return f"{where}.{key!r}" if where else repr(key)
                stack.append((inner, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))
    return None


def _planned_window(submission: Submission, now: datetime) -> tuple[datetime | None, datetime | None]:
    """A gated pipeline's run-now window: from ``earliest_start`` (else now) for ``duration_hours``.
    Conservative: the carbon gate only ever moves a run to a greener window."""
    hours = submission.duration_hours()
    if hours is None:
        return None, None
    start = now
    text = submission.text_parameter("earliest_start")
    if text:
        try:
            given = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            given = None
        if given is not None and given.tzinfo is not None:
            start = max(given.astimezone(timezone.utc), now)
    return start, start + timedelta(hours=hours)


def _check_pricing(settings: GatekeeperSettings) -> None:
    """The provider, hardware profile and region a submission naming none is priced with, checked
    at start-up (else every such submission would fail). Errors begin with the setting's name."""
    from ..carbon.providers import PROVIDER_NAMES
    from ..energy.profiles import resolve_profile
    from .estimate import planned_intensity

    if settings.provider not in PROVIDER_NAMES:
        raise ValueError(f"provider must be one of {', '.join(PROVIDER_NAMES)}, got {_shown(settings.provider)}")
    try:
        resolve_profile(settings.hardware_profile)
    except ValueError as exc:
        raise ValueError(f"hardware_profile: {exc}") from None
    try:
        planned_intensity(settings.region, provider=settings.provider)
    except ValueError as exc:
        raise ValueError(f"region: {exc}") from None


def create_app(settings: GatekeeperSettings):
    """The gatekeeper's FastAPI app (see the module's docstring). Checks the pricing defaults
    and opens the ledger (migrating it) and the policy at once, so a bad region, URL or policy
    file fails here, not at the first request.

    Raises:
        ValueError: an unknown provider, hardware profile or region (the message begins with
            the setting's name).
        LedgerUnavailableError: the ledger cannot be opened.
        PolicyError: the policy cannot be loaded.
    """
    import contextlib

    import anyio
    import httpx
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    from .._runtime import __version__
    from ..carbon.errors import CarbonError
    from .errors import BudgetError, LedgerUnavailableError, RunIdTakenError, UnknownRunError
    from .ledger import check_facts
    from .policy import PolicyError

    _check_pricing(settings)
    core = Gatekeeper(settings)
    tokens = settings.tokens
    upstream = settings.kfp_url.rstrip("/")
    shown_upstream = redact_urls(upstream)
    clients: dict[str, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        # the ledger's and the policy's calls run on worker threads: a few keep the CPU busy (each
        # mostly waits on the database); dozens only contend for the GIL and add queueing to the tail
        if settings.threads:
            anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        # what the start-up loaded (modules, the app, the policy) out of the collector's way: fewer and
        # shorter full collections while serving (their pauses are the latency's tail)
        gc.collect()
        gc.freeze()
        clients["kfp"] = httpx.AsyncClient(timeout=httpx.Timeout(settings.upstream_timeout_s, connect=5.0),
                                           follow_redirects=False)  # a redirect would carry the token elsewhere
        try:
            yield
        finally:
            await clients.pop("kfp").aclose()
            core.close()

    app = FastAPI(title="greenkfp gatekeeper", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.gatekeeper = core
    app.add_middleware(_Unexpected)
    max_body = settings.max_body_bytes
    # bodies being read at once share one allowance per process (the event loop reads them all,
    # whatever the threads): 8 bodies of the largest size; an admission's ~1 KiB never waits on it
    max_reading, reading = READING_BODIES * max_body, {"bytes": 0}

    def answer(error: KfpApiError) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status, headers=getattr(error, "headers", None))

    @app.exception_handler(KfpApiError)
    async def _kfp_error(_request, error: KfpApiError):
        return answer(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException):
        return answer(KfpApiError("NOT_FOUND", f"{request.method} {request.url.path} is not served by the greenkfp "
                                               "gatekeeper", reason="NOT_FOUND"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError):
        # every route takes its path parameters as text and checks them after the token; this
        # only answers what slips through, also after the token, and in KFP's format
        try:
            identify(request)
        except KfpApiError as refused:
            return answer(refused)
        problems = error.errors()
        first = problems[0] if problems else {}
        where = [str(part) for part in first.get("loc", ()) if part not in ("path", "query", "body")]
        return answer(_invalid(f"{'.'.join(where) or 'the request'} is not valid: {first.get('msg', 'invalid')}, "
                               f"got {_shown(first.get('input'))}"))

    # ----------------------------------------------------------------- helpers

    def identify(request: Request) -> Identity:
        identity = tokens.identify(bearer(request.headers.get("authorization")))
        if identity is None:
            raise _unauthenticated()
        return identity

    def team_of(request: Request) -> str:
        identity = identify(request)
        if identity.role != "team":
            raise _forbidden(f"this call needs a team's token, not the {identity.role}'s")
        return identity.name

    async def body_of(request: Request) -> tuple[bytes, Any]:
        """The body, read as it arrives up to ``max_body_bytes`` (413 past it: the rest is not read),
        and its JSON."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isascii() or not declared.isdigit()):
            raise _invalid(f"Content-Length must be a whole number of bytes, got {_shown(declared)}")
        if declared is not None and int(declared) > max_body:
            raise _too_large(max_body)
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body:
                    raise _too_large(max_body)
                if reading["bytes"] + len(chunk) > max_reading:  # many slow big bodies at once: refuse, not swell
                    raise _busy(max_reading)
                reading["bytes"] += len(chunk)
                chunks.append(chunk)
        except ClientDisconnect:  # nobody to answer; not an error of the gatekeeper's
            raise _invalid("the client hung up before its request body was read") from None
        finally:
            reading["bytes"] -= sum(map(len, chunks))
        raw = b"".join(chunks)
        try:
            parsed = strict_json(raw.decode("utf-8"), "the request body")
        except UnicodeDecodeError:
            raise _invalid("the request body is not UTF-8 JSON") from None
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        where = _lone_surrogate(parsed)
        if where is not None:  # "\ud800" is valid JSON but no text: it cannot be stored, logged or sent on
            raise _invalid(f"{where or 'the request body'} is not valid text: it has a lone surrogate "
                           "(a \\ud800-\\udfff escape that is not part of a pair)")
        return raw, parsed

    async def call(work, *args, no_budget: str = "PERMISSION_DENIED"):
        """``work(*args)`` on a worker thread, its errors as KFP errors (a team without a budget:
        ``no_budget``, a key of :data:`~.kfp_api.GRPC`)."""
        try:
            if not settings.threads:
                return work(*args)
            # a deadline on the answer: a hung database is a 503, not a request waiting for ever (the
            # ledger's own statement timeout ends the call itself; a retry by run id replays it)
            with anyio.fail_after(CALL_DEADLINE_S):  # abandoned past it: its thread ends with the ledger's timeout
                return await anyio.to_thread.run_sync(lambda: work(*args), abandon_on_cancel=True)
        except TimeoutError:
            logger.error("a ledger or policy call took more than %g s", CALL_DEADLINE_S)
            raise KfpApiError("UNAVAILABLE", f"the budget ledger did not answer within {CALL_DEADLINE_S:g} s: retry "
                                             "later", reason="LEDGER_UNAVAILABLE") from None
        except NoBudgetError as exc:
            raise KfpApiError(no_budget, f"carbon budget: {exc}", reason="NO_BUDGET") from None
        except PolicyError as exc:
            raise KfpApiError("UNAVAILABLE", f"the budget policy could not decide: {exc}",
                              reason="POLICY_UNAVAILABLE") from None
        except LedgerUnavailableError as exc:  # the database's host and port are the operator's, not the client's
            logger.error("the budget ledger is unavailable: %s", " ".join(redact_urls(str(exc)).split()))
            raise KfpApiError("UNAVAILABLE", "the budget ledger is unavailable: retry later (the gatekeeper's log "
                                             "says why)", reason="LEDGER_UNAVAILABLE") from None
        except UnknownRunError as exc:  # the same answer whether another team has the run id or nobody has
            raise KfpApiError("NOT_FOUND", str(exc), reason="NO_SUCH_RUN") from None
        except RunIdTakenError as exc:
            raise KfpApiError("ALREADY_EXISTS", f"{exc}: give each run its own id", reason="RUN_ID_TAKEN") from None
        except BudgetError as exc:
            raise _invalid(str(exc)) from None
        except (CarbonError, ValueError) as exc:
            raise _invalid(redact_urls(str(exc))) from None

    async def forward(request: Request, content: bytes | None, path: str, *, method: str | None = None,
                      query: str = "") -> Response:
        """``request``'s method (or ``method``) on the KFP API's ``path`` (built by the
        gatekeeper from its own routes, ids checked and quoted; never the client's path)."""
        headers = {"Accept": "application/json"}
        if content is not None:
            headers["Content-Type"] = request.headers.get("content-type", "application/json")
        if tokens.upstream:
            headers["Authorization"] = f"Bearer {tokens.upstream}"
        url = upstream + path
        try:
            reply = await clients["kfp"].request(method or request.method, url + (f"?{query}" if query else ""),
                                                 content=content, headers=headers)
        except httpx.TimeoutException:
            raise KfpApiError("DEADLINE_EXCEEDED", f"the KFP API at {shown_upstream} did not answer within "
                                                   f"{settings.upstream_timeout_s:g} s", reason="UPSTREAM_TIMEOUT") from None
        except httpx.RequestError as exc:
            raise KfpApiError("UNAVAILABLE", f"cannot reach the KFP API at {shown_upstream} ({type(exc).__name__})",
                              reason="UPSTREAM_UNAVAILABLE") from None
        return Response(reply.content, status_code=reply.status_code,
                        media_type=reply.headers.get("content-type", "application/json"))

    # ----------------------------------------------------------------- KFP v2beta1 subset

    @app.get("/healthz", include_in_schema=False)
    async def healthz():
        """The gatekeeper's own liveness (no token, no upstream call): for Kubernetes probes."""
        return {"status": "ok", "service": "greenkfp-gatekeeper", "version": __version__}

    probing = {"busy": False}

    def probe() -> None:
        probing["busy"] = True  # set by the thread itself: a probe cancelled before it started leaves no mark
        try:
            core.ledger.board_members()
        finally:
            probing["busy"] = False

    @app.get("/readyz", include_in_schema=False)
    async def readyz():
        """Readiness (no token): the ledger answers a read within :data:`READY_DEADLINE_S`; else
        503, and Kubernetes sends no traffic here until it does (``/healthz`` stays liveness)."""
        try:
            if probing["busy"]:  # the last probe's read has not come back: do not pile up threads on a hung database
                raise TimeoutError
            with anyio.fail_after(READY_DEADLINE_S):
                await anyio.to_thread.run_sync(probe, abandon_on_cancel=True)
        except (TimeoutError, LedgerUnavailableError) as exc:
            logger.warning("not ready: the budget ledger %s", "did not answer in time" if isinstance(exc, TimeoutError)
                           else "is unavailable: " + " ".join(redact_urls(str(exc)).split()))
            return JSONResponse({"status": "unavailable", "service": "greenkfp-gatekeeper",
                                 "reason": "the budget ledger is unavailable"}, status_code=503)
        return {"status": "ready", "service": "greenkfp-gatekeeper", "version": __version__}

    @app.get(f"{API}/healthz")
    async def kfp_healthz(request: Request):
        return await forward(request, None, f"{API}/healthz", query=request.url.query)

    def forwarded(template: str):
        async def forward_it(request: Request):
            team_of(request)
            # the path is rebuilt from the route, each id checked and quoted: a client's ".." or
            # "%2F" cannot make the gatekeeper call another path of the KFP API with its token
            ids = {name: quote(check_id(name, value), safe="") for name, value in request.path_params.items()}
            content = (await body_of(request))[0] if request.method == "POST" else None
            return await forward(request, content, template.format(**ids), query=request.url.query)
        return forward_it

    gated = {("GET", f"{API}/healthz"), ("POST", f"{API}/runs"), ("POST", f"{API}/recurringruns")}
    for method, path in KFP_ROUTES:
        if (method, path) not in gated:
            app.add_api_route(path, forwarded(path), methods=[method], include_in_schema=False)

    async def submit(request: Request, kind: str):
        team = team_of(request)
        raw, body = await body_of(request)
        submission = parse_submission(body, kind)
        if submission.version_reference and submission.version_reference[1]:
            pipeline_id, version_id = submission.version_reference
            stored = await forward(request, None, f"{API}/pipelines/{quote(pipeline_id, safe='')}/versions/"
                                                  f"{quote(version_id, safe='')}", method="GET")
            if stored.status_code != 200:
                return stored  # KFP's own answer: no such pipeline version, no access
            submission = with_spec(submission, json.loads(stored.body))
        key = request.headers.get("idempotency-key", "").strip()
        # the run id <team>/<key>, or <team>/<key>~<n> for the n-th try, is at most MAX_RUN_ID_CHARS
        longest = MAX_RUN_ID_CHARS - len(team) - 1 - len(f"~{MAX_KEY_TRIES}")
        if key and not key.isprintable():
            where = next(i for i, c in enumerate(key) if not c.isprintable())
            raise _invalid(f"Idempotency-Key must be printable text: it has the non-printable character "
                           f"{key[where]!r} at position {where + 1}")
        if len(key) > longest:
            raise _invalid(f"Idempotency-Key must be 1 to {longest} printable characters (the run id {team}/<key>~<try> "
                           f"is at most {MAX_RUN_ID_CHARS}), got {len(key):,} characters")
        energy = submission.energy_kwh()
        start, end = _planned_window(submission, core.now())
        for attempt in range(1, MAX_KEY_TRIES + 1):
            run_id = (f"{team}/{key}" if attempt == 1 else f"{team}/{key}~{attempt}") if key else str(uuid.uuid4())
            admission = await call(core.admit, team, AdmissionRequest(
                pipeline=submission.pipeline, run_id=run_id, energy_kwh=energy, steps=submission.steps,
                hardware_profile=submission.text_parameter("hardware_profile"), region=submission.region(),
                window_start=start, window_end=end, labels=submission.labels))
            if not admission.granted:
                raise _refusal(admission)
            if not admission.reservation.replayed:
                break
            # the key was used: a try whose forward failed was released, and the key may be used again
            outcome, created = await call(core.run_outcome, team, run_id)
            if outcome == "released":
                continue
            if created:
                raise KfpApiError("ABORTED", f"Idempotency-Key {key!r} was used already: KFP created run {created} "
                                             "for it; a new submission needs a new key", reason="REPLAYED",
                                  metadata={"run_id": created})
            raise KfpApiError("ABORTED", f"Idempotency-Key {key!r} was used already (run id {run_id}): the earlier "
                                         "submission stands; a new submission needs a new key", reason="REPLAYED",
                              metadata={"run_id": run_id})
        else:
            raise KfpApiError("ABORTED", f"Idempotency-Key {key!r} was tried {MAX_KEY_TRIES} times and the KFP API "
                                         "failed each time: a new submission needs a new key", reason="KEY_EXHAUSTED")
        with anyio.CancelScope(shield=True):  # a client that hangs up must not leave a reservation behind
            try:
                reply = await forward(request, raw, f"{API}/{'runs' if kind == 'run' else 'recurringruns'}")
            except KfpApiError:
                await run_in_threadpool(core.release, team, run_id)
                raise
            if reply.status_code >= 300:
                await run_in_threadpool(core.release, team, run_id)
                return reply
            # the run's own id from now on: a carbon_budget_gate step in it (asking under KFP's run id)
            # replays this decision instead of reserving a second time
            created = _created_run_id(reply.body) if kind == "run" else None
            if created and await run_in_threadpool(core.rekey, team, run_id, created):
                run_id = created
        reply.headers[RUN_ID_HEADER] = run_id
        return reply

    @app.post(f"{API}/runs")
    async def create_run(request: Request):
        return await submit(request, "run")

    @app.post(f"{API}/recurringruns")
    async def create_recurring_run(request: Request):
        return await submit(request, "recurring_run")

    # ----------------------------------------------------------------- greenkfp admission API

    @app.post(f"{GREENKFP_API}/admissions")
    async def admissions(request: Request):
        team = team_of(request)
        _, body = await body_of(request)
        try:
            admission_request = AdmissionRequest.from_json(body)
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        admission = await call(core.admit, team, admission_request)
        return JSONResponse(admission.to_dict(), status_code=200 if admission.granted else 403)

    @app.post(f"{GREENKFP_API}/settlements")
    async def settlements(request: Request):
        team = team_of(request)
        _, body = await body_of(request)
        if not isinstance(body, Mapping) or set(body) - {"run_id", "actual_g", "facts"}:
            raise _invalid("the settlement must be a JSON object {run_id, actual_g, facts (optional)}")
        try:
            run_id = _text(body, "run_id", required=True, limit=MAX_RUN_ID_CHARS)
            actual = _number(body, "actual_g")
            if actual is None:
                raise ValueError("actual_g must be a number >= 0, got None")
            facts = check_facts(body.get("facts"))
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        entry = await call(core.settle, team, run_id, actual, facts)  # 404 for a run id the team has not reserved
        return {"settled": True, "run_id": run_id, "team": team, "actual_g": actual, "entry": entry.to_dict()}

    @app.get(f"{GREENKFP_API}/whoami")
    async def whoami(request: Request):
        """Who the token is (a cheap authenticated call: clients check their token and the address
        with it before a long run)."""
        identity = identify(request)
        return {"role": identity.role, "name": identity.name}

    @app.post(f"{GREENKFP_API}/releases")
    async def releases(request: Request):
        """A team gives back its own reservation (the run was not submitted after all)."""
        team = team_of(request)
        _, body = await body_of(request)
        if not isinstance(body, Mapping) or set(body) - {"run_id"}:
            raise _invalid("the release must be a JSON object {run_id}")
        try:
            run_id = _text(body, "run_id", required=True, limit=MAX_RUN_ID_CHARS)
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        entry = await call(lambda: core.ledger.release(team, run_id, actor=f"team:{team}"))  # 404: not the team's
        core.forget(team, entry.period)
        return {"released": True, "run_id": run_id, "team": team, "entry": entry.to_dict()}

    def budget_reader(request: Request, team: str) -> None:
        """A team reads its own budget; the admin and the board members read any."""
        identity = identify(request)
        if identity.role == "team" and identity.name != team:
            raise _forbidden(f"team {identity.name} cannot read the budget of another team")

    @app.get(GREENKFP_API + "/budgets/{team}/{period}")
    async def budget(request: Request, team: str, period: str):
        budget_reader(request, team)
        return (await call(core.status, team, period, no_budget="NOT_FOUND")).to_dict()

    _admin_routes(app, core, identify, body_of, call)

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                   include_in_schema=False)
    async def not_served(request: Request, path: str):
        raise KfpApiError("NOT_FOUND", f"{request.method} /{path} is not served by the greenkfp gatekeeper "
                                       "(it serves the KFP v2beta1 calls that create runs and recurring runs, and "
                                       f"{GREENKFP_API})", reason="NOT_FOUND")

    return app


def _admin_routes(app, core: Gatekeeper, identify, body_of, call) -> None:
    """The admin's and the review board's actions: limits, the board's members, exceptions, transfers."""
    from .bounds import check_ahead, check_entry_id
    from .errors import BudgetError
    from .tokens import team_name

    def needs(request: Request, *roles: str) -> Identity:
        identity = identify(request)
        if identity.role not in roles:
            whose = {"admin": "the admin's", "board": "a board member's", "team": "a team's"}
            raise _forbidden(f"this call needs {' or '.join(whose.get(r, r) for r in roles)} token")
        return identity

    async def fields(request: Request, allowed: tuple[str, ...], *, empty: bool = False) -> dict:
        """The body's fields (``empty``: no body at all is ``{}``, for actions whose fields are optional)."""
        if empty and request.headers.get("content-length") in ("0", None) \
                and "transfer-encoding" not in request.headers:
            return {}
        _, body = await body_of(request)
        if not isinstance(body, Mapping) or set(body) - set(allowed):
            raise _invalid(f"the body must be a JSON object with the fields {', '.join(allowed)}")
        return dict(body)

    @app.put(GREENKFP_API + "/budgets/{team}/{period}")
    async def set_limit(request: Request, team: str, period: str):
        needs(request, "admin")
        if not team_name(team):  # a budget no token could ever spend: a typo
            raise _invalid(f"team must be a name a team token can carry (a letter or digit, then letters, digits, "
                           f"'.', '_' or '-', at most 128), got {_shown(team)}")
        body = await fields(request, ("limit_g", "tier", "overdraft_percent"))
        entry_id = await call(lambda: core.ledger.set_limit(team, period, body.get("limit_g"), body.get("tier"),
                                                            overdraft_percent=body.get("overdraft_percent", 0.0),
                                                            actor="admin"))
        core.forget(team, period)
        return {"entry_id": entry_id, "budget": (await call(core.ledger.status, team, period)).to_dict()}

    @app.post(GREENKFP_API + "/board/members")
    async def add_member(request: Request):
        needs(request, "admin")
        body = await fields(request, ("name",))
        return {"entry_id": await call(lambda: core.ledger.add_board_member(body.get("name"), actor="admin")),
                "members": await call(core.ledger.board_members)}

    @app.post(GREENKFP_API + "/exceptions")
    async def request_exception(request: Request):
        team = needs(request, "team").name
        body = await fields(request, ("period", "amount_g", "reason", "expires_at", "run_id"))
        try:  # a time in the year ahead (the ledger checks the rest)
            expires = _moment(body, "expires_at") if isinstance(body.get("expires_at"), str) else None
            if expires is not None:
                check_ahead("expires_at", expires, core.now(), body["expires_at"])
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        grant_id = await call(lambda: core.ledger.request_exception(
            team, body.get("period"), body.get("amount_g"), requester=team, reason=body.get("reason"),
            expires_at=body.get("expires_at"), run_id=body.get("run_id")))
        return (await call(core.ledger.exception, grant_id)).to_dict()

    @app.post(GREENKFP_API + "/exceptions/{exception_id}:{action}")
    async def decide_exception(request: Request, exception_id: str, action: str):
        member = needs(request, "board").name  # the token first, whatever the path says
        if action not in ("approve", "reject"):
            raise KfpApiError("NOT_FOUND", f"no action {action!r}: approve or reject", reason="NOT_FOUND")
        try:
            grant_id = check_entry_id("exception_id", exception_id, "an exception's id")
        except BudgetError as exc:
            raise _invalid(str(exc)) from None
        body = await fields(request, ("reason",), empty=True)
        if action == "approve":
            grant = await call(lambda: core.ledger.approve_exception(grant_id, approver=member))
        else:
            grant = await call(lambda: core.ledger.reject_exception(grant_id, approver=member,
                                                                    reason=body.get("reason")))
        core.forget(grant.team, grant.period)
        return grant.to_dict()

    @app.post(GREENKFP_API + "/transfers")
    async def transfer(request: Request):
        member = needs(request, "board").name
        body = await fields(request, ("from_team", "to_team", "period", "amount_g", "reason"))
        entry_id = await call(lambda: core.ledger.transfer(body.get("from_team"), body.get("to_team"),
                                                           body.get("period"), body.get("amount_g"),
                                                           approver=member, reason=body.get("reason")))
        core.forget(body["from_team"], body["period"])
        core.forget(body["to_team"], body["period"])
        return {"entry_id": entry_id}
