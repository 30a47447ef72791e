"""Submit compiled pipelines to Kubeflow Pipelines (``kfp.Client``) or Vertex AI Pipelines
(``aiplatform.PipelineJob``), optionally at the greenest time the carbon gate's core finds.

Names and labels are checked against Vertex AI's rules before anything is sent. Credentials
come from the environment (``KF_PIPELINES_TOKEN`` for a KFP endpoint behind auth; Google
application-default credentials for Vertex AI), never from arguments.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import contextlib
from urllib.parse import urlsplit, urlunsplit
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

if TYPE_CHECKING:
    from greenkfp.components.records import GateDecisionRecord

_VERTEX_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_VERTEX_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_VERTEX_PIPELINE_NAME = re.compile(r"^[a-z][-a-z0-9]{0,127}$")
_VERTEX_MAX_LABELS = 64
KFP_TOKEN_ENV = "KF_PIPELINES_TOKEN"


class SubmitError(ValueError):
    """Bad submission input: a parameter, a label, a name or the package."""


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs, values kept as text: :func:`typed_params` converts them by the
    pipeline's declared types."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SubmitError(f"--param must look like NAME=VALUE, got {pair!r}")
        params[key] = value
    return params


def _typed(name: str, text: Any, kind: str) -> Any:
    """One parameter's value as its declared KFP type (text from the command line, or already
    a value when called from Python)."""
    def bad(expected: str) -> SubmitError:
        return SubmitError(f"--param {name}={text!r}: {name} takes {expected}")

    if kind == "STRING":
        return text if isinstance(text, str) else json.dumps(text)
    if not isinstance(text, str):
        value = text
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise bad({"NUMBER_INTEGER": "a whole number", "NUMBER_DOUBLE": "a number", "BOOLEAN": "true or false",
                       "LIST": "a JSON list", "STRUCT": "a JSON object"}.get(kind, kind)) from None
    if kind == "NUMBER_INTEGER":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
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


def typed_params(spec: dict, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against the pipeline's declared parameters and converted to their
    types, before anything is sent: an unknown name or a value of the wrong type is an error
    that names it."""
    check_parameters(spec, params)
    declared = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {name: _typed(name, value, declared[name].get("parameterType", "STRING")) for name, value in params.items()}


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SubmitError(f"--label must look like KEY=VALUE, got {pair!r}")
        labels[key] = value
    return labels


def read_package(path: str | Path) -> dict:
    """The pipeline spec (first YAML document) of a compiled package; checks it is one."""
    try:
        with open(path, encoding="utf-8") as handle:
            documents = [d for d in yaml.safe_load_all(handle) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise SubmitError(f"cannot read the pipeline package {os.fspath(path)!r}: {exc}") from None
    if not documents or "pipelineInfo" not in documents[0]:
        raise SubmitError(f"{os.fspath(path)!r} is not a compiled KFP pipeline (no pipelineInfo)")
    return documents[0]


def check_parameters(spec: dict, params: dict[str, Any]) -> None:
    known = set(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))
    unknown = sorted(set(params) - known)
    if unknown:
        raise SubmitError(f"unknown pipeline parameter(s) {', '.join(unknown)}; the pipeline takes: {', '.join(sorted(known))}")


def check_vertex_package(path: str | Path, labels: dict[str, str]) -> dict:
    """Vertex AI's rules, checked before submitting: a single-document package (no
    kfp-kubernetes config), a valid pipeline name, valid labels."""
    with open(path, encoding="utf-8") as handle:
        count = sum(1 for d in yaml.safe_load_all(handle) if d)
    if count != 1:
        raise SubmitError(
            f"{os.fspath(path)!r} has {count} YAML documents; Vertex AI takes one (use compiled/vertex/, "
            "without kfp-kubernetes config)"
        )
    spec = read_package(path)
    name = spec["pipelineInfo"]["name"]
    if not _VERTEX_PIPELINE_NAME.match(name):
        raise SubmitError(f"pipeline name {name!r} breaks Vertex AI's rule [a-z][-a-z0-9]{{0,127}}")
    if len(labels) > _VERTEX_MAX_LABELS:
        raise SubmitError(f"Vertex AI takes at most {_VERTEX_MAX_LABELS} labels, got {len(labels)}")
    for key, value in labels.items():
        if not _VERTEX_LABEL_KEY.match(key):
            raise SubmitError(
                f"label key {key!r} breaks Vertex AI's rule: 1-63 lower-case letters, digits, '_' or '-', "
                "starting with a letter"
            )
        if not _VERTEX_LABEL_VALUE.match(value):
            raise SubmitError(f"label {key}={value!r}: values are at most 63 lower-case letters, digits, '_' or '-'")
    return spec


