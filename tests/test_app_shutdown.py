"""Shutdown keeps accepted work: the real App (create_app) on loopback, the fake GitHub.

A delivery answered 202 is a promise: during the shutdown grace the queue still runs what
it holds, and a review that never started gets a completed check run the author can act
on, so a required check never sits at "Expected — waiting for status".
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.analysis import AnalysisResult
from bot.github import RepoRef, RetryPolicy
from bot.github.client import Sleep
from bot.queue import InProcessQueue, JobHandler, JobQueue
from bot.review import Analyzer
from bot.server import create_app
from bot.server import shutdown as shutdown_module
from bot.server.commands import Command
from bot.server.jobs import AnyJob, CommandJob, CommitJob, ReviewJob
from bot.server.shutdown import ShutdownPlan
from bot.server.state import SERVICE, Service
from bot.settings import Settings
from tests.fakegithub import FakeGitHub, GitRepo
from tests.fakegithub.server import CheckRun, WebhookResponse
from tests.test_app_e2e import DEPLOYMENT, analyzer_then, deployment, flux_kustomization

SECRET = "shutdown-webhook-secret"


def repo_with_branches(git: GitRepo, *names: str) -> None:
    """main: a Flux Kustomization applying apps/podinfo raw; each branch turns the image
    into a Helm expression (the incident: one error) and has a head commit of its own."""
    git.commit(
        "cluster",
        {
            "clusters/prod/apps.yaml": flux_kustomization("./apps/podinfo"),
            DEPLOYMENT: deployment("ghcr.io/example/app:1.0"),
        },
    )
    for n, name in enumerate(names):
        git.branch(name, "main")
        git.commit(
            f"templated image {n}",
            {DEPLOYMENT: deployment(f"{{{{ .Values.registry }}}}/app:1.{n}")},
        )
        git.checkout("main")


class Gate:
    """An analyzer whose first `holds` calls each block until released; later ones analyze
    normally."""

    def __init__(self, holds: int = 1) -> None:
        self.entered = [threading.Event() for _ in range(holds)]
        self.releases = [threading.Event() for _ in range(holds)]
        self._lock = threading.Lock()
        self._calls = 0
        # The real analysis, held at its start by the gate.
        self.analyze = analyzer_then(self._hold)

    @property
    def release(self) -> threading.Event:
        return self.releases[0]

    def release_all(self) -> None:
        for event in self.releases:
            event.set()

    def _hold(self) -> None:
        with self._lock:
            call = self._calls
            self._calls += 1
        if call < len(self.releases):
            self.entered[call].set()
            self.releases[call].wait(60)

    async def wait_entered(self, call: int = 0) -> None:
        async with asyncio.timeout(30):
            while not self.entered[call].is_set():
                await asyncio.sleep(0.01)


class WatchedQueue(InProcessQueue[AnyJob]):
    """The App's queue, telling the test when shutdown has reached it and what it ran."""

    def __init__(self, handler: JobHandler[AnyJob], settings: Settings) -> None:
        self.started: list[AnyJob] = []

        async def watched_handler(job: AnyJob) -> bool:
            self.started.append(job)
            return await handler(job)

        super().__init__(watched_handler, workers=settings.workers, maxsize=settings.queue_size)
        self.closing = asyncio.Event()
        self.drains: list[float] = []

    async def close(self, grace: float, *, cancel_wait: float | None = None) -> list[AnyJob]:
        self.drains.append(grace)
        self.closing.set()
        return await super().close(grace, cancel_wait=cancel_wait)


def watched(handler: JobHandler[AnyJob], settings: Settings) -> JobQueue[AnyJob]:
    return WatchedQueue(handler, settings)


