"""Benchmark inference: scikit-learn ``predict`` against ONNX Runtime fp32, int8 and fp16 variants.

Goals (from the issue)
----------------------
1. ONNX Runtime fp32 at least 10 times faster than scikit-learn ``predict`` on a single row
   (median latency), on each model.
2. On the wide MLP, ``int8_dynamic`` at least 2 times the fp32 throughput at batch 1000, with at
   most 1 point of accuracy lost against scikit-learn.
3. Every int8 file at least 3.5 times smaller than the fp32 ONNX file.

Models
------
* ``digits``: the ``mlp-wide`` default candidate, ``MLPClassifier(hidden_layer_sizes=(512, 256))``,
  on scikit-learn's digits (1,797 rows x 64 features, 10 classes; stratified 75/25 split, seed 0).
* ``wide``: ``MLPClassifier(hidden_layer_sizes=(1024, 1024))`` on 784 features and 10 classes,
  i.e. 784-1024-1024-10, 1.86 M weights. The data are synthetic
  (``make_classification``: 60 informative and 100 redundant features, seed 0; 6,000 train and
  2,000 test rows) rather than random noise, so the accuracy figure means something; a few
  epochs only (speed is what is measured, not how good the model is).

Both are saved as skops files and turned into variants by the library itself
(``greenkfp.components.quantization.build_variants``: fp32 via skl2onnx, ``int8_dynamic``,
``int8_static`` with 200 calibration rows from the train split, ``fp16``), which also gives the
accuracy, agreement and size of each.

Method
------
One process, one run. Threads are pinned before numpy is imported (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ... and ``threadpoolctl``) and every ONNX
Runtime session has ``intra_op_num_threads = --threads`` (default 1),
``inter_op_num_threads = 1`` and sequential execution (the library's ``make_session``); the
same thread count for both engines. Inputs are prepared before timing: float64 rows for
scikit-learn (as the data come), float32 for ONNX Runtime; timed is ``estimator.predict(X)``
and ``session.run(None, {input: X})``.

* Single-row latency: a 2-D one-row array, each call a different test row. Every engine runs a
  block of calls per round, engines in turn, several rounds (so drift in the machine's speed
  hits all alike), after a warm-up; reported: median and 95th percentile in microseconds.
* Batch throughput: 1,000 test rows in one call (digits has 450 test rows, repeated in order
  to fill the batch), same rounds; rows per second = 1000 / median seconds per call.
* For the "why" of goal 1 the script also times the bare float64 forward pass of each MLP with
  numpy (the matrix products scikit-learn runs inside ``predict``), so scikit-learn's own
  overhead (validation, Python) can be told apart from the arithmetic, and an ONNX model with
  a single Identity node and the same input, the fixed cost of a ``session.run`` call.

Usage: python scripts/bench_inference.py [--threads N] [--rounds N] [--quick] [--json PATH]
Exit code 0 when the benchmark ran (whether or not the goals are met), 1 when a variant the
benchmark needs was not produced or the fp32 conversion failed its parity check.
"""

from __future__ import annotations

import time

_BEGAN = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

from _bench import (  # noqa: E402
    THREAD_ENV,
    BenchError,
    add_json_option,
    cpu_flags,
    cpu_model,
    fmt,
    load_average,
    pin_threads,
    print_error,
    thread_env,
    threadpools,
    wide_console,
    write_figures,
)

SEED = 0
BATCH = 1000
CALIBRATION_ROWS = 200
ROUNDS, QUICK_ROUNDS = 7, 2
ROW_CALLS = 100  # single-row calls per engine per round
BATCH_CALLS = 3  # batch calls per engine per round
WARMUP_ROW_CALLS, WARMUP_BATCH_CALLS = 20, 2
DIGITS_MAX_ITER, WIDE_MAX_ITER, QUICK_MAX_ITER = 200, 8, 3
WIDE = {"n_samples": 8000, "n_test": 2000, "n_features": 784, "n_informative": 60, "n_redundant": 100,
        "n_classes": 10, "n_clusters_per_class": 2, "class_sep": 1.5}
