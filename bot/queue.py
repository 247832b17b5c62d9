"""The job queue between the webhook and the reviews.

`JobQueue` is the interface; `InProcessQueue` the default, in this process's event loop.
`bot.server.redisqueue.RedisQueue` replaces it when `REDIS_URL` is set, for any number of
web and worker processes: jobs are plain frozen dataclasses, serialised as JSON.

Rules every implementation keeps:
- bounded: a full queue refuses new work (the webhook answers 503, GitHub shows the failed
  delivery, and someone can redeliver it);
- at most one pending job per key (per PR): a newer one replaces it; jobs with the same key
  never run at once, and a newer job never interrupts the running one;
- accepted work is never dropped silently: once closing, the queue refuses new deliveries
  (503 again, with its own message) but while it drains keeps running what it has, and
  what running jobs add (`follow_up`); then it starts nothing more, cancels what still
  runs (that job's own cleanup concludes its check run) and `close()` hands back what never
  started, for the caller to conclude: a required check must not wait for a review that
  will never come. The caller sizes the drain so that a job started at its last moment
  can still be concluded before the platform kills the process;
- a non-forced job for a revision that is running or just finished is a duplicate (a push
  sends both `pull_request.synchronize` and `check_suite.requested`);
- a job whose handler raises `Retry` (GitHub or Redis failed part of its work) runs again
  after the delay it asks for, unless a newer job of its key comes first: then that one
  runs at once and takes over what was left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from cachetools import TTLCache

log = logging.getLogger(__name__)


class Job(Protocol):
    @property
    def key(self) -> str:
        """Jobs with the same key coalesce and never run at once (e.g. one PR)."""
        ...

    @property
    def delivery_id(self) -> str: ...

    @property
    def revision(self) -> str | None:
        """What the job is about (a head SHA), when known; used to drop duplicates."""
        ...

    @property
    def force(self) -> bool:
        """Run even if this revision was just done (a user asked for a re-run)."""
        ...


J = TypeVar("J", bound=Job)
# Runs one job; returns True when it finished its work (False: it failed or was skipped).
JobHandler = Callable[[J], Awaitable[bool]]


class Submitted(enum.Enum):
    QUEUED = "queued"
    REPLACED = "replaced"  # took the place of an older pending job with the same key
    DUPLICATE = "duplicate"  # the same revision is running or was just reviewed


class QueueFull(Exception):
    """The queue is at its bound, or closing; the webhook answers 503."""


class QueueClosed(QueueFull):
    """The queue is shutting down and takes no new deliveries."""


class QueueUnavailable(QueueFull):
    """The shared queue (Redis) cannot be reached; nothing was queued."""


class Retry(Exception):
    """Raised by a handler whose job's work is not done (a check run GitHub would not
    conclude, comments that could not be claimed or posted): run it again in `delay`
    seconds. The handler counts the retries and gives up, saying why, when they run out."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


class JobQueue(Protocol[J]):
    async def start(self) -> None: ...

    async def submit(self, job: J, *, follow_up: bool = False) -> Submitted:
        """Queue `job`. `follow_up`: work a running job spawns (the reviews of a commit's
        PRs, a recheck); it is still taken while the queue drains, since the delivery that
        caused it was accepted."""
        ...

    def depth(self) -> int:
        """Pending jobs (not counting running ones)."""
        ...

    def running(self) -> int: ...

    async def close(self, grace: float, *, cancel_wait: float | None = None) -> Sequence[J]:
        """Refuse new deliveries; for `grace` seconds (the drain) keep starting and running
        pending jobs, then start none and cancel the running ones, waiting up to
        `cancel_wait` seconds (default: the queue's own) for their cleanup to conclude what
        they started. Returns the jobs that never started, for the caller to conclude; a
        shared queue that keeps them for another instance returns none."""
        ...


