"""The micro-batcher and the protocol's tensor conversion, without HTTP.

The batcher's runner here is a real function that holds its first call until the test lets it
go: what arrives meanwhile is queued, deterministically, instead of racing a fast model.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from greenkfp.components.serving.batching import BatchError, MicroBatcher
from greenkfp.components.serving.protocol import ProtocolError, RequestInput, tensor_from_input, to_response_output


class HeldRunner:
    """Doubles its input; the first call waits for :attr:`release`; calls listed with their rows."""

    def __init__(self, fail_when=lambda rows: False):
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls: list[int] = []
        self.fail_when = fail_when

    def __call__(self, inputs):
        rows = len(inputs["x"])
        self.calls.append(rows)
        if len(self.calls) == 1:
            self.started.set()
            assert self.release.wait(30)
        if self.fail_when(rows):
            raise RuntimeError(f"cannot run {rows} rows")
        return [inputs["x"] * 2, inputs["x"].sum(axis=1)], rows


def run(coro):
    return asyncio.run(coro)


def rows_of(i: int, n: int) -> dict:
    return {"x": np.full((n, 3), float(i), dtype=np.float32)}


def test_requests_queued_while_a_batch_runs_go_together_and_get_their_own_rows():
    runner = HeldRunner()
    seen = []

    async def main():
        batcher = MicroBatcher(runner, max_batch_size=32, max_batch_delay_s=0.0, on_batch=seen.append)
        first = asyncio.create_task(batcher.submit(rows_of(0, 1), 1))
        await asyncio.to_thread(runner.started.wait, 30)  # the lone first request ran at once
        others = [asyncio.create_task(batcher.submit(rows_of(i, i), i)) for i in range(1, 6)]
        await asyncio.sleep(0)  # let them queue
        runner.release.set()
        answers = await asyncio.gather(first, *others)
        batcher.close()
        return answers

    answers = run(main())
    assert runner.calls == [1, 1 + 2 + 3 + 4 + 5]
    assert [(s.requests, s.rows) for s in seen] == [(1, 1), (5, 15)]
    for i, (doubled, sums) in enumerate(answers):
        n = max(i, 1)
        np.testing.assert_array_equal(doubled, np.full((n, 3), 2.0 * i))
        np.testing.assert_array_equal(sums, np.full(n, 3.0 * i))


def test_batches_are_bounded_by_rows_and_a_large_request_runs_alone():
    runner = HeldRunner()

    async def main():
        batcher = MicroBatcher(runner, max_batch_size=4, max_batch_delay_s=0.0)
        first = asyncio.create_task(batcher.submit(rows_of(0, 1), 1))
        await asyncio.to_thread(runner.started.wait, 30)
        sizes = [2, 2, 3, 9, 1]
        others = [asyncio.create_task(batcher.submit(rows_of(i, n), n)) for i, n in enumerate(sizes, 1)]
        await asyncio.sleep(0)
        runner.release.set()
        await asyncio.gather(first, *others)
        batcher.close()

    run(main())
    assert runner.calls == [1, 4, 3, 9, 1]  # 2+2; 3 (3+9 too many); 9 alone (over the cap); 1


def test_batching_off_runs_each_request_alone():
    runner = HeldRunner()

    async def main():
        batcher = MicroBatcher(runner, max_batch_size=1, max_batch_delay_s=0.0)
        first = asyncio.create_task(batcher.submit(rows_of(0, 1), 1))
        await asyncio.to_thread(runner.started.wait, 30)
        others = [asyncio.create_task(batcher.submit(rows_of(i, 1), 1)) for i in range(1, 4)]
        await asyncio.sleep(0)
        runner.release.set()
        await asyncio.gather(first, *others)
        batcher.close()

    run(main())
    assert runner.calls == [1, 1, 1, 1]


def test_a_failing_batch_reruns_its_requests_alone_and_only_the_bad_one_fails():
    # a batch of 2 + 3 rows fails (5 rows); alone, the 2-row request runs, the 3-row one fails
    runner = HeldRunner(fail_when=lambda rows: rows in (5, 3))
    seen, splits = [], []

    async def main():
        batcher = MicroBatcher(runner, max_batch_size=32, max_batch_delay_s=0.0, on_batch=seen.append,
                               on_split=lambda n, why: splits.append((n, why)))
        first = asyncio.create_task(batcher.submit(rows_of(0, 1), 1))
        await asyncio.to_thread(runner.started.wait, 30)
        queued = [asyncio.create_task(batcher.submit(rows_of(i, n), n)) for i, n in ((1, 2), (2, 3))]
        await asyncio.sleep(0)
        runner.release.set()
        results = await asyncio.gather(first, *queued, return_exceptions=True)
        after = await batcher.submit(rows_of(7, 2), 2)
        count = batcher.split_batches
        batcher.close()
        return results, after, count

    (first, good, bad), after, count = run(main())
    assert runner.calls == [1, 5, 2, 3, 2]
    assert isinstance(first, list)
    np.testing.assert_array_equal(good[0], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(good[1], np.full(2, 3.0))
    assert isinstance(bad, BatchError) and "cannot run 3 rows" in str(bad)
    np.testing.assert_array_equal(after[0], np.full((2, 3), 14.0))
    assert count == 1 and splits == [(2, "inference failed: cannot run 5 rows")]
    assert [(s.requests, s.rows) for s in seen] == [(1, 1), (1, 2), (1, 2)]  # the failed ones not counted


def test_a_batch_whose_outputs_do_not_split_by_rows_reruns_each_request_alone():
    """A model that sums over the rows ([N, 3] -> [1, 3]): batched, its output cannot be split
    back; each request alone gets its own sum."""
    runner = HeldRunner()

    def summing(inputs):
        runner(inputs)
        return [inputs["x"].sum(axis=0, keepdims=True)], None

    async def main():
        batcher = MicroBatcher(summing, max_batch_size=32, max_batch_delay_s=0.0)
        first = asyncio.create_task(batcher.submit(rows_of(0, 1), 1))
        await asyncio.to_thread(runner.started.wait, 30)
        queued = [asyncio.create_task(batcher.submit(rows_of(i, n), n)) for i, n in ((1, 2), (2, 3))]
        await asyncio.sleep(0)
        runner.release.set()
        answers = await asyncio.gather(first, *queued)
        count = batcher.split_batches
        batcher.close()
        return answers, count

    (_, two, three), count = run(main())
    assert runner.calls == [1, 5, 2, 3] and count == 1
    np.testing.assert_array_equal(two[0], np.full((1, 3), 2.0))
    np.testing.assert_array_equal(three[0], np.full((1, 3), 6.0))


def _onnx_model(path, input_shape, output_shape):
    """x -> ReduceSum over axis 0 (keepdims) when the output's first dimension is 1, else Identity."""
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, output_shape)
    if output_shape[0] == 1:
        axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
        graph = helper.make_graph([helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)], "g", [x], [y],
                                  initializer=[axes])
    else:
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, str(path))
    return path


