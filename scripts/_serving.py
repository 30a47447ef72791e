"""Helpers of the serving scripts (``loadtest_serving.py``, ``bench_serving.py``) and tests: the
served model, the servers (``greenkfp serve``; MLServer in its own virtual environment) on
loopback, the server's CPU time and the Open Inference Protocol v2 payload.

The model is the flagship's ``mlp-wide`` default candidate (``MLPClassifier(512, 256)``) trained
on the embedded ``digits`` dataset (its stratified 75/25 split, seed 0), saved with joblib for
MLServer's sklearn runtime and turned into ONNX variants (fp32 and ``int8_dynamic``) by the
library's own ``build_variants`` (skl2onnx, onnxruntime's quantizer, parity on the test split).
Imported as ``from _serving import ...`` (a script's own folder is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

from _bench import stop_process_group
from _cgroup import die_with_parent

REPO = Path(__file__).resolve().parents[1]
#: MLServer's pins: 1.7.1, and uvloop < 0.22 (a newer one crashes its worker pool at start with
#: "There is no current event loop").
MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22")
MLSERVER_VENV = REPO / ".venv-mlserver"


class ServingError(RuntimeError):
    """A server did not start, or the model could not be built (the message says why)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------- the model
def build_model(out_dir: Path, *, candidate: str = "mlp-wide", max_iter: int | None = None) -> dict:
    """Train ``candidate`` on digits, write ``model.joblib`` (MLServer), ``fp32.onnx`` and
    ``int8_dynamic.onnx`` (the library's variants) into ``out_dir``; reuse them when already there
    (``model.json`` records what was built). Returns that record with the paths and a few test rows."""
    import warnings

    out_dir = Path(out_dir)
    marker = out_dir / "model.json"
    wanted = {"candidate": candidate, "max_iter": max_iter}
    if marker.is_file():
        built = json.loads(marker.read_text())
        if built.get("wanted") == wanted and all((out_dir / f).is_file() for f in built["files"].values()):
            return {**built, "dir": str(out_dir)}
    import joblib
    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from skops.io import dump as skops_dump

    from greenkfp.components.data.datasets import prepare_dataset, read_dataset
    from greenkfp.components.quantization.variants import build_variants
    from greenkfp.components.training.estimators import DEFAULT_CANDIDATES, EstimatorSpec, build_estimator

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = next((c for c in DEFAULT_CANDIDATES if c["name"] == candidate), None)
    if spec is None:
        raise ServingError(f"candidate {candidate!r} is not one of the default candidates "
                           f"({', '.join(c['name'] for c in DEFAULT_CANDIDATES)})")
    params = dict(spec["params"], **({"max_iter": max_iter} if max_iter else {}))
    with tempfile.TemporaryDirectory() as tmp:
        train_path, test_path = Path(tmp) / "train.parquet", Path(tmp) / "test.parquet"
        prepare_dataset("digits", None, str(train_path), str(test_path))
        train, test = read_dataset(train_path), read_dataset(test_path)
    X_train, y_train = train.X.astype(np.float32), train.y
    X_test, y_test = test.X.astype(np.float32), test.y
    estimator = build_estimator(EstimatorSpec(candidate, spec["estimator"], params))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X_train, y_train)
    joblib.dump(estimator, out_dir / "model.joblib")
    skops_dump(estimator, out_dir / "model.skops")
    reports = build_variants(out_dir / "model.skops", X_test, y_test, None, out_dir,
                             variants=("fp32", "int8_dynamic"))
    files = {"joblib": "model.joblib", "skops": "model.skops"}
    parity = {}
    for report in reports:
        if not report.produced:
            raise ServingError(f"variant {report.name} was not produced: {report.reason}")
        files[report.name] = Path(report.path).name
        parity[report.name] = {"accuracy": report.accuracy, "agreement": report.agreement_rate}
    record = {"wanted": wanted, "candidate": candidate, "estimator": spec["estimator"], "params": params,
              "dataset": "digits (embedded), stratified 75/25 split, seed 0", "features": int(X_train.shape[1]),
              "sklearn": sklearn.__version__, "files": files, "parity": parity,
              "rows": X_test[:256].astype(float).tolist()}
    marker.write_text(json.dumps(record))
    return {**record, "dir": str(out_dir)}


def onnx_input_name(path: str | os.PathLike) -> str:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph.input[0].name


def infer_payload(rows: list[list[float]], input_name: str) -> bytes:
    """An Open Inference Protocol v2 request body: ``rows`` as one FP32 input."""
    flat = [float(x) for row in rows for x in row]
    return json.dumps({"inputs": [{"name": input_name, "shape": [len(rows), len(rows[0])], "datatype": "FP32",
                                   "data": flat}]}).encode()


