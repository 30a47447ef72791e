"""Adaptive micro-batching on asyncio: requests that arrive together run as one ``session.run``.

Batching cuts the work per inference (one call's fixed cost, and a vectorised kernel over many
rows, instead of many small ones), so energy per inference, at a bounded cost in latency. The
rules (:class:`MicroBatcher`):

* a request on an idle batcher (nothing queued, nothing running) runs at once: a lone request
  is never delayed for company that is not coming;
* otherwise it queues; the queue is flushed as one batch when it holds ``max_batch_size`` rows,
  when its oldest request has waited ``max_batch_delay_s``, or when a running batch finishes
  and the oldest has waited its delay meanwhile (while ``concurrency`` batches run, the next
  waits for one of them: it would only queue in the worker threads otherwise);
* a batch takes queued requests in arrival order while they fit in ``max_batch_size`` rows (a
  request larger than that runs alone); their inputs are concatenated along axis 0, run in a
  worker thread (or on the loop itself while the runner's calls are shorter than
  ``inline_below_s``), and the outputs split back by each request's rows;
* a batch of several requests that fails (the runner raises, or an output does not have one row
  per input row) runs each of its requests alone, so that only a request that fails on its own
  gets the error (``on_split`` is told, :attr:`MicroBatcher.split_batches` counts them); the
  batcher goes on.

``max_batch_size=1`` is batching off: every request runs alone, in arrival order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["BatchError", "BatchStats", "MicroBatcher"]


class BatchError(RuntimeError):
    """Running a request failed (alone: a failed batch's requests are run again one by one)."""


@dataclass(frozen=True)
class BatchStats:
    """What one ``session.run`` did: requests and rows in it, and what the runner reported."""

    requests: int
    rows: int
    report: object = None


@dataclass
class _Item:
    inputs: dict[str, np.ndarray]
    rows: int
    deadline: float
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """Batches requests for ``runner``.

    Args:
        runner: Called in a worker thread with the batch's inputs (arrays keyed by input name);
            returns ``(outputs, report)``: the outputs (a list of arrays, each with the batch's
            rows along axis 0) and anything to hand to ``on_batch`` (CPU time, energy).
        max_batch_size: Most rows in one batch (1: no batching).
        max_batch_delay_s: Longest a queued request waits for others, seconds.
        concurrency: Batches running at once (worker threads).
        on_batch: Called on the event loop after each successful batch with its :class:`BatchStats`.
        on_split: Called on the event loop with a failed batch's request count and its failure,
            before its requests run one by one.
        inline_below_s: Run a batch on the event loop itself, not in a worker thread, while the
            runner's previous call took less than this, seconds (0: always in a thread). The hop
            to a thread and back costs about 50 microseconds of CPU, several times a small
            model's whole ``session.run``; a call this short holds the loop no longer than the
            hop would cost, and the first call, or any after a slow one, still goes to the thread.
    """

    def __init__(self, runner: Callable[[dict[str, np.ndarray]], tuple[list[np.ndarray], object]], *,
                 max_batch_size: int = 32, max_batch_delay_s: float = 0.005, concurrency: int = 1,
                 on_batch: Callable[[BatchStats], None] | None = None, inline_below_s: float = 0.0,
                 on_split: Callable[[int, str], None] | None = None):
        if max_batch_size < 1 or max_batch_delay_s < 0 or concurrency < 1 or inline_below_s < 0:
            raise ValueError("max_batch_size and concurrency must be >= 1, max_batch_delay_s and inline_below_s >= 0")
        self.runner = runner
        self.max_batch_size = max_batch_size
        self.max_batch_delay_s = max_batch_delay_s
        self.concurrency = concurrency
        self.on_batch = on_batch
        self.inline_below_s = inline_below_s
        self.on_split = on_split
        self.split_batches = 0  #: failed batches whose requests were run one by one
        self._last_run_s = math.inf  # the runner's last call, seconds (unknown: as if slow)
        self._pending: deque[_Item] = deque()
        self._pending_rows = 0
        self._running = 0
        self._timer: asyncio.TimerHandle | None = None
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="greenkfp-infer")

    async def submit(self, inputs: dict[str, np.ndarray], rows: int) -> list[np.ndarray]:
        """The outputs for one request's ``inputs`` (``rows`` rows), run alone or with others.

        Raises:
            BatchError: the batch it ran in failed.
        """
        loop = asyncio.get_running_loop()
        item = _Item(inputs, rows, loop.time() + self.max_batch_delay_s, loop.create_future())
        idle = not self._pending and self._running == 0
        self._pending.append(item)
        self._pending_rows += rows
        if idle:
            self._start_batch(loop)
        else:
            self._schedule(loop)
        return await item.future

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ internals

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start batches that are due; else arm the timer for the oldest request's deadline."""
        while self._pending and self._running < self.concurrency:
            if self._pending_rows >= self.max_batch_size or loop.time() >= self._pending[0].deadline:
                self._start_batch(loop)
            else:
                break
        if self._pending and self._running < self.concurrency and self._timer is None:
            self._timer = loop.call_at(self._pending[0].deadline, self._on_timer, loop)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._schedule(loop)

    def _start_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [self._pending.popleft()]
        rows = batch[0].rows
        while self._pending and rows + self._pending[0].rows <= self.max_batch_size:
            item = self._pending.popleft()
            batch.append(item)
            rows += item.rows
        self._pending_rows -= rows
        self._running += 1
        loop.create_task(self._run(loop, batch, rows))

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item], rows: int) -> None:
        try:
            try:
                if len(batch) == 1:
                    inputs = batch[0].inputs
                else:
                    inputs = {name: np.concatenate([item.inputs[name] for item in batch], axis=0)
                              for name in batch[0].inputs}
                if self._last_run_s < self.inline_below_s:  # cheaper than the hop to a worker thread
                    outputs, report = self._timed(inputs)
                else:
                    outputs, report = await loop.run_in_executor(self._executor, self._timed, inputs)
            except Exception as exc:
                failure = f"inference failed: {' '.join(str(exc).split())[:300]}"
            else:
                if len(batch) > 1 and any(np.ndim(o) == 0 or np.shape(o)[0] != rows for o in outputs):
                    failure = "the model's outputs do not have one row per input row"
                else:
                    offset = 0
                    for item in batch:
                        if not item.future.done():
                            part = outputs if len(batch) == 1 else [o[offset:offset + item.rows] for o in outputs]
                            item.future.set_result(part)
                        offset += item.rows
                    if self.on_batch is not None:
                        self.on_batch(BatchStats(len(batch), rows, report))
                    return
            if len(batch) == 1:
                self._fail(batch, BatchError(failure))
            else:  # one bad request must not fail its neighbours: each runs alone
                await self._run_each_alone(loop, batch, failure)
        finally:
            self._running -= 1
            self._schedule(loop)

    async def _run_each_alone(self, loop: asyncio.AbstractEventLoop, batch: list[_Item], failure: str) -> None:
        """Run a failed batch's requests one by one: only a request that fails alone gets an error."""
        self.split_batches += 1
        if self.on_split is not None:
            self.on_split(len(batch), failure)
        for item in batch:
            if item.future.done():
                continue
            try:
                if self._last_run_s < self.inline_below_s:
                    outputs, report = self._timed(item.inputs)
                else:
                    outputs, report = await loop.run_in_executor(self._executor, self._timed, item.inputs)
            except Exception as exc:
                self._fail([item], BatchError(f"inference failed: {' '.join(str(exc).split())[:300]}"))
                continue
            if not item.future.done():
                item.future.set_result(outputs)
            if self.on_batch is not None:
                self.on_batch(BatchStats(1, item.rows, report))

    def _timed(self, inputs: dict[str, np.ndarray]):
        start = time.perf_counter()
        try:
            return self.runner(inputs)
        finally:
            self._last_run_s = time.perf_counter() - start

    @staticmethod
    def _fail(batch: list[_Item], error: BatchError) -> None:
        for item in batch:
            if not item.future.done():
                item.future.set_exception(error)