LATENCY_GOAL_X = 10.0
THROUGHPUT_GOAL_X = 2.0
ACCURACY_LOSS_GOAL_POINTS = 1.0
SIZE_GOAL_X = 3.5
ONNX_VARIANTS = ("fp32", "int8_dynamic", "int8_static", "fp16")
INT8 = ("int8_dynamic", "int8_static")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="BLAS/OpenMP threads and ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help=f"measurement rounds (default {ROUNDS}, --quick {QUICK_ROUNDS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_MAX_ITER}-epoch models and {QUICK_ROUNDS} rounds, a smoke test: figures are rough")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else ROUNDS
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


# --- models ------------------------------------------------------------------------------------
def make_models(quick: bool) -> list[dict]:
    """Train both MLPs; return their data, estimator and description."""
    import numpy as np
    from sklearn.datasets import load_digits, make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from greenkfp.components.training.estimators import DEFAULT_CANDIDATES, EstimatorSpec, build_estimator

    models = []
    spec = next(c for c in DEFAULT_CANDIDATES if c["name"] == "mlp-wide")
    digits_iter = QUICK_MAX_ITER if quick else DIGITS_MAX_ITER
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=SEED, stratify=y)
    params = {**spec["params"], "max_iter": digits_iter}
    models.append({
        "key": "digits", "estimator": build_estimator(EstimatorSpec("mlp-wide", spec["estimator"], params)),
        "describe": f"MLP(512, 256) on digits: 64-512-256-10, max_iter={digits_iter}",
        "X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test,
    })

    wide_iter = QUICK_MAX_ITER if quick else WIDE_MAX_ITER
    options = {k: v for k, v in WIDE.items() if k not in ("n_test",)}
    X, y = make_classification(**options, random_state=SEED)
    split = WIDE["n_samples"] - WIDE["n_test"]
    models.append({
        "key": "wide",
        "estimator": MLPClassifier(hidden_layer_sizes=(1024, 1024), max_iter=wide_iter, random_state=SEED),
        "describe": f"MLP(1024, 1024) on synthetic data: 784-1024-1024-10, max_iter={wide_iter}",
        "X_train": X[:split], "y_train": y[:split], "X_test": X[split:], "y_test": y[split:],
    })
    for model in models:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # few epochs on purpose
            model["estimator"].fit(model["X_train"], model["y_train"])
        model["fit_s"] = time.perf_counter() - t0
        est = model["estimator"]
        model["weights"] = int(sum(w.size for w in est.coefs_) + sum(b.size for b in est.intercepts_))
        model["layers"] = [int(est.coefs_[0].shape[0])] + [int(w.shape[1]) for w in est.coefs_]
        model["X_test"] = np.ascontiguousarray(model["X_test"], dtype=np.float64)
    return models


def numpy_forward(estimator):
    """The float64 forward pass ``predict`` runs (matrix products, ReLU, argmax), bare numpy."""
    import numpy as np

    weights, biases = estimator.coefs_, estimator.intercepts_

    def forward(X):
        h = X
        for i, (w, b) in enumerate(zip(weights, biases)):
            h = h @ w
            h += b
            if i < len(weights) - 1:
                np.maximum(h, 0, out=h)
        return h.argmax(axis=1)

    return forward


FLOOR = "onnxruntime call floor (Identity)"