def test_a_model_with_a_fixed_output_first_dimension_is_served_unbatched(tmp_path, caplog):
    from greenkfp.components.serving.app import InferenceServer, ServeSettings
    from greenkfp.components.serving.model import ServedModel

    reduce = ServedModel(_onnx_model(tmp_path / "reduce.onnx", ["N", 4], [1, 4]), "reduce")
    assert not reduce.batchable and "output 'y' has shape [1, 4]" in reduce.batching_off_reason
    assert reduce.metadata("1")["parameters"] == {"batchable": False,
                                                  "batching_off_reason": reduce.batching_off_reason}
    fixed = ServedModel(_onnx_model(tmp_path / "fixed.onnx", [3, 4], [3, 4]), "fixed")
    assert not fixed.batchable and "input 'x' has shape [3, 4]" in fixed.batching_off_reason
    free = ServedModel(_onnx_model(tmp_path / "free.onnx", ["N", 4], ["N", 4]), "free")
    assert free.batchable and free.metadata("1")["parameters"] == {"batchable": True}

    server = InferenceServer(ServeSettings(model=str(tmp_path / "reduce.onnx"), name="reduce", max_batch_size=8))
    with caplog.at_level("WARNING", logger="greenkfp.serving"):
        server.load()
    assert server.state == "ready" and server.batcher.max_batch_size == 1
    assert [r.getMessage() for r in caplog.records if "batching off" in r.getMessage()] == [
        f"model reduce: batching off, each request runs alone ({reduce.batching_off_reason})"]
    from prometheus_client import generate_latest
    assert 'greenkfp_batching_enabled{model="reduce"} 0.0' in generate_latest(server.registry).decode()


