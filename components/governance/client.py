"""A client of the gatekeeper's admission API, and the actual emissions of a finished run: what
the ``carbon_budget_gate`` and ``settle_carbon_budget`` components (and scripts) call.

::

    with GatekeeperClient("http://gatekeeper:8888", token) as gatekeeper:
        answer = gatekeeper.admit(pipeline="training", run_id=run_id, energy_kwh=2.0)  # or raise Refused
        gatekeeper.settle(run_id, run_emissions(report).grams, run_facts(report, "training"))

Timeouts always set; a timeout, no connection or a 5xx is tried again (``retries``, with
backoff) since admission and settlement are idempotent by run id. Errors are typed
(:class:`GatekeeperError`, :class:`AdmissionRefused`) and never carry the token.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote, urlsplit

import httpx

from .._messages import redact_urls
from ._http import Closing, Retryable, send_retrying

__all__ = ["AdmissionRefused", "DEFAULT_TOKEN_ENV", "GatekeeperClient", "GatekeeperError", "RunEmissions",
           "run_emissions", "run_facts", "token_from_env"]

logger = logging.getLogger("greenkfp.governance")

#: The environment variable a pipeline step reads its team's gatekeeper token from.
DEFAULT_TOKEN_ENV = "GREENKFP_GATEKEEPER_TOKEN"
ADMISSIONS = "/apis/greenkfp/v1/admissions"
SETTLEMENTS = "/apis/greenkfp/v1/settlements"
RELEASES = "/apis/greenkfp/v1/releases"


class GatekeeperError(Exception):
    """The gatekeeper could not be asked, or answered with an error (``status``: HTTP, 0 when
    unreachable). One line, never a token."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class AdmissionRefused(GatekeeperError):
    """The gatekeeper refused the submission: ``reasons`` say why, ``answer`` is its whole JSON."""

    def __init__(self, answer: Mapping[str, Any]):
        self.answer = dict(answer)
        self.reasons = tuple(str(r) for r in answer.get("reasons") or ())
        super().__init__(f"carbon budget refused run {answer.get('run_id')} of team {answer.get('team')} in "
                         f"{answer.get('period')}: {'; '.join(self.reasons) or 'no reason given'}", 403)


