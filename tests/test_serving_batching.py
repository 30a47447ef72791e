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


def test_a_failing_batch_fails_each_of_its_requests_and_the_batcher_goes_on():
    runner = HeldRunner(fail_when=lambda rows: rows == 5)

    async def main():
        batcher = MicroBatcher(runner, max_batch_size=32, max_batch_delay_s=0.0)
        first = asyncio.create_task(batcher.submit(rows_of(0, 1), 1))
        await asyncio.to_thread(runner.started.wait, 30)
        doomed = [asyncio.create_task(batcher.submit(rows_of(i, n), n)) for i, n in ((1, 2), (2, 3))]
        await asyncio.sleep(0)
        runner.release.set()
        results = await asyncio.gather(first, *doomed, return_exceptions=True)
        after = await batcher.submit(rows_of(7, 2), 2)
        batcher.close()
        return results, after

    (first, *doomed), after = run(main())
    assert isinstance(first, list)
    assert all(isinstance(r, BatchError) and "cannot run 5 rows" in str(r) for r in doomed)
    np.testing.assert_array_equal(after[0], np.full((2, 3), 14.0))


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
])
def test_tensor_conversion(datatype, data, expected):
    array = tensor_from_input(RequestInput(name="t", shape=[3], datatype=datatype, data=data))
    assert array.dtype == expected.dtype
    np.testing.assert_array_equal(array, expected)
    out = to_response_output("t", array)
    assert out["datatype"] == datatype and out["shape"] == [3]


@pytest.mark.parametrize("datatype, data, fragment", [
    ("INT64", [1, 2.5, 3], "not INT64"),
    ("UINT8", [0, 256, 1], "out of its range"),
    ("INT8", [-129, 0, 1], "out of its range"),
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
