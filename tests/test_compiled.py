"""Compiled YAML: in sync with the code, loadable, valid PipelineSpec protos, no secrets."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2

from greenkfp.components._runtime import __version__
from greenkfp.pipelines.compile import compile_all, drift

ROOT = Path(__file__).resolve().parents[1]
COMPILED = ROOT / "compiled"


def test_compiled_directory_matches_a_fresh_compile():
    problems = drift(COMPILED)
    assert problems == [], "compiled/ is stale; run `make compile`:\n" + "\n".join(problems)


def test_compiling_twice_is_byte_identical(tmp_path):
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in compile_all(tmp_path / "a")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in compile_all(tmp_path / "b")}
    assert first == second


@pytest.mark.parametrize("name", ["carbon_forecast_gate", "gate_outcome"])
def test_component_yaml_loads_back(name):
    component = components.load_component_from_file(str(COMPILED / "components" / f"{name}.yaml"))
    assert component.name == name.replace("_", "-")
    assert component.component_spec.description  # the docstring travels with the YAML


def test_gate_component_yaml_exposes_the_documented_interface():
    gate = components.load_component_from_file(str(COMPILED / "components" / "carbon_forecast_gate.yaml"))
    spec = gate.component_spec
    assert {"regions", "duration_hours", "provider", "fallback_providers", "deadline", "max_delay_hours", "threshold",
            "on_provider_failure", "mode", "energy_kwh", "provider_options"} <= set(spec.inputs)
    assert {"should_run", "start_at", "delay_seconds", "decision", "metrics", "summary"} <= set(spec.outputs)
    assert spec.outputs["metrics"].type == "system.Metrics@0.0.1"


def _documents(path):
    with open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if d]


@pytest.mark.parametrize("platform, documents", [("kubeflow", 2), ("vertex", 1)])
def test_pipeline_yaml_parses_as_pipeline_spec(platform, documents):
    docs = _documents(COMPILED / platform / "carbon_gate.yaml")
    assert len(docs) == documents  # Vertex rejects the second (kfp-kubernetes) document
    spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == "greenkfp-carbon-gate"
    executors = spec.deployment_spec.fields["executors"].struct_value.fields
    images = {e.struct_value.fields["container"].struct_value.fields["image"].string_value for e in executors.values()}
    assert images == {f"ghcr.io/greenkfp/greenkfp:{__version__}"}
    for executor in executors.values():
        command = " ".join(
            v.string_value for v in executor.struct_value.fields["container"].struct_value.fields["command"].list_value.values
        )
        assert "pip install" not in command  # the image has everything: nothing installs at start-up
    if platform == "kubeflow":
        platform_spec = json_format.ParseDict(docs[1], pipeline_spec_pb2.PlatformSpec())
        config = json_format.MessageToDict(platform_spec)["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        gate = config["exec-carbon-forecast-gate"]
        assert gate["secretAsEnv"][0]["secretName"] == "greenkfp-carbon-credentials"
        assert gate["secretAsEnv"][0]["optional"] is True
        assert gate["podMetadata"]["labels"]["greenkfp.io/component"] == "carbon-forecast-gate"


def test_no_secret_reaches_compiled_yaml(tmp_path):
    canary = "CANARY-KEY-5b1f0e"
    env = {"ELECTRICITYMAPS_API_KEY": canary, "WATTTIME_USERNAME": canary, "WATTTIME_PASSWORD": canary, "PATH": ""}
    subprocess.run(
        [sys.executable, "-m", "greenkfp.pipelines.cli", "compile", "--output-dir", str(tmp_path)],
        env={**env, "HOME": str(tmp_path)}, check=True, capture_output=True, cwd=tmp_path,
    )
    written = list(tmp_path.rglob("*.yaml"))
    assert len(written) == 4
    assert not [p for p in written if canary in p.read_text()]


def test_portable_compile_embeds_the_package_and_installs_dependencies(tmp_path):
    out = tmp_path / "portable"
    subprocess.run(
        [sys.executable, "-m", "greenkfp.pipelines.cli", "compile", "--portable", "--output-dir", str(out)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    gate = yaml.safe_load((out / "components" / "carbon_forecast_gate.yaml").read_text())
    container = next(iter(gate["deploymentSpec"]["executors"].values()))["container"]
    assert container["image"] == "python:3.11-slim"
    script = " ".join(container["command"])
    assert "pip install" in script and "httpx" in script
    assert "__KFP_EMBEDDED_ARCHIVE_B64" in script or "base64" in script