def token_from_env(name: str) -> str:
    """The token in environment variable ``name``.

    Raises:
        GatekeeperError: ``name`` is not a variable name, or the variable is unset or empty.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise GatekeeperError(f"team_token_env must name an environment variable, got {name!r}")
    token = os.environ.get(name, "").strip()
    if not token:
        raise GatekeeperError(f"environment variable {name} holds no gatekeeper token (on Kubeflow it comes from "
                              "the team's secret; see deploy/gatekeeper/README)")
    return token


def check_gatekeeper_url(url: Any) -> str:
    """``url`` without its trailing slash if it is a gatekeeper address a client may call (http or
    https, no credentials); else a :class:`GatekeeperError` naming ``gatekeeper_url``."""
    from ..carbon.providers.base import check_base_url

    try:
        text = check_base_url(url).rstrip("/")
    except ValueError as exc:
        raise GatekeeperError(str(exc).replace("base_url", "gatekeeper_url")) from None
    if "@" in urlsplit(text).netloc:  # a run's parameters are shown in the KFP UI: the token is the credential
        raise GatekeeperError(f"gatekeeper_url must not hold credentials (the team's token authenticates), got "
                              f"{redact_urls(text)!r}")
    return text


class GatekeeperClient(Closing):
    """The gatekeeper's admission API over HTTP.

    Args:
        url: The gatekeeper's address (``http://greenkfp-gatekeeper.kubeflow:8888``).
        token: The team's bearer token.
        timeout_s: Timeout of one request, seconds (> 0, at most 300).
        retries: Further tries after a timeout, no connection or a 5xx (0 to 5).
    """

    def __init__(self, url: str, token: str, *, timeout_s: float = 30.0, retries: int = 2):
        from ..carbon.providers.base import check_timeout

        self.url = check_gatekeeper_url(url)
        check_timeout(timeout_s)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
            raise ValueError(f"retries must be a whole number from 0 to 5, got {retries!r}")
        if not isinstance(token, str) or not token.strip():
            raise GatekeeperError("a gatekeeper token is required")
        self._token = token.strip()
        self.retries = retries
        self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                                    headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"})

    def close(self) -> None:
        self._client.close()

    def _message(self, text: str) -> str:
        return redact_urls(text.replace(self._token, "***"))

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        try:
            return send_retrying(
                lambda: self._client.request(method, path, json=body), retries=self.retries, wait_s=0.5,
                max_wait_s=5.0, timeout_text=f"no answer from {self.url}{path}",
                unreachable_text=f"cannot reach {self.url}", detail=lambda r: f" from {self.url}{path}: {self._detail(r)}",
                on_retry=lambda text, n: logger.warning("gatekeeper: %s; retry %d of %d", self._message(text), n,
                                                        self.retries))
        except Retryable as exc:
            error = GatekeeperError(self._message(f"gatekeeper: {exc}"))
        raise error  # outside the handler: no chain back to httpx's request and its headers

    def _detail(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return repr(response.text.strip()[:200])
        if isinstance(body, Mapping) and isinstance(body.get("message"), str):
            return body["message"][:500]
        return repr(response.text.strip()[:200])

    def _json(self, response: httpx.Response, path: str) -> dict:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GatekeeperError(f"gatekeeper: {self.url}{path} answered HTTP {response.status_code} with something "
                                  "else than a JSON object", response.status_code)
        return body

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict:
        response = self._send(method, path, body)
        if response.status_code >= 300:
            raise GatekeeperError(self._message(f"gatekeeper: HTTP {response.status_code} from {self.url}{path}: "
                                                f"{self._detail(response)}"), response.status_code)
        return self._json(response, path)

    def admit(self, *, pipeline: str, run_id: str, **inputs: Any) -> dict:
        """Ask to reserve run ``run_id``'s estimate; ``inputs``: ``period``, ``energy_kwh``,
        ``steps``, ``hardware_profile``, ``region``, ``window_start``, ``window_end``, ``labels``
        (None values are left out). Returns the admission (``granted`` true).

        Raises:
            AdmissionRefused: the budget does not allow it (the reasons are in the error).
            GatekeeperError: the gatekeeper could not be asked, or answered an error.
        """
        body = {"pipeline": pipeline, "run_id": run_id, **{k: v for k, v in inputs.items() if v is not None}}
        response = self._send("POST", ADMISSIONS, body)
        if response.status_code == 403:
            answer = self._json(response, ADMISSIONS)
            if "granted" in answer:
                raise AdmissionRefused(answer)
        if response.status_code >= 300:
            raise GatekeeperError(self._message(f"gatekeeper: HTTP {response.status_code} from {self.url}{ADMISSIONS}: "
                                                f"{self._detail(response)}"), response.status_code)
        return self._json(response, ADMISSIONS)

    def settle(self, run_id: str, actual_g: float, facts: Any = None) -> dict:
        """Record run ``run_id``'s actual emissions (grams) and, when given, its
        :class:`~greenkfp.components.records.RunFacts` (kept with the settlement); settling again
        with the same figure is a no-op."""
        body: dict = {"run_id": run_id, "actual_g": actual_g}
        if facts is not None:
            body["facts"] = facts.to_dict() if hasattr(facts, "to_dict") else dict(facts)
        return self._call("POST", SETTLEMENTS, body)

    def whoami(self) -> dict:
        """``{role, name}`` of this client's token (``team`` and its name, for a team's): one
        cheap call that says whether the gatekeeper is there and takes the token."""
        return self._call("GET", "/apis/greenkfp/v1/whoami")

    def release(self, run_id: str) -> dict:
        """Give back the reservation of run ``run_id`` (the run was not submitted); releasing
        again is a no-op."""
        return self._call("POST", RELEASES, {"run_id": run_id})

    def budget(self, team: str, period: str) -> dict:
        """The team's budget for ``period`` (``YYYY-MM``): limit, reserved, settled, remaining."""
        return self._call("GET", f"/apis/greenkfp/v1/budgets/{quote(team, safe='')}/{quote(period, safe='')}")


