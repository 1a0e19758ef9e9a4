"""Micro-batching with fairness: gather concurrent requests into one model call, run large ones in slices.

The batcher knows nothing about Kronos: it groups submitted items by a key (items with equal keys
can share one model call), hands each run to ``run_group`` in one worker thread (so the event loop
keeps answering ``/healthz`` while the model works), and resolves each caller with its own result.
While a run goes on, new arrivals queue up and form the next runs, so under load batches grow by
themselves. ``max_batch=1`` turns batching off (one request at a time, in arrival order).

Fairness: an item that ``parts`` splits into several parts (a request of many sample paths, in slices)
becomes a stream of its own, and streams take turns, one part each, with the runs of newer arrivals: a
light request admitted behind a heavy one waits for the part in progress, not for the whole heavy
request. A caller that goes away (its future cancelled: the client disconnected, or its time ran out)
is dropped before its next part runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MicroBatcher"]


@dataclass
class _Pending:
    key: Hashable
    item: Any
    future: asyncio.Future


@dataclass
class _Stream:
    """Runs still to do for some callers: batched items (one run), or the parts of one item."""

    members: list[_Pending]
    runs: deque  # lists of items, one list per model call
    sliced: bool = False  # one caller whose item runs in parts (else: batched callers, one run)
    results: list[Any] = field(default_factory=list)

    def alive(self) -> list[_Pending]:
        return [m for m in self.members if not m.future.done()]


class MicroBatcher:
    """Collects items for up to ``window_ms`` (at most ``max_batch``), then runs each group of equal keys.

    ``run_group(items)`` runs in a single worker thread and returns one result per item, in order; a
    result that is an exception is raised to that item's caller only. With ``weight`` (an item's cost,
    e.g. its share of the largest run) a group is split into runs of at most ``max_weight`` in all, which
    bounds the memory and time one run takes; an item heavier than that runs alone. With ``parts`` an
    item is run as ``parts(item)`` (several when it is large), one part per turn, and its caller gets
    ``merge(parts' results)``.
    """

    def __init__(
        self,
        run_group: Callable[[Sequence[Any]], Sequence[Any]],
        *,
        window_ms: float = 5.0,
        max_batch: int = 32,
        weight: Callable[[Any], float] | None = None,
        max_weight: float = float("inf"),
        parts: Callable[[Any], Sequence[Any]] | None = None,
        merge: Callable[[Sequence[Any]], Any] | None = None,
    ) -> None:
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run_group = run_group
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.weight, self.max_weight = weight, max_weight
        self.parts, self.merge = parts, merge
        self.batches_run = 0
        self.items_run = 0
        self.cancelled = 0
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._streams: deque[_Stream] = deque()

    async def start(self) -> None:
        """Start collecting (call from the running event loop, e.g. the app's lifespan)."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kronos-inference")
        self._task = asyncio.create_task(self._collect(), name="kronos-batcher")

    async def run_in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the thread that runs the groups (after :meth:`start`).

        Why: the model's loading belongs on the same thread as its forecasts. PyTorch's CPU kernels run
        in an OpenMP thread team per calling thread; a second team (one thread loads, another forecasts)
        makes more threads than cores, and GNU OpenMP then stops spinning between kernels, which made
        every forecast about 1.6x slower on a 2-core machine.
        """
        if self._executor is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def stop(self) -> None:
        """Stop collecting; pending callers get a ``RuntimeError``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        pending = [m for s in self._streams for m in s.members]
        if self._queue is not None:
            while not self._queue.empty():
                pending.append(self._queue.get_nowait())
        for p in pending:
            if not p.future.done():
                p.future.set_exception(RuntimeError("the server is shutting down"))
        self._streams.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, key: Hashable, item: Any) -> tuple[Any, int]:
        """Queue ``item``; return ``(its result, the size of the group it ran in)``.

        Cancelling the awaiting task (a client that went away, a time limit) drops the item before its
        next run.
        """
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(key, item, future))
        return await future

    async def _gather(self, wait: bool) -> list[_Pending]:
        """New arrivals: when idle, the first one and whatever comes within the window; else what is waiting."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        if wait:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.window
        else:
            batch, deadline = [], loop.time()
        while len(batch) < self.max_batch:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:  # the window is over: take only what is already waiting
                    batch.append(self._queue.get_nowait())
                else:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        return batch

    def _split(self, group: list[_Pending]) -> list[list[_Pending]]:
        if self.weight is None:
            return [group]
        runs: list[list[_Pending]] = [[]]
        total = 0.0
        for pending in group:
            w = self.weight(pending.item)
            if runs[-1] and total + w > self.max_weight:
                runs.append([])
                total = 0.0
            runs[-1].append(pending)
            total += w
        return runs

    def _admit(self, batch: list[_Pending]) -> None:
        """New arrivals become streams: each sliced item its own, the rest grouped by key and weight."""
        groups: dict[Hashable, list[_Pending]] = {}
        for pending in batch:
            if pending.future.done():  # a caller that went away is not computed for
                continue
            parts = list(self.parts(pending.item)) if self.parts is not None else [pending.item]
            if len(parts) > 1:
                self._streams.append(_Stream([pending], deque([p] for p in parts), sliced=True))
            else:
                groups.setdefault(pending.key, []).append(pending)
        for group in groups.values():
            for run in self._split(group):
                self._streams.append(_Stream(run, deque([[m.item for m in run]])))

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._admit(await self._gather(wait=not self._streams))
            stream = self._streams.popleft()
            alive = stream.alive()
            if not alive:
                self.cancelled += len(stream.members)
                continue
            sliced = stream.sliced
            if not sliced and len(alive) < len(stream.members):  # a batched caller left: run the others only
                stream = _Stream(alive, deque([[m.item for m in alive]]))
            items = stream.runs.popleft()
            try:
                results = await loop.run_in_executor(self._executor, self.run_group, items)
            except Exception as exc:  # run_group itself failed: every member learns why
                results = [exc] * len(items)
            self.batches_run += 1
            if sliced:
                failure = next((r for r in results if isinstance(r, BaseException)), None)
                stream.results.extend(results)
                if failure is None and stream.runs:
                    self._streams.append(stream)  # its next part waits for the others' turns
                    continue
                merged = failure if failure is not None else self._merged(stream.results)
                self._resolve(stream.members, [merged], 1)
            else:
                self._resolve(stream.members, results, len(stream.members))

    def _merged(self, results: list[Any]) -> Any:
        try:
            return self.merge(results) if self.merge is not None else results
        except Exception as exc:  # reaches that caller only
            return exc

    def _resolve(self, members: list[_Pending], results: Sequence[Any], size: int) -> None:
        self.items_run += len(members)
        for member, result in zip(members, results):
            if member.future.done():
                continue
            if isinstance(result, BaseException):
                member.future.set_exception(result)
            else:
                member.future.set_result((result, size))
