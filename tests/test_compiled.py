"""Compiled YAML: in sync with the code, loadable, valid PipelineSpec protos, no secrets."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import components
from kfp.pipeline_spec import pipeline_spec_pb2

import greenkfp.components
from greenkfp.components._runtime import __version__
from greenkfp.pipelines.compile import compile_all, drift

ROOT = Path(__file__).resolve().parents[1]
COMPILED = ROOT / "compiled"
components_module = greenkfp.components
COMPONENTS = [n for n in components_module.__all__ if n != "__version__"]


def test_compiled_directory_matches_a_fresh_compile():
    problems = drift(COMPILED)
    assert problems == [], "compiled/ is stale; run `make compile`:\n" + "\n".join(problems)


def test_compiling_twice_is_byte_identical(tmp_path):
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in compile_all(tmp_path / "a")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in compile_all(tmp_path / "b")}
    assert first == second


@pytest.mark.parametrize("name", [n for n in greenkfp.components.__all__ if n != "__version__"])
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


@pytest.mark.parametrize("pipeline, name", [("carbon_gate", "greenkfp-carbon-gate"),
                                            ("carbon_aware_training", "greenkfp-carbon-aware-training")])
@pytest.mark.parametrize("platform, documents", [("kubeflow", 2), ("vertex", 1)])
def test_pipeline_yaml_parses_as_pipeline_spec(platform, documents, pipeline, name):
    docs = _documents(COMPILED / platform / f"{pipeline}.yaml")
    assert len(docs) == documents  # Vertex rejects the second (kfp-kubernetes) document
    spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.pipeline_info.name == name
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
        for executor in config.values():  # every pod carries the attribution labels
            assert {"team", "cost-center", "pipeline", "carbon-tier"} <= set(executor["podMetadata"]["labels"])
            assert executor["podMetadata"]["labels"]["pipeline"] == name
        spot = {k for k, v in config.items() if "nodeSelector" in v}
        assert spot == ({"exec-train-with-emissions", "exec-benchmark-variants"} if pipeline == "carbon_aware_training"
                        else set())
        assert all(config[k]["tolerations"][0]["key"] == "cloud.google.com/gke-spot" for k in spot)


def test_kubeflow_settings_tailor_the_compile(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "greenkfp.pipelines.cli", "compile", "--output-dir", str(tmp_path), "--team", "vision",
         "--cost-center", "cc-42", "--spot-node-selector", "eks.amazonaws.com/capacityType=SPOT",
         "--spot-toleration", "spot=true:NoExecute"], check=True, capture_output=True, cwd=tmp_path)
    docs = _documents(tmp_path / "kubeflow" / "carbon_aware_training.yaml")
    train = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-with-emissions"]
    assert train["podMetadata"]["labels"]["team"] == "vision" and train["podMetadata"]["labels"]["cost-center"] == "cc-42"
    assert train["nodeSelector"]["labels"] == {"eks.amazonaws.com/capacityType": "SPOT"}
    assert train["tolerations"][0] == {"key": "spot", "operator": "Equal", "value": "true", "effect": "NoExecute"}
    assert len(_documents(tmp_path / "vertex" / "carbon_aware_training.yaml")) == 1


def test_no_secret_reaches_compiled_yaml(tmp_path):
    canary = "CANARY-KEY-5b1f0e"
    env = {"ELECTRICITYMAPS_API_KEY": canary, "WATTTIME_USERNAME": canary, "WATTTIME_PASSWORD": canary, "PATH": ""}
    subprocess.run(
        [sys.executable, "-m", "greenkfp.pipelines.cli", "compile", "--output-dir", str(tmp_path)],
        env={**env, "HOME": str(tmp_path)}, check=True, capture_output=True, cwd=tmp_path,
    )
    written = list(tmp_path.rglob("*.yaml"))
    assert {p.relative_to(tmp_path).as_posix() for p in written} >= {
        "kubeflow/carbon_gate.yaml", "vertex/carbon_gate.yaml", "components/carbon_forecast_gate.yaml"}
    assert not [p for p in written if canary in p.read_text()]


def _portable(tmp_path, *extra):
    out = tmp_path / "portable"
    subprocess.run(
        [sys.executable, "-m", "greenkfp.pipelines.cli", "compile", "--portable", "--output-dir", str(out), *extra],
        check=True, capture_output=True, cwd=tmp_path,
    )
    return out


def _container(path):
    spec = yaml.safe_load(path.read_text())
    return next(iter(spec["deploymentSpec"]["executors"].values()))["container"]


def test_portable_compile_embeds_the_code_within_the_kernel_argument_limit(tmp_path):
    out = _portable(tmp_path)
    container = _container(out / "components" / "carbon_forecast_gate.yaml")
    assert container["image"] == "python:3.11-slim"
    assert "pip install" in " ".join(container["command"]) and "httpx" in " ".join(container["command"])
    # kfp passes the program (with the embedded archive) as one argument; Linux caps one at 128 KiB
    assert "__KFP_EMBEDDED_ARCHIVE_B64" in " ".join(container["command"])
    for path in (out / "components").glob("*.yaml"):
        spec = _container(path)
        assert max(len(arg.encode()) for arg in spec["command"] + spec["args"]) < 128 * 1024, path.name


def test_portable_compile_with_a_package_spec_installs_greenkfp_instead(tmp_path):
    spec = "greenkfp @ https://example.invalid/greenkfp-0.1.0-py3-none-any.whl"
    out = _portable(tmp_path, "--package-spec", spec)
    script = " ".join(_container(out / "components" / "carbon_forecast_gate.yaml")["command"])
    assert spec in script and "__KFP_EMBEDDED_ARCHIVE_B64" not in script


@pytest.mark.slow
def test_portable_component_runs_its_embedded_code(tmp_path, monkeypatch):
    """Through the local runner: the embedded copy (which leaves the data out) is what runs,
    so the embedded provider reports itself unconfigured and the gate fails open, recorded."""
    import json

    from kfp import local

    out = _portable(tmp_path)
    monkeypatch.chdir(tmp_path)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    gate = components.load_component_from_file(str(out / "components" / "carbon_forecast_gate.yaml"))
    task = gate(regions=["GB"], duration_hours=1.0, earliest_start="2023-06-14T09:00:00Z", mode="plan")
    with open(task.outputs["decision"].path, encoding="utf-8") as handle:
        record = json.load(handle)
    assert record["failure_policy_applied"] == "fail_open"
    assert "the embedded data is not in this build" in record["attempts"][0]["error"]


def test_portable_builds_embed_every_subpackage_the_code_imports_even_inside_functions():
    from greenkfp.components._runtime import _imported_subpackages, _portable_source_tree, required_subpackages

    def body():  # a component body whose only import reaches carbon through a function-level import in sci
        from greenkfp.components.sci.evaluate import evaluate_variants  # noqa: F401

    assert {"sci", "carbon"} <= set(required_subpackages(body))
    for name in COMPONENTS:
        needed = required_subpackages(getattr(components_module, name).python_func)
        tree = _portable_source_tree(needed) / "greenkfp" / "components"
        embedded = {p.name for p in tree.iterdir() if p.is_dir()}
        assert embedded == set(needed), name
        for path in tree.rglob("*.py"):  # closed under imports: nothing embedded names a missing subpackage
            package = path.relative_to(tree).parent.parts
            imported = _imported_subpackages(ast.parse(path.read_text(encoding="utf-8")), package)
            assert imported <= embedded, f"{name}: {path.relative_to(tree)} imports {sorted(imported - embedded)}"


def test_portable_builds_embed_only_the_modules_the_code_runs_and_all_of_them():
    """Module by module: every greenkfp module an embedded module imports is embedded (closed
    under imports, function-level ones and modules loaded by name included), and a subpackage's
    modules nothing imports are not (the governance package whole passes the 128 KiB limit)."""
    from greenkfp.components._runtime import (
        _imported_modules,
        _portable_source_tree,
        required_modules,
        required_subpackages,
    )

    for name in COMPONENTS:
        func = getattr(components_module, name).python_func
        tree = _portable_source_tree(required_subpackages(func), required_modules(func)) / "greenkfp" / "components"
        embedded = {p.relative_to(tree).as_posix() for p in tree.rglob("*.py")}
        for path in tree.rglob("*.py"):
            if not (path.parent / "__init__.py").is_file():
                continue  # data such as Alembic's migrations, read by path
            relative = path.relative_to(tree)
            imported = _imported_modules(ast.parse(path.read_text(encoding="utf-8")), relative.parent.parts)
            assert imported <= embedded, f"{name}: {relative} imports {sorted(imported - embedded)}"
    settle = components_module.settle_carbon_budget.python_func
    modules = required_modules(settle)
    assert "governance/client.py" in modules and "governance/gatekeeper.py" not in modules
    # providers are loaded by name (importlib): their whole folder travels with the gate
    gate = required_modules(components_module.carbon_forecast_gate.python_func)
    assert {"carbon/providers/uk.py", "carbon/providers/watttime.py"} <= set(gate)


def _resources(platform):
    spec = _documents(COMPILED / platform / "carbon_aware_training.yaml")[0]
    return {name: executor["container"].get("resources") for name, executor in spec["deploymentSpec"]["executors"].items()}


def test_the_benchmark_task_asks_for_whole_cpus_with_requests_equal_to_limits_on_kubeflow_only():
    kubeflow = _resources("kubeflow")
    bench = kubeflow["exec-benchmark-variants"]
    # requests equal limits, whole CPUs: the benchmark's container has a fixed CPU share (the pod's
    # QoS class also depends on KFP's launcher init container, which the pipeline cannot set)
    assert bench["resourceCpuRequest"] == bench["resourceCpuLimit"] == "2"
    assert bench["resourceMemoryRequest"] == bench["resourceMemoryLimit"]
    assert float(bench["resourceCpuRequest"]).is_integer()
    assert all(r is None for name, r in kubeflow.items() if name != "exec-benchmark-variants")
    # Vertex sizes machines itself (and kfp-kubernetes settings are kept off its YAML)
    assert all(r is None for r in _resources("vertex").values())


def test_portable_builds_follow_lazy_package_exports_only_when_a_component_names_them():
    """The report modules are exported lazily by their packages: the selection rules' importers
    (check_training_options) embed no HTML rendering, and a body that names a lazy export does."""
    from greenkfp.components._runtime import required_modules
    from greenkfp.components.preflight.component import check_training_options
    from greenkfp.components.reporting.component import sustainability_report
    from greenkfp.components.selection.component import select_pareto_model

    checks = required_modules(check_training_options.python_func)
    assert "selection/select.py" in checks
    assert not {"selection/report.py", "reporting/sustainability.py", "reporting/svg.py"} & set(checks)
    assert "reporting/sustainability.py" in required_modules(sustainability_report.python_func)
    assert "selection/report.py" in required_modules(select_pareto_model.python_func)

    def names_a_lazy_export():
        from greenkfp.components.selection import selection_html

        return selection_html

    def imports_the_package():
        import greenkfp.components.reporting

        return greenkfp.components.reporting

    assert {"selection/report.py", "reporting/svg.py"} <= set(required_modules(names_a_lazy_export))
    assert "reporting/sustainability.py" in required_modules(imports_the_package)