# --------------------------------------------------------------------------- a run's actual emissions


@dataclass(frozen=True)
class RunEmissions:
    """A finished run's emissions, grams CO2eq, and where the figure comes from."""

    grams: float
    basis: str


def run_emissions(report: Any) -> RunEmissions:
    """What a finished run of the flagship emitted, from its sustainability report: the training
    fits' energy priced at the hours they ran (``hourly_g``), else at the window the run used
    (the gate's window when it waited, else run-now). The model's inference over its service
    life is not the run's own emission and is left out.

    Raises:
        ValueError: the report has no training emissions (say why).
    """
    training = report.training
    if training.hourly_g is not None:
        return RunEmissions(float(training.hourly_g), "training fits' energy at the hours they ran (hourly grid "
                                                      "intensity), from the sustainability report")
    waited = training.realized is not False
    grams = training.optimized_g if waited else training.scheduled_g
    if grams is None:
        raise ValueError("the sustainability report has no training emissions to settle: "
                         f"{training.unavailable_reason or training.basis}")
    return RunEmissions(float(grams), f"training energy at the {'window the run waited for' if waited else 'run-now'}"
                                      " intensity, from the sustainability report")


def _method(methods: Any) -> str:
    """``measured`` when every energy figure behind a saving was measured, else ``modeled``."""
    methods = [m for m in methods if m]
    return "measured" if methods and all(m == "measured" for m in methods) else "modeled"


def _interval(saving: Any) -> dict | None:
    return None if saving is None else saving.g.to_dict()


def _model(figures: Any) -> dict | None:
    if figures is None:
        return None
    interval = figures.accuracy_interval
    return {"name": figures.name, "accuracy": figures.accuracy,
            "accuracy_interval": None if interval is None else interval.to_dict(),
            "latency_p95_ms": figures.latency_p95_ms}


def _split(name: str) -> tuple[str, str]:
    """``candidate/variant`` as (candidate, variant); a name without a slash is its own candidate, fp32."""
    candidate, _, variant = name.partition("/")
    return candidate, variant or "fp32"


