"""Command-line options built from the shared parameter spec (``greenkfp.components.parameters``),
so that a knob has one name, default and help on the command line, in the components and in
the pipelines.

Each option's ``dest`` is the parameter's name, and its value arrives already converted (hours
for durations, lists and dicts for JSON): ``spec_values(args, names)`` is the pipeline's
arguments as they are.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import timedelta
from typing import Iterable

from greenkfp.components._messages import shorten
from greenkfp.components.parameters import SPEC, Parameter


def _number(parameter: Parameter):
    def convert(text: str):
        try:
            value = parameter.type(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{parameter.flag} must be {'a whole number' if parameter.type is int else 'a number'}, got {text!r}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{parameter.flag} must be a finite number, got {text!r}")
        return value
    return convert


#: Longest duration any option takes (a job, a delay, a deadline): one year, hours.
MAX_HOURS = 366 * 24.0


def duration_hours(text: str, flag: str) -> float:
    """``2h``, ``90m``, ``1d`` or a number of hours, as hours; bounded by :data:`MAX_HOURS`."""
    from greenkfp.components.carbon.params import parse_duration

    try:
        hours = parse_duration(text, flag) / timedelta(hours=1)
    except OverflowError:
        hours = math.inf
    if hours < 0 or hours > MAX_HOURS:
        raise ValueError(f"{flag} must be between 0 and {MAX_HOURS / 24:g} days, got {text!r}")
    return hours


def _duration_hours(parameter: Parameter):
    def convert(text: str) -> float:
        try:
            return duration_hours(text, parameter.flag)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _json_value(parameter: Parameter):
    def convert(text: str):
        from greenkfp.components._checks import strict_json

        try:
            value = strict_json(text, parameter.flag)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{exc}; got {shorten(text)}") from None
        if not isinstance(value, parameter.type):
            raise argparse.ArgumentTypeError(
                f"{parameter.flag} must be a JSON {'object' if parameter.type is dict else 'list'}, got {text!r}"
            )
        return value
    return convert


def add_spec_options(parser, names: Iterable[str], *, local: bool = False) -> None:
    """Add the options of the spec's parameters ``names`` to ``parser`` (or an argument group).

    ``local``: the command runs on this machine (``run-local``), so a parameter's
    ``cli_default`` replaces its default, and its help says so.
    """
    from greenkfp.components.carbon.providers import PROVIDER_NAMES

    for name in names:
        p = SPEC[name]
        default = p.cli_default if local and p.cli_default is not None else p.fresh_default()
        shown = default if p.kind != "duration" else f"{default:g}h"
        note = f" (default: {shown}" + ("; pipelines default to " + str(p.default) if default != p.default else "") + ")"
        options: dict = {"dest": p.name, "default": default, "help": p.help + note}
        choices = PROVIDER_NAMES if p.name in ("provider", "fallback_providers") else p.choices
        if choices:
            options["choices"] = choices
        if p.kind == "list":
            options.update(nargs="+" if p.name == "regions" else "*", metavar=p.name.upper().rstrip("S"))
        elif p.kind == "duration":
            options["type"] = _duration_hours(p)
        elif p.kind == "json":
            options.update(type=_json_value(p), metavar="JSON")
        elif p.type in (int, float):
            options["type"] = _number(p)
        parser.add_argument(p.flag, **options)


def spec_values(args: argparse.Namespace, names: Iterable[str]) -> dict:
    """The parsed values of ``names``, keyed by parameter name."""
    return {name: getattr(args, name) for name in names}


def read_candidates(path: str) -> list:
    """The candidates file of ``--candidates``: a JSON list of specs, each built and trial-fitted
    (:func:`~greenkfp.components.training.estimators.validate_candidates`) before anything runs."""
    from pathlib import Path

    from greenkfp.components.training.estimators import validate_candidates

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--candidates must be a JSON file, {path!r} {'is a directory' if file.is_dir() else 'does not exist'}")
    from greenkfp.components._checks import strict_json

    try:
        candidates = strict_json(file.read_text(encoding="utf-8"), f"--candidates {path!r}")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--candidates {path!r} is not readable JSON: {exc}") from None
    try:
        validate_candidates(candidates)
    except ValueError as exc:
        raise ValueError(f"--candidates {path!r}: {exc}") from None
    return candidates


def prepare_pipeline_root(path: str):
    """``--pipeline-root`` as a directory (created when missing), or an error naming it."""
    from pathlib import Path

    if not str(path).strip():
        raise ValueError("--pipeline-root must name a directory, got an empty string")
    if "://" in str(path):
        raise ValueError(f"--pipeline-root must be a local directory (run-local writes on this machine), got {path!r}")
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--pipeline-root must be a directory, {path!r} is not")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--pipeline-root {path!r} cannot be created: {exc.strerror}") from None
    return root


def check_gate_values(values: dict) -> None:
    """Build the gate's policy from the values once, before the pipeline starts, so a bad
    threshold, or a deadline too close for the job, is one line now, not a failed task later."""
    from datetime import datetime, timezone

    from greenkfp.components.carbon.params import policy_from_params
    from greenkfp.components.carbon.providers import check_regions  # the one region check (serve's too)

    policy = policy_from_params(**{**values, "energy_kwh": values.get("energy_kwh") or None})
    policy.latest_end(policy.earliest_start or datetime.now(timezone.utc))
    check_regions(policy.provider, policy.regions)


def check_deploy_region(region: str) -> None:
    """``deploy_region`` checked as ``greenkfp serve --region`` checks it, before the run: the
    run's first step leaves it to the ``deploy-model`` step (its embedded code must stay under the
    kernel's argument limit, without the carbon package)."""
    from greenkfp.components.serving.manifests import ManifestError
    from greenkfp.components.serving.region import check_server_region

    try:
        check_server_region(region)
    except ManifestError as exc:
        raise ValueError(f"deploy_{exc}") from None


