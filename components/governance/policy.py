"""The budget policy: may a submission spend its team's carbon budget? Two decision points, one
Rego file.

* :class:`RegoPolicy` evaluates the policy in-process (regorus, through :mod:`.rego`); the
  bundled file is :data:`DEFAULT_POLICY_FILE`, and a user's own file replaces it
  (``--policy-file``);
* :class:`OpaPolicy` asks an OPA server through its REST Data API,
  ``POST {url}/v1/data/greenkfp/budget/decision`` with ``{"input": ...}``, answered with
  ``{"result": {...}}`` (``--policy-url``);
* :func:`policy_from` picks one of the two.

Both answer with a :class:`PolicyDecision`, or raise :class:`PolicyError`: a caller that gets an
error refuses the submission. The policy decides; the ledger enforces the decision atomically
(the policy alone cannot prevent a double spend).

The input, a JSON object (grams of CO2eq; documented with the rules in ``budget.rego``):

``team``, ``tier`` (``"hard"`` | ``"soft"``), ``period`` (``"YYYY-MM"``), ``estimate_g``,
``limit_g``, ``reserved_g``, ``settled_g``, ``remaining_g``, ``overdraft_percent``,
``pipeline``, ``labels`` (an object of strings), ``exceptions`` (``[{"id", "amount_g",
"expires_at", "run_id"}]``, ``run_id`` null or absent for a team-wide exception), ``now``
(RFC 3339) and, optionally, ``run_id`` (the submission's run, which run-bound exceptions must
name). A missing or invalid field is refused with a reason naming it.

The decision: ``{"allow": bool, "reasons": [str], "review_required": bool,
"overdraft_allowed_g": number}``; ``overdraft_allowed_g`` is how far below zero the ledger may
take the remaining budget (after open exceptions): ``limit_g x overdraft_percent / 100`` for the
soft tier, 0 for the hard one.
"""

from __future__ import annotations

import decimal
import json
import logging
import math
import numbers
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, Protocol

import httpx

from .._checks import iso
from .._messages import redact_urls, shorten
from ._http import Closing, Retryable, send_retrying
from .errors import capped_reasons
from .rego import RegoError, RegoModule

__all__ = [
    "DEFAULT_POLICY_FILE",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TOKEN_ENV",
    "INPUT_FIELDS",
    "PACKAGE",
    "BudgetPolicy",
    "OpaPolicy",
    "PolicyDecision",
    "PolicyError",
    "RegoPolicy",
    "policy_from",
    "policy_input_json",
]

logger = logging.getLogger("greenkfp.governance")

#: The bundled policy, shipped with the package: read it, or copy and change it.
DEFAULT_POLICY_FILE = Path(__file__).with_name("policy") / "budget.rego"
#: The Rego package every budget policy declares, and its decision rule.
PACKAGE = "greenkfp.budget"
RULE = "decision"
#: The fields of the policy's input (``run_id`` may be left out).
INPUT_FIELDS = ("team", "tier", "period", "estimate_g", "limit_g", "reserved_g", "settled_g", "remaining_g",
                "overdraft_percent", "pipeline", "labels", "exceptions", "now", "run_id")
DEFAULT_TOKEN_ENV = "GREENKFP_OPA_TOKEN"
#: OPA answers a budget decision in about a millisecond; a gatekeeper must not hang on it.
DEFAULT_TIMEOUT_S = 5.0

Engine = Literal["regorus", "opa"]
_ENGINES = ("regorus", "opa")


