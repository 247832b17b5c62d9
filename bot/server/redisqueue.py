"""The shared job queue on Redis, used when `REDIS_URL` is set.

Any number of web processes submit to it and any number of worker processes take from it;
the rules of `bot.queue.JobQueue` hold across all of them, each step one Lua script (Redis
runs a script atomically, so two processes never see a half-done step).

Why plain keys and scripts, not a job library or a stream: the queue's semantics are per
PR, not per message. A newer head *replaces* the PR's pending job (a burst of pushes is one
running review plus one trailing review of the newest head) and a job never runs beside
another of its PR. saq's jobs are independent messages (its `key` only refuses a second
one; it cannot replace the waiting job nor hold it back while its PR's job runs), and a
Redis stream is an append-only log: an entry cannot be replaced, so both would need this
per-PR state next to them anyway, plus their own sweeps. What remains of a library here is
small: a lease per running job, renewed by the worker's heartbeat, and a sweep that gives a
job whose lease ran out (its worker was killed) back to the queue.

Keys (under `prefix`):
- `jobs`    hash  PR key -> the pending job (at most one per key: the newest)
- `ready`   zset  keys with a pending job and none running, scored by enqueue time
- `active`  hash  key -> the running job, its worker, its attempts, its check runs
- `leases`  zset  key -> when its worker's lease runs out (ms)
- `workers` zset  worker id -> last heartbeat (ms)
- `recent:<key>@<revision>`  a revision reviewed a moment ago (duplicate events)
- `delayed` zset  keys whose pending job waits out a retry, scored by when it is due (ms)
- `dead`    list  jobs given up after `max_attempts` (their check run says so)
- `epoch`   string set once by the first process: gone or changed, Redis lost its data
- `repos`   set   the repositories the App has seen, for reconciliation
- `reconcile-due` string  a reconciliation pass is wanted (Redis was found to have lost data)
- `wake`    list  one entry per submit, so idle workers block instead of polling

A job is acknowledged (`complete`) only after its handler returned, i.e. after its check
run was completed: a worker killed at any point leaves the job in `active` until its lease
runs out, and the next sweep queues it again, with the check runs it had created, so the
review that runs next completes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.github.client import Sleep, WriteThrottle
from bot.queue import Job, QueueClosed, QueueFull, QueueUnavailable, Retry, Submitted

log = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)

# One job into the queue (a Lua function, shared by the two scripts below).
_SUBMIT_ONE = """
local function submit_one(jobs, ready, active, wake, delayed, key, env, rev, force, now, recent)
  if not force and rev ~= '' then
    local a = redis.call('HGET', active, key)
    if a and cjson.decode(a).rev == rev then return 'duplicate' end
    if redis.call('EXISTS', recent) == 1 then return 'duplicate' end
  end
  local older = redis.call('HGET', jobs, key)
  if older then
    local od, nd = cjson.decode(older), cjson.decode(env)
    -- keep a user's explicit re-run when the same commit arrives again
    if od.force and od.rev == rev and not force then nd.force = true end
    nd.enqueued = od.enqueued
    local runs = od.runs
    if type(runs) ~= 'table' then runs = {} end
    if type(nd.runs) == 'table' then
      for _, r in ipairs(nd.runs) do table.insert(runs, r) end
    end
    nd.runs = runs
    redis.call('HSET', jobs, key, cjson.encode(nd))
    -- a job waiting out a retry: the newer one goes now, and takes over its check runs
    if redis.call('ZREM', delayed, key) == 1 and redis.call('HEXISTS', active, key) == 0 then
      redis.call('ZADD', ready, 'NX', now, key)
      redis.call('LPUSH', wake, '1')
      redis.call('LTRIM', wake, 0, 255)
    end
    return 'replaced'
  end
  redis.call('HSET', jobs, key, env)
  if redis.call('HEXISTS', active, key) == 0 then
    redis.call('ZADD', ready, 'NX', now, key)
    redis.call('LPUSH', wake, '1')
    redis.call('LTRIM', wake, 0, 255)
  end
  return 'queued'
end
"""

_SUBMIT = (
    _SUBMIT_ONE
    + """
local jobs, ready, active, wake, delayed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local key, env, rev, force = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local maxsize, now, recent = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('HLEN', jobs) >= maxsize and redis.call('HEXISTS', jobs, key) == 0 then
  return 'full'
