"""Submit compiled pipelines to Kubeflow Pipelines (``kfp.Client``) or Vertex AI Pipelines
(``aiplatform.PipelineJob``), optionally at the greenest time the carbon gate's core finds.

Everything that can be checked is checked before anything is sent: the package, each
parameter (its declared KFP type and, for greenkfp's own knobs, the checks a local run applies),
names and labels against Vertex AI's rules, the endpoint and the credentials. Credentials come
from the environment (``KF_PIPELINES_TOKEN`` for a KFP endpoint behind auth; Google
application-default credentials for Vertex AI), never from arguments or URLs.

Every call to an endpoint has a total deadline, not only a per-read socket timeout (a server
that drips one byte every few seconds defeats those): the blocking call runs in a daemon thread
that is given up on at the deadline. What ``kfp.Client`` prints, warns and logs on its own does
not reach the user; the caller prints one line per result.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sys
import threading
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import yaml

from greenkfp.components._messages import listing, redact_urls, shorten

if TYPE_CHECKING:
    from greenkfp.components.records import GateDecisionRecord

_VERTEX_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_VERTEX_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_VERTEX_PIPELINE_NAME = re.compile(r"^[a-z][-a-z0-9]{0,127}$")
_VERTEX_MAX_LABELS = 64
_GCP_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_GCP_LOCATION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
KFP_TOKEN_ENV = "KF_PIPELINES_TOKEN"

#: The health check's total deadline, seconds (connecting, headers and body together); also
#: the per-read socket timeout of the calls kfp.Client makes.
REQUEST_TIMEOUT_S = 30.0
#: Total deadline of each call that creates something (create_experiment, create_run,
#: create_recurring_run), seconds, kfp.Client's own requests within it included.
CALL_DEADLINE_S = 120.0
#: Largest health-check answer read, bytes (KFP's is a few dozen).
MAX_HEALTHZ_BYTES = 64 * 1024

_KFP_MODULES = r"(kfp|kfp_server_api|urllib3)(\.|$)"

T = TypeVar("T")


class SubmitError(ValueError):
    """Bad submission input: a parameter, a label, a name or the package; or an endpoint that
    refused, failed or did not answer in time."""


class VertexError(Exception):
    """Vertex AI (or Google's auth or storage on its behalf) did not take the job: an outage or
    an account problem, not the person's input (exit 1). One line."""


def vertex_call(what: str, call: Callable[[], T]) -> T:
    """``call()`` to Vertex AI; any failure of the Google libraries is a one-line VertexError
    (their own retries already ran): the type, and the first line of the message, capped."""
    import logging

    from greenkfp.components._messages import redact_urls

    # the SDK logs the tracebacks of failures it goes on past (logger.exception): the error that
    # matters is ours, one line; its other (info) lines stay
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.startswith("google.cloud.aiplatform")]
    for logger in loggers:
        logger.addFilter(_no_tracebacks)
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - google-cloud raises many unrelated types; each becomes one line
        text = " ".join(redact_urls(str(exc)).split())
        error = VertexError(f"Vertex AI did not {what} ({type(exc).__name__}: {_cut(text, 300)})")
    finally:
        for logger in loggers:
            logger.removeFilter(_no_tracebacks)
    raise error  # outside the handler: no chain of google's tracebacks


def _no_tracebacks(record) -> bool:
    return not record.exc_info


# --- bounded, quiet calls --------------------------------------------------------------------

_MUTED: set[threading.Thread] = set()
_MUTE_LOCK = threading.Lock()
_ROUTERS: dict[str, "_ThreadRouter"] = {}


