"""The micro-batcher: requests grouped by key and split by weight, failures kept to their own request."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from kronos.server.batching import MicroBatcher  # noqa: E402


def test_batcher_groups_by_key_and_keeps_failures_to_their_request():
    calls: list[list] = []

    def run_group(items):
        calls.append(list(items))
        return [ValueError(f"bad {x}") if x < 0 else x * 10 for x in items]

    async def main():
        batcher = MicroBatcher(run_group, window_ms=50, max_batch=8)
        await batcher.start()
        jobs = [("a", 1), ("b", 2), ("a", 3), ("a", -1)]
        results = await asyncio.gather(*(batcher.submit(k, x) for k, x in jobs), return_exceptions=True)
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert results[:3] == [(10, 3), (20, 1), (30, 3)]
    assert isinstance(results[3], ValueError) and str(results[3]) == "bad -1"
    assert sorted(map(sorted, calls)) == [[-1, 1, 3], [2]]


def test_batcher_splits_a_group_by_weight():
    calls: list[list] = []

    def run_group(items):
        calls.append(list(items))
        return list(items)

    async def main():
        batcher = MicroBatcher(run_group, window_ms=50, max_batch=8, weight=lambda x: x, max_weight=10)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit("same", x) for x in (4, 5, 3, 20, 1)))
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert calls == [[4, 5], [3], [20], [1]]  # each run at most 10 in all; 20 alone
    assert [size for _, size in results] == [2, 2, 1, 1, 1]