@dataclass
class App:
    fake: FakeGitHub
    server: TestServer
    service: Service
    gate: Gate

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def queue(self) -> WatchedQueue:
        assert isinstance(self.service.queue, WatchedQueue)
        return self.service.queue

    async def deliver(self, name: str, **kwargs: Any) -> WebhookResponse:
        return await self.fake.deliver(self.url, name, SECRET, **kwargs)

    async def send(self, event: str, payload: Any) -> WebhookResponse:
        return await self.fake.send_webhook(self.url, event, payload, SECRET)

    async def shut_down(self) -> float:
        """Stop the server as SIGTERM does; returns how long it took."""
        started = time.monotonic()
        async with asyncio.timeout(120):
            await self.server.close()
        return time.monotonic() - started

    def run_on(self, sha: str) -> CheckRun:
        runs = [r for r in self.fake.check_runs_named("flux-review") if r.head_sha == sha]
        assert len(runs) == 1, runs
        return runs[0]


Starter = Callable[..., Awaitable[App]]


@pytest.fixture
async def start_app(fake_github: FakeGitHub, github_app_key: str) -> AsyncIterator[Starter]:
    apps: list[App] = []

    async def start(
        holds: int = 1,
        analyzer: Analyzer | None = None,
        sleep: Sleep | None = None,
        **overrides: Any,
    ) -> App:
        settings = Settings(
            app_id=fake_github.app_id,
            private_key=github_app_key,
            webhook_secret=SECRET,
            github_api_url=fake_github.url,
            write_interval=0.0,
            review_timeout=60.0,
            workers=1,
        )
        gate = Gate(holds)
        settings = replace(settings, **overrides)
        app = create_app(
            settings,
            sleep=sleep,
            retry_policy=RetryPolicy(jitter=0.0),
            analyzer=analyzer or gate.analyze,
            queue_factory=watched,
        )
        # What `serve()` gives aiohttp.
        server = TestServer(
            app, host="127.0.0.1", shutdown_timeout=ShutdownPlan.of(settings).webhooks
        )
        await server.start_server()
        started = App(fake_github, server, app[SERVICE], gate)
        apps.append(started)
        return started

    yield start
    for app in apps:
        app.gate.release_all()
        await app.server.close()


def assert_not_started(run: CheckRun) -> None:
    """What the author sees on a commit the service never got to."""
    assert (run.status, run.conclusion) == ("completed", "cancelled")
    assert run.title == "flux-review restarted: not reviewed"
    assert run.summary is not None
    assert "restarted before it could review this commit" in run.summary
    assert "**Re-run**" in run.summary and "`/flux-review recheck`" in run.summary
    # Created completed: never `in_progress`, so nothing waits on it.
    assert [(method, body["status"]) for method, body in run.history] == [("POST", "completed")]


def assert_all_completed(app: App) -> None:
    """The bar every shutdown keeps: no check run is left for a required check to wait on."""
    runs = app.fake.check_runs_named("flux-review")
    assert runs
    assert [(r.id, r.status) for r in runs if r.status != "completed"] == []


def fork_suite(app: App, pr: Any) -> dict[str, Any]:
    """`check_suite.requested` for a PR from a fork: GitHub lists no pull requests."""
    payload = app.fake.webhook_payload("check_suite.requested", pr=pr)
    payload["check_suite"]["pull_requests"] = []
    return payload


# Slack for the event loop and a slow shared machine on top of SHUTDOWN_GRACE; the App's
# own budget ends within the grace, and platforms kill 5 s after it with the default.
SLACK = 4.0


