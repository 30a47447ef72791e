"""Submit compiled pipelines to Kubeflow Pipelines (``kfp.Client``) or Vertex AI Pipelines
(``aiplatform.PipelineJob``), optionally at the greenest time the carbon gate's core finds.

Names and labels are checked against Vertex AI's rules before anything is sent. Credentials
come from the environment (``KF_PIPELINES_TOKEN`` for a KFP endpoint behind auth; Google
application-default credentials for Vertex AI), never from arguments.
"""

from __future__ import annotations

import json
import os
import re
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


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON (numbers, lists, objects, true) is taken as JSON."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SubmitError(f"--param must look like NAME=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


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


def submit_kfp(package: str | Path, *, host: str, params: dict[str, Any], experiment: str | None = None,
               namespace: str | None = None, run_name: str | None = None) -> str:
    """Create a run on a KFP v2 endpoint; return its id."""
    import kfp

    spec = read_package(package)
    check_parameters(spec, params)
    client = kfp.Client(host=host, namespace=namespace, existing_token=os.environ.get(KFP_TOKEN_ENV) or None)
    result = client.create_run_from_pipeline_package(
        str(package), arguments=params, run_name=run_name or spec["pipelineInfo"]["name"],
        experiment_name=experiment, namespace=namespace,
    )
    return result.run_id


def kfp_one_off_schedule(package: str | Path, *, host: str, params: dict[str, Any], start_at: datetime,
                         experiment: str = "Default", namespace: str | None = None, name: str | None = None) -> str:
    """A recurring run that fires once, at ``start_at`` (its cron matches that minute and its
    window closes an hour later); return its id. The endpoint runs it: nothing waits here."""
    import kfp

    spec = read_package(package)
    check_parameters(spec, params)
    client = kfp.Client(host=host, namespace=namespace, existing_token=os.environ.get(KFP_TOKEN_ENV) or None)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    start = start_at.astimezone(timezone.utc)
    recurring = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=name or f"{spec['pipelineInfo']['name']}-green-window",
        cron_expression=f"0 {start.minute} {start.hour} {start.day} {start.month} *",  # KFP cron has seconds
        start_time=start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_time=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        max_concurrency=1,
        pipeline_package_path=str(package),
        params=params,
        enable_caching=False,
    )
    return recurring.recurring_run_id


def build_vertex_job(template: str | Path, *, project: str, location: str, pipeline_root: str,
                     params: dict[str, Any], labels: dict[str, str], display_name: str | None = None,
                     credentials=None):
    """The ``aiplatform.PipelineJob`` to submit, checked against Vertex AI's rules first."""
    from google.cloud import aiplatform

    if not pipeline_root.startswith("gs://"):
        raise SubmitError(f"pipeline_root must be a gs:// URI, got {pipeline_root!r}")
    spec = check_vertex_package(template, labels)
    check_parameters(spec, params)
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