def identity_model(n_features: int):
    """A one-node ONNX model (Identity) with the same input: what a ``session.run`` call costs
    when the graph does no work (binding, input copy, output allocation)."""
    from onnx import TensorProto, helper

    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", n_features])  # noqa: E731
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "floor",
                              [value("input")], [value("output")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# --- timing ------------------------------------------------------------------------------------
def measure(engines: dict, X64, X32, rounds: int) -> dict:
    """Interleaved single-row and batch timings of every engine (name -> (fn, wants float32))."""
    import numpy as np

    rows64 = [X64[i : i + 1] for i in range(X64.shape[0])]
    rows32 = [X32[i : i + 1] for i in range(X32.shape[0])]
    take = np.arange(BATCH) % X64.shape[0]  # digits has 450 test rows: they repeat to fill the batch
    batch64, batch32 = np.ascontiguousarray(X64[take]), np.ascontiguousarray(X32[take])
    for fn, f32 in engines.values():  # warm-up: first calls allocate, load, fill caches
        for i in range(WARMUP_ROW_CALLS):
            fn((rows32 if f32 else rows64)[i])
        for _ in range(WARMUP_BATCH_CALLS):
            fn(batch32 if f32 else batch64)
    single = {name: [] for name in engines}
    batch = {name: [] for name in engines}
    cursor = 0
    for _ in range(rounds):
        for name, (fn, f32) in engines.items():
            rows = rows32 if f32 else rows64
            timings = single[name]
            for k in range(ROW_CALLS):
                row = rows[(cursor + k) % len(rows)]
                t0 = time.perf_counter()
                fn(row)
                timings.append(time.perf_counter() - t0)
        cursor += ROW_CALLS
        for name, (fn, f32) in engines.items():
            data = batch32 if f32 else batch64
            for _ in range(BATCH_CALLS):
                t0 = time.perf_counter()
                fn(data)
                batch[name].append(time.perf_counter() - t0)
    out = {}
    for name in engines:
        lat = np.array(single[name]) * 1e6
        per_batch = float(np.median(batch[name]))
        out[name] = {
            "single_row_median_us": float(np.median(lat)),
            "single_row_p95_us": float(np.percentile(lat, 95)),
            "single_row_calls": int(lat.size),
            "batch_median_ms": per_batch * 1e3,
            "batch_rows_per_s": BATCH / per_batch,
            "batch_calls": len(batch[name]),
        }
    return out


def bench_model(model: dict, out_dir: Path, threads: int, rounds: int) -> dict:
    import numpy as np

    from greenkfp.components.quantization import (
        QuantizationError,
        build_variants,
        make_session,
        predict_session,
    )
    from greenkfp.components.models import save_model

    est = model["estimator"]
    skops_path = save_model(est, out_dir / f"{model['key']}.skops")
    t0 = time.perf_counter()
    try:
        reports = build_variants(skops_path, model["X_test"], model["y_test"], model["X_train"],
                                 out_dir / model["key"], variants=ONNX_VARIANTS, calibration_rows=CALIBRATION_ROWS,
                                 seed=SEED, threads=threads)
    except QuantizationError as exc:
        raise BenchError(f"{model['key']}: {exc}") from exc
    variants_s = time.perf_counter() - t0
    reports = {r.name: r for r in reports}
    missing = [n for n in ("fp32", *INT8) if not reports[n].produced]
    if missing:
        raise BenchError(f"{model['key']}: variant(s) not produced: "
                         + "; ".join(f"{n}: {reports[n].reason}" for n in missing))

    X64 = model["X_test"]
    X32 = X64.astype(np.float32)
    engines = {"scikit-learn predict": (est.predict, False), "numpy forward (float64)": (numpy_forward(est), False)}
    sessions = {}
    for name in ONNX_VARIANTS:
        if reports[name].produced:
            session = make_session(reports[name].path, threads)
            input_name = session.get_inputs()[0].name
            sessions[name] = session
            engines[f"onnxruntime {name}"] = (lambda X, s=session, n=input_name: s.run(None, {n: X}), True)
    floor = make_session(identity_model(X64.shape[1]), threads)
    engines[FLOOR] = (lambda X, s=floor: s.run(None, {"input": X}), True)
    timings = measure(engines, X64, X32, rounds)
    # the timed sessions are the files the reports describe: same accuracy on the whole test split
    for name, session in sessions.items():
        labels, _ = predict_session(session, X32)
        if abs(float((np.asarray(labels) == model["y_test"]).mean()) - reports[name].accuracy) > 1e-12:
            raise BenchError(f"{model['key']} {name}: the timed session disagrees with the variant's report")

    sk_acc = float((est.predict(X64) == model["y_test"]).mean())
    rows = []
    for engine, figures in timings.items():
        variant = engine.removeprefix("onnxruntime ") if engine.startswith("onnxruntime ") else None
        report = reports.get(variant) if variant else None
        if engine == FLOOR:
            rows.append({"engine": engine, "variant": None, "precision": "float32", "accuracy": None,
                         "accuracy_change_points": None, "agreement_rate": None, "size_bytes": None,
                         "size_ratio_vs_fp32": None, "method": None, **figures})
            continue
        if engine == "numpy forward (float64)":
            acc = float((est.classes_[numpy_forward(est)(X64)] == model["y_test"]).mean())
        else:
            acc = report.accuracy if report else sk_acc
        rows.append({
            "engine": engine,
            "variant": variant,
            "precision": report.precision if report else "float64",
            "accuracy": acc,
            "accuracy_change_points": report.accuracy_change_points if report else 0.0,
            "agreement_rate": report.agreement_rate if report else 1.0,
            "size_bytes": report.size_bytes if report else None,
            "size_ratio_vs_fp32": report.size_ratio_vs_fp32 if report else None,
            "method": report.method if report else None,
            **figures,
        })
    return {
        "model": model["key"],
        "describe": model["describe"],
        "layers": model["layers"],
        "weights": model["weights"],
        "train_rows": int(model["X_train"].shape[0]),
        "test_rows": int(X64.shape[0]),
        "fit_s": model["fit_s"],
        "variants_build_s": variants_s,
        "skops_bytes": skops_path.stat().st_size,
        "sklearn_accuracy": sk_acc,
        "not_produced": {n: r.reason for n, r in reports.items() if not r.produced},
        "rows": rows,
    }


# --- goals -------------------------------------------------------------------------------------
def by_engine(result: dict) -> dict:
    return {r["engine"]: r for r in result["rows"]}


def evaluate_goals(results: list[dict]) -> list[dict]:
    goals = []
    for result in results:
        e = by_engine(result)
        sk, fp32, bare_row = e["scikit-learn predict"], e["onnxruntime fp32"], e["numpy forward (float64)"]
        ratio = sk["single_row_median_us"] / fp32["single_row_median_us"]
        met = ratio >= LATENCY_GOAL_X
        why = None
        if not met:
            floor = e[FLOOR]["single_row_median_us"]
            ort = fp32["single_row_median_us"]
            compute = max(ort - floor, 1e-9)
            bare = bare_row["single_row_median_us"]
            overhead = sk["single_row_median_us"] - bare
            weights_mb = result["weights"] * 4 / 1e6
            needed = sk["single_row_median_us"] / LATENCY_GOAL_X
            why = (f"{LATENCY_GOAL_X:.0f}x needs ONNX Runtime at <= {needed:.1f} us per row; it takes {ort:.1f} us, of "
                   f"which {floor:.1f} us is the fixed cost of a session.run call (timed on a one-node Identity model) "
                   f"and ~{compute:.1f} us the graph itself: matrix products that read {weights_mb:.2f} MB of float32 "
                   f"weights per row (an effective {weights_mb * 1e-3 / (compute * 1e-6):.0f} GB/s; a one-row "
                   f"matrix-vector product is bound by reading the weights) plus the classifier head (Softmax, ArgMax, "
                   f"label lookup). scikit-learn's {sk['single_row_median_us']:.0f} us is {bare:.0f} us of "
                   f"float64 arithmetic (the bare numpy forward pass, {bare / sk['single_row_median_us']:.0%}) plus "
                   f"~{overhead:.0f} us of validation and Python overhead; ONNX Runtime can only remove the overhead "
                   f"and halve the bytes read, so the larger the weights, the further the ratio falls below "
                   f"{LATENCY_GOAL_X:.0f}x")
        goals.append({"goal": 1, "model": result["model"],
                      "text": f"ORT fp32 >= {LATENCY_GOAL_X:.0f}x faster than scikit-learn, single row (median)",
                      "value": ratio, "value_text": f"{ratio:.1f}x", "met": met, "why_missed": why})
    wide = next(r for r in results if r["model"] == "wide")
    e = by_engine(wide)
    fp32, dyn = e["onnxruntime fp32"], e["onnxruntime int8_dynamic"]
    speed = dyn["batch_rows_per_s"] / fp32["batch_rows_per_s"]
    loss = -dyn["accuracy_change_points"]
    met = speed >= THROUGHPUT_GOAL_X and loss <= ACCURACY_LOSS_GOAL_POINTS
    why = None
    if not met:
        parts = []
        if speed < THROUGHPUT_GOAL_X:
            parts.append(f"int8_dynamic reaches {speed:.2f}x of fp32's batch throughput (quantizing the activations "
                         "of every batch at run time costs time that the int8 matrix products do not win back on "
                         f"this CPU: flags {', '.join(cpu_flags()) or 'unknown'})")
        if loss > ACCURACY_LOSS_GOAL_POINTS:
            parts.append(f"it loses {loss:.2f} accuracy points")
        why = "; ".join(parts)
    goals.append({"goal": 2, "model": "wide",
                  "text": f"ORT int8_dynamic >= {THROUGHPUT_GOAL_X:.0f}x fp32 throughput at batch {BATCH}, "
                          f"accuracy loss <= {ACCURACY_LOSS_GOAL_POINTS:g} point",
                  "value": speed, "value_text": f"{speed:.2f}x, {-loss:+.2f} points", "met": met, "why_missed": why})
    for result in results:
        e = by_engine(result)
        for variant in INT8:
            row = e[f"onnxruntime {variant}"]
            ratio = row["size_ratio_vs_fp32"]
            met = ratio >= SIZE_GOAL_X
            why = None if met else (
                f"{result['weights']:,} weights: int8 stores each in 1 byte instead of 4, but biases, scales and "
                "zero points, the graph and the label table stay, a larger share the smaller the model")
            goals.append({"goal": 3, "model": result["model"], "variant": variant,
                          "text": f"{variant} file >= {SIZE_GOAL_X}x smaller than fp32",
                          "value": ratio, "value_text": f"{ratio:.2f}x", "met": met, "why_missed": why})
    return goals


# --- output ------------------------------------------------------------------------------------
def render(console, report: dict) -> None:
    from rich.table import Table

    cfg = report["config"]
    console.rule("[bold]greenkfp inference benchmark: scikit-learn vs ONNX Runtime fp32 / int8 / fp16"
                 + (" [QUICK]" if cfg["quick"] else ""))
    console.print(
        f"CPU: {cfg['cpu_model']} ({cfg['cpu_count']} logical CPUs; flags {', '.join(cfg['cpu_flags'])}). "
        f"Threads: BLAS/OpenMP {cfg['threads']} ({', '.join(THREAD_ENV[:3])}, threadpoolctl); ONNX Runtime "
        f"{cfg['onnxruntime']} CPUExecutionProvider with intra_op_num_threads={cfg['threads']}, "
        f"inter_op_num_threads=1, sequential execution. One process, {cfg['rounds']} interleaved rounds: per round "
        f"and engine {ROW_CALLS} single-row calls (each a different test row) and {BATCH_CALLS} calls on a "
        f"batch of {BATCH} rows, after a warm-up. Latency: median (p95) microseconds per call, measured "
        f"wall-clock. Throughput: {BATCH} / median seconds per batch call, rows/s. Inputs prepared before "
        "timing: float64 for scikit-learn, float32 for ONNX Runtime.\n"
        "Accuracy on the whole test split; change in percentage points against scikit-learn; agreement = share of "
        "test rows predicted as scikit-learn does. 'numpy forward' = the bare float64 matrix products of the same "
        "MLP (no validation), to show how much of scikit-learn's time is arithmetic; 'call floor' = an ONNX model "
        "with one Identity node, the fixed cost of a session.run call."
    )
    if cfg["quick"]:
        console.print("[bold yellow]QUICK MODE: under-trained models and few rounds; figures are a smoke test.[/]")
    for result in report["models"]:
        table = Table(title=f"{result['describe']} ({result['weights']:,} weights; {result['test_rows']} test rows; "
                            f"fit {result['fit_s']:.1f} s; variants built in {result['variants_build_s']:.1f} s)")
        for header in ("engine", "precision", "1 row median us", "1 row p95 us", f"batch {BATCH} rows/s",
                       "x fp32 rows/s", "accuracy", "change pts", "agreement", "file KiB", "x smaller"):
            table.add_column(header, justify="left" if header in ("engine", "precision") else "right",
                             no_wrap=header == "engine")
        fp32 = by_engine(result)["onnxruntime fp32"]
        for row in result["rows"]:
            table.add_row(
                row["engine"], row["precision"], f"{row['single_row_median_us']:,.1f}", f"{row['single_row_p95_us']:,.1f}",
                f"{row['batch_rows_per_s']:,.0f}", f"{row['batch_rows_per_s'] / fp32['batch_rows_per_s']:.2f}",
                fmt(row["accuracy"], ".4f"), fmt(row["accuracy_change_points"], "+.2f"), fmt(row["agreement_rate"], ".4f"),
                "-" if row["size_bytes"] is None else f"{row['size_bytes'] / 1024:,.1f}",
                "-" if row["size_ratio_vs_fp32"] is None else f"{row['size_ratio_vs_fp32']:.2f}",
            )
        table.caption = (f"skops file {result['skops_bytes'] / 1024:,.1f} KiB. "
                         + " ".join(f"{n} not produced: {why}" for n, why in result["not_produced"].items()))
        console.print(table)
    methods = {row["variant"]: row["method"] for row in report["models"][0]["rows"] if row["variant"]}
    console.print("Variants: " + "; ".join(f"[bold]{k}[/]: {v}" for k, v in methods.items()))

    goals = Table(title="Goals")
    for header in ("#", "model", "goal", "measured", "verdict"):
        goals.add_column(header, no_wrap=header in ("#", "model", "verdict"))
    for g in report["goals"]:
        goals.add_row(str(g["goal"]), g["model"], g["text"], g["value_text"],
                      "[green]met[/]" if g["met"] else "[red]NOT met[/]")
    console.print(goals)
    for g in report["goals"]:
        if not g["met"]:
            console.print(f"[red]Goal {g['goal']} missed[/] ({g['model']}{', ' + g['variant'] if g.get('variant') else ''}): "
                          f"{g['why_missed']}.")


# --- entry point -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_threads(args.threads)

    from threadpoolctl import threadpool_limits

    console = wide_console(172)
    load_before = load_average()
    try:
        with threadpool_limits(limits=args.threads), tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
            import numpy
            import onnx
            import onnxruntime
            import skl2onnx
            import sklearn

            console.print("Training the two MLPs ...")
            models = make_models(args.quick)
            pools = threadpools()
            results = []
            for model in models:
                console.print(f"Building variants and timing {model['key']} ...")
                results.append(bench_model(model, Path(tmp), args.threads, args.rounds))
    except BenchError as exc:
        print_error("BENCHMARK ERROR", exc)
        return 1

    report = {
        "config": {
            "quick": args.quick,
            "threads": args.threads,
            "ort_session": {"intra_op_num_threads": args.threads, "inter_op_num_threads": 1,
                            "execution_mode": "sequential", "provider": "CPUExecutionProvider"},
            "thread_env": thread_env(),
            "threadpools": pools,
            "rounds": args.rounds,
            "row_calls_per_round": ROW_CALLS,
            "batch_calls_per_round": BATCH_CALLS,
            "batch_rows": BATCH,
            "calibration_rows": CALIBRATION_ROWS,
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "cpu_flags": cpu_flags(),
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "sklearn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "wide_data": {**WIDE, "generator": "sklearn.datasets.make_classification", "random_state": SEED},
        },
        "units": {"latency": "microseconds per call (wall-clock, measured)", "throughput": "rows per second",
                  "size": "bytes", "accuracy_change": "percentage points vs scikit-learn"},
        "models": results,
        "load_average": {"before": load_before, "after": load_average()},
    }
    report["goals"] = evaluate_goals(results)
    render(console, report)
    report["total_wall_s"] = time.perf_counter() - _BEGAN
    console.print(f"Load average before / after: {report['load_average']['before']} / {report['load_average']['after']}. "
                  f"Total wall time: {report['total_wall_s']:.1f} s.")
    write_figures(args.json, report, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
