"""The App under faults of the parts it depends on: GitHub failing a window of requests,
and a real Redis that is killed, paused (SIGSTOP) or full (`maxmemory`, `noeviction`).

The promises: every check run the App creates is concluded, however long GitHub takes;
every inline comment is posted once, also when Redis refused to claim it for a while;
readiness says so while Redis refuses writes."""

# ruff: noqa: F811
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.fakegithub import GitRepo
from tests.redis_server import RedisProcess

# The end-to-end harness's fixtures (`start_app`, and the autouse `log_guard` that fails a
# test whose logs hold a secret); tests name them as parameters, hence F811.
from tests.test_app_e2e import (  # noqa: F401
    DEPLOYMENT,
    App,
    Starter,
    incident_repo,
    log_guard,
    only,
    start_app,
)
from tests.test_app_redis import until

COMMENTS = r"/pulls/\d+/comments$"


def completed(app: App) -> list[Any]:
    return [r for r in app.runs() if r.status == "completed"]


async def readyz(app: App) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(app.url + "/readyz") as resp:
        return resp.status, await resp.json()


def reviewed_once(app: App, number: int) -> None:
    """One completed run with the incident's result, its one comment posted once."""
    run = only(app.runs())
    assert (run.status, run.conclusion, run.title) == ("completed", "failure", "1 error")
    assert [c.path for c in app.fake.comments_on(number)] == [DEPLOYMENT]
    assert len(app.fake.reviews_on(number)) == 1


async def start_on_redis(start_app: Starter, redis: RedisProcess, **overrides: Any) -> App:
    settings: dict[str, Any] = {"retry_delay": 0.2, "job_lease": 3.0, **overrides}
    return await start_app(redis_url=redis.url, redis_prefix="faults", **settings)


# -- GitHub will not take a conclusion -------------------------------------------------------


@pytest.mark.parametrize("queue", ["in-process", "redis"])
async def test_a_check_run_github_would_not_conclude_is_concluded_once_github_takes_it(
    start_app: Starter, git_repo: GitRepo, redis_process: RedisProcess, queue: str
) -> None:
    incident_repo(git_repo)
    if queue == "redis":
        redis_process.start()
        app = await start_on_redis(start_app, redis_process)
    else:
        app = await start_app(retry_delay=0.2)
    pr = app.fake.add_pull("feature")
    # Eight PATCHes answered 502: the four tries to complete the run, then the four to mark
    # it failed. Then GitHub is back.
    app.fake.fail("PATCH", r"/check-runs/\d+$", 502, times=8)
    await app.deliver("pull_request.opened")
    await until(lambda: completed(app), 30, "the run to be concluded")
    await until(lambda: app.fake.comments_on(pr.number), 10, "the comment")
    await asyncio.sleep(0.5)  # nothing more arrives
    reviewed_once(app, pr.number)
    assert len(app.fake.requests_to("PATCH", r"/check-runs/")) >= 9