class _ThreadRouter:
    """Stands in for ``sys.stdout`` / ``sys.stderr`` while muted worker threads run: what those
    threads write (kfp.Client's ``print``, warnings, last-resort logging) is dropped, everything
    else goes through. It stays until the last muted thread ends, even one given up on at its
    deadline, so a late print of a stalled call never reaches the user either."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        if threading.current_thread() in _MUTED:
            return len(text)
        return self.stream.write(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if threading.current_thread() not in _MUTED:
            self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _mute(thread: threading.Thread) -> None:
    with _MUTE_LOCK:
        _MUTED.add(thread)
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if current is not None and not isinstance(current, _ThreadRouter):
                _ROUTERS[name] = _ThreadRouter(current)
                setattr(sys, name, _ROUTERS[name])


def _unmute(thread: threading.Thread) -> None:
    with _MUTE_LOCK:
        _MUTED.discard(thread)
        if _MUTED:
            return
        for name, router in list(_ROUTERS.items()):
            if getattr(sys, name) is router:  # not if someone replaced it since
                setattr(sys, name, router.stream)
            del _ROUTERS[name]


def _within(deadline: float, call: Callable[[], T], timed_out: Callable[[], SubmitError], *,
            quiet: bool = False) -> T:
    """``call()`` in a daemon thread, waited for at most ``deadline`` seconds; past it,
    ``timed_out()`` is raised and the thread is left behind (a daemon thread never holds up the
    exit, unlike a ThreadPoolExecutor's). ``call``'s own exception is raised here. ``quiet``:
    what the thread prints or warns is dropped."""
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller)
            outcome["error"] = exc
        finally:
            if quiet:
                _unmute(threading.current_thread())
            finished.set()

    thread = threading.Thread(target=work, name="greenkfp-submit-call", daemon=True)
    if quiet:
        _mute(thread)
    try:
        thread.start()
    except BaseException:
        if quiet:
            _unmute(thread)
        raise
    if not finished.wait(max(deadline, 0.0)):
        raise timed_out()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# --- parameters and labels --------------------------------------------------------------------

def _cut(text: str, limit: int = 80) -> str:
    """``text`` unquoted, cut after ``limit`` characters with its length said."""
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _shown(value: Any) -> str:
    """A value as a message echoes it: quoted, and capped in length."""
    return shorten(value)


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs, values kept as text: :func:`typed_params` converts them by the
    pipeline's declared types."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SubmitError(f"--param must look like NAME=VALUE, got {_shown(pair)}")
        params[key] = value
    return params


def _typed(name: str, text: Any, kind: str) -> Any:
    """One parameter's value as its declared KFP type (text from the command line, or already
    a value when called from Python)."""
    def bad(expected: str) -> SubmitError:
        return SubmitError(f"--param {name}={_shown(text)}: {name} takes {expected}")

    if kind == "STRING":
        return text if isinstance(text, str) else json.dumps(text)
    if not isinstance(text, str):
        value = text
    else:
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise bad({"NUMBER_INTEGER": "a whole number", "NUMBER_DOUBLE": "a number", "BOOLEAN": "true or false",
                       "LIST": "a JSON list", "STRUCT": "a JSON object"}.get(kind, kind)) from None
    if kind == "NUMBER_INTEGER":
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
            raise bad("a whole number")
        return int(value)
    if kind == "NUMBER_DOUBLE":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a finite number")
        return float(value)
    if kind == "BOOLEAN" and not isinstance(value, bool):
        raise bad("true or false")
    if kind == "LIST" and not isinstance(value, list):
        raise bad("a JSON list")
    if kind == "STRUCT" and not isinstance(value, dict):
        raise bad("a JSON object")
    return value


def _declared(spec: dict) -> dict[str, dict]:
    """The pipeline's declared parameters, ``{name: definition}``."""
    root = spec.get("root")
    inputs = root.get("inputDefinitions") if isinstance(root, dict) else None
    parameters = inputs.get("parameters") if isinstance(inputs, dict) else None
    if not isinstance(parameters, dict):
        return {}
    return {str(name): (definition if isinstance(definition, dict) else {}) for name, definition in parameters.items()}


