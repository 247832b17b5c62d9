"""The shared queue on a real Redis: the App as web and worker processes, killed and
restarted, two replicas on one Redis, against the fake GitHub on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.review import context_log
from bot.server import create_app
from bot.server.jobs import ReviewJob, encode_job
from bot.server.redisqueue import Claimed, RedisQueue, RedisWriteThrottle
from bot.settings import JsonFormatter, Settings
from tests.fakegithub import FakeGitHub, GitRepo
from tests.fakegithub.server import CheckRun
from tests.redis_server import RedisServer
from tests.test_app_e2e import DEPLOYMENT, SECRET, incident_repo

ROOT = Path(__file__).resolve().parent.parent


async def until(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str | Callable[[], str] = ""
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"timed out waiting for {said or predicate}")
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Processes:
    """`python -m bot ...` processes of one test, all stopped at its end."""

    fake: FakeGitHub
    redis: RedisServer
    key: str
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "APP_"))}
        env.update(
            APP_ID=str(self.fake.app_id),
            PRIVATE_KEY=self.key,
            WEBHOOK_SECRET=SECRET,
            GITHUB_API_URL=self.fake.url,
            REDIS_URL=self.redis.url,
            REDIS_PREFIX=self.redis.prefix,
            GITHUB_WRITE_INTERVAL="0",
            JOB_LEASE="1.5",
            SHUTDOWN_GRACE="5",
            REVIEW_TIMEOUT="30",
            HOST="127.0.0.1",
            PYTHONPATH=str(ROOT),
        )
        env.update(more)
        return env

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"proc-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            env=self.env(**env),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    async def web(self, *args: str) -> str:
        port = free_port()
        self.start("serve", "--port", str(port), *args)
        url = f"http://127.0.0.1:{port}"

        async def up() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(url + "/healthz") as resp,
                ):
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await until(up, 30, "the web process")
        return url

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("proc-*")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def procs(
    fake_github: FakeGitHub, redis_server: RedisServer, github_app_key: str, tmp_path: Path
) -> Iterator[Processes]:
    running = Processes(fake_github, redis_server, github_app_key, tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def rds(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=redis_server.prefix + ":*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def nice_of(pid: int) -> int:
    # /proc/PID/stat: the 19th field, counted after the command name in parentheses.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


async def workers_alive(client: aioredis.Redis, prefix: str) -> int:
    now = int(time.time() * 1000)
    return int(await client.zcount(f"{prefix}:workers", now - 1500, "+inf"))


async def queue_empty(client: aioredis.Redis, prefix: str) -> bool:
    return not await client.hlen(f"{prefix}:jobs") and not await client.hlen(f"{prefix}:active")


def in_progress(fake: FakeGitHub) -> list[Any]:
    return [r for r in fake.check_runs_named("flux-review") if r.status != "completed"]


# -- the queue alone ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Job:
    key: str
    delivery_id: str
    revision: str | None = None
    force: bool = False


class Clock:
    """The wall clock the queues measure leases with, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def job_queue(
    client: aioredis.Redis,
    prefix: str,
    handler: Any = None,
    workers: int = 1,
    maxsize: int = 100,
    clock: Callable[[], float] = time.time,
) -> RedisQueue[Job]:
    return RedisQueue(
        client,
        handler,
        encode=lambda j: json.dumps([j.key, j.delivery_id, j.revision, j.force]),
        decode=lambda t: Job(
            **dict(zip(("key", "delivery_id", "revision", "force"), json.loads(t), strict=True))
        ),
        workers=workers,
        maxsize=maxsize,
        prefix=prefix,
        lease=1.0,
        poll=0.1,
        clock=clock,
    )