class InProcessQueue(Generic[J]):
    """The default JobQueue: asyncio workers in this process."""

    def __init__(
        self,
        handler: JobHandler[J],
        *,
        workers: int = 4,
        maxsize: int = 100,
        recent_ttl: float = 600.0,
        cancel_grace: float = 10.0,
    ) -> None:
        self._handler = handler
        self._workers = workers
        self._maxsize = maxsize
        self._cancel_grace = cancel_grace
        self._pending: OrderedDict[str, J] = OrderedDict()
        self._active: dict[str, J] = {}
        self._recent: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=10_000, ttl=recent_ttl)
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False  # refuses new deliveries, still runs what it has
        self._stopped = False  # the grace is over: workers take nothing more
        self._finished = False  # close() has handed back what never started
        # Jobs waiting out a `Retry`, by key, with the timer that queues them again.
        self._later: dict[str, tuple[J, asyncio.TimerHandle]] = {}

    async def start(self) -> None:
        for n in range(self._workers):
            task = asyncio.create_task(self._work(), name=f"flux-review-worker-{n}")
            self._tasks.add(task)
            task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("queue worker died", exc_info=task.exception())

    def depth(self) -> int:
        return len(self._pending)

    def keys(self) -> set[str]:
        """Keys of the jobs pending, running or waiting out a retry."""
        return {*self._pending, *self._active, *self._later}

    def running(self) -> int:
        return len(self._active)

    async def submit(self, job: J, *, follow_up: bool = False) -> Submitted:
        async with self._changed:
            if self._finished or (self._closed and not follow_up):
                raise QueueClosed("the queue is shutting down")
            if not job.force and job.revision is not None:
                active = self._active.get(job.key)
                if (active is not None and active.revision == job.revision) or (
                    (job.key, job.revision) in self._recent
                ):
                    return Submitted.DUPLICATE
            waiting = self._later.pop(job.key, None)
            if waiting is not None:
                # A newer job of the key goes now, and takes over what the retry was for.
                waiting[1].cancel()
            older = self._pending.pop(job.key, None)
            if older is not None:
                if older.force and older.revision == job.revision and not job.force:
                    # Keep the user's explicit request when the same commit arrives again.
                    job = dataclasses.replace(job, force=True)  # type: ignore[type-var]
                self._pending[job.key] = job
                self._changed.notify()
                log.info(
                    "delivery %s: %s replaces pending delivery %s",
                    job.delivery_id,
                    job.key,
                    older.delivery_id,
                )
                return Submitted.REPLACED
            if len(self._pending) >= self._maxsize:
                raise QueueFull(f"{len(self._pending)} jobs pending")
            self._pending[job.key] = job
            self._changed.notify()
            return Submitted.QUEUED

    def _next(self) -> J | None:
        for key, job in self._pending.items():
            if key not in self._active:
                del self._pending[key]
                return job
        return None

    async def _work(self) -> None:
        while True:
            async with self._changed:
                job = None if self._stopped else self._next()
                while job is None:
                    if self._stopped or (self._closed and not self._pending and not self._active):
                        return
                    # Closing, a pending job may still be waiting for its key's running job,
                    # and a running job may still queue follow-up work.
                    await self._changed.wait()
                    job = None if self._stopped else self._next()
                self._active[job.key] = job
            done = False
            try:
                done = await self._handler(job)
            except asyncio.CancelledError:
                raise
            except Retry as retry:
                log.warning(
                    "delivery %s: %s again in %.0fs: %s",
                    job.delivery_id,
                    job.key,
                    retry.delay,
                    retry.reason,
                )
                self._retry_later(job, retry.delay)
            except Exception:
                log.exception("delivery %s: job %s failed", job.delivery_id, job.key)
            finally:
                async with self._changed:
                    self._active.pop(job.key, None)
                    if done and job.revision is not None:
                        self._recent[(job.key, job.revision)] = True
                    # A pending job for the same key may now run.
                    self._changed.notify_all()

    def _retry_later(self, job: J, delay: float) -> None:
        loop = asyncio.get_running_loop()

        def due() -> None:
            if self._later.pop(job.key, None) is None:
                return
            task = loop.create_task(self._requeue(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._later[job.key] = (job, loop.call_later(delay, due))

    async def _requeue(self, job: J) -> None:
        async with self._changed:
            if self._stopped or job.key in self._pending:
                return
            self._pending[job.key] = job
            self._changed.notify()

    async def close(self, grace: float, *, cancel_wait: float | None = None) -> list[J]:
        cancel_wait = self._cancel_grace if cancel_wait is None else cancel_wait
        async with self._changed:
            self._closed = True
            if self._pending:
                log.info(
                    "shutdown: %d pending jobs may start within %.1fs", len(self._pending), grace
                )
            self._changed.notify_all()
        still: set[asyncio.Task[None]] = set()
        if self._tasks:
            _done, still = await asyncio.wait(set(self._tasks), timeout=grace)
        async with self._changed:
            self._stopped = True
            running = len(self._active)
            self._changed.notify_all()
        if still:
            if running:
                log.warning("shutdown: cancelling %d running jobs after %.1fs", running, grace)
            for task in still:
                task.cancel()
            # Cancelled reviews conclude their check runs in their `finally`.
            await asyncio.wait(still, timeout=cancel_wait)
        async with self._changed:
            self._finished = True
            left = list(self._pending.values())
            self._pending.clear()
            for job, timer in self._later.values():
                timer.cancel()
                left.append(job)
            self._later.clear()
        for job in left:
            log.warning(
                "delivery %s: %s not started within the shutdown grace", job.delivery_id, job.key
            )
        return left