def typed_params(spec: dict, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against the pipeline's declared parameters and converted to their
    types, before anything is sent: an unknown name or a value of the wrong type is an error
    that names it. For a greenkfp pipeline (every declared parameter is one of
    ``greenkfp.components.parameters.SPEC``), the values also pass the checks a local run
    applies (:func:`check_spec_values`)."""
    check_parameters(spec, params)
    declared = _declared(spec)
    typed = {name: _typed(name, value, declared[name].get("parameterType", "STRING")) for name, value in params.items()}
    check_spec_values(spec, typed, shown=params)
    return typed


def _gate_error(values: dict) -> str | None:
    from greenkfp.components.carbon.errors import CarbonError
    from greenkfp.pipelines.options import check_gate_values

    try:  # the one check a local run applies to the gate's values
        check_gate_values(values)
    except (CarbonError, ValueError, TypeError, OverflowError) as exc:
        return str(exc) or type(exc).__name__
    return None


def _capped_message(message: str, values: dict[str, Any]) -> str:
    """``message`` with every long value in it shortened, and the whole kept to one line."""
    for value in values.values():
        text = str(value)
        if len(text) > 80:
            message = message.replace(text, _cut(text))
    message = " ".join(message.split())
    return message if len(message) <= 400 else f"{message[:400]}..."


def check_spec_values(spec: dict, params: dict[str, Any], *, shown: dict[str, Any] | None = None) -> None:
    """For a greenkfp pipeline, the checks a local run applies to ``params`` (typed values):
    the choices and bounds of the shared parameters, the candidates, and the gate's values
    through ``policy_from_params`` (the pipeline's declared defaults merged with ``params``).
    ``shown``: the values as given, for messages. A pipeline with parameters greenkfp does not
    declare is checked by its declared types only."""
    from greenkfp.components.parameters import GATE, SPEC
    from greenkfp.pipelines.options import MAX_HOURS

    declared = _declared(spec)
    if not declared or not set(declared) <= set(SPEC):
        return
    shown = shown if shown is not None else params

    def fail(name: str, reason: str) -> SubmitError:
        return SubmitError(f"--param {name}={_shown(shown.get(name, params.get(name)))}: {reason}")

    for name, value in params.items():
        parameter = SPEC[name]
        if parameter.choices and value not in parameter.choices:
            raise fail(name, f"{name} must be one of {', '.join(parameter.choices)}")
        if (parameter.kind == "duration" and isinstance(value, (int, float)) and not isinstance(value, bool)
                and not 0 <= value <= MAX_HOURS):
            raise fail(name, f"{name} must be between 0 and {MAX_HOURS:g} hours ({MAX_HOURS / 24:g} days)")
    if isinstance(params.get("candidates"), str) and params["candidates"].strip():
        from greenkfp.components.training.estimators import validate_candidates

        try:
            validate_candidates(params["candidates"])
        except (ValueError, TypeError) as exc:
            raise fail("candidates", _capped_message(str(exc), params)) from None

    _check_training_values(declared, params, fail)
    if not set(GATE) & set(declared):
        return
    defaults = {name: _default(declared, name) for name in GATE}
    given = {name: value for name, value in params.items() if name in GATE}
    error = _gate_error({**defaults, **given})
    if error is None:
        return
    if _gate_error(defaults) is not None or not given:
        raise SubmitError(f"the pipeline's declared defaults fail the carbon gate's checks: {_capped_message(error, defaults)}")
    culprits = [name for name in given if _gate_error({**defaults, name: given[name]}) is not None] or list(given)
    if len(culprits) == 1:
        raise fail(culprits[0], _capped_message(error, params))
    together = ", ".join(f"{name}={_shown(shown.get(name, given[name]))}" for name in culprits)
    raise SubmitError(f"--param {together} together: {_capped_message(error, params)}")


def _default(declared: dict[str, dict], name: str) -> Any:
    """The pipeline's declared default of ``name`` as its declared type (a compiled integer
    default reads back as 0.0), or the spec's default when it declares none."""
    from greenkfp.components.parameters import SPEC

    definition = declared.get(name)
    if definition is None or "defaultValue" not in definition:
        return SPEC[name].fresh_default()
    try:
        return _typed(name, definition["defaultValue"], definition.get("parameterType", "STRING"))
    except SubmitError:
        return definition["defaultValue"]


def _check_training_values(declared: dict[str, dict], params: dict[str, Any],
                           fail: Callable[[str, str], SubmitError]) -> None:
    """The training options a local run checks (``check_training_options``), on the pipeline's
    declared defaults merged with ``params``; only when ``params`` gives one of them."""
    import inspect

    from greenkfp.components.preflight import check_training_options

    names = [name for name in inspect.signature(check_training_options).parameters if name in declared]
    given = [name for name in names if name in params]
    if not given:
        return
    values = {name: params[name] if name in params else _default(declared, name) for name in names}
    try:
        check_training_options(**values)
        if "deploy_region" in given:
            from .options import check_deploy_region

            check_deploy_region(values["deploy_region"])
    except (ValueError, TypeError, OverflowError) as exc:
        message = str(exc)
        named = [name for name in given if re.search(rf"\b{re.escape(name)}\b", message)]
        raise fail((named or given)[0], _capped_message(message, params)) from None


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SubmitError(f"--label must look like KEY=VALUE, got {_shown(pair)}")
        labels[key] = value
    return labels


# --- the package ------------------------------------------------------------------------------

def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem:
        return f"{problem} at line {mark.line + 1}" if mark is not None else str(problem)
    return type(exc).__name__


def _read_documents(path: str | Path) -> list:
    """The non-empty YAML documents of ``path``, or one line naming --package."""
    shown = _shown(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as handle:
            return [d for d in yaml.safe_load_all(handle) if d]
    except UnicodeDecodeError:
        reason = "it is not UTF-8 text"
    except yaml.YAMLError as exc:
        reason = _yaml_problem(exc)
    except RecursionError:
        reason = "it is nested too deeply"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise SubmitError(f"--package {shown} is not a readable YAML pipeline: {' '.join(reason.split())}") from None


def read_package(path: str | Path) -> dict:
    """The pipeline spec (first YAML document) of a compiled package; checks it is one."""
    documents = _read_documents(path)
    shown = _shown(os.fspath(path))
    if not documents or not isinstance(documents[0], dict) or "pipelineInfo" not in documents[0]:
        raise SubmitError(f"--package {shown} is not a compiled KFP pipeline (no pipelineInfo)")
    spec = documents[0]
    info = spec["pipelineInfo"]
    if not isinstance(info, dict) or not isinstance(info.get("name"), str) or not info["name"]:
        raise SubmitError(f"--package {shown} is not a compiled KFP pipeline (pipelineInfo has no name)")
    root = spec.get("root")
    if root is not None and not isinstance(root, dict):
        raise SubmitError(f"--package {shown} is not a compiled KFP pipeline (its root is not a mapping)")
    return spec


def check_parameters(spec: dict, params: dict[str, Any]) -> None:
    known = set(_declared(spec))
    unknown = sorted(set(params) - known)
    if unknown:
        raise SubmitError(f"unknown pipeline parameter(s) {listing(_cut(n) for n in unknown)}; "
                          f"the pipeline takes: {listing(sorted(known), limit=40)}")


def check_vertex_package(path: str | Path, labels: dict[str, str]) -> dict:
    """Vertex AI's rules, checked before submitting: a single-document package (no
    kfp-kubernetes config), a valid pipeline name, valid labels."""
    count = len(_read_documents(path))
    if count != 1:
        raise SubmitError(
            f"--package {_shown(os.fspath(path))} has {count} YAML documents; Vertex AI takes one "
            "(use compiled/vertex/, without kfp-kubernetes config)"
        )
    spec = read_package(path)
    name = spec["pipelineInfo"]["name"]
    if not _VERTEX_PIPELINE_NAME.match(name):
        raise SubmitError(f"pipeline name {_shown(name)} breaks Vertex AI's rule [a-z][-a-z0-9]{{0,127}}")
    if len(labels) > _VERTEX_MAX_LABELS:
        raise SubmitError(f"Vertex AI takes at most {_VERTEX_MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not _VERTEX_LABEL_KEY.match(key):
            raise SubmitError(
                f"label key {_shown(key)} breaks Vertex AI's rule: 1-63 lower-case letters, digits, '_' or '-', "
                "starting with a letter"
            )
        if not _VERTEX_LABEL_VALUE.match(value):
            raise SubmitError(f"label {_cut(key)}={_shown(value)}: values are at most 63 lower-case letters, "
                              "digits, '_' or '-'")
    return spec


# --- Kubeflow Pipelines -----------------------------------------------------------------------

def safe_url(url: str) -> str:
    """``url`` without its userinfo (``user:secret@``) and capped in length, for messages; never
    raises, also for a URL that does not parse."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None and "@" not in parts.netloc:
            return _cut(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return _cut(redact_urls(url))
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return _cut(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


def check_host(host: str) -> str:
    """A KFP API endpoint URL (http or https, with a host, without credentials, query or
    fragment); returned without a trailing slash."""
    shown = safe_url(host)
    try:
        parts = urlsplit(host)
        parts.port  # noqa: B018 (parses the port; a bad one raises)
    except ValueError as exc:
        raise SubmitError(f"--host must be an http(s):// URL, got {shown!r} ({_cut(str(exc))})") from None
    if "@" in parts.netloc:
        raise SubmitError(f"--host must not carry credentials (user:password@), got {shown!r}: "
                          f"give a bearer token in {KFP_TOKEN_ENV} instead")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubmitError(f"--host must be an http(s):// URL such as https://kfp.example.com, got {shown!r}")
    if parts.query or parts.fragment:
        raise SubmitError(f"--host must be the API endpoint URL without ?query or #fragment, got {shown!r}")
    return host.rstrip("/")


def _token() -> str | None:
    return os.environ.get(KFP_TOKEN_ENV) or None


def preflight_kfp(host: str, *, timeout: float | None = None) -> None:
    """Check that ``host`` is a KFP v2 API that accepts our credentials, in one call bounded in
    total by ``timeout`` (default :data:`REQUEST_TIMEOUT_S`), before any waiting or submitting:
    a wrong host fails now, with one line, not hours later."""
    import httpx

    host = check_host(host)
    deadline = REQUEST_TIMEOUT_S if timeout is None else timeout
    headers = {"Authorization": f"Bearer {_token()}"} if _token() else {}
    where = f"{safe_url(host)}/apis/v2beta1/healthz"

    def fetch() -> tuple[int, str, bytes]:
        with httpx.stream("GET", f"{host}/apis/v2beta1/healthz", headers=headers, timeout=deadline) as response:
            body = bytearray()
            if response.status_code < 300:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_HEALTHZ_BYTES:
                        break
            return response.status_code, response.headers.get("content-type", ""), bytes(body)

    def timed_out() -> SubmitError:
        return SubmitError(f"--host {safe_url(host)} did not answer within {deadline:g} s")

    try:
        status, kind, body = _within(deadline, fetch, timed_out)
    except SubmitError:
        raise
    except httpx.TimeoutException:
        raise timed_out() from None
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
        raise SubmitError(f"cannot reach --host {safe_url(host)}: {type(exc).__name__}") from None
    if status in (401, 403):
        raise SubmitError(f"{where} refused the credentials (HTTP {status}); "
                          f"set {KFP_TOKEN_ENV} to a valid bearer token")
    if status >= 300:
        raise SubmitError(f"{where} answered HTTP {status}; is --host the KFP API endpoint?")
    if len(body) > MAX_HEALTHZ_BYTES:
        raise SubmitError(f"{where} answered more than {MAX_HEALTHZ_BYTES // 1024} KiB: --host is not a KFP API endpoint")
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        if "json" in kind.lower():
            raise SubmitError(f"{where} answered malformed JSON: --host is not a KFP API endpoint") from None
        raise SubmitError(f"{where} answered {_cut(kind or 'no content type')}, not JSON: "
                          "--host is not a KFP API endpoint") from None
    if not isinstance(answer, dict):
        raise SubmitError(f"{where} answered JSON that is not an object: --host is not a KFP API endpoint")


def _kfp_call(what: str, host: str, call: Callable[[], T]) -> T:
    """``call()`` (kfp.Client work) bounded in total by :data:`CALL_DEADLINE_S` and each read by
    :data:`REQUEST_TIMEOUT_S` (its generated client sets no timeout, so the socket default
    applies); what kfp prints or warns is dropped; failures are one line naming the call."""
    import kfp_server_api
    import urllib3

    where = safe_url(host)
    deadline = CALL_DEADLINE_S

    def timed_out() -> SubmitError:
        return SubmitError(f"{what} at {where} did not finish within {deadline:g} s; it may still complete "
                           "on the endpoint: check there before submitting again")

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(REQUEST_TIMEOUT_S)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=_KFP_MODULES)
            return _within(deadline, call, timed_out, quiet=True)
    except SubmitError:
        raise
    except kfp_server_api.ApiException as exc:
        reason = _cut(" ".join(str(exc.reason or "").split()))
        raise SubmitError(f"{where} refused {what}: HTTP {exc.status} {reason}".rstrip()) from None
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
        raise SubmitError(f"{what} at {where} failed: {type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 (kfp's own failures on a malformed answer: one line)
        detail = _cut(" ".join(redact_urls(str(exc)).split()))
        raise SubmitError(f"{what} at {where} failed: {type(exc).__name__}: {detail}") from None
    finally:
        socket.setdefaulttimeout(previous)


def _client(host: str, namespace: str | None):
    import kfp

    return kfp.Client(host=host, namespace=namespace, existing_token=_token())


def submit_kfp(package: str | Path, *, host: str, params: dict[str, Any], experiment: str | None = None,
               namespace: str | None = None, run_name: str | None = None) -> str:
    """Create a run on a KFP v2 endpoint; return its id."""
    spec = read_package(package)
    params = typed_params(spec, params)
    host = check_host(host)
    preflight_kfp(host)

    def create():
        return _client(host, namespace).create_run_from_pipeline_package(
            str(package), arguments=params, run_name=run_name or spec["pipelineInfo"]["name"],
            experiment_name=experiment, namespace=namespace,
        )

    result = _kfp_call("create_run", host, create)
    run_id = getattr(result, "run_id", None)
    if not run_id or not isinstance(run_id, str):
        raise SubmitError(f"{safe_url(host)} answered create_run without a run id: the run was not created")
    return run_id


def one_off_schedule_window(start_at: datetime) -> tuple[datetime, datetime]:
    """``(start_time, end_time)`` of a schedule that fires once, at ``start_at``'s minute.

    KFP's controller (robfig/cron ``Next``) and Vertex AI fire at the first cron match strictly
    after ``start_time``: starting the schedule a minute early makes that match ``start_at``
    itself, not the same minute a year later."""
    start = start_at.astimezone(timezone.utc).replace(second=0, microsecond=0)
    return start - timedelta(minutes=1), start + timedelta(minutes=30)


def kfp_one_off_schedule(package: str | Path, *, host: str, params: dict[str, Any], start_at: datetime,
                         experiment: str = "Default", namespace: str | None = None, name: str | None = None) -> str:
    """A recurring run that fires once, at ``start_at``'s minute (its cron matches that minute,
    its window opens a minute before and closes 30 minutes after); return its id. The endpoint
    runs it: nothing waits here."""
    spec = read_package(package)
    params = typed_params(spec, params)
    host = check_host(host)
    preflight_kfp(host)
    start = start_at.astimezone(timezone.utc)
    opens, closes = one_off_schedule_window(start)
    client = None

    def create_experiment():
        nonlocal client
        client = _client(host, namespace)
        return client.create_experiment(experiment, namespace=namespace).experiment_id

    experiment_id = _kfp_call("create_experiment", host, create_experiment)
    recurring = _kfp_call("create_recurring_run", host, lambda: client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=name or f"{spec['pipelineInfo']['name']}-green-window",
        cron_expression=f"0 {start.minute} {start.hour} {start.day} {start.month} *",  # KFP cron has seconds
        start_time=opens.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_time=closes.strftime("%Y-%m-%dT%H:%M:%SZ"),
        max_concurrency=1,
        pipeline_package_path=str(package),
        params=params,
        enable_caching=False,
    ))
    recurring_id = getattr(recurring, "recurring_run_id", None)
    if not recurring_id or not isinstance(recurring_id, str):
        raise SubmitError(f"{safe_url(host)} answered create_recurring_run without an id: nothing was scheduled")
    return recurring_id


def vertex_one_off_schedule(job, start_at: datetime):
    """A Vertex AI schedule of ``job`` that fires once, at ``start_at``'s minute."""
    start = start_at.astimezone(timezone.utc)
    opens, closes = one_off_schedule_window(start)
    return job.create_schedule(cron=f"TZ=UTC {start.minute} {start.hour} {start.day} {start.month} *",
                               display_name=f"{job.display_name}-green-window"[:128],
                               start_time=opens.isoformat(), end_time=closes.isoformat(),
                               max_run_count=1, max_concurrent_run_count=1)


# --- Vertex AI -------------------------------------------------------------------------------

def _check_bucket(pipeline_root: str) -> None:
    shown = _shown(pipeline_root)
    rule = ("--pipeline-root: pipeline_root must be a gs:// URI of a valid bucket, such as "
            f"gs://my-bucket/pipelines, got {shown}")
    if not isinstance(pipeline_root, str) or not pipeline_root.startswith("gs://"):
        raise SubmitError(rule)
    bucket = pipeline_root[len("gs://"):].split("/", 1)[0]
    if not bucket:
        raise SubmitError(f"{rule} (no bucket)")
    parts = bucket.split(".")
    if (not _GCS_BUCKET.match(bucket) or len(bucket) > (222 if len(parts) > 1 else 63)
            or any(not 1 <= len(part) <= 63 for part in parts)
            or re.fullmatch(r"[0-9]+(\.[0-9]+){3}", bucket) or bucket.startswith("goog") or "google" in bucket):
        raise SubmitError(f"{rule}: bucket names are 3-63 lower-case letters, digits, '-', '_' or '.', "
                          "starting and ending with a letter or digit")


def check_vertex_credentials(*, timeout: float | None = None):
    """Google application-default credentials, looked up (within ``timeout``, default
    :data:`REQUEST_TIMEOUT_S`) before any waiting; missing ones are one line. Returns them."""
    import google.auth
    from google.auth.exceptions import GoogleAuthError

    deadline = REQUEST_TIMEOUT_S if timeout is None else timeout
    hint = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
    try:
        credentials, _ = _within(deadline, lambda: google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]), lambda: SubmitError(
            f"looking up Google application-default credentials took more than {deadline:g} s; {hint}"))
    except SubmitError:
        raise
    except GoogleAuthError:
        raise SubmitError(f"no usable Google application-default credentials: {hint}") from None
    except (ValueError, OSError) as exc:
        raise SubmitError(f"the Google application-default credentials cannot be read ({type(exc).__name__}): "
                          f"{hint}") from None
    return credentials


