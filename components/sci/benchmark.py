"""The ONNX Runtime inference benchmark, and the SCI of a model variant built on it.

:func:`benchmark_inference` runs an ONNX model on CPU with fixed, stated thread counts:
a warm-up, then *rounds*, each made of single-row requests over the test data (one row per
call, the latency of every call timed) followed by batched requests over the same data. Rounds
repeat until the figures are stable, by this rule:

    after at least ``max(min_repeats, 2)`` complete rounds and at least ``min_seconds`` of
    measured time, stop when the single-row p95 latency of the last round differs from the
    round before by at most ``rel_tolerance`` (relative to the earlier one); stop without
    convergence after ``max_repeats`` rounds, or when the next round would overrun
    ``max_seconds`` (the budget covers session creation, warm-up and the rounds; a round in
    progress at the deadline is cut short).

It reports latency percentiles (p50, p95, p99, numpy's linear interpolation) of single-row
requests, batch latency and throughput, the process CPU time and utilisation over the
measured rounds (warm-up excluded), the number of inferences, and whether and why it stopped.
The utilisation is the input of the energy model in :mod:`greenkfp.components.energy`. CPU time is read from
the calling thread's clock when the session has one thread (ONNX Runtime then runs the graph
in the caller's thread and creates no pool), so other busy threads of the process (a BLAS pool
still spinning after a scikit-learn fit, say) are not charged to the model; with more threads
it is the whole process's CPU time, which then includes any such thread. The result says
which.

Every knob of a run is one frozen, validated :class:`BenchmarkSettings`.
:func:`evaluate_variant_sci` runs the benchmark inside an
:class:`~greenkfp.components.energy.EnergyMeter` and turns it into an :class:`~.sci.SciReport`.

``onnxruntime`` is imported when a benchmark runs, not at import. No kfp import.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from greenkfp.components.energy import TEADS_RAM_W_PER_GB, EnergyMeter, HardwareProfile, RaplReader, resolve_profile

from .._checks import iso as _iso
from .._checks import non_negative, positive, positive_int
from .sci import FunctionalUnit, SciReport

__all__ = ["BenchmarkResult", "BenchmarkSettings", "benchmark_inference", "cpu_clock_for", "evaluate_variant_sci",
           "stability_rule"]

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


def stability_rule(min_repeats: int, max_repeats: int, rel_tolerance: float, max_seconds: float,
                   min_seconds: float = 0.0) -> str:
    """The stopping rule, in words, as recorded in every result."""
    return (
        f"repeat rounds (single-row requests over the test data, then batched requests over it) until the "
        f"single-row p95 latency of the last two complete rounds differs by at most {rel_tolerance:.1%} of the "
        f"earlier round, after at least {max(min_repeats, 2)} rounds and {min_seconds:g} s of measured time; "
        f"stop unconverged after {max_repeats} rounds or "
        f"when the next round would overrun the {max_seconds:g} s budget (session creation and warm-up included; a "
        f"round in progress at the deadline is cut short)"
    )


@dataclass(frozen=True)
class BenchmarkSettings:
    """How a benchmark runs and how its energy is metered; validated once, here.

    Attributes:
        intra_op_threads: ``SessionOptions.intra_op_num_threads`` (pinned, >= 1).
        inter_op_threads: ``SessionOptions.inter_op_num_threads`` (pinned, >= 1); above 1 the
            session runs in parallel execution mode. The cores reserved are intra x inter.
        batch_size: Rows per batched request.
        warmup: Single-row requests before measuring (plus one batched request); not counted.
        max_seconds: Budget for the whole benchmark, seconds (see the module's rule).
        min_seconds: Least measured time before the benchmark may stop as converged, so the
            energy and CPU figures cover more than a few milliseconds (<= ``max_seconds``).
        min_repeats, max_repeats, rel_tolerance: The stability rule (see the module).
        max_rows_per_round: Single-row requests per round use the first this-many rows.
        providers: ONNX Runtime execution providers (CPU by default).
        energy_mode: ``"auto"``, ``"measured"`` or ``"modeled"`` (see ``EnergyMeter``).
        rapl_root, measured_share, include_gpu, ram_w_per_gb: Passed to the ``EnergyMeter``.
        pue: Data-centre PUE applied to ``E`` (>= 1; 1.0 applies none).
    """

    intra_op_threads: int = 1
    inter_op_threads: int = 1
    batch_size: int = 64
    warmup: int = 20
    max_seconds: float = 30.0
    min_seconds: float = 1.0
    min_repeats: int = 3
    max_repeats: int = 1000
    rel_tolerance: float = 0.05
    max_rows_per_round: int = 1000
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    energy_mode: str = "auto"
    rapl_root: str | os.PathLike = "/sys/class/powercap"
    measured_share: float | None = None
    include_gpu: bool = False
    ram_w_per_gb: float = TEADS_RAM_W_PER_GB
    pue: float = 1.0

    def __post_init__(self) -> None:
        checked = {name: positive_int(name, getattr(self, name)) for name in (
            "intra_op_threads", "inter_op_threads", "batch_size", "min_repeats", "max_repeats", "max_rows_per_round")}
        checked["warmup"] = int(non_negative("warmup", self.warmup))
        checked["max_seconds"] = positive("max_seconds", self.max_seconds)
        checked["min_seconds"] = non_negative("min_seconds", self.min_seconds)
        checked["rel_tolerance"] = non_negative("rel_tolerance", self.rel_tolerance)
        checked["ram_w_per_gb"] = non_negative("ram_w_per_gb", self.ram_w_per_gb)
        checked["pue"] = non_negative("pue", self.pue)
        if checked["min_seconds"] > checked["max_seconds"]:
            raise ValueError(f"min_seconds must be <= max_seconds ({self.max_seconds!r}), got {self.min_seconds!r}")
        if checked["max_repeats"] < checked["min_repeats"]:
            raise ValueError(f"max_repeats must be >= min_repeats ({checked['min_repeats']}), got {self.max_repeats!r}")
        if checked["pue"] < 1:
            raise ValueError(f"pue must be >= 1, got {self.pue!r}")
        if self.energy_mode not in ("auto", "measured", "modeled"):
            raise ValueError(f"energy_mode must be 'auto', 'measured' or 'modeled', got {self.energy_mode!r}")
        if isinstance(self.providers, str) or not self.providers:
            raise ValueError(f"providers must be a non-empty sequence of ONNX Runtime providers, "
                             f"got {self.providers!r}")
        checked["providers"] = tuple(self.providers)
        checked["include_gpu"] = bool(self.include_gpu)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def cores(self) -> int:
        """Cores reserved by the session: intra-op x inter-op threads."""
        return self.intra_op_threads * self.inter_op_threads

    @property
    def rule(self) -> str:
        return stability_rule(self.min_repeats, self.max_repeats, self.rel_tolerance, self.max_seconds,
                              self.min_seconds)

    def meter(self, profile: HardwareProfile, cpu_timer: Callable[[], float]) -> EnergyMeter:
        """The energy meter for a benchmark under these settings on ``profile``."""
        return EnergyMeter(profile, cores_used=self.cores, mode=self.energy_mode, rapl=RaplReader(self.rapl_root),
                           include_gpu=self.include_gpu, measured_share=self.measured_share,
                           ram_w_per_gb=self.ram_w_per_gb, cpu_timer=cpu_timer)


@dataclass(frozen=True)
class BenchmarkResult:
    """What one benchmark measured. Times in ms (latencies) or s; throughput in rows/s."""

    latency_ms: dict
    batch_latency_ms: dict
    batch_size: int
    batch_rows_per_s: float | None
    single_rows_per_s: float | None
    n_single_requests: int
    n_batch_requests: int
    n_batch_rows: int
    n_inferences: int
    n_rounds: int
    round_p95_ms: tuple[float, ...]
    wall_time_s: float
    total_time_s: float
    cpu_time_s: float
    cpu_utilisation_percent: float
    cpu_clock: str
    cores_reserved: int
    intra_op_threads: int
    inter_op_threads: int
    execution_mode: str
    providers: tuple[str, ...]
    onnxruntime_version: str
    warmup_requests: int
    max_seconds: float
    stability_rule: str
    converged: bool
    stop_reason: str
    started_at: datetime
    ended_at: datetime
    input_name: str
    n_rows: int
    n_features: int

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["latency_ms"] = dict(self.latency_ms)
        data["batch_latency_ms"] = dict(self.batch_latency_ms)
        data["round_p95_ms"] = list(self.round_p95_ms)
        data["providers"] = list(self.providers)
        data["started_at"] = _iso(self.started_at)
        data["ended_at"] = _iso(self.ended_at)
        data["units"] = {
            "latency": "ms", "throughput": "rows/s", "time": "s", "cpu_utilisation": "% of reserved cores",
            "method": "measured (wall clock and process CPU time)",
        }
        return data


def _percentiles(values_s: Sequence[float]) -> dict:
    ms = np.asarray(values_s, dtype=np.float64) * 1000.0
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(ms.mean()),
            "min": float(ms.min()), "max": float(ms.max()), "count": int(ms.size)}


def _load_session(model: Any, intra: int, inter: int, providers: Sequence[str]):
    import onnxruntime as ort

    if hasattr(model, "SerializeToString"):  # an onnx.ModelProto
        model = model.SerializeToString()
    if isinstance(model, (bytes, bytearray)):
        source = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        if not os.path.isfile(source):
            raise ValueError(f"model_path_or_bytes: no such file {source!r}")
    else:
        raise TypeError(f"model_path_or_bytes must be a path, bytes or an onnx.ModelProto, got {type(model).__name__}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra
    options.inter_op_num_threads = inter
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL if inter == 1 else ort.ExecutionMode.ORT_PARALLEL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(source, sess_options=options, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/InvalidGraph types
        where = source if isinstance(source, str) else f"{len(source):,} bytes"
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"model {where!r} is not a loadable ONNX model: {first_line}") from None
    mode = "sequential" if inter == 1 else "parallel"
    return session, mode, ort.__version__


def _prepare_input(session, X: Any):
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"only single-input models are supported; this model has inputs {[i.name for i in inputs]}")
    spec = inputs[0]
    dtype = _ORT_TYPES.get(spec.type)
    if dtype is None:
        raise ValueError(f"unsupported model input type {spec.type!r} for input {spec.name!r}; "
                         f"supported: {', '.join(_ORT_TYPES)}")
    try:
        array = np.asarray(X)
    except Exception as exc:
        raise ValueError(f"X must be array-like: {exc}") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (rows x features), got shape {array.shape}")
    width = spec.shape[1] if len(spec.shape) == 2 else None
    if isinstance(width, int) and width != array.shape[1]:
        raise ValueError(f"the model's input {spec.name!r} takes {width} features per row, but the test data has "
                         f"{array.shape[1]}: was the model trained on another dataset?")
    try:
        array = np.ascontiguousarray(array, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X cannot be cast to the model's input type {spec.type}: {exc}") from None
    return spec.name, array


def cpu_clock_for(cores: int) -> tuple[Callable[[], float], str]:
    """The CPU clock that measures a session's work, and its description.

    One thread (``intra_op_threads == inter_op_threads == 1``): the calling thread's CPU time
    (``time.thread_time``), where ONNX Runtime runs the whole graph. More: the process's CPU
    time (``time.process_time``), every thread, since the work spreads over ORT's pool threads.
    """
    if cores == 1:
        return time.thread_time, "calling thread's CPU time (time.thread_time): the session runs in that thread"
    return time.process_time, ("whole process's CPU time (time.process_time): ONNX Runtime's pool threads "
                               "and any other busy thread of the process")


def benchmark_inference(
    model_path_or_bytes: Any,
    X: Any,
    settings: BenchmarkSettings | None = None,
    *,
    run: Callable[[Any, dict], Any] | None = None,
    meter: EnergyMeter | None = None,
    timer: Callable[[], float] = time.perf_counter,
    cpu_timer: Callable[[], float] | None = None,
) -> BenchmarkResult:
    """Benchmark single-row and batched inference of an ONNX model with ONNX Runtime on CPU.

    Args:
        model_path_or_bytes: A ``.onnx`` path, the model's bytes, or an ``onnx.ModelProto``.
            The model must have one 2-D input (rows x features), as skl2onnx models do.
        X: Test data, rows x features; cast to the model's input type.
        settings: Threads, batch size, warm-up, budget and stability rule (default
            ``BenchmarkSettings()``); its metering fields are not used here.
        run: How to run one request, ``run(session, feeds) -> outputs``; default
            ``session.run(None, feeds)``. A hook for wrapping requests (tests inject a known
            delay with it).
        meter: An ``EnergyMeter`` started and stopped around the measured rounds (warm-up
            excluded), so its energy matches ``n_inferences``.
        timer: Wall clock, seconds (for tests).
        cpu_timer: CPU clock, seconds; default :func:`cpu_clock_for` the thread count. Pass
            the same clock to the ``meter``.

    Returns:
        A :class:`BenchmarkResult`.
    """
    settings = BenchmarkSettings() if settings is None else settings
    if not isinstance(settings, BenchmarkSettings):
        raise TypeError(f"settings must be a BenchmarkSettings, got {type(settings).__name__}: {settings!r}")
    if run is not None and not callable(run):
        raise TypeError(f"run must be callable(session, feeds), got {run!r}")
    call = run or (lambda session, feeds: session.run(None, feeds))
    cpu_timer, cpu_clock = cpu_clock_for(settings.cores) if cpu_timer is None else (cpu_timer, "given by the caller")

    t_begin = timer()
    started_at = datetime.now(timezone.utc)
    session, mode, ort_version = _load_session(model_path_or_bytes, settings.intra_op_threads,
                                               settings.inter_op_threads, settings.providers)
    name, data = _prepare_input(session, X)
    singles = [{name: data[i:i + 1]} for i in range(min(len(data), settings.max_rows_per_round))]
    batches = [{name: data[i:i + settings.batch_size]} for i in range(0, len(data), settings.batch_size)]
    for i in range(settings.warmup):
        call(session, singles[i % len(singles)])
    if settings.warmup:
        call(session, batches[0])

    if meter is not None:
        meter.start()
    c0, w0 = cpu_timer(), timer()
    try:
        rounds = _run_rounds(call, session, singles, batches, settings, timer, w0,
                             deadline=t_begin + settings.max_seconds)
    finally:
        wall = max(0.0, timer() - w0)
        cpu = max(0.0, cpu_timer() - c0)
        if meter is not None:
            meter.stop()
    single_total, batch_total = float(sum(rounds.single_lat)), float(sum(rounds.batch_lat))
    return BenchmarkResult(
        latency_ms=_percentiles(rounds.single_lat), batch_latency_ms=_percentiles(rounds.batch_lat),
        batch_size=settings.batch_size,
        batch_rows_per_s=rounds.batch_rows / batch_total if batch_total > 0 else None,
        single_rows_per_s=len(rounds.single_lat) / single_total if single_total > 0 else None,
        n_single_requests=len(rounds.single_lat), n_batch_requests=len(rounds.batch_lat),
        n_batch_rows=rounds.batch_rows, n_inferences=len(rounds.single_lat) + rounds.batch_rows,
        n_rounds=len(rounds.round_p95), round_p95_ms=tuple(rounds.round_p95),
        wall_time_s=wall, total_time_s=timer() - t_begin, cpu_time_s=cpu,
        cpu_utilisation_percent=0.0 if wall == 0 else 100.0 * cpu / (wall * settings.cores),
        cpu_clock=cpu_clock, cores_reserved=settings.cores, intra_op_threads=settings.intra_op_threads,
        inter_op_threads=settings.inter_op_threads, execution_mode=mode, providers=settings.providers,
        onnxruntime_version=ort_version, warmup_requests=settings.warmup + (1 if settings.warmup else 0),
        max_seconds=settings.max_seconds, stability_rule=settings.rule, converged=rounds.converged,
        stop_reason=rounds.stop_reason, started_at=started_at, ended_at=datetime.now(timezone.utc),
        input_name=name, n_rows=int(data.shape[0]), n_features=int(data.shape[1]),
    )


@dataclass
class _Rounds:
    """What the measured rounds collected (latencies in seconds)."""

    single_lat: list[float] = field(default_factory=list)
    batch_lat: list[float] = field(default_factory=list)
    batch_rows: int = 0
    round_p95: list[float] = field(default_factory=list)
    converged: bool = False
    stop_reason: str = "max_repeats"


def _timed(call, session, requests: list[dict], timer, deadline: float, latencies: list[float]) -> tuple[bool, int]:
    """Run ``requests`` in turn, appending each latency; stop after the one that reaches the
    deadline. Returns ``(cut short, rows sent)``."""
    rows = 0
    for feeds in requests:
        t0 = timer()
        call(session, feeds)
        t1 = timer()
        latencies.append(t1 - t0)
        rows += len(next(iter(feeds.values())))
        if t1 >= deadline:
            return True, rows
    return False, rows


def _run_rounds(call, session, singles, batches, settings: BenchmarkSettings, timer, w0: float, *,
                deadline: float) -> _Rounds:
    """The measured rounds, under the module's stopping rule."""
    rounds = _Rounds()
    last_round_s = 0.0
    while len(rounds.round_p95) < settings.max_repeats:
        round_start = timer()
        if rounds.round_p95 and round_start + last_round_s > deadline:
            rounds.stop_reason = "time_budget"
            return rounds
        this_round: list[float] = []
        cut, _ = _timed(call, session, singles, timer, deadline, this_round)
        if not cut or not rounds.batch_lat:  # at least one batched request, even when out of time
            cut_batches, rows = _timed(call, session, batches, timer, deadline, rounds.batch_lat)
            cut, rounds.batch_rows = cut or cut_batches, rounds.batch_rows + rows
        rounds.single_lat += this_round
        rounds.round_p95.append(float(np.percentile(np.asarray(this_round) * 1000.0, 95)))
        last_round_s = timer() - round_start
        if cut:
            rounds.stop_reason = "time_budget"
            return rounds
        if len(rounds.round_p95) >= max(settings.min_repeats, 2) and timer() - w0 >= settings.min_seconds:
            earlier, latest = rounds.round_p95[-2], rounds.round_p95[-1]
            if earlier > 0 and abs(latest - earlier) / earlier <= settings.rel_tolerance:
                rounds.converged, rounds.stop_reason = True, "converged"
                return rounds
    return rounds


# --------------------------------------------------------------------------- SCI of a variant


def _boundary(bench: BenchmarkResult, profile: HardwareProfile, gpu: bool) -> dict:
    share = f"{bench.cores_reserved} of {profile.vcpus} vCPUs"
    included = [
        f"the model's inference on CPU through ONNX Runtime {bench.onnxruntime_version} "
        f"({bench.intra_op_threads} intra-op x {bench.inter_op_threads} inter-op threads, {bench.execution_mode} mode), "
        f"single-row and batched requests as benchmarked",
        f"the host's CPU, charged by the cores reserved ({share})",
        f"the host's RAM, charged by the same share ({share})",
        "the embodied emissions of that share of the host for the benchmark's duration",
    ]
    if gpu:
        included.append("the GPUs' energy as read from NVML counters")
    excluded = [
        "networking and load balancing",
        "storage",
        "idle or overprovisioned capacity beyond the reserved cores (the rest of the machine, standby replicas)",
        "the client, request serialisation and transport, pre- and post-processing outside the ONNX graph",
        "data-centre overhead beyond the PUE given (cooling, power distribution)",
        "model training (reported apart, in lifecycle, when given)",
        "build, deployment, monitoring and logging",
    ]
    if not gpu:
        excluded.append("GPUs and other accelerators")
    return {"included": included, "excluded": excluded}


def _methodology(bench: BenchmarkResult, meter_method: str, unit: FunctionalUnit, pue: float) -> str:
    energy = {
        "measured": "measured from Linux RAPL energy counters (package and DRAM zones), charged by the share of "
                    "cores reserved",
        "modeled": f"modeled from the CPU utilisation of the reserved cores ({bench.cpu_clock}) with the Teads "
                   "power curve over the profile's TDP (scaled by cores reserved / vCPUs), plus RAM power per GB",
        "mixed": "partly measured from Linux RAPL counters and partly modeled (see E's parts)",
    }[meter_method]
    return (
        "SCI 'calculation' method (a lab benchmark of one functional unit's work): "
        f"a {bench.n_inferences}-inference ONNX Runtime benchmark ({bench.n_single_requests} single-row and "
        f"{bench.n_batch_requests} batched requests of up to {bench.batch_size} rows; warm-up excluded; "
        f"{'converged' if bench.converged else 'not converged: ' + bench.stop_reason} under the rule: "
        f"{bench.stability_rule}). E: {energy}, over the measured rounds; x PUE {pue:g}. "
        "I: location-based grid intensity from the source given (no market-based measures). "
        "M: TE x (TiR / EL) x (RR / ToR) with TE the host's embodied emissions, TiR the benchmark's measured wall "
        "time, EL the profile's lifespan, RR the cores reserved and ToR the vCPUs TE is shared over. "
        f"R: the benchmark's inferences counted {unit.label}. "
        "Score per inference = (E x I + M) / inferences, over the benchmark's mix of single-row and batched requests."
    )


def evaluate_variant_sci(
    model_path_or_bytes: Any,
    X: Any,
    *,
    profile: HardwareProfile | str,
    intensity_g_per_kwh: float,
    intensity_source: Mapping[str, Any],
    settings: BenchmarkSettings | None = None,
    functional_unit: FunctionalUnit | None = None,
    expected_lifetime_inferences: float | None = None,
    training_emissions_g: float | None = None,
    run: Callable[[Any, dict], Any] | None = None,
    subject: str | None = None,
) -> SciReport:
    """Benchmark a model variant, meter the energy, and compute its SCI per functional unit.

    Steps: run :func:`benchmark_inference` inside an ``EnergyMeter`` (RAPL-measured where
    available, else modeled; the method is recorded); ``E`` = that energy x ``settings.pue``;
    ``M`` from the profile with time reserved = the benchmark's measured wall time and
    resources reserved = threads (intra x inter) over the vCPUs the host's embodied emissions
    are shared over; ``R`` = inferences counted in ``functional_unit``. With
    ``expected_lifetime_inferences``, the lifecycle total ``training_emissions_g + expected
    inferences x per-inference carbon`` is reported apart from the score; training never
    enters the score.

    Args:
        model_path_or_bytes, X: The model and the test data (see :func:`benchmark_inference`).
        profile: The machine, or a preset's name (see ``greenkfp.components.energy.resolve_profile``).
        intensity_g_per_kwh: ``I``, gCO2eq/kWh, location-based, at the time of use.
        intensity_source: Where ``I`` came from: ``provider`` (required), ``region``,
            ``data_kind``, ``signal``, ``time`` (e.g. from the carbon gate's record).
        settings: The benchmark's and the meter's :class:`BenchmarkSettings`.
        functional_unit: ``R`` (default: per 1,000 inferences).
        expected_lifetime_inferences: Inferences expected over the model's life.
        training_emissions_g: The model's training emissions, gCO2eq (reported apart).
        run: Passed to :func:`benchmark_inference`.
        subject: A name for the variant, recorded in the report.
    """
    settings = BenchmarkSettings() if settings is None else settings
    unit = FunctionalUnit("inference", 1000) if functional_unit is None else functional_unit
    profile = resolve_profile(profile)
    if settings.cores > profile.vcpus:
        raise ValueError(f"intra_op_threads x inter_op_threads ({settings.cores}) must be <= the profile's vcpus "
                         f"({profile.vcpus}, profile {profile.name!r})")
    non_negative("intensity_g_per_kwh", intensity_g_per_kwh)
    if expected_lifetime_inferences is not None:
        non_negative("expected_lifetime_inferences", expected_lifetime_inferences)
    if training_emissions_g is not None:
        non_negative("training_emissions_g", training_emissions_g)
    cpu_timer, _ = cpu_clock_for(settings.cores)
    meter = settings.meter(profile, cpu_timer)
    bench = benchmark_inference(model_path_or_bytes, X, settings, run=run, meter=meter, cpu_timer=cpu_timer)
    reading = meter.result
    gpu = settings.include_gpu and any(p["part"] == "gpu" for p in reading.parts)
    return SciReport.compute(
        energy_kwh=reading.energy_kwh * settings.pue, energy_method=reading.method, energy_detail=reading.detail,
        energy_parts=reading.parts, intensity_g_per_kwh=intensity_g_per_kwh, intensity_source=intensity_source,
        total_embodied_g=profile.embodied_g, time_reserved=timedelta(seconds=bench.wall_time_s),
        expected_lifespan=profile.lifespan, resources_reserved=settings.cores, total_resources=profile.host_vcpus,
        items=bench.n_inferences, functional_unit=unit, software_boundary=_boundary(bench, profile, gpu),
        methodology=_methodology(bench, reading.method, unit, settings.pue), hardware_profile=profile.to_dict(),
        uncertainty=reading.uncertainty, benchmark={**bench.to_dict(), "energy": reading.to_dict()},
        training_emissions_g=training_emissions_g, expected_lifetime_items=expected_lifetime_inferences,
        notes=_notes(bench, reading, profile), pue=settings.pue, subject=subject,
    )


def _notes(bench: BenchmarkResult, reading, profile: HardwareProfile) -> list[str]:
    notes = list(reading.notes)
    if not bench.converged:
        notes.append(f"the benchmark did not converge ({bench.stop_reason}): latencies and per-inference figures "
                     "are less stable than the rule asks")
    notes.append(
        f"the benchmark ran on this machine ({os.cpu_count()} logical CPUs): latencies, CPU time"
        + (" and RAPL energy" if reading.method != "modeled" else "")
        + f" are this machine's; the hardware profile {profile.name!r} supplies "
        + ("the energy model's TDP and RAM, and " if reading.method != "measured" else "")
        + "the embodied emissions"
    )
    if profile.host_vcpus != profile.vcpus:
        notes.append(f"M shares the host's embodied emissions over {profile.host_vcpus} vCPUs (ToR), the profile's "
                     f"host_vcpus, not over the machine's {profile.vcpus}")
    return notes
