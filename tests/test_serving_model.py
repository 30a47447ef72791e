"""``greenkfp serve --model``: folders (what KServe's storage initializer makes of a prefix URI),
secrets in a selection's model URI, and the command's one-line usage errors."""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import pytest

from greenkfp.components.serving.model import ModelLoadError, ServedModel, resolve_model_path
from greenkfp.pipelines.cli import main

SECRET = "SECRETXYZ"


def relu_model(path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def selection(path, uri: str):
    path.write_text(json.dumps({"schema": "greenkfp.selection/v1", "promote": True, "chosen": "relu",
                                "reason": "knee", "rule": "knee", "chosen_model_uri": uri}), encoding="utf-8")
    return path


def test_a_folder_with_one_onnx_file_or_one_selection_record_is_served(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    onnx_file = relu_model(one / "model.onnx")
    (one / "README.txt").write_text("other files do not matter")
    (one / "config.json").write_text('{"model_type": "not a selection record"}')
    assert resolve_model_path(one) == onnx_file
    served = ServedModel(one, "relu")
    assert served.run({"x": np.array([[-1.0, 2.0]], dtype=np.float32)})[0].tolist() == [[0.0, 2.0]]
    chosen = tmp_path / "variants"
    chosen.mkdir()
    relu_model(chosen / "a.onnx")
    relu_model(chosen / "b.onnx")
    selection(chosen / "selection.json", "s3://bucket/run/b.onnx")  # the record copied with its variants
    assert resolve_model_path(chosen) == chosen / "b.onnx"


@pytest.mark.parametrize("files, holds", [
    ((), "holds nothing (it is empty)"),
    (("a.onnx", "b.onnx", "config.json"), "holds 2 .onnx files (a.onnx, b.onnx) and no selection record"),
    (("model.bin", "sub/", "config.json"), "holds no .onnx file and no selection record (it holds: config.json, "
                                           "model.bin, sub/)"),
    (("a.json", "b.json", "m.onnx"), "holds 2 selection records (a.json, b.json)"),
])
def test_a_folder_without_exactly_one_model_is_one_error_naming_it_and_what_it_holds(tmp_path, capsys, files,
                                                                                     holds):
    folder = tmp_path / "dir.onnx"  # a folder named like a file: the message says it is a folder
    folder.mkdir()
    for name in files:
        if name.endswith("/"):
            (folder / name).mkdir()
        elif name in ("a.json", "b.json"):
            selection(folder / name, "m.onnx")
        else:
            (folder / name).write_bytes(b"{}" if name.endswith(".json") else b"x")
    with pytest.raises(ModelLoadError, match="a folder must hold exactly one .onnx file or one selection record") \
            as caught:
        resolve_model_path(folder)
    assert f"model folder {str(folder)!r} {holds}" in str(caught.value)
    assert main(["serve", "--model", str(folder), "--name", "m"]) == 2
    captured = capsys.readouterr()
    line = (captured.out + captured.err).strip()
    assert line.startswith(f"error: --model: model folder {str(folder)!r} {holds}") and "\n" not in line
    assert "no such file" not in line


def test_a_missing_model_says_no_such_file_or_folder(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "gone"), "--name", "m"]) == 2
    captured = capsys.readouterr()
    assert (captured.out + captured.err).strip() == f"error: --model {str(tmp_path / 'gone')!r}: no such file or folder"


def test_credentials_in_a_selections_model_uri_never_reach_readiness_errors_or_the_log(tmp_path, caplog):
    from fastapi.testclient import TestClient

    from greenkfp.components.serving.app import ServeSettings, create_app

    record = selection(tmp_path / "selection.json", f"s3://key:{SECRET}@bucket/m.onnx?X-Amz-Signature={SECRET}2")
    with pytest.raises(ModelLoadError) as caught:
        resolve_model_path(record)
    assert SECRET not in str(caught.value) and "s3://***@bucket/m.onnx" in str(caught.value)
    caplog.set_level(logging.INFO)
    with TestClient(create_app(ServeSettings(model=str(record), name="m"))) as client:
        deadline = time.monotonic() + 30
        while (ready := client.get("/v2/models/m/ready")).json().get("error") is None:
            assert time.monotonic() < deadline, "the model never failed to load"
            time.sleep(0.05)
        assert ready.status_code == 503 and "neither there nor beside the record" in ready.json()["error"]
        answer = client.post("/v2/models/m/infer", json={"inputs": [
            {"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]})
        assert answer.status_code == 503
        bodies = ready.text + answer.text + client.get("/v2/health/ready").text
    assert SECRET not in bodies
    assert "failed to load" in caplog.text and SECRET not in caplog.text


@pytest.mark.parametrize("argv, option", [
    (["--log-level", "chatty"], "--log-level"),
    (["--provider", "nope"], "--provider"),
    (["--bogus"], "--bogus"),
])
def test_serve_usage_errors_are_one_line(tmp_path, capsys, argv, option):
    model = relu_model(tmp_path / "m.onnx")
    assert main(["serve", "--model", str(model), "--name", "m", *argv]) == 2
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "usage:" not in lines[0], lines


def test_a_replay_year_the_data_lacks_names_replay_year(tmp_path, capsys):
    model = relu_model(tmp_path / "m.onnx")
    assert main(["serve", "--model", str(model), "--name", "m", "--replay-year", "1800"]) == 2
    captured = capsys.readouterr()
    line = (captured.out + captured.err).strip()
    assert line.startswith("error: --replay-year 1800: ") and "2021" in line and "\n" not in line