end
return submit_one(jobs, ready, active, wake, delayed, key, env, rev, force, now, recent)
"""
)

# Webhook deliveries, each in one step: its id claimed and all its jobs queued, or nothing
# at all. Several at once, so that a burst of deliveries costs a few round trips to Redis,
# not one each; a delivery that fails (a corrupt key, say) fails alone. KEYS: jobs, ready,
# active, wake, delayed, then each delivery's id key. ARGV: maxsize, then for each delivery how long
# its id is kept, when it arrived, its number of jobs and 5 values a job.
_ACCEPT = (
    _SUBMIT_ONE
    + """
local jobs, ready, active, wake, delayed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local maxsize = tonumber(ARGV[1])
local function accept_one(seen, ttl, now, n, first)
  if redis.call('EXISTS', seen) == 1 then return {'seen'} end
  if n > 0 and redis.call('HLEN', jobs) + n > maxsize then return {'full'} end
  local out = {}
  for i = 0, n - 1 do
    local b = first + i * 5
    out[#out + 1] = submit_one(jobs, ready, active, wake, delayed, ARGV[b], ARGV[b + 1],
      ARGV[b + 2], ARGV[b + 3] == '1', now, ARGV[b + 4])
  end
  redis.call('SET', seen, 'accepted', 'EX', ttl)
  return out
end
local answers = {}
local a = 2
for d = 6, #KEYS do
  local ttl, now, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local ok, answer = pcall(accept_one, KEYS[d], ttl, now, n, a + 3)
  if not ok then
    answer = {'error', type(answer) == 'table' and tostring(answer.err) or tostring(answer)}
  end
  answers[#answers + 1] = answer
  a = a + 3 + n * 5
end
return answers
"""
)

_CLAIM = """
local jobs, ready, active, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local worker, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
while true do
  local popped = redis.call('ZPOPMIN', ready)
  if #popped == 0 then return false end
  local key = popped[1]
  local env = redis.call('HGET', jobs, key)
  if env and redis.call('HEXISTS', active, key) == 0 then
    redis.call('HDEL', jobs, key)
    local d = cjson.decode(env)
    d.worker = worker
    d.attempts = (d.attempts or 0) + 1
    d.claimed = now
    local s = cjson.encode(d)
    redis.call('HSET', active, key, s)
    redis.call('ZADD', leases, now + lease, key)
    return {key, s}
  end
end
"""

_HEARTBEAT = """
local active, leases, workers = KEYS[1], KEYS[2], KEYS[3]
local worker, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', workers, now, worker)
-- workers silent for a day are gone for good
redis.call('ZREMRANGEBYSCORE', workers, '-inf', now - 86400000)
local renewed = 0
for i = 4, #ARGV do
  local a = redis.call('HGET', active, ARGV[i])
  if a and cjson.decode(a).worker == worker then
    redis.call('ZADD', leases, 'XX', now + lease, ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
"""

_NOTE_RUN = """
local active = KEYS[1]
local worker, key, sha, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local a = redis.call('HGET', active, key)
if not a then return 0 end
local d = cjson.decode(a)
if d.worker ~= worker then return 0 end
local runs = d.runs or {}
if type(runs) ~= 'table' then runs = {} end
table.insert(runs, {sha, id})
d.runs = runs
redis.call('HSET', active, key, cjson.encode(d))
return 1
"""

_COMPLETE = """
local jobs, ready, active, leases, wake, delayed =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local worker, key, done, ttl, now, requeue, prefix, delay =
  ARGV[1], ARGV[2], ARGV[3] == '1', tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6] == '1',
  ARGV[7], tonumber(ARGV[8])
local a = redis.call('HGET', active, key)
if not a then return 0 end
local d = cjson.decode(a)
-- the lease ran out and the job is someone else's now: theirs to acknowledge
if d.worker ~= worker then return 0 end
redis.call('HDEL', active, key)
redis.call('ZREM', leases, key)
if done and d.rev and d.rev ~= '' then
  redis.call('SET', prefix .. 'recent:' .. key .. '@' .. d.rev, '1', 'EX', ttl)
end
if requeue then
  local p = redis.call('HGET', jobs, key)
  if p then
    -- a newer job waits for this PR: it goes ahead, and takes over this one's check runs
    local pd = cjson.decode(p)
    local runs = pd.runs
    if type(runs) ~= 'table' then runs = {} end
    if type(d.runs) == 'table' then
      for _, r in ipairs(d.runs) do table.insert(runs, r) end
    end
    pd.runs = runs
    redis.call('HSET', jobs, key, cjson.encode(pd))
  else
    d.worker = nil
    d.force = true
    if delay > 0 then
      d.retries = (d.retries or 0) + 1
      d.attempts = 0
    end
    redis.call('HSET', jobs, key, cjson.encode(d))
    if delay > 0 then
      redis.call('ZADD', delayed, now + delay, key)
      return 1
    end
  end
end
if redis.call('HEXISTS', jobs, key) == 1 and redis.call('ZSCORE', delayed, key) == false then
  redis.call('ZADD', ready, 'NX', now, key)
  redis.call('LPUSH', wake, '1')
  redis.call('LTRIM', wake, 0, 255)
end
return 1
"""

_SWEEP = """
local jobs, ready, active, leases, wake, delayed =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local now = tonumber(ARGV[1])
-- retries that are due
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 100)
for _, key in ipairs(due) do
  redis.call('ZREM', delayed, key)
  if redis.call('HEXISTS', jobs, key) == 1 and redis.call('HEXISTS', active, key) == 0 then
    redis.call('ZADD', ready, 'NX', now, key)
    redis.call('LPUSH', wake, '1')
  end
