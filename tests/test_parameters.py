"""One parameter spec: every component, pipeline and CLI command that takes a shared knob takes
it under the spec's name, type and default."""

import inspect
import typing

import pytest

from greenkfp import components
from greenkfp.components.parameters import GATE, SPEC, TRAINING
from greenkfp.pipelines.carbon_gate import build_carbon_gate_pipeline
from greenkfp.pipelines.cli import build_parser
from greenkfp.pipelines.platform import PLATFORMS
from greenkfp.pipelines.training import build_training_pipeline

COMPONENTS = [name for name in components.__all__ if name != "__version__"]


def _signature(item) -> inspect.Signature:
    func = getattr(item, "python_func", None) or getattr(item, "pipeline_func")
    return inspect.signature(func)


def _disagreements(owner: str, signature: inspect.Signature) -> list[str]:
    problems = []
    for name, param in signature.parameters.items():
        if name not in SPEC:
            continue
        spec = SPEC[name]
        annotation = typing.get_origin(param.annotation) or param.annotation
        if annotation is not spec.type:
            problems.append(f"{owner}.{name}: type {param.annotation!r}, spec {spec.type.__name__}")
        if param.default is not inspect.Parameter.empty and param.default != spec.default:
            problems.append(f"{owner}.{name}: default {param.default!r}, spec {spec.default!r}")
    return problems


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_parameters_agree_with_the_spec(name):
    assert _disagreements(name, _signature(getattr(components, name))) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_pipelines_declare_only_spec_parameters_and_agree_with_it(platform):
    for build, expected in ((build_carbon_gate_pipeline, set(GATE)), (build_training_pipeline, set(SPEC))):
        signature = _signature(build(platform))
        assert _disagreements(build.__name__, signature) == []
        assert set(signature.parameters) == expected, build.__name__


def test_every_spec_parameter_is_taken_by_some_component_or_the_cli_only():
    taken = set()
    for name in COMPONENTS:
        taken |= set(_signature(getattr(components, name)).parameters)
    # `candidates` reaches resolve_candidates; each other knob must reach a component under its name
    assert set(SPEC) - taken == set()


def _subcommand(parser, *path):
    for name in path:
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("path, names", [
    (("run-local",), set(SPEC)),
    (("submit", "kfp"), {"regions", "provider", "duration_hours", "max_delay_hours", "deadline"}),
    (("forecast",), {"provider", "duration_hours"}),
    (("serve",), {"hardware_profile", "provider"}),
])
def test_cli_options_carry_the_spec_names_and_defaults(path, names):
    parser = _subcommand(build_parser(), *path)
    by_dest = {a.dest: a for a in parser._actions}
    for name in names:
        spec = SPEC[name]
        action = by_dest[name]
        assert spec.flag in action.option_strings
        local = path == ("run-local",) and spec.cli_default is not None
        assert action.default == (spec.cli_default if local else spec.default), name
        assert spec.help in action.help


def test_run_local_parses_durations_and_json_into_pipeline_values():
    args = build_parser().parse_args([
        "run-local", "--duration", "90m", "--max-delay", "1d", "--provider-options", '{"embedded": {"signal": "direct"}}',
        "--selection-constraints", '{"min_accuracy": 0.9}', "--sci-seconds", "0.5", "--replay-year", "2022",
    ])
    from greenkfp.pipelines.cli import _gate_arguments

    gate = _gate_arguments(args)
    assert gate["duration_hours"] == 1.5 and gate["max_delay_hours"] == 24.0 and gate["mode"] == "plan"
    assert gate["provider_options"] == {"embedded": {"signal": "direct", "replay_year": 2022}}  # merged
    contradicting = build_parser().parse_args(["run-local", "--provider-options", '{"embedded": {"replay_year": 2023}}',
                                                "--replay-year", "2022"])
    with pytest.raises(ValueError, match="--replay-year 2022 contradicts replay_year 2023"):
        _gate_arguments(contradicting)
    assert args.selection_constraints == {"min_accuracy": 0.9} and args.max_seconds_per_variant == 0.5


@pytest.mark.parametrize("argv, message", [
    (["--duration", "soon"], "--duration must be a duration such as 2h"),
    (["--sci-seconds", "nan"], "--sci-seconds must be a finite number"),
    (["--seed", "1.5"], "--seed must be a whole number"),
    (["--selection-weights", "[1]"], "--selection-weights must be a JSON object"),
    (["--provider-options", "{"], "--provider-options is not valid JSON"),
    (["--selection-weights", "{\"sci\": 1e400}"], "--selection-weights is not valid JSON: a number too large"),
    (["--selection-constraints", "{\"max_latency_ms\": NaN}"], "NaN is not a number JSON allows"),
    (["--hardware-overrides", "[" * 100000], "--hardware-overrides is JSON nested too deeply"),
])
def test_bad_option_values_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["run-local", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
