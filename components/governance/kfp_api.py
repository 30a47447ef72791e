"""What the gatekeeper needs to know of the KFP v2beta1 REST API: its error format, the paths
``kfp.Client`` uses to create runs and recurring runs, and what a submission's body says about
its cost (the pipeline's name, its steps, its parameters, its pod labels).

Plain Python (no kfp import): the bodies are JSON as ``kfp.Client`` (kfp 2.17) sends them.

KFP's API server answers errors as grpc-gateway writes them::

    {"error": "<message>", "code": <gRPC code>, "message": "<message>", "details": [<Any>, ...]}

with the HTTP status grpc-gateway maps the gRPC code to; ``kfp_server_api`` raises an
``ApiException`` whose ``status`` is that HTTP status and whose ``body`` is that JSON.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "API",
    "GRPC",
    "KfpApiError",
    "MAX_ENERGY_KWH",
    "Submission",
    "check_id",
    "error_body",
    "parse_submission",
    "pipeline_spec_of",
    "quota_failure",
    "with_spec",
]

#: The largest energy a submission may declare, kWh (a terawatt-hour): the proxy's
#: ``energy_kwh`` parameter and the admission API's ``energy_kwh`` alike.
MAX_ENERGY_KWH = 1e9

#: The API's prefix.
API = "/apis/v2beta1"

#: gRPC status codes used here, with the HTTP status grpc-gateway maps each to.
GRPC = {
    "INVALID_ARGUMENT": (3, 400),
    "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "ABORTED": (10, 409),
    "RESOURCE_EXHAUSTED": (8, 429),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "UNAUTHENTICATED": (16, 401),
}

ERROR_DOMAIN = "greenkfp.io"


class KfpApiError(Exception):
    """An answer in KFP's error format: ``status`` (HTTP), ``body`` (the JSON)."""

    def __init__(self, grpc_status: str, message: str, *, reason: str = "", details: list[dict] | None = None,
                 metadata: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = GRPC[grpc_status][1]
        self.body = error_body(grpc_status, message, reason=reason, details=details, metadata=metadata)


def error_body(grpc_status: str, message: str, *, reason: str = "", details: list[dict] | None = None,
               metadata: Mapping[str, str] | None = None) -> dict:
    """grpc-gateway's error JSON for ``grpc_status`` (a key of :data:`GRPC`); ``reason`` (an
    upper-case word) adds a ``google.rpc.ErrorInfo`` with ``metadata`` (string values) to
    ``details``."""
    code, _ = GRPC[grpc_status]
    all_details = list(details or ())
    if reason:
        all_details.append({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                            "domain": ERROR_DOMAIN, "metadata": {k: str(v) for k, v in (metadata or {}).items()}})
    return {"error": message, "code": code, "message": message, "details": all_details}


def quota_failure(subject: str, reasons: list[str] | tuple[str, ...]) -> dict:
    """A ``google.rpc.QuotaFailure`` detail: one violation per reason."""
    return {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"subject": subject, "description": reason} for reason in reasons]}


# --------------------------------------------------------------------------- submissions


@dataclass(frozen=True)
class Submission:
    """What a create-run or create-recurring-run body says about the run's cost.

    Attributes:
        kind: ``run`` or ``recurring_run``.
        pipeline: The pipeline's name (``pipelineInfo.name``), else ``pipeline:<id>``.
        steps: The pipeline's container steps (executors), >= 1.
        parameters: The run's runtime parameters.
        labels: Pod labels every step of the pipeline carries alike (kfp-kubernetes config).
        version_reference: ``(pipeline_id, pipeline_version_id)`` when the body names a stored
            pipeline version instead of carrying the spec; the spec then comes from the API.
    """

    kind: str
    pipeline: str
    steps: int
    parameters: Mapping[str, Any] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    version_reference: tuple[str, str] | None = None

    def energy_kwh(self) -> float | None:
        """The run's ``energy_kwh`` parameter, if it has one above 0 (0 means none, as in the gate).

        Raises:
            KfpApiError: INVALID_ARGUMENT when it is not a number from 0 to :data:`MAX_ENERGY_KWH`
                (as the admission API's ``energy_kwh``).
        """
        value = self.parameters.get("energy_kwh")
        if value is None:
            return None
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
                or not 0 <= number <= MAX_ENERGY_KWH:
            shown = repr(value)
            raise _bad(f"runtime_config.parameters.energy_kwh must be a number from 0 to {MAX_ENERGY_KWH:g} kWh, "
                       f"got {shown if len(shown) <= 80 else shown[:80] + '...'}")
        return float(number) or None

    def text_parameter(self, name: str) -> str | None:
        value = self.parameters.get(name)
        return value.strip() or None if isinstance(value, str) else None

    def region(self) -> str | None:
        """The home region: the first of the ``regions`` parameter (a list, or JSON text of one)."""
        regions = self.parameters.get("regions")
        if isinstance(regions, str):
            try:
                regions = json.loads(regions)
            except ValueError:
                return None
        if isinstance(regions, list) and regions and isinstance(regions[0], str) and regions[0].strip():
            return regions[0].strip()
        return None

    def duration_hours(self) -> float | None:
        value = self.parameters.get("duration_hours")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            return None
        return float(value)