@pytest.fixture
def short_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scaled-down phase budgets, so that a grace of a few seconds still has a drain."""
    monkeypatch.setattr(shutdown_module, "CANCEL_WAIT", 1.0)
    monkeypatch.setattr(shutdown_module, "NOT_STARTED_BUDGET", 1.0)
    monkeypatch.setattr(shutdown_module, "MARGIN", 0.5)


def plan(**overrides: Any) -> ShutdownPlan:
    settings = Settings(app_id=1, private_key="", webhook_secret="s")
    return ShutdownPlan.of(replace(settings, **overrides))


def test_the_default_grace_fits_a_30_second_kill() -> None:
    default = plan()
    # Kubernetes' terminationGracePeriodSeconds and Heroku both kill 30 s after SIGTERM.
    assert default.grace == 25.0
    assert (default.drain, default.cancel_wait, default.not_started, default.margin) == (
        9.0,
        10.0,
        5.0,
        1.0,
    )
    # aiohttp may wait for a request in flight as long as the request may take to read.
    assert default.webhooks == 10.0


@pytest.mark.parametrize("grace", [0.0, 2.0, 5.0, 10.0, 16.0, 25.0, 30.0, 600.0])
@pytest.mark.parametrize("read_timeout", [0.1, 10.0, 300.0])
def test_every_phase_fits_in_the_grace(grace: float, read_timeout: float) -> None:
    p = plan(shutdown_grace=grace, webhook_read_timeout=read_timeout)
    assert p.grace == max(grace, 2.0)
    assert min(p.drain, p.cancel_wait, p.not_started, p.margin) >= 0
    assert p.drain + p.cancel_wait + p.not_started + p.margin == pytest.approx(p.grace)
    assert p.cancel_wait <= 10.0 and p.not_started <= 5.0 and p.margin <= 1.0
    assert p.not_started > 0.2 and p.cancel_wait > 0.2
    # aiohttp rounds its wait up to a whole second when it is over 5 s.
    assert 0 < p.webhooks <= min(read_timeout, p.grace - 1.0)
    if p.grace >= 16.0:
        assert p.drain == p.grace - 16.0
    else:
        # Too short for anything new to start: straight to cancelling and concluding.
        assert p.drain == 0.0


async def test_pending_reviews_run_during_the_grace(start_app: Starter, git_repo: GitRepo) -> None:
    app = await start_app(shutdown_grace=120.0)
    repo_with_branches(git_repo, "first", "second", "fork")
    first = app.fake.add_pull("first")
    second = app.fake.add_pull("second")
    fork = app.fake.add_pull("fork", head_repo="contributor/gitops")

    assert (await app.deliver("pull_request.opened", pr=first)).status == 202
    await app.gate.wait_entered()
    # Accepted while the only worker is busy: these wait in the queue.
    assert (await app.deliver("pull_request.opened", pr=second)).status == 202
    assert (await app.send("check_suite", fork_suite(app, fork))).status == 202

    closing = asyncio.create_task(app.shut_down())
    async with asyncio.timeout(30):
        await app.queue.closing.wait()
    app.gate.release.set()
    await closing

    assert app.queue.drains == [120.0 - 16.0]
    for pr in (first, second, fork):
        run = app.run_on(app.fake.head_sha(pr))
        # Reviewed for real, not concluded as "restarted".
        assert (run.status, run.conclusion, run.title) == ("completed", "failure", "1 error")
        assert run.annotations and run.annotations[0]["path"] == DEPLOYMENT
    assert_all_completed(app)


async def test_reviews_left_when_the_grace_ends_get_a_cancelled_check(
    start_app: Starter, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # Too short a grace to start anything: no drain at all.
    app = await start_app(shutdown_grace=8.0)
    repo_with_branches(git_repo, "first", "second", "fork")
    first = app.fake.add_pull("first")
    second = app.fake.add_pull("second")
    fork = app.fake.add_pull("fork", head_repo="contributor/gitops")
    main_head = git_repo.rev_parse("main")

    await app.deliver("pull_request.opened", pr=first)
    await app.gate.wait_entered()
    assert (await app.deliver("pull_request.opened", pr=second)).status == 202
    assert (await app.send("check_suite", fork_suite(app, fork))).status == 202
    # A push to main asks for a check suite too; no PR has that head.
    push = fork_suite(app, fork)
    push["check_suite"].update(head_sha=main_head, head_branch="main", after=main_head)
    assert (await app.send("check_suite", push)).status == 202

    closing = asyncio.create_task(app.shut_down())
    async with asyncio.timeout(30):
        await app.queue.closing.wait()
    # The only worker is free at once, and still nothing more starts.
    app.gate.release.set()
    took = await closing

    assert took < 8.0 + SLACK, took
    assert app.queue.drains == [0.0]
    assert [job.key for job in app.queue.started] == [f"octo-org/gitops#{first.number}"]
    interrupted = app.run_on(app.fake.head_sha(first))
    assert (interrupted.status, interrupted.conclusion) == ("completed", "cancelled")
    assert_not_started(app.run_on(app.fake.head_sha(second)))
    assert_not_started(app.run_on(app.fake.head_sha(fork)))
    assert [r for r in app.fake.check_runs_named("flux-review") if r.head_sha == main_head] == []
    assert len(app.fake.check_runs_named("flux-review")) == 3
    assert_all_completed(app)
    assert "2 check runs concluded `cancelled`" in caplog.text


async def test_a_review_started_during_the_drain_is_concluded_within_the_grace(
    start_app: Starter, git_repo: GitRepo, short_phases: None
) -> None:
    grace = 10.0  # drain 10 - (1 + 1 + 0.5) = 7.5 s
    app = await start_app(holds=2, shutdown_grace=grace)
    repo_with_branches(git_repo, "first", "second")
    first = app.fake.add_pull("first")
    second = app.fake.add_pull("second")
    await app.deliver("pull_request.opened", pr=first)
    await app.gate.wait_entered(0)
    await app.deliver("pull_request.opened", pr=second)

    closing = asyncio.create_task(app.shut_down())
    async with asyncio.timeout(30):
        await app.queue.closing.wait()
    app.gate.releases[0].set()
    # The second review starts during the drain and never finishes by itself.
    await app.gate.wait_entered(1)
    took = await closing

    assert app.queue.drains == [7.5]
    assert took < grace + SLACK, took
    assert app.run_on(app.fake.head_sha(first)).title == "1 error"
    stopped = app.run_on(app.fake.head_sha(second))
    assert (stopped.status, stopped.conclusion) == ("completed", "cancelled")
    assert stopped.summary is not None and "restarted" in stopped.summary
    # Reviewed for real: created in progress, then stopped and concluded.
    assert stopped.history[0][0] == "POST" and stopped.history[0][1]["status"] != "completed"
    assert_all_completed(app)


async def test_a_fork_push_gets_one_cancelled_check_run(
    start_app: Starter, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    """A push to a fork's PR sends `pull_request.synchronize` (a review of the PR) and
    `check_suite.requested` without PRs (a job for the commit): two jobs, one commit."""
    caplog.set_level(logging.INFO)
    app = await start_app(shutdown_grace=8.0)
    repo_with_branches(git_repo, "first", "fork")
    first = app.fake.add_pull("first")
    fork = app.fake.add_pull("fork", head_repo="contributor/gitops")
    await app.deliver("pull_request.opened", pr=first)
    await app.gate.wait_entered()
    assert (await app.deliver("pull_request.synchronize", pr=fork)).status == 202
    assert (await app.send("check_suite", fork_suite(app, fork))).status == 202
    assert app.queue.depth() == 2

    await app.shut_down()

    assert_not_started(app.run_on(app.fake.head_sha(fork)))
    assert len(app.fake.check_runs_named("flux-review")) == 2
    assert_all_completed(app)
    assert "1 check runs concluded `cancelled`" in caplog.text


async def test_conclude_not_started_posts_once_per_commit(
    start_app: Starter, git_repo: GitRepo
) -> None:
    app = await start_app()
    repo_with_branches(git_repo, "fork")
    fork = app.fake.add_pull("fork", head_repo="contributor/gitops")
    repo = RepoRef(app.fake.owner, app.fake.name)
    sha = app.fake.head_sha(fork)
    iid = app.fake.installation_id
    review = functools.partial(
        ReviewJob, repo=repo, installation_id=iid, number=fork.number, trigger="t"
    )
    jobs: list[AnyJob] = [
        review(delivery_id="sync", revision=sha),
        CommitJob(repo=repo, installation_id=iid, sha=sha, delivery_id="suite", trigger="t"),
        # A recheck knows no commit: it is the PR's head, the same one.
        review(delivery_id="recheck", force=True),
    ]
    assert await app.service.runner.conclude_not_started(jobs, 30.0) == 1
    run = app.run_on(sha)
    assert_not_started(run)
    assert run.external_id == "sync"


async def test_deliveries_while_shutting_down_get_503(
    start_app: Starter, git_repo: GitRepo
) -> None:
    app = await start_app(shutdown_grace=120.0)
    repo_with_branches(git_repo, "first", "second")
    first = app.fake.add_pull("first")
    second = app.fake.add_pull("second")
    await app.deliver("pull_request.opened", pr=first)
    await app.gate.wait_entered()

    closing = asyncio.create_task(app.queue.close(120.0))
    async with asyncio.timeout(30):
        await app.queue.closing.wait()
    await asyncio.sleep(0)
    late = await app.deliver("pull_request.opened", pr=second)
    assert late.status == 503
    assert "shutting down" in late.json()["message"]
    assert "redeliver" in late.json()["message"]
    assert late.headers.get("Retry-After") == "60"

    app.gate.release.set()
    async with asyncio.timeout(60):
        assert await closing == []
    assert app.run_on(app.fake.head_sha(first)).conclusion == "failure"
    second_head = app.fake.head_sha(second)
    assert [r for r in app.fake.check_runs_named("flux-review") if r.head_sha == second_head] == []
    # Refused, so not remembered: once the service is back, its redelivery is reviewed.
    assert late.delivery_id not in app.service.deliveries


class Trickle:
    """A delivery whose body arrives in two parts, the second when the test says."""

    def __init__(self, app: App, pr: Any) -> None:
        self.app = app
        self.body = json.dumps(app.fake.webhook_payload("pull_request.opened", pr=pr)).encode()
        self.rest = asyncio.Event()
        self.delivery_id = str(uuid.uuid4())

    async def _chunks(self) -> AsyncIterator[bytes]:
        yield self.body[:100]
        await self.rest.wait()
        yield self.body[100:]

    async def send(self) -> tuple[int, Any, str | None]:
        signature = hmac.new(SECRET.encode(), self.body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": self.delivery_id,
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
            session.post(
                f"{self.app.url}/api/github/webhooks", data=self._chunks(), headers=headers
            ) as resp,
        ):
            return resp.status, await resp.json(), resp.headers.get("Retry-After")

    async def started(self) -> None:
        """Until the App is receiving the body."""
        async with asyncio.timeout(30):
            while self.app.service.body_budget.used == 0:
                await asyncio.sleep(0.01)


async def test_a_delivery_being_received_at_shutdown_gets_503_and_new_ones_are_refused(
    start_app: Starter, git_repo: GitRepo
) -> None:
    app = await start_app(shutdown_grace=8.0)
    repo_with_branches(git_repo, "first", "second")
    first = app.fake.add_pull("first")
    second = app.fake.add_pull("second")
    trickle = Trickle(app, first)
    sending = asyncio.create_task(trickle.send())
    try:
        await trickle.started()
        closing = asyncio.create_task(app.shut_down())
        async with asyncio.timeout(30):
            await app.queue.closing.wait()
        # The listener is closed: GitHub would record a failed delivery, to redeliver.
        with pytest.raises(aiohttp.ClientConnectionError):
            await app.deliver("pull_request.opened", pr=second)
    finally:
        trickle.rest.set()
    status, answer, retry_after = await sending
    assert status == 503 and "shutting down" in answer["message"]
    assert retry_after == "60"
    took = await closing
    assert took < 8.0 + SLACK, took
    assert trickle.delivery_id not in app.service.deliveries
    assert app.fake.check_runs_named("flux-review") == []


async def test_a_body_still_arriving_is_answered_at_once(
    start_app: Starter, git_repo: GitRepo
) -> None:
    """aiohttp reads no more of it once the listener has closed: waiting for the rest (up
    to WEBHOOK_READ_TIMEOUT, longer than this grace) would be waiting for nothing."""
    grace = 3.0
    app = await start_app(shutdown_grace=grace, webhook_read_timeout=60.0)
    repo_with_branches(git_repo, "first")
    trickle = Trickle(app, app.fake.add_pull("first"))
    sending = asyncio.create_task(trickle.send())
    try:
        await trickle.started()
        took = await app.shut_down()
        status, answer, _retry_after = await sending
    finally:
        trickle.rest.set()
    assert status == 503 and "shutting down" in answer["message"]
    assert took < grace + SLACK, took


async def test_whole_shutdown_stays_within_the_grace_when_github_hangs(
    start_app: Starter,
    git_repo: GitRepo,
    short_phases: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hang = 8.0
    grace = 4.0  # drain 1.5 s, cancel wait 1 s, not started 1 s, margin 0.5 s
    app = await start_app(shutdown_grace=grace)
    repo_with_branches(git_repo, "first", "second", "fork")
    first = app.fake.add_pull("first")
    second = app.fake.add_pull("second")
    fork = app.fake.add_pull("fork", head_repo="contributor/gitops")
    await app.deliver("pull_request.opened", pr=first)
    await app.gate.wait_entered()
    await app.deliver("pull_request.opened", pr=second)
    await app.send("check_suite", fork_suite(app, fork))
    # From now on GitHub answers no request to create or update a check run.
    app.fake.slow("POST", r"/check-runs$", hang, times=10)
    app.fake.slow("PATCH", r"/check-runs/\d+$", hang, times=10)

    took = await app.shut_down()

    # Every phase ended on time although GitHub never answered (and the hang is longer).
    assert took < grace + SLACK, took
    assert app.queue.drains == [1.5]
    assert len(app.queue.started) == 1
    for pr in (second, fork):
        head = app.fake.head_sha(pr)
        assert [r for r in app.fake.check_runs_named("flux-review") if r.head_sha == head] == []
    assert "could not be concluded" in caplog.text
    assert "0 check runs concluded" in caplog.text


async def test_recheck_and_commands_left_at_shutdown(start_app: Starter, git_repo: GitRepo) -> None:
    """A review that knows no commit (a recheck) is concluded on the PR's current head; a
    comment command whose author was never checked changes nothing; nor does a closed PR."""
    app = await start_app()
    repo_with_branches(git_repo, "first", "closed")
    first = app.fake.add_pull("first")
    closed = app.fake.add_pull("closed", state="closed")
    repo = RepoRef(app.fake.owner, app.fake.name)
    installation = app.fake.installation_id

    def review(number: int, delivery: str) -> ReviewJob:
        return ReviewJob(
            repo=repo,
            installation_id=installation,
            number=number,
            delivery_id=delivery,
            trigger="recheck command",
            force=True,
        )

    command = CommandJob(
        repo=repo,
        installation_id=installation,
        number=first.number,
        comment_id=1,
        login="visitor",
        commands=(Command.RECHECK,),
        delivery_id="command",
    )
    concluded = await app.service.runner.conclude_not_started(
        [review(first.number, "recheck"), review(closed.number, "closed"), command], 30.0
    )
    assert concluded == 1
    run = app.run_on(app.fake.head_sha(first))
    assert_not_started(run)
    assert run.external_id == "recheck"
    assert len(app.fake.check_runs_named("flux-review")) == 1
    assert app.fake.requests_to("*", r"/reactions$") == []


async def settled(app: App) -> list[CheckRun]:
    """The flux-review check runs once GitHub has carried out what it was sent."""
    async with asyncio.timeout(20):
        while any(r.status != "completed" for r in app.fake.check_runs_named("flux-review")):
            await asyncio.sleep(0.05)
    return app.fake.check_runs_named("flux-review")


class HeldSleeps:
    """The App's waits (write spacing, retry backoffs), recorded and held until the test
    lets them end."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.waiting = asyncio.Event()
        self.over = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.waiting.set()
        await self.over.wait()