class PolicyError(Exception):
    """The policy could not decide: a file that does not parse, an OPA server that fails or
    answers something else than a decision. ``field`` names the bad field of a decision, if
    that is the trouble. Messages are one line and never carry a credential."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# --------------------------------------------------------------------------- the decision


def _bad(source: str, field: str, expected: str, value: Any) -> PolicyError:
    return PolicyError(f"policy decision from {source}: {field} must be {expected}, got {shorten(value)}", field)


@dataclass(frozen=True)
class PolicyDecision:
    """The policy's answer for one submission.

    Attributes:
        allow: Whether the submission may reserve its estimate.
        reasons: Why, in words (figures included); at least one for a refusal.
        review_required: Allowed into a soft budget's overdraft: the review board looks at it.
        overdraft_allowed_g: How far below zero the ledger may take the remaining budget, grams.
        engine: ``regorus`` (in-process) or ``opa`` (an OPA server).
        policy: The policy file's path, or the OPA URL that answered.
    """

    allow: bool
    reasons: tuple[str, ...]
    review_required: bool
    overdraft_allowed_g: float
    engine: Engine
    policy: str

    def __post_init__(self) -> None:
        source = self.policy if isinstance(self.policy, str) and self.policy else "(unknown)"
        if not isinstance(self.policy, str) or not self.policy.strip():
            raise _bad(source, "policy", "a non-empty string (the file or URL)", self.policy)
        if self.engine not in _ENGINES:
            raise _bad(source, "engine", f"one of {', '.join(_ENGINES)}", self.engine)
        for name in ("allow", "review_required"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(source, name, "true or false", getattr(self, name))
        reasons = self.reasons
        if not isinstance(reasons, (list, tuple)) or not all(isinstance(r, str) for r in reasons):
            raise _bad(source, "reasons", "a list of strings", reasons)
        if not self.allow and not reasons:
            raise _bad(source, "reasons", "non-empty for a refusal", reasons)
        value = self.overdraft_allowed_g
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise _bad(source, "overdraft_allowed_g", "a number >= 0", value)
        object.__setattr__(self, "reasons", capped_reasons(reasons))  # whatever the engine answered: bounded
        object.__setattr__(self, "overdraft_allowed_g", float(value))

    def to_dict(self) -> dict:
        """JSON-ready; :meth:`from_dict` reads it back."""
        return {"allow": self.allow, "reasons": list(self.reasons), "review_required": self.review_required,
                "overdraft_allowed_g": self.overdraft_allowed_g, "engine": self.engine, "policy": self.policy}

    @classmethod
    def from_dict(cls, data: Any, *, engine: Engine | None = None, policy: str | None = None) -> PolicyDecision:
        """A decision from the policy's answer (or :meth:`to_dict`'s output), checked field by field.

        ``engine`` and ``policy`` say where the answer came from, when ``data`` does not.
        Keys a replaced policy adds beyond the four of the decision are ignored.

        Raises:
            PolicyError: ``data`` is not an object, or a field is missing or of the wrong type;
                the message and ``field`` name it.
        """
        source = policy or (data.get("policy") if isinstance(data, Mapping) else None) or "(unknown)"
        if not isinstance(data, Mapping):
            raise _bad(str(source), "decision", "an object", data)
        for field in ("allow", "reasons", "review_required", "overdraft_allowed_g"):
            if field not in data:
                raise PolicyError(f"policy decision from {source}: {field} is missing", field)
        return cls(allow=data["allow"], reasons=data["reasons"], review_required=data["review_required"],
                   overdraft_allowed_g=data["overdraft_allowed_g"], engine=engine or data.get("engine"),
                   policy=policy or data.get("policy"))


# --------------------------------------------------------------------------- the input


def _json_ready(value: Any) -> Any:
    """``value`` as JSON the policy can judge: a non-finite number becomes a string (``"nan"``),
    which the policy refuses naming its field, instead of JSON that no engine reads."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, (numbers.Real, decimal.Decimal)):  # a database's Decimal, a numpy float
        number = float(value)
        return number if math.isfinite(number) else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()  # a naive datetime has no offset: the policy refuses it
    return str(value)


def policy_input_json(policy_input: Mapping[str, Any]) -> str:
    """The JSON text of a policy input: datetimes in ISO 8601, Decimals as numbers, and a NaN or
    an infinity as a string the policy refuses (JSON has no such numbers)."""
    return json.dumps(_json_ready(policy_input), allow_nan=False, sort_keys=True)


# --------------------------------------------------------------------------- decision points


class BudgetPolicy(Protocol):
    """What the gatekeeper and the CLI use: :class:`RegoPolicy` or :class:`OpaPolicy`."""

    engine: Engine
    policy: str

    def decide(self, policy_input: Mapping[str, Any]) -> PolicyDecision: ...

    def close(self) -> None: ...


def _rego_location(message: str) -> str:
    """Rego's multi-line message (``--> file:3:9``, the line, a caret, ``error: ...``) as one line."""
    where = re.search(r"-->\s*(\S+)", message)
    what = re.search(r"error:\s*(.+)", message)
    if where and what:
        return f"{where.group(1)}: {what.group(1).strip()}"
    return " ".join(message.split())