def check_vertex_target(project: str, location: str, pipeline_root: str, *, credentials=None):
    """Where a Vertex AI job goes, checked before the job is built and before any waiting: the
    project id (6-30 lower-case letters, digits or hyphens, starting with a letter, not ending
    with a hyphen), the location (a region such as europe-west2), ``pipeline_root`` (``gs://``
    and a valid bucket) and, unless ``credentials`` are given, the application-default
    credentials. Returns the credentials to build the job with."""
    if not isinstance(project, str) or not _GCP_PROJECT.match(project):
        raise SubmitError(f"--project must be a Google Cloud project id (6-30 lower-case letters, digits or "
                          f"hyphens, starting with a letter, not ending with a hyphen), got {_shown(project)}")
    if not isinstance(location, str) or not _GCP_LOCATION.match(location):
        raise SubmitError(f"--location must be a Google Cloud region such as europe-west2 or us-central1, "
                          f"got {_shown(location)}")
    _check_bucket(pipeline_root)
    return credentials if credentials is not None else check_vertex_credentials()


def build_vertex_job(template: str | Path, *, project: str, location: str, pipeline_root: str,
                     params: dict[str, Any], labels: dict[str, str], display_name: str | None = None,
                     credentials=None):
    """The ``aiplatform.PipelineJob`` to submit, checked first: the target and the credentials
    (:func:`check_vertex_target`), then the package, labels and parameters against Vertex AI's
    rules."""
    from google.auth.exceptions import GoogleAuthError

    credentials = check_vertex_target(project, location, pipeline_root, credentials=credentials)
    spec = check_vertex_package(template, labels)
    params = typed_params(spec, params)
    from google.cloud import aiplatform

    try:
        return aiplatform.PipelineJob(
            display_name=display_name or spec["pipelineInfo"]["name"],
            template_path=str(template),
            pipeline_root=pipeline_root,
            parameter_values=params,
            labels=labels,
            enable_caching=False,
            project=project,
            location=location,
            credentials=credentials,
        )
    except GoogleAuthError as exc:
        raise SubmitError(f"cannot build the Vertex AI job: {type(exc).__name__}") from None


