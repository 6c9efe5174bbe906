"""A job's end is handled once, however many ask at the same moment."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from atoll.models.job import JobInfo
from atoll.provider.job_end import OncePerJob
from atoll.provider.outcomes import Outcome


def job(job_id: str) -> JobInfo:
    return cast(JobInfo, type("Info", (), {"jobId": job_id})())


class Handler:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.fail_first = fail_first

    async def __call__(self, info: JobInfo) -> Outcome:
        self.calls.append(info.jobId)
        await self.release.wait()
        if self.fail_first and len(self.calls) == 1:
            raise RuntimeError("the store is busy")
        return cast(Outcome, ("outcome", info.jobId, len(self.calls)))


def test_concurrent_callers_share_one_run_and_later_ones_reuse_it() -> None:
    async def scenario() -> None:
        handler = Handler()
        once = OncePerJob(handler)
        waiting = [asyncio.create_task(once(job("a"))) for _ in range(20)]
        other = asyncio.create_task(once(job("b")))
        await asyncio.sleep(0)
        handler.release.set()
        results = await asyncio.gather(*waiting, other)
        assert handler.calls == ["a", "b"]
        assert set(results[:20]) == {("outcome", "a", 1)}
        assert await once(job("a")) == ("outcome", "a", 1)
        assert handler.calls == ["a", "b"]

    asyncio.run(scenario())


def test_a_failure_is_not_remembered_and_a_gone_caller_cancels_nothing() -> None:
    async def scenario() -> None:
        handler = Handler(fail_first=True)
        once = OncePerJob(handler)
        impatient = asyncio.create_task(once(job("a")))
        patient = asyncio.create_task(once(job("a")))
        await asyncio.sleep(0)
        impatient.cancel()
        handler.release.set()
        with pytest.raises(RuntimeError):
            await patient
        assert await once(job("a")) == ("outcome", "a", 2)  # tried again

    asyncio.run(scenario())


def test_memory_is_bounded_in_bytes() -> None:
    cap = 64 * 1024

    async def big(info: JobInfo) -> Outcome:
        calls.append(info.jobId)
        # a receipt of a job with many result files: ~10 KB where most are a few hundred bytes
        return cast(Outcome, ("outcome", info.jobId, "x" * 10_000))

    calls: list[str] = []

    async def scenario() -> int:
        once = OncePerJob(big, remember=cap)
        for i in range(100):
            await once(job(str(i)))
        assert 0 < once.remembered_bytes() <= cap
        await once(job("99"))  # the most recent: remembered
        assert len(calls) == 100
        await once(job("0"))  # forgotten: handled again (the handler is idempotent)
        return len(calls)

    assert asyncio.run(scenario()) == 101