end
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 100)
for _, key in ipairs(expired) do
  redis.call('ZREM', leases, key)
  local a = redis.call('HGET', active, key)
  if a then
    redis.call('HDEL', active, key)
    local d = cjson.decode(a)
    d.worker = nil
    local p = redis.call('HGET', jobs, key)
    if p then
      -- a newer job waits for this PR: it goes ahead, and completes the check runs the
      -- dead worker left
      local pd = cjson.decode(p)
      local runs = pd.runs
      if type(runs) ~= 'table' then runs = {} end
      if type(d.runs) == 'table' then
        for _, r in ipairs(d.runs) do table.insert(runs, r) end
      end
      pd.runs = runs
      redis.call('HSET', jobs, key, cjson.encode(pd))
    else
      -- the same job again: its review has to happen, and its attempts count
      redis.call('HSET', jobs, key, cjson.encode(d))
    end
    redis.call('ZREM', delayed, key)
    redis.call('ZADD', ready, 'NX', now, key)
    redis.call('LPUSH', wake, '1')
  end
end
return #expired
"""

_CLAIM_ONCE = """
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[2]))
"""


@dataclass(frozen=True)
class Claimed(Generic[J]):
    """A job a worker holds: its attempts, and the check runs earlier attempts created."""

    job: J
    attempts: int
    runs: tuple[tuple[str, int], ...] = ()
    # Times the job was put back to wait out a `Retry`.
    retries: int = 0


# Runs one claimed job; True when it finished its work. It may raise.
ClaimedHandler = Callable[[Claimed[J]], Awaitable[bool]]


@dataclass
class QueueStats:
    """Read from Redis every few seconds, for /metrics and /readyz."""

    depth: int = 0
    running: int = 0
    oldest_age: float = 0.0
    workers_alive: int = 0
    dead: int = 0
    retrying: int = 0  # jobs waiting out a retry (GitHub or Redis failed part of their work)
    reviews: dict[str, int] = field(default_factory=dict)
    read_at: float = 0.0  # monotonic; 0: never
    error: str | None = None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# Deliveries and arguments per script call: enough to take a burst in a few calls, few
# enough that one call keeps Redis (single-threaded) busy for a millisecond or so.
_ACCEPT_BATCH = 100
_ACCEPT_ARGS = 5000


@dataclass(frozen=True)
class _Accepting:
    seen: str  # the delivery id's key
    args: list[Any]
    answer: asyncio.Future[list[Any]]


def _unreachable(exc: BaseException) -> bool:
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError)


class RedisQueue(Generic[J]):
    """A JobQueue on Redis; `workers=0` only submits (a web process)."""

    def __init__(
        self,
        client: aioredis.Redis,
        handler: ClaimedHandler[J] | None,
        *,
        encode: Callable[[J], str],
        decode: Callable[[str], J],
        workers: int = 4,
        maxsize: int = 100,
        prefix: str = "flux-review",
        lease: float = 10.0,
        recent_ttl: float = 600.0,
        poll: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self._handler = handler
        self._encode = encode
        self._decode = decode
        self._workers = workers
        self._maxsize = maxsize
        self.prefix = prefix.rstrip(":") + ":"
        self.lease = lease
        self._recent_ttl = recent_ttl
        self._poll = poll
        self._clock = clock
        self.worker = worker_id()
        self._active: dict[str, Claimed[J]] = {}
        # The check runs each running job created, kept here too: Redis may lose them.
        self._noted: dict[str, list[tuple[str, int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self._stopped = False
        self.stats = QueueStats()
        self.heartbeat_at = 0.0  # monotonic time of the last heartbeat Redis took
        self._submit = client.register_script(_SUBMIT)
        self._accept = client.register_script(_ACCEPT)
        self._claim = client.register_script(_CLAIM)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._note = client.register_script(_NOTE_RUN)
        self._complete = client.register_script(_COMPLETE)
        self._sweep = client.register_script(_SWEEP)
        self._claim_once = client.register_script(_CLAIM_ONCE)
        self._accepting: list[_Accepting] = []
        self._accepter: asyncio.Task[None] | None = None
        self._epoch: bytes | str | None = None
        # Called when Redis is found to have lost its data (restarted without persistence,
        # flushed, failed over to an empty replica).
        self.on_data_lost: Callable[[], Awaitable[None]] | None = None

    def set_handler(self, handler: ClaimedHandler[J]) -> None:
        self._handler = handler

    def k(self, name: str) -> str:
        return self.prefix + name

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- JobQueue ------------------------------------------------------------------------

    async def start(self) -> None:
        self._spawn(self._stats_loop(), "flux-review-queue-stats")
        if self._workers and self._handler is not None:
            self._spawn(self._heartbeat_loop(), "flux-review-heartbeat")
            for n in range(self._workers):
                self._spawn(self._work(), f"flux-review-worker-{n}")

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("queue task %s died", task.get_name(), exc_info=task.exception())

    def depth(self) -> int:
        return self.stats.depth

    def running(self) -> int:
        return len(self._active) if self._workers else self.stats.running

    def _envelope(self, job: J, runs: tuple[tuple[str, int], ...] = (), retries: int = 0) -> str:
        envelope: dict[str, Any] = {
            "key": job.key,
            "rev": job.revision or "",
            "force": bool(job.force),
            "job": self._encode(job),
            "attempts": 0,
            "retries": retries,
            "enqueued": self._now_ms(),
        }
        if runs:
            envelope["runs"] = [[sha, run_id] for sha, run_id in runs]
        return json.dumps(envelope)

    def _recent_key(self, job: J) -> str:
        return self.k(f"recent:{job.key}@{job.revision or ''}")

    async def submit(
        self,
        job: J,
        *,
        follow_up: bool = False,
        runs: tuple[tuple[str, int], ...] = (),
        retries: int = 0,
    ) -> Submitted:
        """`runs`: check runs (head SHA, id) left in progress that the job is to take over
        or conclude; `retries`: how often its work was tried already."""
        if self._stopped or (self._closed and not follow_up):
            raise QueueClosed("the queue is shutting down")
        try:
            answer = await self._submit(
                keys=[self.k(n) for n in ("jobs", "ready", "active", "wake", "delayed")],
                args=[
                    job.key,
                    self._envelope(job, runs, retries),
                    job.revision or "",
                    "1" if job.force else "0",
                    self._maxsize,
                    self._now_ms(),
                    self._recent_key(job),
                ],
            )
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"Redis is unreachable ({type(exc).__name__})") from exc
        answer = answer.decode() if isinstance(answer, bytes) else str(answer)
        if answer == "full":
            raise QueueFull(f"{self._maxsize} jobs pending")
        if answer == "replaced":
            log.info("delivery %s: %s replaces the pending job", job.delivery_id, job.key)
        return Submitted(answer)

    async def accept(
        self, delivery: str, jobs: list[J], *, ttl: float = 3 * 24 * 3600.0
    ) -> list[Submitted] | None:
        """A webhook delivery, in one step: None when its id was accepted before (GitHub's
        Redeliver keeps it; one delivery may reach two replicas), else its jobs queued, all
        or none, and the id kept for `ttl` seconds.

        Deliveries that arrive while a call to Redis is under way go together in the next
        one (one script, one round trip): under a burst the web process spends its time
        answering webhooks, not waiting for Redis one delivery at a time."""
        if self._closed:
            raise QueueClosed("the queue is shutting down")
        # Arrival to the microsecond: deliveries that go to Redis together keep their
        # order in `ready` (equal scores would sort by key).
        args: list[Any] = [int(ttl), round(self._clock() * 1000, 3), len(jobs)]
        for job in jobs:
            args += [
                job.key,
                self._envelope(job),
                job.revision or "",
                "1" if job.force else "0",
                self._recent_key(job),
            ]
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[Any]] = loop.create_future()
        self._accepting.append(_Accepting(self.k(f"delivery:{delivery}"), args, answer))
        accepter = self._accepter
        if accepter is None or accepter.done() or accepter.get_loop() is not loop:
            self._accepter = loop.create_task(self._accept_all(), name="flux-review-accept")
            self._accepter.add_done_callback(self._task_done)
        outcomes = [a.decode() if isinstance(a, bytes) else str(a) for a in await answer]
        if outcomes == ["seen"]:
            return None
        if outcomes == ["full"]:
            raise QueueFull(f"{self._maxsize} jobs pending")
        if outcomes[:1] == ["error"]:
            log.error("delivery %s refused by Redis: %s", delivery, outcomes[1:])
            raise QueueUnavailable("Redis refused the delivery (see the log)")
        return [Submitted(o) for o in outcomes]

    async def _accept_all(self) -> None:
        batch: list[_Accepting] = []
        try:
            while self._accepting:
                batch, size = [], 0
                while self._accepting and len(batch) < _ACCEPT_BATCH and size < _ACCEPT_ARGS:
                    waiting = self._accepting.pop(0)
                    if not waiting.answer.done():  # else its request was cancelled
                        batch.append(waiting)
                        size += len(waiting.args)
                if not batch:
                    continue
                try:
                    answers = await self._accept(
                        keys=[
                            self.k("jobs"),
                            self.k("ready"),
                            self.k("active"),
                            self.k("wake"),
                            self.k("delayed"),
                            *(w.seen for w in batch),
                        ],
                        args=[self._maxsize, *(a for w in batch for a in w.args)],
                    )
                except (RedisError, OSError) as exc:
                    if _unreachable(exc):
                        # Redis does not answer: what waits behind this batch would wait
                        # as long again, one timeout after another; it is refused at once.
                        batch += self._accepting
                        self._accepting.clear()
                    error = QueueUnavailable(f"Redis is unreachable ({type(exc).__name__})")
                    for waiting in batch:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(error)
                    continue
                for waiting, delivery_answer in zip(batch, answers, strict=True):
                    if not waiting.answer.done():
                        waiting.answer.set_result(list(delivery_answer))
        finally:
            # Cancelled (the loop is closing) or a bug: no request waits for ever.
            for waiting in batch + self._accepting:
                if not waiting.answer.done():
                    waiting.answer.set_exception(QueueUnavailable("queueing was interrupted"))
            self._accepting.clear()

    async def close(self, grace: float, *, cancel_wait: float | None = None) -> list[J]:
        """Take no more work; give running jobs `grace` seconds, then cancel them (each
        concludes its check run) and give them back to the queue for another worker.
        Pending jobs stay in Redis: nothing is handed back."""
        self._closed = True
        self._stopped = True  # other workers take what is pending
        cancel_wait = 10.0 if cancel_wait is None else cancel_wait
        accepter = self._accepter
        if accepter is not None and not accepter.done():
            # Deliveries on their way to Redis get their answer; what Redis does not take
            # in a moment is answered 503 (redeliver it).
            await asyncio.wait({accepter}, timeout=2.0)
            accepter.cancel()
        running = set(self._jobs.values())
        if running:
            _done, still = await asyncio.wait(running, timeout=grace)
            if still:
                log.warning("shutdown: cancelling %d running jobs after %.1fs", len(still), grace)
                for task in still:
                    task.cancel()
                await asyncio.wait(still, timeout=cancel_wait)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        if self._workers:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.zrem(self.k("workers"), self.worker)
        return []

    # -- the workers ---------------------------------------------------------------------

    async def _work(self) -> None:
        while not self._stopped:
            try:
                claimed = await self._take()
            except (RedisError, OSError) as exc:
                log.warning("queue: Redis unreachable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(self._poll)
                continue
            if claimed is None:
                continue
            task = asyncio.current_task()
            assert task is not None
            self._jobs[claimed.job.key] = task
            try:
                await self._run(claimed)
            finally:
                self._jobs.pop(claimed.job.key, None)

    async def _take(self) -> Claimed[J] | None:
        """The next job, or None after waiting a while for one."""
        await self._sweep(
            keys=[self.k(n) for n in ("jobs", "ready", "active", "leases", "wake", "delayed")],
            args=[self._now_ms()],
        )
        got = await self._claim(
            keys=[self.k(n) for n in ("jobs", "ready", "active", "leases")],
            args=[self.worker, self._now_ms(), int(self.lease * 1000)],
        )
        if not got:
            # One wake token per submit; the timeout also paces the sweeps of an idle worker.
            await self.redis.blpop([self.k("wake")], timeout=self._poll)
            return None
        key, text = (x.decode() if isinstance(x, bytes) else x for x in got)
        if self._stopped:
            # Claimed as the shutdown began: give it straight back.
            await self._ack(key, done=False, requeue=True)
            return None
        data = json.loads(text)
        job = self._decode(data["job"])
        if data.get("force") and not job.force:
            job = _forced(job)
        runs = tuple(
            (str(r[0]), int(r[1])) for r in (data.get("runs") or []) if isinstance(r, list)
        )
        claimed = Claimed(job, int(data.get("attempts") or 1), runs, int(data.get("retries") or 0))
        self._active[key] = claimed
        return claimed

    async def _run(self, claimed: Claimed[J]) -> None:
        assert self._handler is not None
        key = claimed.job.key
        done = False
        requeue = False
        delay = 0.0
        retrying: Claimed[J] | None = None
        try:
            done = await self._handler(claimed)
        except Retry as retry:
            log.warning(
                "delivery %s: %s again in %.0fs: %s",
                claimed.job.delivery_id,
                key,
                retry.delay,
                retry.reason,
            )
            requeue, delay = True, max(retry.delay, 0.001)
            # Redis may refuse or have lost the job this retry goes back to: this process
            # keeps it too, until Redis takes it again.
            retrying = claimed
        except asyncio.CancelledError:
            # Stopped by a shutdown: its check run was concluded `cancelled`; another worker
            # (or this one after its restart) reviews it again.
            requeue = True
            raise
        except Exception:
            log.exception("delivery %s: job %s failed", claimed.job.delivery_id, key)
        finally:
            self._active.pop(key, None)
            noted = tuple(self._noted.pop(key, ()))
            acked = await _shielded(self._ack(key, done=done, requeue=requeue, delay=delay))
            if retrying is not None and not acked:
                runs = tuple(dict.fromkeys(retrying.runs + noted))
                self._spawn(
                    self._keep(dataclasses.replace(retrying, runs=runs), delay),
                    f"flux-review-keep-{key}",
                )

    async def _keep(self, claimed: Claimed[J], delay: float) -> None:
        """A job to retry that Redis did not take back (unreachable, or restarted without
        its data): queued again from here, with its check runs, once Redis answers."""
        job = claimed.job
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            log.error(
                "delivery %s: %s was to run again, but the worker stopped first; a push, "
                "`/flux-review recheck` or the next reconciliation reviews it",
                job.delivery_id,
                job.key,
            )
            raise
        while True:
            try:
                await self.submit(
                    _forced(job), follow_up=True, runs=claimed.runs, retries=claimed.retries + 1
                )
            except QueueClosed:
                log.error(
                    "delivery %s: %s was to run again, but the worker stopped first; a push, "
                    "`/flux-review recheck` or the next reconciliation reviews it",
                    job.delivery_id,
                    job.key,
                )
                return
            except QueueFull as exc:
                log.warning("queue: %s not queued again yet (%s)", job.key, exc)
                await asyncio.sleep(max(self._poll, 1.0))
                continue
            log.info("delivery %s: %s queued again", job.delivery_id, job.key)
            return

    async def _ack(self, key: str, *, done: bool, requeue: bool, delay: float = 0.0) -> bool:
        """True once Redis took the acknowledgement (or the job was no longer this
        worker's); False when it could not be reached."""
        for attempt in range(5):
            try:
                await self._complete(
                    keys=[
                        self.k(n) for n in ("jobs", "ready", "active", "leases", "wake", "delayed")
                    ],
                    args=[
                        self.worker,
                        key,
                        "1" if done else "0",
                        int(self._recent_ttl),
                        self._now_ms(),
                        "1" if requeue else "0",
                        self.prefix,
                        int(delay * 1000),
                    ],
                )
                return True
            except (RedisError, OSError) as exc:
                # Unacknowledged, the job runs again once its lease runs out: at least once.
                log.warning("queue: could not acknowledge %s (%s)", key, type(exc).__name__)
                await asyncio.sleep(0.2 * (attempt + 1))
        return False

    async def note_run(self, key: str, sha: str, run_id: int) -> None:
        """Remember a check run the job created, for whoever runs it after a crash."""
        if key in self._active:
            self._noted.setdefault(key, []).append((sha, run_id))
        try:
            await self._note(keys=[self.k("active")], args=[self.worker, key, sha, str(run_id)])
        except (RedisError, OSError) as exc:
            log.warning("queue: could not note check run %d (%s)", run_id, type(exc).__name__)

    async def dead_letter(self, claimed: Claimed[J], reason: str) -> None:
        entry = json.dumps(
            {
                "key": claimed.job.key,
                "delivery": claimed.job.delivery_id,
                "attempts": claimed.attempts,
                "reason": reason,
                "at": self._clock(),
                "job": self._encode(claimed.job),
            }
        )
        pipe = self.redis.pipeline()
        pipe.lpush(self.k("dead"), entry)
        pipe.ltrim(self.k("dead"), 0, 999)
        await pipe.execute()

    async def _heartbeat_loop(self) -> None:
        interval = max(self.lease / 4, 0.05)
        while True:
            try:
                await self._heartbeat(
                    keys=[self.k("active"), self.k("leases"), self.k("workers")],
                    args=[self.worker, self._now_ms(), int(self.lease * 1000), *self._active],
                )
                self.heartbeat_at = time.monotonic()
            except (RedisError, OSError) as exc:
                log.warning("queue: heartbeat failed (%s)", type(exc).__name__)
            await asyncio.sleep(interval)

    # -- shared state --------------------------------------------------------------------

    async def claim_once(self, name: str, ttl: float) -> bool:
        """True for the first process to claim `name` within `ttl` seconds."""
        got = await self._claim_once(
            keys=[self.k(f"claim:{name}")], args=[self.worker, max(int(ttl), 1)]
        )
        return bool(got)

    async def release(self, name: str) -> None:
        await self.redis.delete(self.k(f"claim:{name}"))

    async def write_probe(self) -> str | None:
        """None when Redis takes a write now; else what it answered."""
        try:
            async with asyncio.timeout(2.0):
                await self.redis.set(self.k("probe"), self.worker, px=60_000)
        except (RedisError, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {str(exc)[:120]}"
        return None

    async def count_review(self, outcome: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.redis.hincrby(self.k("reviews"), outcome, 1)

    async def read_stats(self) -> QueueStats:
        now = self._now_ms()
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hlen(self.k("jobs"))
            pipe.hlen(self.k("active"))
            pipe.zrange(self.k("ready"), 0, 0, withscores=True)
            pipe.zcount(self.k("workers"), now - int(self.lease * 1000), "+inf")
            pipe.llen(self.k("dead"))
            pipe.hgetall(self.k("reviews"))
            pipe.zcard(self.k("delayed"))
            depth, running, oldest, alive, dead, reviews, retrying = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.stats.error = f"Redis is unreachable ({type(exc).__name__}: {exc})"
            return self.stats
        self.stats = QueueStats(
            depth=int(depth),
            running=int(running),
            oldest_age=max(now - oldest[0][1], 0) / 1000 if oldest else 0.0,
            workers_alive=int(alive),
            dead=int(dead),
            retrying=int(retrying),
            reviews={
                (k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in reviews.items()
            },
            read_at=time.monotonic(),
        )
        return self.stats

    async def _stats_loop(self) -> None:
        while True:
            await self.read_stats()
            try:
                await self.check_epoch()
            except (RedisError, OSError) as exc:
                log.debug("queue: epoch not checked (%s)", type(exc).__name__)
            await asyncio.sleep(2.0)

    async def check_epoch(self) -> bool:
        """Whether Redis lost its data since this process last looked: the marker the
        first process set is gone, or another process has set a new one."""
        current = await self.redis.get(self.k("epoch"))
        if current is None:
            fresh = uuid.uuid4().hex.encode()
            if await self.redis.set(self.k("epoch"), fresh, nx=True):
                current = fresh
            else:
                current = await self.redis.get(self.k("epoch"))
        lost = self._epoch is not None and current != self._epoch
        self._epoch = current
        if lost:
            log.error(
                "Redis lost its data (restarted without its append-only file, flushed, or "
                "failed over to an empty replica): the jobs it held are gone; reconciling "
                "with GitHub's open pull requests"
            )
            if self.on_data_lost is not None:
                await self.on_data_lost()
        return lost

    async def remember_repos(self, repos: list[tuple[int, str, str]]) -> None:
        if repos:
            await self.redis.sadd(self.k("repos"), *(json.dumps(r) for r in repos))

    async def remembered_repos(self) -> list[tuple[int, str, str]]:
        out = []
        for raw in await self.redis.smembers(self.k("repos")):
            with contextlib.suppress(ValueError, TypeError):
                iid, owner, name = json.loads(raw)
                out.append((int(iid), str(owner), str(name)))
        return out

    async def request_reconcile(self) -> None:
        await self.redis.set(self.k("reconcile-due"), "1", ex=3600)

    async def take_reconcile_request(self) -> bool:
        return bool(await self.redis.getdel(self.k("reconcile-due")))

    async def held_keys(self) -> set[str]:
        """Keys of the jobs pending or running now, over all processes."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hkeys(self.k("active"))
        pipe.hkeys(self.k("jobs"))
        active, pending = await pipe.execute()
        return {k.decode() if isinstance(k, bytes) else str(k) for k in [*active, *pending]}

    async def persistence(self) -> str:
        """`aof` when Redis keeps an append-only file (what it acknowledged survives a
        restart), else `none`."""
        info = await self.redis.info("persistence")
        return "aof" if int(info.get("aof_enabled", 0)) else "none"

    async def dead_jobs(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in await self.redis.lrange(self.k("dead"), 0, -1)]


def _forced(job: J) -> J:
    return dataclasses.replace(job, force=True)  # type: ignore[type-var]


T = TypeVar("T")


async def _shielded(coro: Awaitable[T]) -> T:
    """Run `coro` to its end even if the caller is cancelled meanwhile."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


# The next free write slot of one installation, on Redis's clock (the processes' clocks
# may disagree): the caller waits the milliseconds returned, then writes.
_WRITE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], slot + interval, 'PX', slot + interval - now + 1000)
return slot - now
"""


class RedisWriteThrottle(WriteThrottle):
    """Writes to one installation spaced across every process on this Redis: GitHub's
    secondary limits count an installation's writes, not a process's, so M workers must
    not write M times as fast as one. Each write takes the next slot atomically."""

    def __init__(
        self,
        client: aioredis.Redis,
        interval: float,
        *,
        prefix: str,
        sleep: Sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval, sleep=sleep, clock=clock)
        self._slot = client.register_script(_WRITE_SLOT)
        self._prefix = prefix.rstrip(":") + ":"

    async def wait(self, installation_id: int) -> None:
        if self.interval <= 0:
            return
        try:
            delay_ms = await self._slot(
                keys=[f"{self._prefix}writes:{installation_id}"],
                args=[max(int(self.interval * 1000), 1)],
            )
        except (RedisError, OSError):
            # Redis unreachable: this process's own spacing, rather than no write at all
            # (the write may be the check run that says what went wrong).
            await super().wait(installation_id)
            return
        if int(delay_ms) > 0:
            await self._sleep(int(delay_ms) / 1000)


def connect(url: str, *, connections: int = 64) -> aioredis.Redis:
    """A client for `REDIS_URL`; short timeouts, so an unreachable Redis is a quick 503.

    A blocking pool: under a burst of deliveries, requests wait a moment for one of
    `connections` connections instead of failing (redis-py's default pool raises once it
    has handed out all of its connections)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=connections,
        timeout=5.0,
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


__all__ = ["Claimed", "QueueStats", "RedisQueue", "RedisWriteThrottle", "connect"]