def check_local_training(arguments: dict) -> None:
    """The training options, checked as the pipeline's first step checks them, and a dataset on
    this machine (a builtin, or a local file) loaded and validated, all before the run starts:
    a mistake exits 2 with one line and leaves no run directory behind."""
    from greenkfp.components.data.datasets import BUILTIN_DATASETS, load_source, validate_classification_frame
    from greenkfp.components.parameters import TRAINING
    from greenkfp.components.governance.client import GatekeeperError, check_gatekeeper_url, token_from_env
    from greenkfp.components.preflight import check_training_options

    try:
        check_training_options(**{name: arguments[name] for name in TRAINING
                                  if name not in ("dataset", "label_column", "candidates", "summary_json",
                                                  "gatekeeper_url")})
        check_deploy_region(arguments["deploy_region"])
        if arguments["gatekeeper_url"]:  # the run's first step would stop on these, after the wait
            check_gatekeeper_url(arguments["gatekeeper_url"])
            _check_gatekeeper(arguments["gatekeeper_url"], token_from_env("GREENKFP_GATEKEEPER_TOKEN"))
    except (ValueError, GatekeeperError) as exc:  # name the option the user typed, not only the pipeline's parameter
        message = str(exc)
        named = next((p for name, p in TRAINING.items() if p.flag and message.startswith(name)), None)
        raise ValueError(f"{named.flag}: {message}" if named else message) from None
    dataset = arguments["dataset"]
    if dataset in BUILTIN_DATASETS or "://" not in dataset:  # remote URIs are read by the pipeline's first step
        frame, label = load_source(dataset, arguments["label_column"] or None)
        validate_classification_frame(frame, label)


def _check_gatekeeper(url: str, token: str) -> None:
    """Ask the gatekeeper once who the token is: a dead gatekeeper, or a token it does not take
    (or not a team's), is one line before the run starts, not a failed first step after it."""
    from greenkfp.components.governance.client import GatekeeperClient, GatekeeperError

    with GatekeeperClient(url, token, timeout_s=10.0, retries=0) as gatekeeper:
        try:
            who = gatekeeper.whoami()
        except GatekeeperError as exc:
            if exc.status == 401:
                raise GatekeeperError(f"gatekeeper_url: {url} does not take the token in GREENKFP_GATEKEEPER_TOKEN "
                                      "(HTTP 401)") from None
            raise
    if who.get("role") != "team":
        raise GatekeeperError(f"gatekeeper_url: the token in GREENKFP_GATEKEEPER_TOKEN is the {who.get('role')}'s, "
                              "not a team's")


def check_gate_only(args: argparse.Namespace) -> None:
    """``--pipeline gate`` takes the gate's options only: a training option given with it is a
    mistake worth naming, not something to ignore silently."""
    from greenkfp.components.parameters import TRAINING

    given = [p.flag for name, p in TRAINING.items() if getattr(args, name) != p.fresh_default()]
    if given:
        raise ValueError(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --pipeline training only")