async def test_a_check_run_github_never_concludes_is_given_up_with_a_reason(
    start_app: Starter, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    incident_repo(git_repo)
    app = await start_app(retry_delay=0.05)
    app.service.runner.max_retries = 2
    app.fake.add_pull("feature")
    app.fake.fail_forever("PATCH", r"/check-runs/\d+$", 502)
    await app.deliver("pull_request.opened")
    await until(lambda: "given up after 2 retries" in caplog.text, 30, "the job given up")
    assert "GitHub did not take the conclusion of check run" in caplog.text
    async with aiohttp.ClientSession() as session, session.get(app.url + "/metrics") as resp:
        text = await resp.text()
    assert 'flux_review_reviews_total{conclusion="given_up"} 1.0' in text
    # Three runs of the job, each trying to conclude the one run it took over.
    assert len(app.runs()) == 1
    assert len(app.fake.requests_to("PATCH", r"/check-runs/")) == 3 * 8


# -- Redis will not claim a comment ----------------------------------------------------------


async def test_comments_redis_is_too_full_to_claim_are_posted_once_it_takes_writes(
    start_app: Starter, git_repo: GitRepo, redis_process: RedisProcess
) -> None:
    incident_repo(git_repo)
    redis_process.start()
    app = await start_on_redis(start_app, redis_process)
    pr = app.fake.add_pull("feature")
    client = aioredis.Redis.from_url(redis_process.url)
    # The review reads the comments already posted, then claims each new one in Redis.
    app.fake.slow("GET", COMMENTS, 1.0)
    await app.deliver("pull_request.opened")
    await until(lambda: app.fake.requests_to("GET", COMMENTS), 30, "the review's comments read")
    await client.config_set("maxmemory-policy", "noeviction")
    await client.config_set("maxmemory", 1)
    try:
        await until(lambda: app.fake.requests_to("GET", COMMENTS)[1:], 30, "a second try")
        status, body = await readyz(app)
        assert status == 503 and any("refuses writes" in p for p in body["problems"]), body
        assert app.fake.comments_on(pr.number) == []
    finally:
        await client.config_set("maxmemory", 0)
    await until(lambda: app.fake.comments_on(pr.number), 30, "the comment")
    await until(lambda: readyz(app), 10)
    assert (await readyz(app))[0] == 200
    await asyncio.sleep(0.5)
    reviewed_once(app, pr.number)
    await client.aclose()


async def test_comments_claimed_while_redis_is_paused_are_posted_once_it_answers(
    start_app: Starter, git_repo: GitRepo, redis_process: RedisProcess
) -> None:
    incident_repo(git_repo)
    redis_process.start()
    app = await start_on_redis(start_app, redis_process, job_lease=30.0)
    pr = app.fake.add_pull("feature")
    app.fake.slow("GET", COMMENTS, 1.0)
    await app.deliver("pull_request.opened")
    await until(lambda: app.fake.requests_to("GET", COMMENTS), 30, "the review's comments read")
    redis_process.pause()
    try:
        # Longer than the client's socket timeout: the claim fails.
        await asyncio.sleep(6.5)
    finally:
        redis_process.resume()
    await until(lambda: app.fake.comments_on(pr.number), 60, "the comment")
    await asyncio.sleep(0.5)
    reviewed_once(app, pr.number)


async def test_comments_claimed_while_redis_restarts_empty_are_posted_once_it_is_back(
    start_app: Starter, git_repo: GitRepo, redis_process: RedisProcess
) -> None:
    incident_repo(git_repo)
    redis_process.start()
    app = await start_on_redis(start_app, redis_process)
    pr = app.fake.add_pull("feature")
    app.fake.slow("GET", COMMENTS, 1.0)
    await app.deliver("pull_request.opened")
    await until(lambda: app.fake.requests_to("GET", COMMENTS), 30, "the review's comments read")
    redis_process.kill()
    await asyncio.sleep(4.0)  # the claim fails, and so does giving the job back
    redis_process.start()  # without persistence: empty
    await until(lambda: app.fake.comments_on(pr.number), 60, "the comment")
    await asyncio.sleep(0.5)
    reviewed_once(app, pr.number)


# -- Redis restarts: a 202 is a promise ------------------------------------------------------


def pull_requests(git: GitRepo, fake: Any, count: int) -> list[Any]:
    """`count` pull requests, each the incident on a branch of its own."""
    incident_repo(git)
    prs = []
    for n in range(count):
        git.branch(f"change-{n}", "feature")
        git.commit(f"change {n}", {f"apps/podinfo/note-{n}.txt": f"{n}\n"})
        prs.append(fake.add_pull(f"change-{n}"))
    git.checkout("main")
    return prs


def all_reviewed(app: App, prs: list[Any]) -> bool:
    heads = {app.fake.head_sha(pr) for pr in prs}
    done = {r.head_sha for r in app.runs() if r.status == "completed"}
    return heads <= done and all(app.fake.comments_on(pr.number) for pr in prs)


def each_reviewed_once(app: App, prs: list[Any]) -> None:
    assert [r for r in app.runs() if r.status != "completed"] == []
    for pr in prs:
        runs = [r for r in app.runs() if r.head_sha == app.fake.head_sha(pr)]
        assert [(r.conclusion, r.title) for r in runs] == [("failure", "1 error")], runs
        assert [c.path for c in app.fake.comments_on(pr.number)] == [DEPLOYMENT]


@pytest.mark.parametrize("appendonly", [False, True], ids=["no persistence", "appendonly"])
async def test_deliveries_accepted_before_redis_is_killed_are_all_reviewed(
    start_app: Starter,
    git_repo: GitRepo,
    fake_github: Any,
    redis_process: RedisProcess,
    caplog: pytest.LogCaptureFixture,
    appendonly: bool,
) -> None:
    prs = pull_requests(git_repo, fake_github, 5)
    redis_process.start(appendonly=appendonly)
    # One review at a time, the first held on its archive: the others wait in Redis.
    app = await start_on_redis(start_app, redis_process, workers=1)
    fake_github.slow("GET", r"/tarball/", 2.0)
    for pr in prs:
        answer = await app.deliver("pull_request.opened", pr=pr)
        assert answer.status == 202
    await until(lambda: app.fake.requests_to("GET", r"/tarball/"), 30, "the first review")
    redis_process.kill()
    redis_process.start()  # the same data directory: with appendonly, the same data
    await until(lambda: all_reviewed(app, prs), 60, "every accepted delivery's review")
    await asyncio.sleep(1.0)
    each_reviewed_once(app, prs)
    lost = "Redis lost its data" in caplog.text
    assert lost is not appendonly
    if not appendonly:
        assert "reconciliation (reconcile-" in caplog.text
        assert "Redis at REDIS_URL keeps no append-only file" in caplog.text
    _status, body = await readyz(app)
    assert body["checks"]["redis_persistence"] == ("aof" if appendonly else "none")


async def test_a_run_stranded_in_progress_with_no_job_is_concluded_by_reconciliation(
    start_app: Starter, git_repo: GitRepo, fake_github: Any
) -> None:
    from bot.github.repo import RepoRef
    from bot.server.app import reconcile_once
    from tests.fakegithub.server import CheckRun

    incident_repo(git_repo)
    app = await start_app()
    pr = fake_github.add_pull("feature")
    fake_github.check_runs[7] = CheckRun(
        id=7,
        name="flux-review",
        head_sha=fake_github.head_sha(pr),
        status="in_progress",
        started_at="2020-01-01T00:00:00Z",
        check_suite_id=1,
    )
    owner, name = fake_github.full_name.split("/")
    app.service.runner.seen.add(fake_github.installation_id, RepoRef(owner, name))
    report = await reconcile_once(app.service)
    assert [(s.number, s.runs) for s in report.queued] == [(1, ((fake_github.head_sha(pr), 7),))]
    await until(lambda: app.fake.comments_on(pr.number), 30, "the review")
    await app.idle()
    run = only(app.runs())  # the stranded run, taken over and concluded
    assert (run.id, run.status, run.conclusion, run.title) == (7, "completed", "failure", "1 error")
    # A second pass finds nothing left to do.
    assert (await reconcile_once(app.service)).queued == []


# -- slow clients ----------------------------------------------------------------------------


async def start_listening(fake_github: Any, key: str, **overrides: Any) -> tuple[Any, str]:
    """The App behind the runner `serve` uses, on a free loopback port."""
    from dataclasses import replace

    from aiohttp import web

    from bot.server import create_app
    from bot.server.listen import BoundedRunner
    from bot.settings import Settings
    from tests.test_app_e2e import SECRET

    settings = Settings(
        app_id=fake_github.app_id,
        private_key=key,
        webhook_secret=SECRET,
        github_api_url=fake_github.url,
        write_interval=0.0,
        shutdown_grace=2.0,
    )
    runner = BoundedRunner(
        create_app(replace(settings, **overrides)), replace(settings, **overrides)
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def trickle(url: str, stop: asyncio.Event) -> float:
    """A client sending its request's headers a byte at a time; how long it was let be."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = asyncio.get_running_loop().time()
    head = b"POST /api/github/webhooks HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    try:
        for byte in head:
            if stop.is_set() or reader.at_eof():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                await asyncio.wait_for(reader.read(1), 0.1)
            except TimeoutError:
                continue
            break  # the server answered or closed
    except ConnectionError:
        pass
    finally:
        writer.close()
    return asyncio.get_running_loop().time() - started


async def test_headers_sent_a_byte_at_a_time_are_cut_off_at_their_deadline(
    fake_github: Any, github_app_key: str
) -> None:
    runner, url = await start_listening(fake_github, github_app_key, header_timeout=1.0)
    try:
        held = await asyncio.wait_for(trickle(url, asyncio.Event()), 10)
        assert 0.9 <= held < 3.0
    finally:
        await runner.cleanup()


async def test_slow_clients_beyond_the_bound_make_room_for_a_delivery(
    fake_github: Any, git_repo: GitRepo, github_app_key: str
) -> None:
    from tests.test_app_e2e import SECRET

    incident_repo(git_repo)
    fake_github.add_pull("feature")
    runner, url = await start_listening(
        fake_github, github_app_key, max_connections=16, header_timeout=30.0
    )
    stop = asyncio.Event()
    try:
        slow = [asyncio.create_task(trickle(url, stop)) for _ in range(40)]
        await asyncio.sleep(1.0)
        server = runner.server
        assert server is not None and len(server.connections) <= 16
        started = asyncio.get_running_loop().time()
        answer = await fake_github.deliver(url, "pull_request.opened", SECRET)
        assert answer.status == 202
        assert asyncio.get_running_loop().time() - started < 2.0
        # The oldest slow clients were closed to make room, long before their deadline.
        assert sum(task.done() for task in slow) >= 40 - 16
        assert runner.bound is not None and runner.bound.closed >= 24
    finally:
        stop.set()
        await asyncio.gather(*slow, return_exceptions=True)
        await runner.cleanup()
