"""Micro-batching: gather concurrent requests for a few milliseconds and run them as one model call.

The batcher knows nothing about Kronos: it groups submitted items by a key (items with equal keys
can share one model call), hands each group to ``run_group`` in one worker thread (so the event loop
keeps answering ``/healthz`` while the model works), and resolves each caller with its own result.
While a batch runs, new arrivals queue up and form the next batch, so under load batches grow by
themselves. ``max_batch=1`` turns batching off (one request at a time, in arrival order).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

__all__ = ["MicroBatcher"]


@dataclass
class _Pending:
    key: Hashable
    item: Any
    future: asyncio.Future


class MicroBatcher:
    """Collects items for up to ``window_ms`` (at most ``max_batch``), then runs each group of equal keys once.

    ``run_group(items)`` runs in a single worker thread and returns one result per item, in order; a
    result that is an exception is raised to that item's caller only. With ``weight`` (an item's cost,
    e.g. its number of sample paths) a group is split into runs of at most ``max_weight`` in all, which
    bounds the memory one run takes; an item heavier than that runs alone.
    """

    def __init__(
        self,
        run_group: Callable[[Sequence[Any]], Sequence[Any]],
        *,
        window_ms: float = 5.0,
        max_batch: int = 32,
        weight: Callable[[Any], float] | None = None,
        max_weight: float = float("inf"),
    ) -> None:
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.run_group = run_group
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.weight, self.max_weight = weight, max_weight
        self.batches_run = 0
        self.items_run = 0
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start collecting (call from the running event loop, e.g. the app's lifespan)."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kronos-inference")
        self._task = asyncio.create_task(self._collect(), name="kronos-batcher")

    async def stop(self) -> None:
        """Stop collecting; pending callers get a ``RuntimeError``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue is not None:
            while not self._queue.empty():
                pending = self._queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(RuntimeError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, key: Hashable, item: Any) -> tuple[Any, int]:
        """Queue ``item``; return ``(its result, the size of the group it ran in)``."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(key, item, future))
        return await future

    async def _gather(self) -> list[_Pending]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        deadline = loop.time() + self.window
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

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            groups: dict[Hashable, list[_Pending]] = {}
            for pending in batch:
                if not pending.future.done():  # a caller that went away is not computed for
                    groups.setdefault(pending.key, []).append(pending)
            for members in (run for group in groups.values() for run in self._split(group)):
                try:
                    results = await loop.run_in_executor(self._executor, self.run_group, [m.item for m in members])
                except Exception as exc:  # run_group itself failed: every member learns why
                    results = [exc] * len(members)
                self.batches_run += 1
                self.items_run += len(members)
                for member, result in zip(members, results):
                    if member.future.done():
                        continue
                    if isinstance(result, BaseException):
                        member.future.set_exception(result)
                    else:
                        member.future.set_result((result, len(members)))