def _bad(message: str) -> KfpApiError:
    return KfpApiError("INVALID_ARGUMENT", message, reason="INVALID_SUBMISSION")


#: A KFP object's id (KFP's are UUIDs): letters, digits, ``.``, ``_`` and ``-``, not starting
#: with ``.`` (so never ``.`` or ``..``), at most 256 characters. The gatekeeper puts ids into the
#: KFP API's paths: anything else could name another path of the API.
_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,255}")


def check_id(name: str, value: Any) -> str:
    """``value`` if it is a KFP id (see :data:`_ID`); else a KfpApiError (400) naming ``name``."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:80] + "..."
        raise _bad(f"{name} must be a KFP id: 1 to 256 letters, digits, '.', '_' or '-', not starting with '.', "
                   f"got {shown}")
    return value


def pipeline_spec_of(spec: Any) -> tuple[dict | None, dict]:
    """``(pipeline spec, platform spec)`` of a body's ``pipeline_spec``: ``kfp.Client`` sends the
    spec itself, or ``{"pipeline_spec": ..., "platform_spec": ...}`` when the package carries
    kfp-kubernetes config (a second YAML document)."""
    if not isinstance(spec, Mapping) or not spec:
        return None, {}
    if "pipeline_spec" in spec and isinstance(spec["pipeline_spec"], Mapping):
        platform = spec.get("platform_spec")
        return dict(spec["pipeline_spec"]), dict(platform) if isinstance(platform, Mapping) else {}
    return dict(spec), {}


def _steps(spec: Mapping) -> int:
    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    return max(1, len(executors) if isinstance(executors, Mapping) else 0)


_LABEL_VALUE = re.compile(r"[A-Za-z0-9._/-]{0,253}")


def _common_labels(platform: Mapping) -> dict[str, str]:
    """The pod labels every step of the pipeline carries with the same value."""
    executors = (((platform.get("platforms") or {}).get("kubernetes") or {}).get("deploymentSpec") or {}).get(
        "executors") or {}
    if not isinstance(executors, Mapping) or not executors:
        return {}
    common: dict[str, str] | None = None
    for config in executors.values():
        labels = ((config or {}).get("podMetadata") or {}).get("labels") or {} if isinstance(config, Mapping) else {}
        labels = {str(k): v for k, v in labels.items() if isinstance(v, str)} if isinstance(labels, Mapping) else {}
        common = labels if common is None else {k: v for k, v in common.items() if labels.get(k) == v}
    return {k: v for k, v in (common or {}).items() if _LABEL_VALUE.fullmatch(k) and len(v) <= 253}


def parse_submission(body: Any, kind: str) -> Submission:
    """What a create-run (``kind`` ``run``) or create-recurring-run (``recurring_run``) body says.

    Raises:
        KfpApiError: INVALID_ARGUMENT when the body is not an object, carries neither a spec nor
            a pipeline version reference, or has parameters that are not an object.
    """
    if not isinstance(body, Mapping):
        raise _bad(f"the {kind.replace('_', ' ')} must be a JSON object")
    config = body.get("runtime_config") or {}
    if not isinstance(config, Mapping):
        raise _bad("runtime_config must be an object")
    parameters = config.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise _bad("runtime_config.parameters must be an object")
    spec, platform = pipeline_spec_of(body.get("pipeline_spec"))
    reference = body.get("pipeline_version_reference")
    if spec is None:
        if not isinstance(reference, Mapping) or not reference.get("pipeline_id"):
            raise _bad(f"the {kind.replace('_', ' ')} carries neither pipeline_spec nor pipeline_version_reference")
        version_id = reference.get("pipeline_version_id") or ""
        version = (check_id("pipeline_version_reference.pipeline_id", reference["pipeline_id"]),
                   check_id("pipeline_version_reference.pipeline_version_id", version_id) if version_id else "")
        return Submission(kind, f"pipeline:{version[0]}", 1, dict(parameters), {}, version)
    return _described(kind, spec, platform, dict(parameters), None)


def with_spec(submission: Submission, version: Any) -> Submission:
    """``submission`` completed from its stored pipeline version (the API's answer to
    ``GET /pipelines/{id}/versions/{version id}``): name, steps and labels from its spec."""
    spec, platform = pipeline_spec_of(version.get("pipeline_spec") if isinstance(version, Mapping) else None)
    if spec is None:
        return submission
    return _described(submission.kind, spec, platform, submission.parameters, submission.version_reference)


def _described(kind: str, spec: Mapping, platform: Mapping, parameters: Mapping,
               version: tuple[str, str] | None) -> Submission:
    info = spec.get("pipelineInfo") or {}
    name = info.get("name") if isinstance(info, Mapping) else None
    pipeline = name.strip()[:200] if isinstance(name, str) and name.strip() else "unnamed-pipeline"
    return Submission(kind, pipeline, _steps(spec), dict(parameters), _common_labels(platform), version)
