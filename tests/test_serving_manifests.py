"""deploy_model's manifests: built from a selection, validated against the Kubernetes schemas,
refused when broken; the CLI and the component (kfp's local runner) write the same files."""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from greenkfp.components import __version__
from greenkfp.components._runtime import IMAGE_REPOSITORY, component_image
from greenkfp.components.records import SelectionRecord
from greenkfp.components.serving.manifests import (
    KUBERNETES_VERSION,
    LIVE_PATH,
    METRICS_PATH,
    PORT,
    READY_PATH,
    ManifestError,
    deploy_options,
    deployment,
    from_selection,
    inference_service,
    render_manifests,
    service,
    storage_uri_from_artifact,
    validate_manifests,
)
from greenkfp.pipelines.cli import main

SELECTION = {"schema": "greenkfp.selection/v1", "promote": True, "chosen": "logreg/int8_dynamic",
             "reason": "knee of the front", "rule": "knee", "chosen_model_uri": "/data/int8_dynamic.onnx"}
BLOCKED = {**SELECTION, "promote": False, "chosen": None, "chosen_model_uri": None,
           "reason": "no variant met max_accuracy_drop_points=1.0"}


def options(**changes):
    return deploy_options(**{"name": "digits", "storage_uri": "gs://models/digits/int8.onnx", **changes})


def documents(o=None):
    o = o or options()
    return {"inferenceservice.yaml": inference_service(o), "deployment.yaml": deployment(o),
            "service.yaml": service(o)}


