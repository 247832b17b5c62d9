"""The in-process queue: bounded, one pending job per PR, graceful shutdown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from bot.queue import InProcessQueue, QueueClosed, QueueFull, Submitted


@dataclass(frozen=True, kw_only=True)
class FakeJob:
    key: str
    delivery_id: str
    revision: str | None = None
    force: bool = False


class Recorder:
    """A job handler that blocks until released, recording what ran."""

    def __init__(self) -> None:
        self.started: list[FakeJob] = []
        self.finished: list[FakeJob] = []
        self.release = asyncio.Event()
        self.cancelled: list[FakeJob] = []
        self.result = True

    async def __call__(self, job: FakeJob) -> bool:
        self.started.append(job)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job)
            raise
        self.finished.append(job)
        return self.result


async def until(predicate: object, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_newer_head_replaces_pending_job_and_running_one_finishes() -> None:
    rec = Recorder()
    queue: InProcessQueue[FakeJob] = InProcessQueue(rec, workers=2, maxsize=10)
    await queue.start()
    assert (
        await queue.submit(FakeJob(key="pr1", delivery_id="d1", revision="a")) is Submitted.QUEUED
    )
    await until(lambda: len(rec.started) == 1)
    # PR 1 is running: the next two wait, and the newer replaces the older.
    assert (
        await queue.submit(FakeJob(key="pr1", delivery_id="d2", revision="b")) is Submitted.QUEUED
    )
    assert (
        await queue.submit(FakeJob(key="pr1", delivery_id="d3", revision="c")) is Submitted.REPLACED
    )
    assert queue.depth() == 1 and queue.running() == 1
    rec.release.set()
    await until(lambda: len(rec.finished) == 2)
    assert [j.delivery_id for j in rec.finished] == ["d1", "d3"]
    await queue.close(1.0)


async def test_same_head_while_running_or_just_done_is_a_duplicate() -> None:
    rec = Recorder()
    queue: InProcessQueue[FakeJob] = InProcessQueue(rec, workers=1)
    await queue.start()
    await queue.submit(FakeJob(key="pr1", delivery_id="sync", revision="a"))
    await until(lambda: len(rec.started) == 1)
    # A push sends both pull_request.synchronize and check_suite.requested.
    assert (
        await queue.submit(FakeJob(key="pr1", delivery_id="suite", revision="a"))
        is Submitted.DUPLICATE
    )
    rec.release.set()
    await until(lambda: len(rec.finished) == 1)
    assert (
        await queue.submit(FakeJob(key="pr1", delivery_id="late", revision="a"))
        is Submitted.DUPLICATE
    )
    # A user asking for a re-run always gets one.
    assert (
        await queue.submit(FakeJob(key="pr1", delivery_id="rerun", revision="a", force=True))
        is Submitted.QUEUED
    )
    await until(lambda: len(rec.finished) == 2)
    await queue.close(1.0)


async def test_failed_job_is_not_remembered_as_done() -> None:
    rec = Recorder()
    rec.result = False
    rec.release.set()
    queue: InProcessQueue[FakeJob] = InProcessQueue(rec, workers=1)
    await queue.start()
    await queue.submit(FakeJob(key="pr1", delivery_id="d1", revision="a"))
    await until(lambda: len(rec.finished) == 1)
    assert (
        await queue.submit(FakeJob(key="pr1", delivery_id="d2", revision="a")) is Submitted.QUEUED
    )
    await until(lambda: len(rec.finished) == 2)
    await queue.close(1.0)


async def test_bounded() -> None:
    rec = Recorder()
    queue: InProcessQueue[FakeJob] = InProcessQueue(rec, workers=1, maxsize=2)
    await queue.start()
    await queue.submit(FakeJob(key="running", delivery_id="0"))
    await until(lambda: len(rec.started) == 1)
    await queue.submit(FakeJob(key="a", delivery_id="1"))
    await queue.submit(FakeJob(key="b", delivery_id="2"))
    with pytest.raises(QueueFull):
        await queue.submit(FakeJob(key="c", delivery_id="3"))
    # Replacing a pending job does not need room.
    assert await queue.submit(FakeJob(key="a", delivery_id="4")) is Submitted.REPLACED
    rec.release.set()
    await until(lambda: len(rec.finished) == 3)
    await queue.close(1.0)


async def test_different_keys_run_concurrently_up_to_workers() -> None:
    rec = Recorder()
    queue: InProcessQueue[FakeJob] = InProcessQueue(rec, workers=3)
    await queue.start()
    for n in range(5):
        await queue.submit(FakeJob(key=f"pr{n}", delivery_id=str(n)))
    await until(lambda: len(rec.started) == 3)
    await asyncio.sleep(0.02)
    assert len(rec.started) == 3
    rec.release.set()
    await until(lambda: len(rec.finished) == 5)
    await queue.close(1.0)


async def test_handler_exception_is_logged_and_worker_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    async def handler(job: FakeJob) -> bool:
        calls.append(job.delivery_id)
        if job.delivery_id == "boom":
            raise RuntimeError("kaput")
        return True

    queue: InProcessQueue[FakeJob] = InProcessQueue(handler, workers=1)
    await queue.start()
    await queue.submit(FakeJob(key="a", delivery_id="boom"))
    await queue.submit(FakeJob(key="b", delivery_id="fine"))
    await until(lambda: calls == ["boom", "fine"])
    assert "delivery boom" in caplog.text and "kaput" in caplog.text
    await queue.close(1.0)


async def test_shutdown_runs_pending_jobs_within_grace_and_refuses_new_ones() -> None:
    rec = Recorder()
    queue: InProcessQueue[FakeJob] = InProcessQueue(rec, workers=2)
    await queue.start()
    await queue.submit(FakeJob(key="a", delivery_id="1"))
    await queue.submit(FakeJob(key="b", delivery_id="2"))
    await until(lambda: len(rec.started) == 2)
    # Waiting: one for a free worker, one behind the running job of its own key.
    await queue.submit(FakeJob(key="c", delivery_id="3"))
    await queue.submit(FakeJob(key="a", delivery_id="4"))
    closing = asyncio.create_task(queue.close(60.0))
    await asyncio.sleep(0)
    with pytest.raises(QueueClosed):
        await queue.submit(FakeJob(key="d", delivery_id="late"))
    rec.release.set()
    async with asyncio.timeout(10):
        left = await closing
    assert left == []
    assert sorted(j.delivery_id for j in rec.finished) == ["1", "2", "3", "4"]
    assert rec.cancelled == []
    with pytest.raises(QueueClosed):
        await queue.submit(FakeJob(key="e", delivery_id="later"))


async def test_running_jobs_may_add_follow_up_work_while_closing() -> None:
    ran: list[str] = []
    queue: InProcessQueue[FakeJob]
    closing_started = asyncio.Event()

    async def handler(job: FakeJob) -> bool:
        ran.append(job.delivery_id)
        if job.delivery_id == "parent":
            await closing_started.wait()
            with pytest.raises(QueueClosed):
                await queue.submit(FakeJob(key="delivery", delivery_id="refused"))
            # What a commit's job does: queue the review of each of its PRs.
            await queue.submit(FakeJob(key="child", delivery_id="child"), follow_up=True)
        return True

    queue = InProcessQueue(handler, workers=2)
    await queue.start()
    await queue.submit(FakeJob(key="parent", delivery_id="parent"))
    await until(lambda: ran == ["parent"])
    closing = asyncio.create_task(queue.close(60.0))
    await asyncio.sleep(0)
    closing_started.set()
    async with asyncio.timeout(10):
        assert await closing == []
    assert ran == ["parent", "child"]


async def test_shutdown_hands_back_the_jobs_that_never_started() -> None:
    rec = Recorder()
    queue: InProcessQueue[FakeJob] = InProcessQueue(rec, workers=1)
    await queue.start()
    await queue.submit(FakeJob(key="a", delivery_id="running"))
    await until(lambda: len(rec.started) == 1)
    await queue.submit(FakeJob(key="b", delivery_id="2", revision="sha-b"))
    await queue.submit(FakeJob(key="c", delivery_id="3"))
    # The running job never finishes by itself: the grace runs out, whatever the speed.
    async with asyncio.timeout(20):
        left = await queue.close(0.05)
    assert [j.delivery_id for j in rec.cancelled] == ["running"]
    assert [j.delivery_id for j in left] == ["2", "3"]
    assert left[0].revision == "sha-b"
    assert [j.delivery_id for j in rec.started] == ["running"]


async def test_shutdown_cancels_jobs_past_the_deadline_and_lets_them_clean_up() -> None:
    cleaned: list[str] = []
    started: list[str] = []

    async def handler(job: FakeJob) -> bool:
        started.append(job.delivery_id)
        try:
            await asyncio.sleep(60)
        finally:
            # What a review does: conclude its check run, which takes an await.
            await asyncio.sleep(0.01)
            cleaned.append(job.delivery_id)
        return True

    queue: InProcessQueue[FakeJob] = InProcessQueue(handler, workers=2)
    await queue.start()
    await queue.submit(FakeJob(key="a", delivery_id="1"))
    await queue.submit(FakeJob(key="b", delivery_id="2"))
    await until(lambda: len(started) == 2)
    async with asyncio.timeout(20):
        assert await queue.close(0.05) == []
    assert sorted(cleaned) == ["1", "2"]


async def test_nothing_starts_once_the_drain_is_over() -> None:
    """A job started then could not be concluded before the platform kills the process."""
    cleaned = asyncio.Event()
    started: list[str] = []

    async def handler(job: FakeJob) -> bool:
        started.append(job.delivery_id)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # Cleans up and returns: its worker is free again, and so is the PR's key.
            cleaned.set()
        return True

    # Two workers: one stays free for the pending job once its key's running job is gone.
    queue: InProcessQueue[FakeJob] = InProcessQueue(handler, workers=2)
    await queue.start()
    await queue.submit(FakeJob(key="pr1", delivery_id="running", revision="a"))
    await until(lambda: started == ["running"])
    await queue.submit(FakeJob(key="pr1", delivery_id="pending", revision="b"))
    async with asyncio.timeout(20):
        left = await queue.close(0.0, cancel_wait=10.0)
    assert cleaned.is_set()
    assert started == ["running"]
    assert [job.delivery_id for job in left] == ["pending"]


async def test_the_wait_for_cancelled_jobs_is_bounded() -> None:
    """GitHub hanging in a cancelled review's cleanup does not hold the shutdown."""
    hung = asyncio.Event()
    unblock = asyncio.Event()

    async def handler(job: FakeJob) -> bool:
        try:
            await asyncio.Event().wait()
        finally:
            hung.set()
            await asyncio.shield(unblock.wait())
        return True

    queue: InProcessQueue[FakeJob] = InProcessQueue(handler, workers=1, cancel_grace=60.0)
    await queue.start()
    await queue.submit(FakeJob(key="a", delivery_id="1"))
    await until(lambda: queue.running() == 1)
    await queue.submit(FakeJob(key="b", delivery_id="2"))
    try:
        # The explicit wait, not the queue's default of a minute, bounds it.
        async with asyncio.timeout(20):
            left = await queue.close(0.0, cancel_wait=0.1)
        assert hung.is_set()
        assert [job.delivery_id for job in left] == ["2"]
    finally:
        unblock.set()