def run_facts(report: Any, pipeline: str = "") -> Any:
    """The :class:`~greenkfp.components.records.RunFacts` of a finished run, from its
    sustainability report.

    Savings by lever, nothing invented:

    * ``time_shifting``: the training saving (the gate's window against running at once), when
      the run waited for the window; in plan mode the run did not wait, so nothing was saved
      (``saved_g`` null, the basis says what waiting would have saved).
    * the inference saving (baseline fp32 against the selected variant over the expected
      inferences) goes to ``quantization`` when the selected variant is a quantized variant of
      the baseline's own model, to ``model_selection`` otherwise; when another model *and* a
      quantized variant were chosen, the report cannot split the two and the basis says that
      the figure includes quantization.

    Autoscaling is not part of a training run's report and is left out. ``pipeline`` is the
    pipeline's name (empty: the ledger takes the one of the run's reservation).

    Raises:
        RecordError: the facts do not validate (such as a pipeline name that is too long).
    """
    from ..records import RunFacts

    training, inference, savings = report.training, report.inference, []
    training_method = _method(training.energy_methods)
    time_saving = report.saving("training")
    if time_saving is not None or training.scheduled_g is not None:
        if training.realized is False:
            would = "" if time_saving is None else f" (waiting would have saved {time_saving.g.text()} g)"
            savings.append({"lever": "time_shifting", "saved_g": None, "method": training_method,
                            "basis": f"not realized: the run did not wait for the gate's window (plan mode){would}"})
        elif time_saving is not None:
            savings.append({"lever": "time_shifting", "saved_g": _interval(time_saving), "method": training_method,
                            "basis": "training energy at the gate's run-now intensity minus at its chosen window's, "
                                     "from the sustainability report"})
    inference_saving = report.saving("inference")
    baseline, selected = inference.baseline, inference.selected
    if inference_saving is not None and baseline is not None and selected is not None:
        (b_model, _), (s_model, s_variant) = _split(baseline.name), _split(selected.name)
        method = _method([baseline.energy_method, selected.energy_method])
        volume = f"over {inference.expected_inferences:,.0f} expected inferences"
        if s_model == b_model and s_variant != "fp32":
            lever, basis = "quantization", (f"the baseline {baseline.name} against its quantized variant "
                                            f"{selected.name} {volume}")
        elif s_variant == "fp32":
            lever, basis = "model_selection", (f"the baseline {baseline.name} against the selected {selected.name} "
                                               f"{volume} (no quantization)")
        else:
            lever, basis = "model_selection", (f"the baseline {baseline.name} against the selected {selected.name} "
                                               f"{volume}; includes quantization (the report does not split model "
                                               "choice from quantization)")
        savings.append({"lever": lever, "saved_g": _interval(inference_saving), "method": method, "basis": basis})
    action = report.gate.action
    waited = action == "wait" and training.delay_seconds is not None
    energy = training.energy_kwh
    return RunFacts.from_dict({
        "schema": RunFacts.SCHEMA, "pipeline": pipeline, "variant": None if selected is None else selected.name,
        "savings": savings, "promoted": report.promoted, "gate_action": action, "gate_refused": action == "refuse",
        "gate_delay_hours": training.delay_seconds / 3600.0 if waited else 0.0,
        "selected": _model(selected), "baseline": _model(baseline), "energy_kwh": energy,
        "energy_method": None if energy is None else training_method,
        "expected_inferences": float(inference.expected_inferences),
    })


# --------------------------------------------------------------------------- renderings


def _grams(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):,.4g} g"


def admission_markdown(answer: Mapping[str, Any]) -> str:
    """An admission (the gatekeeper's JSON) for people: the verdict, the reasons, the estimate."""
    estimate = answer.get("estimate") or {}
    verdict = "granted" + (" (flagged for review)" if answer.get("review_required") else "") \
        if answer.get("granted") else "refused"
    lines = [f"# Carbon budget: {verdict}", "",
             f"Team **{answer.get('team')}**, {answer.get('period')} (UTC), run `{answer.get('run_id')}`"
             + (" (the answer recorded for this run earlier)" if answer.get("replayed") else ""), "",
             "| | |", "|---|---|",
             f"| estimate | {_grams(estimate.get('estimate_g'))} CO2eq ({estimate.get('method', 'n/a')}) |",
             f"| reserved | {_grams(answer.get('reserved_g'))} CO2eq |",
             f"| remaining | {_grams(answer.get('remaining_g'))} CO2eq |",
             f"| intensity | {estimate.get('intensity_g_per_kwh', 'n/a')} gCO2eq/kWh: "
             f"{estimate.get('intensity_basis', 'n/a')} |", ""]
    lines += [f"- {reason}" for reason in answer.get("reasons") or ()]
    if estimate.get("caveat"):
        lines += ["", f"> {estimate['caveat']}"]
    return "\n".join(lines) + "\n"


def settlement_markdown(answer: Mapping[str, Any], emitted: RunEmissions) -> str:
    """A settlement for people: the grams settled and their source."""
    entry = answer.get("entry") or {}
    detail = entry.get("detail") or {}
    return "\n".join([
        "# Carbon budget: settled", "",
        f"Team **{answer.get('team')}**, run `{answer.get('run_id')}`: {_grams(emitted.grams)} CO2eq "
        f"({emitted.basis}).", "",
        f"Reserved {_grams(detail.get('reserved_g'))}; released back to the budget "
        f"{_grams(detail.get('released_g'))}; beyond the reservation {_grams(detail.get('beyond_reservation_g'))}.",
    ]) + "\n"
