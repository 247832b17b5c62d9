"""Shutdown keeps accepted work: the real App (create_app) on loopback, the fake GitHub.

A delivery answered 202 is a promise: during the shutdown grace the queue still runs what
it holds, and a review that never started gets a completed check run the author can act
on, so a required check never sits at "Expected — waiting for status".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.analysis import AnalysisResult, ChangedFile, Config, Tree, analyze
from bot.github import RepoRef, RetryPolicy
from bot.queue import InProcessQueue, JobHandler, JobQueue
from bot.server import app as app_module
from bot.server import create_app
from bot.server.commands import Command
from bot.server.jobs import AnyJob, CommandJob, ReviewJob
from bot.server.state import SERVICE, Service
from bot.settings import Settings
from tests.fakegithub import FakeGitHub, GitRepo
from tests.fakegithub.server import CheckRun, WebhookResponse

SECRET = "shutdown-webhook-secret"
DEPLOYMENT = "apps/podinfo/deployment.yaml"

SYNC = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./apps/podinfo
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def deployment(image: str) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfo
          image: {image}
"""


def repo_with_branches(git: GitRepo, *names: str) -> None:
    """main: a Flux Kustomization applying apps/podinfo raw; each branch turns the image
    into a Helm expression (the incident: one error) and has a head commit of its own."""
    git.commit(
        "cluster",
        {"clusters/prod/apps.yaml": SYNC, DEPLOYMENT: deployment("ghcr.io/example/app:1.0")},
    )
    for n, name in enumerate(names):
        git.branch(name, "main")
        git.commit(
            f"templated image {n}",
            {DEPLOYMENT: deployment(f"{{{{ .Values.registry }}}}/app:1.{n}")},
        )
        git.checkout("main")


class Gate:
    """An analyzer whose first call blocks until released; later ones analyze normally."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._calls = 0

    def __call__(
        self,
        head: Tree,
        base: Tree | None,
        changed: Sequence[ChangedFile] | None,
        config: Config | None,
        self_urls: Sequence[str],
        cancel: threading.Event,
    ) -> AnalysisResult:
        with self._lock:
            self._calls += 1
            first = self._calls == 1
        if first:
            self.entered.set()
            self.release.wait(60)
        return analyze(head, base, changed, config, self_urls=self_urls, cancel=cancel)

    async def wait_entered(self) -> None:
        async with asyncio.timeout(30):
            while not self.entered.is_set():
                await asyncio.sleep(0.01)


class WatchedQueue(InProcessQueue[AnyJob]):
    """The App's queue, telling the test when shutdown has reached it."""

    def __init__(self, handler: JobHandler[AnyJob], settings: Settings) -> None:
        super().__init__(handler, workers=settings.workers, maxsize=settings.queue_size)
        self.closing = asyncio.Event()

    async def close(self, grace: float) -> list[AnyJob]:
        self.closing.set()
        return await super().close(grace)


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

    async def start(**overrides: Any) -> App:
        settings = Settings(
            app_id=fake_github.app_id,
            private_key=github_app_key,
            webhook_secret=SECRET,
            github_api_url=fake_github.url,
            write_interval=0.0,
            review_timeout=60.0,
            workers=1,
        )
        gate = Gate()
        app = create_app(
            replace(settings, **overrides),
            retry_policy=RetryPolicy(jitter=0.0),
            analyzer=gate,
            queue_factory=watched,
        )
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        started = App(fake_github, server, app[SERVICE], gate)
        apps.append(started)
        return started

    yield start
    for app in apps:
        app.gate.release.set()
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


def fork_suite(app: App, pr: Any) -> dict[str, Any]:
    """`check_suite.requested` for a PR from a fork: GitHub lists no pull requests."""
    payload = app.fake.webhook_payload("check_suite.requested", pr=pr)
    payload["check_suite"]["pull_requests"] = []
    return payload


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

    for pr in (first, second, fork):
        run = app.run_on(app.fake.head_sha(pr))
        # Reviewed for real, not concluded as "restarted".
        assert (run.status, run.conclusion, run.title) == ("completed", "failure", "1 error")
        assert run.annotations and run.annotations[0]["path"] == DEPLOYMENT


async def test_reviews_left_when_the_grace_ends_get_a_cancelled_check(
    start_app: Starter, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = await start_app(shutdown_grace=0.2)
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

    # The first review never ends by itself, so the grace runs out however slow the machine.
    await app.shut_down()

    interrupted = app.run_on(app.fake.head_sha(first))
    assert (interrupted.status, interrupted.conclusion) == ("completed", "failure")
    assert interrupted.summary is not None and "restarted" in interrupted.summary
    assert_not_started(app.run_on(app.fake.head_sha(second)))
    assert_not_started(app.run_on(app.fake.head_sha(fork)))
    assert [r for r in app.fake.check_runs_named("flux-review") if r.head_sha == main_head] == []
    assert len(app.fake.check_runs_named("flux-review")) == 3
    assert "2 check runs concluded `cancelled`" in caplog.text


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


async def test_shutdown_stays_bounded_when_github_hangs(
    start_app: Starter,
    git_repo: GitRepo,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hang = 8.0
    monkeypatch.setattr(app_module, "NOT_STARTED_BUDGET", 0.5)
    app = await start_app(shutdown_grace=0.2)
    repo_with_branches(git_repo, "first", "second")
    first = app.fake.add_pull("first")
    second = app.fake.add_pull("second")
    await app.deliver("pull_request.opened", pr=first)
    await app.gate.wait_entered()
    await app.deliver("pull_request.opened", pr=second)
    # From now on GitHub does not answer requests to create a check run.
    app.fake.slow("POST", r"/check-runs$", hang, times=10)

    took = await app.shut_down()

    # Well under the hang: shutdown did not wait for GitHub (grace 0.2s + budget 0.5s).
    assert took < hang - 2, took
    assert app.run_on(app.fake.head_sha(first)).conclusion == "failure"
    second_head = app.fake.head_sha(second)
    assert [r for r in app.fake.check_runs_named("flux-review") if r.head_sha == second_head] == []
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