#: Longest any one call to a pipelines endpoint may take, seconds (connect, and each read).
REQUEST_TIMEOUT_S = 30.0


def safe_url(url: str) -> str:
    """``url`` without its userinfo (``user:secret@``), for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_host(host: str) -> str:
    """A KFP API endpoint URL (http or https, with a host); returned without a trailing slash."""
    try:
        parts = urlsplit(host)
        parts.port  # noqa: B018 (parses the port; a bad one raises)
    except ValueError:
        raise SubmitError(f"--host must be an http(s):// URL, got {safe_url(host)!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubmitError(f"--host must be an http(s):// URL such as https://kfp.example.com, got {safe_url(host)!r}")
    return host.rstrip("/")


def _token() -> str | None:
    return os.environ.get(KFP_TOKEN_ENV) or None


def preflight_kfp(host: str, *, timeout: float | None = None) -> None:
    """Check that ``host`` is a KFP v2 API that accepts our credentials, in one bounded call,
    before any waiting or submitting: a wrong host fails now, with one line, not hours later."""
    import httpx

    host = check_host(host)
    timeout = REQUEST_TIMEOUT_S if timeout is None else timeout
    headers = {"Authorization": f"Bearer {_token()}"} if _token() else {}
    where = f"{safe_url(host)}/apis/v2beta1/healthz"
    try:
        response = httpx.get(f"{host}/apis/v2beta1/healthz", headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        raise SubmitError(f"--host {safe_url(host)} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise SubmitError(f"cannot reach --host {safe_url(host)}: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise SubmitError(f"{where} refused the credentials (HTTP {response.status_code}); "
                          f"set {KFP_TOKEN_ENV} to a valid bearer token")
    if response.status_code >= 300:
        raise SubmitError(f"{where} answered HTTP {response.status_code}; is --host the KFP API endpoint?")
    try:
        response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        raise SubmitError(f"{where} answered {kind}, not JSON: --host is not a KFP API endpoint") from None


@contextlib.contextmanager
def _bounded_kfp_call(what: str, host: str):
    """Every request kfp.Client makes is bounded in time (its generated client sets no timeout,
    so the socket default applies), and its failures become one line naming the call."""
    import kfp_server_api
    import urllib3

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(REQUEST_TIMEOUT_S)
    try:
        yield
    except kfp_server_api.ApiException as exc:
        raise SubmitError(f"{safe_url(host)} refused {what}: HTTP {exc.status} {exc.reason or ''}".rstrip()) from None
    except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
        raise SubmitError(f"{what} at {safe_url(host)} failed: {type(exc).__name__}") from None
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
    preflight_kfp(host)
    with _bounded_kfp_call("create_run", host):
        result = _client(host, namespace).create_run_from_pipeline_package(
            str(package), arguments=params, run_name=run_name or spec["pipelineInfo"]["name"],
            experiment_name=experiment, namespace=namespace,
        )
    run_id = getattr(result, "run_id", None)
    if not run_id:
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
    preflight_kfp(host)
    start = start_at.astimezone(timezone.utc)
    opens, closes = one_off_schedule_window(start)
    with _bounded_kfp_call("create_recurring_run", host):
        client = _client(host, namespace)
        experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
        recurring = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=name or f"{spec['pipelineInfo']['name']}-green-window",
            cron_expression=f"0 {start.minute} {start.hour} {start.day} {start.month} *",  # KFP cron has seconds
            start_time=opens.strftime("%Y-%m-%dT%H:%M:%SZ"),
            end_time=closes.strftime("%Y-%m-%dT%H:%M:%SZ"),
            max_concurrency=1,
            pipeline_package_path=str(package),
            params=params,
            enable_caching=False,
        )
    recurring_id = getattr(recurring, "recurring_run_id", None)
    if not recurring_id:
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


def check_vertex_credentials() -> None:
    """Google application-default credentials exist (checked before any waiting)."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise SubmitError("no Google application-default credentials: run `gcloud auth application-default login` "
                          "or set GOOGLE_APPLICATION_CREDENTIALS") from None


def build_vertex_job(template: str | Path, *, project: str, location: str, pipeline_root: str,
                     params: dict[str, Any], labels: dict[str, str], display_name: str | None = None,
                     credentials=None):
    """The ``aiplatform.PipelineJob`` to submit, checked against Vertex AI's rules first."""
    from google.cloud import aiplatform

    if not pipeline_root.startswith("gs://"):
        raise SubmitError(f"pipeline_root must be a gs:// URI, got {pipeline_root!r}")
    spec = check_vertex_package(template, labels)
    params = typed_params(spec, params)
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
