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
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{parameter.flag} must be JSON ({exc.msg}), got {text!r}") from None
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
    try:
        candidates = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--candidates {path!r} is not readable JSON: {exc}") from None
    try:
        validate_candidates(candidates)
    except ValueError as exc:
        raise ValueError(f"--candidates {path!r}: {exc}") from None
    return candidates


def prepare_pipeline_root(path: str):
    """``--pipeline-root`` as a directory (created when missing), or an error naming it."""
    from pathlib import Path

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
    threshold or deadline is one line now, not a failed task later."""
    from greenkfp.components.carbon.params import policy_from_params

    policy_from_params(**{**values, "energy_kwh": values.get("energy_kwh") or None})