# --------------------------------------------------------------------------- CPU time
def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (MLServer's workers are
    children), measured (psutil). A child that has exited is counted in its parent's
    ``children_*`` times once reaped."""
    import psutil

    parent = psutil.Process(pid)
    total = 0.0
    for process in [parent, *parent.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


# --------------------------------------------------------------------------- servers
class RunningServer:
    """A server process on loopback: its base ``url``, ``pid``, ``model`` name, ``input_name``."""

    def __init__(self, url: str, process: subprocess.Popen | None, model: str, input_name: str, kind: str,
                 command: list[str] | None = None, log: Path | None = None, pid: int | None = None,
                 cgroup=None):
        self.url, self.process, self.model, self.input_name, self.kind = url, process, model, input_name, kind
        self.command, self.log = command, log
        #: the ``_cgroup.CpuLimit`` it runs under (None: no CPU limit)
        self.cgroup = cgroup
        #: the process whose CPU is counted (None: unknown, for a server given by its URL)
        self.pid = pid if pid is not None else process.pid if process is not None else None

    @property
    def infer_path(self) -> str:
        return f"/v2/models/{self.model}/infer"


def wait_ready(url: str, process: subprocess.Popen | None, timeout_s: float, log: Path | None = None) -> None:
    """Wait until ``url``/v2/health/ready answers 200 (the process exiting first is an error)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                tail = log.read_text(errors="replace")[-1500:] if log and log.exists() else ""
                raise ServingError(f"the server exited with code {process.returncode} before it was ready: {tail}")
            try:
                if client.get(f"{url}/v2/health/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise ServingError(f"the server at {url} was not ready within {timeout_s:g} s")


@contextlib.contextmanager
def greenkfp_server(model: str | os.PathLike, name: str = "digits", *, options: list[str] = (),
                    timeout_s: float = 90.0, python: str = sys.executable,
                    cpu_limit_m: int | None = None) -> Iterator[RunningServer]:
    """``greenkfp serve --model MODEL --name NAME OPTIONS`` on a free loopback port (its own process
    group, no access log), ready; stopped (SIGTERM) at the end, also on error.

    ``cpu_limit_m``: run it under a CPU limit of that many millicores (a CFS quota in its own
    cgroup, as the kubelet sets a pod's limit; ``_cgroup.py``), removed at the end. Without a
    writable cpu cgroup this raises ``_cgroup.CgroupError`` rather than run unlimited."""
    with contextlib.ExitStack() as stack:
        cgroup = None
        if cpu_limit_m is not None:
            from _cgroup import cpu_limit

            cgroup = stack.enter_context(cpu_limit(cpu_limit_m))
        port = free_port()
        command = [python, "-m", "greenkfp.pipelines.cli", "serve", "--model", str(model), "--name", name,
                   "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning", *options]
        log = Path(tempfile.mkstemp(prefix="greenkfp-serve-", suffix=".log")[1])
        with open(log, "w") as sink:
            # its own session (stopped as a group), killed with this script however it dies
            process = subprocess.Popen(cgroup.wrap(command) if cgroup else command, stdout=sink,
                                       stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())
        try:
            url = f"http://127.0.0.1:{port}"
            # a limited server loads its model more slowly: the readiness wait scales with the limit
            wait_ready(url, process, timeout_s * max(1.0, 500 / cpu_limit_m if cpu_limit_m else 1.0), log)
            yield RunningServer(url, process, name, onnx_input_name(model), "greenkfp serve", command, log,
                                cgroup=cgroup)
        finally:
            stop_process_group(process, timeout_s=15)
            log.unlink(missing_ok=True)


def ensure_mlserver_venv(venv: Path = MLSERVER_VENV, *, sklearn_version: str | None = None,
                         python: str | None = None) -> Path:
    """The ``mlserver`` executable of a virtual environment with MLServer's pins (created and
    installed from the package index when missing; the same scikit-learn version as ours, so its
    runtime unpickles our model). Returns the executable's path."""
    import sklearn

    sklearn_version = sklearn_version or sklearn.__version__
    pins = [*MLSERVER_PINS, f"scikit-learn=={sklearn_version}"]
    stamp = venv / ".greenkfp-pins"
    executable = venv / "bin" / "mlserver"
    if executable.exists() and stamp.is_file() and stamp.read_text() == "\n".join(pins):
        return executable
    python = python or shutil.which("python3.11") or sys.executable
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *pins],
                          capture_output=True, text=True)
    if done.returncode:
        raise ServingError(f"installing {' '.join(pins)} into {venv} failed: {done.stderr.strip()[-1500:]}")
    stamp.write_text("\n".join(pins))
    return executable


@contextlib.contextmanager
def mlserver_server(model_path: str | os.PathLike, name: str = "digits", *, executable: Path,
                    parallel_workers: int = 0, timeout_s: float = 180.0) -> Iterator[RunningServer]:
    """MLServer serving ``model_path`` (joblib) with ``mlserver_sklearn.SKLearnModel`` on free
    loopback ports (HTTP, gRPC and metrics), ready; stopped at the end, also on error.

    ``parallel_workers=0`` runs inference in the main process (MLServer's own advice for light
    models, and its cheapest setting in CPU); N > 0 starts N worker processes."""
    folder = Path(tempfile.mkdtemp(prefix="greenkfp-mlserver-"))
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    (folder / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
        "parallel_workers": parallel_workers, "debug": False, "load_models_at_startup": True}))
    model_dir = folder / name
    model_dir.mkdir()
    shutil.copy(model_path, model_dir / "model.joblib")
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"}}))
    log = folder / "mlserver.log"
    command = [str(executable), "start", str(folder)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=folder, env=env,
                                   start_new_session=True, preexec_fn=die_with_parent())
    try:
        url = f"http://127.0.0.1:{http_port}"
        wait_ready(url, process, timeout_s, log)
        # ready can answer before the model is: wait for the model's own readiness too
        import httpx

        deadline = time.monotonic() + timeout_s
        while httpx.get(f"{url}/v2/models/{name}/ready", timeout=2).status_code != 200:
            if time.monotonic() > deadline:
                raise ServingError(f"MLServer's model {name} was not ready within {timeout_s:g} s")
            time.sleep(0.2)
        yield RunningServer(url, process, name, "input-0", "MLServer 1.7.1 (mlserver-sklearn)", command, log)
    finally:
        stop_process_group(process, timeout_s=15)
        shutil.rmtree(folder, ignore_errors=True)