async def test_a_burst_of_pushes_is_one_running_review_and_one_of_the_newest_head(
    rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    started: list[Job] = []
    release = asyncio.Event()

    async def handler(claimed: Claimed[Job]) -> bool:
        started.append(claimed.job)
        await release.wait()
        return True

    web = job_queue(rds, redis_server.prefix)
    worker = job_queue(rds, redis_server.prefix, handler, workers=4)
    await worker.start()
    try:
        assert (await web.submit(Job(key="pr1", delivery_id="d0", revision="a"))).value == "queued"
        await until(lambda: len(started) == 1, 5)
        outcomes = [
            (await web.submit(Job(key="pr1", delivery_id=f"d{n}", revision=rev))).value
            for n, rev in enumerate("bcde", 1)
        ]
        # The running head again is a duplicate, not a second review.
        again = await web.submit(Job(key="pr1", delivery_id="d9", revision="a"))
        assert outcomes == ["queued", "replaced", "replaced", "replaced"]
        assert again.value == "duplicate"
        await asyncio.sleep(0.3)
        assert [j.revision for j in started] == ["a"]  # never two of one PR at once
        release.set()
        await until(lambda: len(started) == 2, 5)
        await until(lambda: queue_empty(rds, redis_server.prefix), 5)
        assert [j.revision for j in started] == ["a", "e"]
        # Just reviewed: the same head is a duplicate; forced, it runs.
        assert (await web.submit(Job(key="pr1", delivery_id="x", revision="e"))).value == (
            "duplicate"
        )
        forced = await web.submit(Job(key="pr1", delivery_id="y", revision="e", force=True))
        assert forced.value == "queued"
    finally:
        await worker.close(1.0)


async def evalsha_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_a_burst_of_deliveries_is_accepted_in_a_few_round_trips_each_answered_alone(
    rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    web = job_queue(rds, redis_server.prefix, maxsize=250)
    await web.accept("warm-up", [])  # the script is loaded once, outside the count
    before = await evalsha_calls(rds)

    def jobs(n: int) -> list[Job]:
        return [Job(key=f"pr{n}", delivery_id=f"d{n}", revision="a")]

    # 300 deliveries at once: 200 PRs, 40 of them pushed twice (the newer replaces the
    # older), 30 redelivered with the same id, and 30 more PRs than the queue takes.
    calls = [web.accept(f"d{n}", jobs(n)) for n in range(200)]
    calls += [
        web.accept(f"e{n}", [Job(key=f"pr{n}", delivery_id=f"e{n}", revision="b")])
        for n in range(40)
    ]
    calls += [web.accept(f"d{n}", jobs(n)) for n in range(30)]
    calls += [web.accept(f"d{n}", jobs(n)) for n in range(250, 280)]
    answers = await asyncio.gather(*calls, return_exceptions=True)

    def outcome(answer: Any) -> Any:
        if isinstance(answer, Exception):
            return type(answer).__name__
        return None if answer is None else [a.value for a in answer]

    got = [outcome(a) for a in answers]
    assert got[:200] == [["queued"]] * 200
    assert got[200:240] == [["replaced"]] * 40
    assert got[240:270] == [None] * 30  # the same delivery id: accepted once
    # 200 jobs pending, room for 50: the last 30 PRs fit; the queue's bound holds.
    assert got[270:] == [["queued"]] * 30
    assert await rds.hlen(f"{redis_server.prefix}:jobs") == 230
    newest = await rds.hget(f"{redis_server.prefix}:jobs", "pr7")
    assert newest is not None
    pending = json.loads(newest)
    assert json.loads(pending["job"])[2] == "b"  # the newest head waits
    # Deliveries waiting for Redis went together: a handful of script calls, not 300.
    assert await evalsha_calls(rds) - before <= 300 // 100 + 2
    over = await asyncio.gather(
        *(web.accept(f"f{n}", jobs(1000 + n)) for n in range(30)), return_exceptions=True
    )
    assert [outcome(a) for a in over].count("QueueFull") == 10
    await web.close(1.0)


async def test_a_delivery_redis_refuses_fails_alone_and_a_batch_keeps_arrival_order(
    rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    web = job_queue(rds, redis_server.prefix)
    await rds.hset(f"{redis_server.prefix}:jobs", "pr-x", "{not json")  # a corrupt entry
    keys = ["pr9", "pr10", "pr-x", "pr2", "pr1"]
    answers = await asyncio.gather(
        *(web.accept(f"d-{k}", [Job(key=k, delivery_id=f"d-{k}", revision="a")]) for k in keys),
        return_exceptions=True,
    )
    assert [type(a).__name__ for a in answers] == ["list"] * 2 + ["QueueUnavailable"] + ["list"] * 2
    # Not remembered: once the key is repaired, GitHub's Redeliver gets it queued.
    assert not await rds.exists(f"{redis_server.prefix}:delivery:d-pr-x")
    # Without WITHSCORES, ZRANGE answers the members alone.
    members = cast(list[bytes], await rds.zrange(f"{redis_server.prefix}:ready", 0, -1))
    ready = [k.decode() for k in members]
    assert ready == ["pr9", "pr10", "pr2", "pr1"]
    await web.close(1.0)


async def test_writes_to_one_installation_are_spaced_across_processes(
    rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    # Two worker processes' throttles: each write takes the next free slot of its
    # installation, whichever process makes it.
    one, two = (
        RedisWriteThrottle(rds, 0.5, prefix=redis_server.prefix, sleep=sleep) for _ in range(2)
    )
    for throttle in (one, two, one, two):
        await throttle.wait(7)
    # The first goes at once; the others wait for their slots (less the moments between
    # the calls, spent here).
    assert len(waits) == 3
    for waited, slot in zip(waits, (0.5, 1.0, 1.5), strict=True):
        assert slot - 0.25 < waited <= slot
    waits.clear()
    await two.wait(8)  # another installation has its own slots
    assert waits == []
    # Redis gone: the process's own spacing, and the write goes ahead.
    down = RedisWriteThrottle(
        aioredis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0)),
        0.5,
        prefix=redis_server.prefix,
        sleep=sleep,
        clock=lambda: 100.0,
    )
    await down.wait(7)
    await down.wait(7)
    assert waits == [0.5]


async def test_a_killed_workers_job_runs_again_with_its_check_runs(
    rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    got: list[Claimed[Job]] = []

    async def handler(claimed: Claimed[Job]) -> bool:
        got.append(claimed)
        return True

    clock = Clock()
    web = job_queue(rds, redis_server.prefix, clock=clock)
    await web.submit(Job(key="pr1", delivery_id="d1", revision="a"))
    # A worker takes the job, notes its check run and dies without a word (no ack, no
    # more heartbeats).
    dying = job_queue(rds, redis_server.prefix, clock=clock)
    claimed = await dying._take()
    assert claimed is not None and claimed.attempts == 1
    await dying.note_run("pr1", "a" * 40, 77)
    assert (await web.submit(Job(key="pr1", delivery_id="d2", revision="a"))).value == ("duplicate")
    # While its lease (1 s) lasts, the job is still the dead worker's.
    assert await job_queue(rds, redis_server.prefix, clock=clock)._take() is None
    clock.now += 1.5  # the lease has run out
    worker = job_queue(rds, redis_server.prefix, handler, clock=clock)
    await worker.start()
    try:
        await until(lambda: got, 10, "the job to run again")
        assert got[0].job.delivery_id == "d1"
        assert got[0].attempts == 2
        assert got[0].runs == (("a" * 40, 77),)
        await until(lambda: queue_empty(rds, redis_server.prefix), 5)
        # The dead worker's late acknowledgement changes nothing.
        await dying._ack("pr1", done=True, requeue=False)
        assert await queue_empty(rds, redis_server.prefix)
    finally:
        await worker.close(1.0)


# -- the App's processes -----------------------------------------------------------------


async def send(fake: FakeGitHub, url: str, name: str, **kwargs: Any) -> Any:
    return await fake.deliver(url, name, SECRET, **kwargs)


async def test_worker_killed_mid_review_then_restarted_completes_the_review(
    procs: Processes, git_repo: GitRepo, rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    fake = procs.fake
    incident_repo(git_repo)
    pr = fake.add_pull("feature")
    # The review hangs on the archive, after it created its check run.
    fake.slow("GET", r"/tarball/", 60.0, times=1)
    web = await procs.web("--no-worker")
    worker = procs.start("worker")
    answer = await send(fake, web, "pull_request.opened")
    assert answer.status == 202
    await until(lambda: fake.check_runs_named("flux-review"), 30, "the check run")
    assert in_progress(fake)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    fake.clear_failures()

    procs.start("worker")
    await until(
        lambda: not in_progress(fake), 60, lambda: "the review to complete\n" + procs.logs()
    )
    await until(lambda: queue_empty(rds, redis_server.prefix), 10)
    runs = fake.check_runs_named("flux-review")
    # The run the killed worker left is the one completed: no second run beside it.
    assert len(runs) == 1, procs.logs()
    assert runs[0].head_sha == fake.head_sha(pr) and runs[0].conclusion == "failure"
    assert [c.path for c in fake.comments_on(pr.number)] == [DEPLOYMENT]


async def test_two_app_processes_on_one_redis_post_nothing_twice(
    procs: Processes, git_repo: GitRepo, rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    fake = procs.fake
    incident_repo(git_repo)
    pr = fake.add_pull("feature")
    first, second = await asyncio.gather(procs.web(), procs.web())
    await until(lambda: workers_alive(rds, redis_server.prefix), 30, "the workers")

    # Each `serve` reviews in a worker process of its own, which yields the CPU to it.
    async def both_workers() -> bool:
        return await workers_alive(rds, redis_server.prefix) == 2

    await until(both_workers, 30, "both worker processes")
    for web in procs.procs:
        children = Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()
        assert len(children) == 1
        assert (nice_of(web.pid), nice_of(int(children[0]))) == (0, 10)
    # The push's two events for one head, one to each replica, at once.
    opened, suite = await asyncio.gather(
        send(fake, first, "pull_request.opened"), send(fake, second, "check_suite.requested")
    )
    assert (opened.status, suite.status) == (202, 202)
    await until(lambda: fake.check_runs_named("flux-review") and not in_progress(fake), 60)
    await until(lambda: queue_empty(rds, redis_server.prefix), 10)

    # A recheck comment, delivered to both (a load balancer retrying, say).
    fake.set_permission("maintainer", "write")
    command = fake.add_issue_comment(pr.number, "/flux-review recheck", user="maintainer")
    payload = fake.webhook_payload("issue_comment.created", comment=command)
    one, two = await asyncio.gather(
        fake.send_webhook(first, "issue_comment", payload, SECRET, delivery_id="same-delivery"),
        fake.send_webhook(second, "issue_comment", payload, SECRET, delivery_id="same-delivery"),
    )
    assert sorted(r.json()["message"] for r in (one, two)) == ["duplicate delivery", "queued"]
    await until(lambda: len(fake.check_runs_named("flux-review")) == 2, 60)
    await until(lambda: not in_progress(fake) and command.reactions, 30)
    await until(lambda: queue_empty(rds, redis_server.prefix), 10)
    runs = fake.check_runs_named("flux-review")
    assert [r.conclusion for r in runs] == ["failure", "failure"], procs.logs()
    assert len(fake.comments_on(pr.number)) == 1
    assert len(fake.reviews_on(pr.number)) == 1
    assert command.reactions == [("+1", fake.bot_login)]


async def test_redis_unreachable_refuses_deliveries_and_readyz_says_why(
    procs: Processes, git_repo: GitRepo
) -> None:
    fake = procs.fake
    incident_repo(git_repo)
    fake.add_pull("feature")
    procs.redis = RedisServer(f"redis://127.0.0.1:{free_port()}/0", procs.redis.prefix)
    web = await procs.web("--no-worker")
    answer = await send(fake, web, "pull_request.opened")
    assert answer.status == 503 and "Redis" in answer.json()["message"]
    async with aiohttp.ClientSession() as session, session.get(web + "/readyz") as resp:
        body = await resp.json()
    assert resp.status == 503 and any("Redis unreachable" in p for p in body["problems"])
    assert fake.check_runs_named("flux-review") == []


async def test_a_job_that_kills_its_workers_is_dead_lettered_with_a_completed_run(
    procs: Processes, git_repo: GitRepo, rds: aioredis.Redis, redis_server: RedisServer
) -> None:
    fake = procs.fake
    incident_repo(git_repo)
    pr = fake.add_pull("feature")
    # The check run the first of them created, left in progress.
    run = CheckRun(
        id=fake._next_id(),
        name="flux-review",
        head_sha=fake.head_sha(pr),
        status="in_progress",
        check_suite_id=1,
    )
    fake.check_runs[run.id] = run
    job = ReviewJob(
        repo=_repo(fake),
        installation_id=fake.installation_id,
        number=pr.number,
        delivery_id="poison",
        trigger="pull_request.opened",
        revision=fake.head_sha(pr),
    )
    # What three workers killed by this job leave: the job running, its lease gone.
    prefix = redis_server.prefix
    await rds.hset(
        f"{prefix}:active",
        job.key,
        json.dumps(
            {
                "key": job.key,
                "rev": fake.head_sha(pr),
                "force": False,
                "job": encode_job(job),
                "attempts": 3,
                "enqueued": 0,
                "worker": "gone:1:x",
                "runs": [[fake.head_sha(pr), str(run.id)]],
            }
        ),
    )
    await rds.zadd(f"{prefix}:leases", {job.key: 0})
    procs.start("worker", REVIEW_MAX_ATTEMPTS="3")
    await until(lambda: not in_progress(fake), 30, "the dead letter")
    await until(lambda: queue_empty(rds, prefix), 10)
    runs = fake.check_runs_named("flux-review")
    assert len(runs) == 1 and runs[0].conclusion == "failure", procs.logs()
    assert "gave up" in (runs[0].summary or "")
    dead = [json.loads(x) for x in await rds.lrange(f"{prefix}:dead", 0, -1)]
    assert [d["delivery"] for d in dead] == ["poison"]
    # Nothing was reviewed: no comment.
    assert fake.comments_on(pr.number) == []


def _repo(fake: FakeGitHub) -> Any:
    from bot.github.repo import RepoRef

    owner, name = fake.full_name.split("/")
    return RepoRef(owner, name)


# -- operations --------------------------------------------------------------------------


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def get_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return await resp.text()


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    assert found is not None, f"{name} not in\n{text}"
    return float(found.group(1))


async def test_readyz_and_metrics_of_a_web_and_a_worker_process(
    fake_github: FakeGitHub, git_repo: GitRepo, github_app_key: str, redis_server: RedisServer
) -> None:
    incident_repo(git_repo)
    fake_github.add_pull("feature")
    settings = Settings(
        app_id=fake_github.app_id,
        private_key=github_app_key,
        webhook_secret=SECRET,
        github_api_url=fake_github.url,
        write_interval=0.0,
        shutdown_grace=2.0,
        redis_url=redis_server.url,
        redis_prefix=redis_server.prefix,
        job_lease=1.0,
    )
    web = TestServer(create_app(settings, role="web"), host="127.0.0.1")
    worker = TestServer(create_app(settings, role="worker"), host="127.0.0.1")
    await web.start_server()
    try:
        web_url = str(web.make_url("")).rstrip("/")
        status, body = await get_json(web_url + "/readyz")
        assert status == 503 and body["checks"]["redis"] == "ok"
        assert any("no worker" in p for p in body["problems"])
        await worker.start_server()
        worker_url = str(worker.make_url("")).rstrip("/")
        # The worker answers no webhooks.
        refused = await fake_github.deliver(worker_url, "pull_request.opened", SECRET)
        assert refused.status in (404, 405)

        async def ready() -> bool:
            return (await get_json(web_url + "/readyz"))[0] == 200

        await until(ready, 10, "the web process to see the worker")
        answer = await fake_github.deliver(web_url, "pull_request.opened", SECRET)
        assert answer.status == 202
        await until(
            lambda: [r for r in fake_github.check_runs_named() if r.status == "completed"], 30
        )
        status, body = await get_json(worker_url + "/readyz")
        assert status == 200 and body["checks"]["github"] == "ok", body
        status, body = await get_json(web_url + "/readyz")
        assert status == 200 and body["checks"]["workers_alive"] == 1

        web_metrics = await get_text(web_url + "/metrics")
        assert metric(web_metrics, "flux_review_webhook_ack_seconds_count") == 1
        assert metric(web_metrics, "flux_review_shared_queue_depth") == 0
        assert metric(web_metrics, "flux_review_workers_alive") == 1
        assert 'flux_review_shared_reviews_total{conclusion="failure"} 1.0' in web_metrics
        # The web process made no GitHub call: the worker did the review.
        assert "flux_review_github_request_seconds_count" not in web_metrics
        worker_metrics = await get_text(worker_url + "/metrics")
        assert metric(worker_metrics, 'flux_review_github_request_seconds_count{method="GET"}') > 0
        assert 'flux_review_reviews_total{conclusion="failure"} 1.0' in worker_metrics
    finally:
        await worker.close()
        await web.close()


def test_json_logs_are_one_object_per_line_with_the_review_context() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.jsonlog")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        jlog = context_log(logger, delivery="d-1", repo="octo-org/gitops", number=7)
        jlog.info("review finished: %s", "failure", extra={"head": "a" * 40, "duration": 1.5})
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            jlog.exception("it broke")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"].endswith("review finished: failure")
    assert (first["delivery"], first["repository"], first["pr"]) == ("d-1", "octo-org/gitops", 7)
    assert (first["head"], first["duration"], first["level"]) == ("a" * 40, 1.5, "INFO")
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exception"]