class RegoPolicy(Closing):
    """The budget policy evaluated in-process by regorus.

    Args:
        path: A Rego file declaring ``package greenkfp.budget`` with a ``decision`` rule;
            default the bundled :data:`DEFAULT_POLICY_FILE`.

    Raises:
        PolicyError: the file cannot be read, does not parse (the message names the file and
            gives Rego's line, column and message), or declares another package.
    """

    engine: ClassVar[Engine] = "regorus"

    def __init__(self, path: str | os.PathLike = DEFAULT_POLICY_FILE):
        self.path = Path(path)
        self.policy = str(self.path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise PolicyError(f"cannot read policy file {self.path}: {reason}") from None
        try:
            self._module = RegoModule(text, self.path.name)
        except RegoError as exc:
            raise PolicyError(f"policy file {self.path} does not parse: {_rego_location(str(exc))}") from None
        if self._module.package != f"data.{PACKAGE}":
            declared = self._module.package.removeprefix("data.")
            raise PolicyError(f"policy file {self.path} declares package {declared}; "
                              f"a budget policy must declare package {PACKAGE} with a rule {RULE}")

    def decide(self, policy_input: Mapping[str, Any]) -> PolicyDecision:
        """The policy's decision for ``policy_input`` (see the module's docstring for its fields).

        Raises:
            PolicyError: the evaluation failed, or the policy left ``decision`` undefined or
                answered something else than a decision.
        """
        try:
            value = self._module.evaluate(f"data.{PACKAGE}.{RULE}", policy_input_json(policy_input))
        except RegoError as exc:
            raise PolicyError(f"policy file {self.path}: the evaluation failed: {' '.join(str(exc).split())}") from None
        if value is None:
            raise PolicyError(f"policy file {self.path}: data.{PACKAGE}.{RULE} is undefined for this input "
                              "(a budget policy must decide every input)")
        return PolicyDecision.from_dict(value, engine=self.engine, policy=self.policy)


class OpaPolicy(Closing):
    """The budget policy asked of an OPA server through its REST Data API.

    ``POST {url}/v1/data/{package}/decision`` with ``{"input": ...}``; OPA answers
    ``{"result": <decision>}``, or ``{}`` when the decision is undefined (no such policy
    loaded). Start one with ``opa run --server --addr 127.0.0.1:8181 budget.rego``.

    Args:
        url: OPA's address, such as ``http://127.0.0.1:8181`` (a path prefix is kept, for an
            OPA behind a proxy).
        package: The policy's package as a path (``greenkfp/budget``; dots are read as slashes).
        token_env: The environment variable holding OPA's bearer token (OPA's
            ``--authentication=token``); unset or empty means none is sent. The token never
            appears in a message or a log.
        timeout_s: Connect and read timeout of one request, seconds (> 0, at most 300).
        retries: Further tries after a timeout, a connection failure or a 5xx (0 to 5).

    Raises:
        PolicyError: ``url`` is not an http(s) URL, or it carries ``user:password@`` while a
            token is set too.
    """

    engine: ClassVar[Engine] = "opa"

    def __init__(self, url: str, *, package: str = "greenkfp/budget", token_env: str = DEFAULT_TOKEN_ENV,
                 timeout_s: float = DEFAULT_TIMEOUT_S, retries: int = 1):
        from ..carbon.providers.base import check_base_url, check_timeout, split_userinfo

        try:
            base, auth = split_userinfo(check_base_url(url))
        except ValueError as exc:
            raise PolicyError(f"policy URL: {str(exc).replace('base_url', 'the OPA URL')}") from None
        path = package.replace(".", "/").strip("/") if isinstance(package, str) else ""
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*", path):
            raise ValueError(f"package must be a Rego package path such as 'greenkfp/budget', got {package!r}")
        check_timeout(timeout_s)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
            raise ValueError(f"retries must be a whole number from 0 to 5, got {retries!r}")
        self.url = f"{base}/v1/data/{path}/{RULE}"
        self.policy = self.url  # without credentials
        self.timeout_s = float(timeout_s)
        self.retries = retries
        token = os.environ.get(token_env, "").strip()
        if token and auth is not None:
            raise PolicyError(f"policy URL {self.url} carries user:password@ and {token_env} holds a token: "
                              "give one of the two")
        self._secrets = sorted({s for s in (token, *(auth or ())) if s}, key=len, reverse=True)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout_s), headers=headers, auth=auth,
                                    follow_redirects=False)  # a redirect would carry the token elsewhere

    def close(self) -> None:
        self._client.close()

    def _error(self, detail: str, field: str | None = None) -> PolicyError:
        for secret in self._secrets:
            detail = detail.replace(secret, "***")
        return PolicyError(f"OPA policy at {self.url}: {' '.join(redact_urls(detail).split())}", field)

    def _detail(self, response: httpx.Response) -> str:
        """OPA's ``{"code", "message"}`` error body, or the start of whatever came instead."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and ("code" in body or "message" in body):
            return f" ({body.get('code', '')}: {str(body.get('message', ''))[:200]})"
        text = response.text.strip()
        return f" ({text[:80]!r})" if text else ""

    def _post(self, content: str) -> httpx.Response:
        try:
            response = send_retrying(
                lambda: self._client.post(self.url, content=content), retries=self.retries, wait_s=0.1,
                max_wait_s=1.0, timeout_text=f"no answer within {self.timeout_s:g} s", unreachable_text="cannot connect",
                detail=self._detail,
                on_retry=lambda text, n: logger.warning("%s; retry %d of %d", self._error(text), n, self.retries))
        except Retryable as exc:
            error = self._error(str(exc))
        else:
            if not 200 <= response.status_code < 300:
                raise self._error(f"HTTP {response.status_code}{self._detail(response)}")
            return response
        raise error  # outside the handler: no chain back to httpx's request and its headers

    def decide(self, policy_input: Mapping[str, Any]) -> PolicyDecision:
        """OPA's decision for ``policy_input``.

        Raises:
            PolicyError: a timeout, no connection, a non-2xx answer, a body that is not JSON,
                no ``result`` (the decision is undefined: no such policy loaded), or a result
                that is not a decision. The message names the URL, never a credential.
        """
        response = self._post(f'{{"input": {policy_input_json(policy_input)}}}')
        try:
            payload = response.json()
        except ValueError:
            raise self._error(f"HTTP {response.status_code} with a body that is not JSON{self._detail(response)}") from None
        if not isinstance(payload, Mapping):
            raise self._error(f"the answer must be a JSON object, got {shorten(payload)}")
        if "result" not in payload:
            raise self._error(f"the decision is undefined (no \"result\" in the answer): does the server have a "
                              f"policy with package {PACKAGE} and a rule {RULE}?", "result")
        try:
            return PolicyDecision.from_dict(payload["result"], engine=self.engine, policy=self.url)
        except PolicyError as exc:
            raise self._error(str(exc).removeprefix(f"policy decision from {self.url}: "), exc.field) from None


def budget_input(status, *, estimate_g: float, pipeline: str = "", labels: Mapping[str, str] | None = None,
                 run_id: str | None = None, now: datetime | None = None) -> dict:
    """The policy's input for a submission of ``estimate_g`` grams against ``status`` (a
    :class:`~greenkfp.components.records.BudgetStatus`): the one shape the gatekeeper and the CLI
    both send (see the module docstring)."""
    return {
        "team": status.team, "tier": status.tier, "period": status.period, "estimate_g": estimate_g,
        "limit_g": status.limit_g, "reserved_g": status.reserved_g, "settled_g": status.settled_g,
        "remaining_g": status.remaining_g, "overdraft_percent": status.overdraft_percent,
        "pipeline": pipeline, "labels": dict(labels or {}), "run_id": run_id,
        "now": iso(now or datetime.now(timezone.utc)),
        # an exception's amount is what is left of it (the spending it already covers is in remaining_g)
        "exceptions": [{"id": str(e.id), "amount_g": e.available_g, "expires_at": e.expires_at, "run_id": e.run_id}
                       for e in status.exceptions if e.available_g > 0],
    }


def policy_from(url: str | None, path: str | os.PathLike | None = None) -> RegoPolicy | OpaPolicy:
    """The decision point the CLI's ``--policy-url`` and ``--policy-file`` ask for: an OPA server
    when ``url`` is given (not empty), else the in-process engine on ``path`` (default the
    bundled policy).

    Raises:
        PolicyError: both are given (an OPA server evaluates the policy it loaded, not a local
            file), or the one chosen cannot be set up.
    """
    url = url.strip() if isinstance(url, str) else url
    if url:
        if path:
            raise PolicyError("give a policy URL or a policy file, not both: an OPA server decides with the policy "
                              "it loaded itself")
        return OpaPolicy(url)
    return RegoPolicy(path or DEFAULT_POLICY_FILE)