@dataclass(frozen=True)
class GreenStart:
    """When to submit, from the gate's core: the decision and its record."""

    start_at: datetime
    should_run: bool
    record: GateDecisionRecord


def greenest_start(*, regions: list[str], duration: timedelta, provider: str, max_delay: timedelta | None,
                   deadline: datetime | None, clock: Callable[[], datetime] | None = None) -> GreenStart:
    """Ask the gate's core (plan mode) for the greenest start within the limits."""
    from greenkfp.components.carbon import GatePolicy, decide
    from greenkfp.components.carbon.providers.base import utc_now

    policy = GatePolicy(regions=tuple(regions), duration=duration, provider=provider, max_delay=max_delay,
                        deadline=deadline, mode="plan", fallback_providers=("embedded",) if provider != "embedded" else ())
    decision = decide(policy, clock=clock or utc_now)
    return GreenStart(decision.start_at, decision.should_run, decision.to_record())


#: The Vertex job label that ties a job to its carbon-budget reservation (settle it by this id).
BUDGET_RUN_LABEL = "greenkfp-budget-run"


def budget_run_id() -> str:
    """A fresh run id for a reservation: 32 lower-case hex digits (a valid Vertex label value)."""
    import uuid

    return uuid.uuid4().hex


def ask_gatekeeper(url: str, *, run_id: str, pipeline: str, params: dict, labels: dict[str, str],
                   token_env: str, window_start: datetime | None = None, duration_hours: float = 1.0) -> dict:
    """Ask the gatekeeper's admission API to reserve this submission's carbon before it is sent
    (``greenkfp submit vertex --gatekeeper-url``): the run's ``energy_kwh`` parameter, if any, and
    its labels go with it. Returns the admission (granted).

    Raises:
        AdmissionRefused: the team's budget does not allow it (the reasons are in the error).
        GatekeeperError: the gatekeeper could not be asked (the token missing, unreachable, an error).
    """
    from greenkfp.components.governance.client import GatekeeperClient, token_from_env

    energy = params.get("energy_kwh")
    with GatekeeperClient(url, token_from_env(token_env)) as gatekeeper:
        return gatekeeper.admit(pipeline=pipeline, run_id=run_id, labels=dict(labels),
                                energy_kwh=float(energy) if energy else None,
                                window_start=window_start.isoformat() if window_start else None,
                                window_end=(window_start + timedelta(hours=duration_hours)).isoformat()
                                if window_start else None)


def release_reservation(url: str, run_id: str, *, token_env: str) -> str:
    """Give back the reservation of ``run_id`` (the job did not go); never raises. Returns one
    sentence saying what became of it, for the person's error line."""
    from greenkfp.components._messages import redact_urls
    from greenkfp.components.governance.client import GatekeeperClient, GatekeeperError, token_from_env

    try:
        with GatekeeperClient(url, token_from_env(token_env), retries=1) as gatekeeper:
            gatekeeper.release(run_id)
    except (GatekeeperError, ValueError) as exc:
        return (f"the carbon budget reservation of run {run_id} could not be released ({_cut(redact_urls(str(exc)), 200)}); "
                "it expires by itself")
    return f"the carbon budget reservation of run {run_id} was released"