def server(document):
    spec = document["spec"]["predictor"] if document["kind"] == "InferenceService" else document["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    return spec, container


@pytest.mark.parametrize("uri", ["gs://models/digits/int8.onnx", "s3://b/k/model.onnx", "pvc://models/digits/m.onnx"])
def test_manifests_pass_the_kubernetes_schemas(uri):
    validate_manifests(documents(options(storage_uri=uri)))  # raises on any problem
    texts = render_manifests(options(storage_uri=uri))
    assert set(texts) == {"inferenceservice.yaml", "deployment.yaml", "service.yaml"}
    assert all(f"kubectl apply -f {name}" in text for name, text in texts.items())


def test_the_server_container_runs_greenkfp_serve_from_the_librarys_image_with_oip_probes(monkeypatch):
    monkeypatch.delenv("GREENKFP_IMAGE", raising=False)
    o = options(cpu=2, max_batch_size=16, max_batch_delay_ms=2.5, region="DE-LU")
    for document in documents(o).values():
        if document["kind"] == "Service":
            assert document["spec"]["ports"] == [{"name": "http1", "port": PORT, "targetPort": "http1", "protocol": "TCP"}]
            continue
        spec, container = server(document)
        assert container["image"] == f"{IMAGE_REPOSITORY}:{__version__}" == component_image()
        assert container["command"] == ["greenkfp"]
        args = container["args"]
        assert args[0] == "serve"
        flags = dict(zip(args[1::2], args[2::2]))
        assert flags == {"--model": "/mnt/models/int8.onnx", "--name": "digits", "--host": "0.0.0.0", "--port": "8080",
                         "--max-batch-size": "16", "--max-batch-delay-ms": "2.5", "--threads": "2",
                         "--hardware-profile": "n2-standard-4", "--region": "DE-LU"}
        assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
        assert container["readinessProbe"]["httpGet"]["path"] == READY_PATH == "/v2/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == LIVE_PATH == "/v2/health/live"
        # n2-standard-4: 16 GB over 4 vCPUs -> 4 GiB per vCPU; requests = limits (Guaranteed)
        assert container["resources"]["requests"] == container["resources"]["limits"] == {"cpu": "2", "memory": "8192Mi"}


def test_kserve_fetches_the_model_and_scrapes_metrics():
    isvc = inference_service(options())
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    _, container = server(isvc)
    assert container["env"] == [{"name": "STORAGE_URI", "value": "gs://models/digits/int8.onnx"}]
    annotations = isvc["metadata"]["annotations"]
    assert annotations["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert annotations["prometheus.kserve.io/port"] == "8080" and annotations["prometheus.kserve.io/path"] == METRICS_PATH
    assert isvc["spec"]["predictor"]["minReplicas"] == 1 and isvc["spec"]["predictor"]["maxReplicas"] == 3


def test_the_plain_deployment_gets_the_model_by_the_storage_initializer_or_a_pvc():
    spec, container = server(deployment(options()))
    (init,) = spec["initContainers"]
    assert init["image"].startswith("kserve/storage-initializer:") and init["args"] == ["gs://models/digits/int8.onnx",
                                                                                       "/mnt/models"]
    assert {"name": "model", "mountPath": "/mnt/models", "readOnly": True} in container["volumeMounts"]
    spec, container = server(deployment(options(storage_uri="pvc://claim-a/digits/m.onnx")))
    assert "initContainers" not in spec
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "claim-a", "readOnly": True}} in spec["volumes"]
    assert container["args"][container["args"].index("--model") + 1] == "/mnt/pvc/digits/m.onnx"
    annotations = deployment(options())["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}


def _break(document, path, value):
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


CONTAINER_IN = {"inferenceservice.yaml": ["spec", "predictor", "containers", 0],
                "deployment.yaml": ["spec", "template", "spec", "containers", 0]}


@pytest.mark.parametrize("file", ["inferenceservice.yaml", "deployment.yaml"])
@pytest.mark.parametrize("where, value, message", [
    (["ports", 0, "containerPort"], 70000, "containerPort must be from 1 to 65535, got 70000"),
    (["ports", 0, "containerPort"], "8080", "'8080' is not of type 'integer'"),
    (["readinessProbe", "httpGet", "port"], "metrics", "readinessProbe.httpGet.port must name a port"),
    (["name"], "Kserve_Container", "containers.0.name must be a DNS-1123 label"),
    (["resources", "limits"], "2 cpus", "'2 cpus' is not of type 'object'"),
    (["imagePullPolcy"], "Always", "'imagePullPolcy' was unexpected"),
])
def test_a_broken_manifest_is_caught_naming_the_field(file, where, value, message):
    manifests = documents()
    _break(manifests[file], CONTAINER_IN[file] + where, value)
    with pytest.raises(ManifestError, match=re.escape(message)) as caught:
        validate_manifests({file: manifests[file]})
    assert "\n" not in str(caught.value) and str(caught.value).startswith(file.removesuffix(".yaml"))


@pytest.mark.parametrize("file, path, value, message", [
    ("service.yaml", ["spec", "ports", 0, "port"], 0, "service.spec.ports.0.port must be from 1 to 65535, got 0"),
    ("service.yaml", ["metadata", "name"], "Digits", "service.metadata.name must be a DNS-1123 label, got 'Digits'"),
    ("deployment.yaml", ["spec", "replicas"], "2", "deployment.spec.replicas: '2' is not of type 'integer'"),
    ("inferenceservice.yaml", ["metadata", "name"], "1digits", "metadata.name must be a DNS-1123 label"),
    ("inferenceservice.yaml", ["spec", "predictor", "containers"], [], "spec.predictor.containers is required"),
    ("inferenceservice.yaml", ["spec", "predictor", "maxReplicas"], 0, "maxReplicas must be >= minReplicas"),
    ("inferenceservice.yaml", ["spec", "predictor", "serviceAccountName"], 7, "7 is not of type 'string'"),
])
def test_broken_objects_are_caught(file, path, value, message):
    manifests = documents()
    _break(manifests[file], path, value)
    with pytest.raises(ManifestError, match=re.escape(message)):
        validate_manifests({file: manifests[file]})


@pytest.mark.parametrize("changes, message", [
    ({"name": "Digits_Model"}, "name must be a DNS-1035 label (starting with a letter) of at most 53 characters"),
    ({"name": "a" * 54}, "name must be a DNS-1035 label"),
    ({"name": "1digits"}, "got '1digits'"),
    ({"namespace": "Team A"}, "namespace must be a DNS-1123 label"),
    ({"service_account": "bad account"}, "service_account must be a DNS-1123 subdomain"),
    ({"storage_uri": "ftp://x/model.onnx"}, "storage_uri must be a model file's URI"),
    ({"storage_uri": "s3://bucket/"}, "storage_uri must be a model file's URI"),
    ({"storage_uri": "https://user:pw@example.com/m.onnx"}, "storage_uri must not carry credentials"),
    ({"cpu": 5}, "cpu must be an integer from 1 to 4, got 5"),
    ({"cpu": 0}, "cpu must be an integer from 1 to 4, got 0"),
    ({"memory_mib": 10 ** 9}, "memory_mib must be an integer from 64 to 16384"),
    ({"max_batch_size": 0}, "max_batch_size must be an integer from 1 to 4096, got 0"),
    ({"max_batch_delay_ms": float("nan")}, "max_batch_delay_ms must be a finite number"),
    ({"max_batch_delay_ms": 5000}, "max_batch_delay_ms must be from 0 to 1000"),
    ({"min_replicas": 4, "max_replicas": 3}, "max_replicas must be >= min_replicas (4), got 3"),
    ({"region": "GB; rm -rf"}, "region must be a grid region code"),
    ({"hardware_profile": "nope"}, "unknown hardware profile 'nope'"),
    ({"image": "ghcr.io/x/greenkfp:1 --privileged"}, "image must be an image reference"),
])
def test_bad_options_are_refused_up_front_naming_the_option(changes, message):
    with pytest.raises(ManifestError, match=re.escape(message)) as caught:
        options(**changes)
    assert "\n" not in str(caught.value)


def test_no_env_value_or_manifest_text_holds_a_secret():
    o = options(service_account="model-reader", storage_uri="s3://mlpipeline/v2/artifacts/selected")
    for name, text in render_manifests(o).items():
        document = yaml.safe_load(text)
        for container in [*server(document)[0].get("initContainers", []), *server(document)[0]["containers"]] \
                if document["kind"] != "Service" else []:
            for env in container.get("env", []):
                assert set(env) == {"name", "value"} and not re.search(r"(?i)key|secret|token|password", env["name"])
                assert "@" not in env["value"]
        assert not re.search(r"(?i)aws_secret|password|token|kind: Secret", text), name
    assert server(inference_service(o))[0]["serviceAccountName"] == "model-reader"


def test_storage_uris_of_kfp_artifacts():
    assert storage_uri_from_artifact("minio://mlpipeline/v2/artifacts/run/selected") == \
        "s3://mlpipeline/v2/artifacts/run/selected"
    assert storage_uri_from_artifact("/gcs/bucket/run/selected") == "gs://bucket/run/selected"
    assert storage_uri_from_artifact("gs://bucket/run/selected") == "gs://bucket/run/selected"
    assert storage_uri_from_artifact("/home/me/local_outputs/selected") == "file:///home/me/local_outputs/selected"


def test_a_blocked_selection_gives_nothing_to_deploy():
    assert from_selection(SelectionRecord.from_json(json.dumps(BLOCKED)), name="digits") is None
    chosen = from_selection(SelectionRecord.from_json(json.dumps(SELECTION)), name="digits",
                            model_uri="minio://mlpipeline/v2/artifacts/selected")
    assert chosen.storage_uri == "s3://mlpipeline/v2/artifacts/selected" and chosen.model_file == "selected"
    assert KUBERNETES_VERSION == "1.30"


def test_cli_writes_the_files_or_nothing(tmp_path, capsys):
    selection = tmp_path / "selection.json"
    selection.write_text(json.dumps(SELECTION), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["serving", "deploy-manifests", "--selection", str(selection), "--output", str(out),
                 "--storage-uri", "gs://models/digits/int8.onnx", "--name", "digits", "--cpu", "2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["deployment.yaml", "inferenceservice.yaml", "service.yaml"]
    assert (out / "deployment.yaml").read_text(encoding="utf-8") == render_manifests(
        options(cpu=2))["deployment.yaml"]
    capsys.readouterr()
    bad = tmp_path / "bad"
    assert main(["serving", "deploy-manifests", "--selection", str(selection), "--output", str(bad),
                 "--name", "Digits"]) == 2
    err = capsys.readouterr()
    assert "--name must be a DNS-1035 label" in err.out + err.err and "'Digits'" in err.out + err.err
    assert "Traceback" not in err.out + err.err and not bad.exists()
    blocked = tmp_path / "blocked.json"
    blocked.write_text(json.dumps(BLOCKED), encoding="utf-8")
    assert main(["serving", "deploy-manifests", "--selection", str(blocked), "--output", str(bad)]) == 3
    assert "not deployed: the selection blocked promotion (no variant met" in capsys.readouterr().err
    assert not bad.exists()


@pytest.mark.slow
@pytest.mark.parametrize("record", [SELECTION, BLOCKED], ids=["promoted", "blocked"])
def test_the_component_runs_in_kfps_local_runner(record, tmp_path, monkeypatch):
    from kfp import dsl, local

    from greenkfp.components import deploy_model

    monkeypatch.chdir(tmp_path)  # a component can import from the current directory
    (tmp_path / "selection.json").write_text(json.dumps(record), encoding="utf-8")
    (tmp_path / "int8_dynamic.onnx").write_bytes(b"onnx")

    @dsl.pipeline(name="deploy-test")
    def deploy_only():
        selection = dsl.importer(artifact_uri=str(tmp_path / "selection.json"), artifact_class=dsl.Artifact)
        model = dsl.importer(artifact_uri=str(tmp_path / "int8_dynamic.onnx"), artifact_class=dsl.Model)
        deploy_model(selection_record=selection.output, selected=model.output, deploy_name="digits",
                     storage_uri="gs://models/digits/int8_dynamic.onnx")

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    deploy_only()
    (folder,) = (tmp_path / "root").glob("*/deploy-model/manifests")
    if record["promote"]:
        assert sorted(p.name for p in folder.iterdir()) == ["deployment.yaml", "inferenceservice.yaml", "service.yaml"]
        isvc = yaml.safe_load((folder / "inferenceservice.yaml").read_text(encoding="utf-8"))
        assert server(isvc)[1]["env"] == [{"name": "STORAGE_URI", "value": "gs://models/digits/int8_dynamic.onnx"}]
        validate_manifests({p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in folder.iterdir()})
    else:
        assert [p.name for p in folder.iterdir()] == ["NOT_DEPLOYED.md"]
        assert "no variant met max_accuracy_drop_points=1.0" in (folder / "NOT_DEPLOYED.md").read_text(encoding="utf-8")


def test_the_pipelines_deploy_knobs_are_checked_before_the_run_naming_the_knob(tmp_path, capsys, monkeypatch):
    from greenkfp.components.preflight import check_training_options

    with pytest.raises(ValueError, match=re.escape("deploy_name must be a DNS-1035 label")):
        check_training_options(deploy_name="Digits")
    with pytest.raises(ValueError, match=re.escape("deploy_service_account must be a DNS-1123 subdomain")):
        check_training_options(deploy_service_account="Model Reader")
    check_training_options(deploy_name="digits", deploy_namespace="ml", deploy_region="DE-LU",
                           deploy_service_account="model-reader")
    monkeypatch.chdir(tmp_path)
    assert main(["run-local", "--deploy-name", "Digits_Model", "--pipeline-root", str(tmp_path / "root")]) == 2
    out = capsys.readouterr()
    assert "--deploy-name: deploy_name must be a DNS-1035 label" in out.out and "'Digits_Model'" in out.out
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("platform", ["vertex", "kubeflow"])
def test_the_flagship_deploys_the_selection_after_selecting(platform):
    root = Path(__file__).resolve().parents[1]
    documents_ = list(yaml.safe_load_all((root / "compiled" / platform / "carbon_aware_training.yaml").read_text()))
    spec = documents_[0]
    found = []

    def walk(dag):
        for name, task in dag.get("tasks", {}).items():
            if name == "deploy-model":
                found.append(task)
            sub = spec["components"].get(task.get("componentRef", {}).get("name"), {}).get("dag")
            if sub:
                walk(sub)

    walk(spec["root"]["dag"])
    (task,) = found
    assert task["dependentTasks"] == ["select-pareto-model"]
    artifacts = task["inputs"]["artifacts"]
    assert {k: v["taskOutputArtifact"] for k, v in artifacts.items()} == {
        "selected": {"outputArtifactKey": "selected", "producerTask": "select-pareto-model"},
        "selection_record": {"outputArtifactKey": "selection_record", "producerTask": "select-pareto-model"}}
    assert {k: v["componentInputParameter"] for k, v in task["inputs"]["parameters"].items()} == {
        name: f"pipelinechannel--{name}" for name in ("deploy_name", "deploy_namespace", "deploy_region",
                                                       "deploy_service_account", "hardware_profile",
                                                       "hardware_overrides")}


# --------------------------------------------------------------------------- the hostile test's findings


def _serve_error(argv: list[str], capsys) -> str:
    """``greenkfp serve``'s one-line error (it exits before listening)."""
    assert main(["serve", "--name", "m", *argv]) == 2
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("region", ["DE", "EU-WEST", "Atlantis"])
def test_a_region_serve_refuses_is_refused_by_the_manifests_and_the_pipeline_alike(region, tmp_path, capsys):
    """deploy-manifests --region DE wrote a container that `greenkfp serve --region DE` refuses
    (exit 2): the pod would crash-loop. The one region check decides for all three."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not loaded: the region is checked first")
    served = _serve_error(["--model", str(model), "--region", region], capsys)
    problem = f"region {region!r} is not in the embedded data; supported zones: "
    assert problem in served and "DE-LU" in served
    from greenkfp.components.serving.region import check_server_region

    with pytest.raises(ManifestError, match=re.escape(problem)):
        check_server_region(region)
    selection = tmp_path / "selection.json"
    selection.write_text(json.dumps(SELECTION), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["serving", "deploy-manifests", "--selection", str(selection), "--output", str(out),
                 "--storage-uri", "gs://b/m.onnx", "--region", region]) == 2
    captured = capsys.readouterr()
    line = (captured.out + captured.err).strip()
    assert line.startswith(f"error: --region {region!r} is not in the embedded data") and "\n" not in line
    assert line.split("supported zones: ")[1] == served.split("supported zones: ")[1]
    assert not out.exists()
    from greenkfp.pipelines.options import check_deploy_region

    with pytest.raises(ValueError, match=re.escape(f"deploy_{problem}")):
        check_deploy_region(region)


def test_a_region_serve_takes_is_taken_by_the_manifests():
    for region in ("DE-LU", "GB", "us-cal-ciso"):
        assert options(region=region).region == region


@pytest.mark.parametrize("uri, model", [
    ("gs://b/dir/", "/mnt/models"),
    ("s3://b/models/digits/", "/mnt/models"),
    ("hf://org/model", "/mnt/models"),
    ("gs://b/dir/m.onnx", "/mnt/models/m.onnx"),
    ("s3://mlpipeline/v2/artifacts/run/selected", "/mnt/models/selected"),  # a KFP artifact: a file
    ("https://example.com/m.onnx", "/mnt/models/m.onnx"),
])
def test_a_prefix_uri_serves_the_folder_kserve_copies_its_contents_into(uri, model):
    """KServe's storage initializer copies a prefix's contents into /mnt/models, so
    /mnt/models/dir would not exist: the server is given /mnt/models itself."""
    o = options(storage_uri=uri)
    validate_manifests(documents(o))
    for document in (inference_service(o), deployment(o)):
        args = server(document)[1]["args"]
        assert args[args.index("--model") + 1] == model


def test_deploy_manifests_usage_errors_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["serving", "deploy-manifests", "--selection", "nope.json", "--output", "out"]) == 2
    captured = capsys.readouterr()
    assert (captured.out + captured.err).strip() == "error: --selection nope.json: no such file"
    (tmp_path / "s.json").write_text(json.dumps(SELECTION), encoding="utf-8")
    assert main(["serving", "deploy-manifests", "--selection", "s.json", "--output", "out", "--cpu", "1.5"]) == 2
    captured = capsys.readouterr()
    line = (captured.out + captured.err).strip()
    assert "--cpu" in line and "'1.5'" in line and "\n" not in line and "usage:" not in line
    assert list(tmp_path.iterdir()) == [tmp_path / "s.json"]