async def test_a_failure_being_reported_when_the_shutdown_comes_is_reported(
    start_app: Starter, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    # The analysis fails; the PATCH that reports it waits for the write spacing (3 s); the
    # shutdown's cancel lands there. Cut short, the PATCH would leave the run in progress.
    caplog.set_level(logging.INFO)

    def crash(*_args: Any) -> AnalysisResult:
        raise RuntimeError("engine bug")

    sleeps = HeldSleeps()
    app = await start_app(analyzer=crash, sleep=sleeps, shutdown_grace=12.0, write_interval=3.0)
    repo_with_branches(git_repo, "first")
    first = app.fake.add_pull("first")
    assert (await app.deliver("pull_request.opened", pr=first)).status == 202
    async with asyncio.timeout(20):
        await sleeps.waiting.wait()
    assert "review failed" in caplog.text
    [wait] = sleeps.waits
    assert 0 < wait <= 3.0  # the write after the run's creation, spaced
    stopping = asyncio.create_task(app.shut_down())
    async with asyncio.timeout(20):
        while "cancelling 1 running jobs" not in caplog.text:
            await asyncio.sleep(0.01)
    # The cancel has landed while the report waits: the run is still in progress.
    assert [r.status for r in app.fake.check_runs_named("flux-review")] == ["in_progress"]
    sleeps.over.set()
    await stopping
    [run] = await settled(app)
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert run.summary is not None and "RuntimeError" in run.summary


async def test_a_run_being_created_at_a_timeout_then_a_shutdown_is_concluded(
    start_app: Starter, git_repo: GitRepo
) -> None:
    # GitHub takes 5 s to create the run; the review's 2 s limit passes while it waits for
    # that answer, then the shutdown cancels it again: one run, concluded.
    app = await start_app(shutdown_grace=12.0, review_timeout=2.0)
    repo_with_branches(git_repo, "first")
    first = app.fake.add_pull("first")
    app.fake.slow("POST", r"/check-runs$", 5.0)
    assert (await app.deliver("pull_request.opened", pr=first)).status == 202
    async with asyncio.timeout(20):
        while not app.fake.requests_to("POST", r"/check-runs$"):
            await asyncio.sleep(0.01)
    await asyncio.sleep(2.5)  # the review's limit has passed: it waits for GitHub's answer
    await app.shut_down()
    [run] = await settled(app)
    # Stopped by the restart last: concluded as not reviewed.
    assert (run.status, run.conclusion) == ("completed", "cancelled")
    assert [h[0] for h in run.history] == ["POST", "PATCH"]


async def test_a_commit_already_reviewed_keeps_its_result(
    start_app: Starter, git_repo: GitRepo
) -> None:
    # A push to a fork's PR: its review ran and concluded; the twin commit job was still
    # waiting behind another review when the service stopped. The result stands.
    app = await start_app(holds=2, shutdown_grace=8.0)
    repo_with_branches(git_repo, "first", "fork")
    first = app.fake.add_pull("first")
    fork = app.fake.add_pull("fork", head_repo="contributor/gitops")

    await app.deliver("pull_request.synchronize", pr=fork)
    await app.gate.wait_entered(0)
    app.gate.releases[0].set()
    async with asyncio.timeout(30):
        while not [r for r in app.fake.check_runs_named("flux-review") if r.status == "completed"]:
            await asyncio.sleep(0.01)
    await app.deliver("pull_request.opened", pr=first)
    await app.gate.wait_entered(1)
    assert (await app.send("check_suite", fork_suite(app, fork))).status == 202

    await app.shut_down()
    reviewed = app.run_on(app.fake.head_sha(fork))
    assert (reviewed.status, reviewed.conclusion, reviewed.title) == (
        "completed",
        "failure",
        "1 error",
    )
    assert_all_completed(app)