def test_a_queued_request_runs_at_its_deadline_beside_a_running_batch():
    """With a batch running and a worker free, a queued request is not held until that batch ends:
    its delay runs out and it runs on the other worker (the first batch is still held)."""
    runner = HeldRunner()

    async def main():
        batcher = MicroBatcher(runner, max_batch_size=32, max_batch_delay_s=0.05, concurrency=2)
        first = asyncio.create_task(batcher.submit(rows_of(0, 1), 1))
        await asyncio.to_thread(runner.started.wait, 30)
        second = await batcher.submit(rows_of(1, 2), 2)  # runs beside the held first batch
        runner.release.set()
        await first
        batcher.close()
        return second

    second = run(main())
    np.testing.assert_array_equal(second[0], np.full((2, 3), 2.0))
    assert runner.calls == [1, 2]


def test_short_runs_stay_on_the_event_loop_and_a_slow_one_goes_back_to_a_thread():
    durations = iter([0.0, 0.0, 0.0, 0.05, 0.0, 0.0])
    threads = []

    def runner(inputs):
        threads.append(threading.get_ident())
        time.sleep(next(durations))
        return [inputs["x"] * 2], None

    async def main():
        batcher = MicroBatcher(runner, max_batch_size=1, max_batch_delay_s=0.0, inline_below_s=0.01)
        answers = [await batcher.submit(rows_of(i, 1), 1) for i in range(6)]
        batcher.close()
        return threading.get_ident(), answers

    loop_thread, answers = run(main())
    # the first call (duration unknown) and the one after the 50 ms call ran in a worker thread
    assert [t == loop_thread for t in threads] == [False, True, True, True, False, True]
    assert [float(a[0][0, 0]) for a in answers] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


@pytest.mark.parametrize("datatype, data, expected", [
    ("INT64", [1, 2, 3], np.array([1, 2, 3], dtype=np.int64)),
    ("FP32", [1, 2.5, 3], np.array([1, 2.5, 3], dtype=np.float32)),
    ("BOOL", [True, False, True], np.array([True, False, True])),
    ("UINT8", [0, 255, 7], np.array([0, 255, 7], dtype=np.uint8)),
    ("FP16", [0.5, 1, 2], np.array([0.5, 1, 2], dtype=np.float16)),
    ("BYTES", ["a", "b", "c"], np.array(["a", "b", "c"], dtype=object)),
    # numpy alone guesses float64 for these (an int past int64 beside small ones): exact here
    ("UINT64", [18446744073709551615, 0, 1], np.array([18446744073709551615, 0, 1], dtype=np.uint64)),
    ("INT64", [-2**63, 2**63 - 1, 0], np.array([-2**63, 2**63 - 1, 0], dtype=np.int64)),
])
def test_tensor_conversion(datatype, data, expected):
    array = tensor_from_input(RequestInput(name="t", shape=[3], datatype=datatype, data=data))
    assert array.dtype == expected.dtype
    np.testing.assert_array_equal(array, expected)
    out = to_response_output("t", array)
    assert out["datatype"] == datatype and out["shape"] == [3]


@pytest.mark.parametrize("datatype, data, fragment", [
    ("INT64", [1, 2.5, 3], "not INT64"),
    ("UINT8", [0, 256, 1], "values out of range for UINT8 (0..255)"),
    ("INT8", [-129, 0, 1], "values out of range for INT8 (-128..127)"),
    ("INT8", [1e30, 0, 1], "values out of range for INT8"),
    ("INT64", [2**63, 0, 1], "values out of range for INT64"),
    ("UINT64", [float(2**64), 0, 1], "values out of range for UINT64"),  # JSON parses 2**64 as a float
    ("UINT64", [-1, 0, 18446744073709551615], "values out of range for UINT64"),
    ("INT64", [2.0, 0, 1], "got floating-point numbers"),
    ("INT64", [2.5, 0, 2**63], "got numbers with fractions"),
    ("BOOL", [1, 0, 1], "not BOOL"),
    ("FP32", [1, "2", 3], "not FP32"),
    ("FP16", [1e6, 0, 0], "overflow FP16"),
    ("BYTES", [1, 2, 3], "BYTES data must be strings"),
])
def test_tensor_conversion_is_strict(datatype, data, fragment):
    with pytest.raises(ProtocolError) as caught:
        tensor_from_input(RequestInput(name="t", shape=[3], datatype=datatype, data=data))
    assert caught.value.status == 400 and fragment in caught.value.message


def test_grid_intensity_keeps_the_last_value_when_the_provider_fails(httpserver):
    """The carbon service's UK provider against a local server: failing, answering, failing again."""
    import math
    import re
    from datetime import datetime, timedelta, timezone

    from greenkfp.components.serving.metrics import GridIntensity

    grid = GridIntensity("GB", provider="uk", provider_options={"uk": {"base_url": httpserver.url_for("")}})
    counted = []
    grid.on_failure = lambda: counted.append(1)  # what the metrics' failure counter does
    path = re.compile(r"/intensity/.*/fw48h")
    httpserver.expect_request(path).respond_with_json({"error": "no"}, status=404)
    assert grid.fetch() is False and grid.failures == 1 and math.isnan(grid.value) and "404" in grid.last_error

    httpserver.clear()
    now = datetime.now(timezone.utc)
    start = now.replace(minute=0 if now.minute < 30 else 30, second=0, microsecond=0) - timedelta(minutes=30)
    slots = [{"from": (start + i * timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%MZ"),
              "to": (start + (i + 1) * timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%MZ"),
              "intensity": {"forecast": 151, "actual": None, "index": "moderate"}} for i in range(6)]
    httpserver.expect_request(path).respond_with_json({"data": slots})
    assert grid.fetch() is True and grid.value == 151.0 and "uk forecast" in grid.source
    updated = grid.updated_at

    httpserver.clear()
    httpserver.expect_request(path).respond_with_json({"error": "no"}, status=404)
    assert grid.fetch() is False
    assert grid.value == 151.0 and grid.updated_at == updated and grid.failures == 2 and len(counted) == 2


def test_energy_is_measured_through_rapl_when_readable_and_charged_by_the_run_s_share(tmp_path):
    """A real (fake-content) powercap tree: the run's package and DRAM energy x its share of the machine."""
    import os

    from test_sci import fake_powercap, set_energy

    from greenkfp.components.energy.meters import RaplReader
    from greenkfp.components.serving.metrics import EnergyAccount

    root = fake_powercap(tmp_path, package_uj=100_000, dram_uj=20_000)
    account = EnergyAccount("c5.2xlarge", threads=1, rapl=RaplReader(root))
    assert account.method == "measured"

    def work():
        total = sum(i * i for i in range(200_000))  # some CPU time on this thread
        set_energy(root, "intel-rapl:0", 400_000)
        set_energy(root, "intel-rapl:0:1", 50_000)
        return total

    result, report = account.measure(work)
    assert result == sum(i * i for i in range(200_000)) and report.method == "measured"
    share = min(1.0, report.cpu_s / (report.wall_s * (os.cpu_count() or 1)))
    assert 0 < share <= 1
    assert report.energy_j == pytest.approx((300_000 + 30_000) / 1e6 * share)

    modeled = EnergyAccount("c5.2xlarge", threads=1, rapl=RaplReader(tmp_path / "none"))
    assert modeled.method == "modeled"
    _, report = modeled.measure(work)
    assert report.energy_j == pytest.approx(report.cpu_s * modeled.watts_per_busy_core)
