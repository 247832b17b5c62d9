"""The real App (create_app) on loopback against the fake GitHub serving a real git repo.

Deliveries are the vendored real payloads, adapted to the fake's repository and PRs. Every
request the App makes is checked against GitHub's REST description by the fake.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import aiohttp.test_utils
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from bot.analysis import AnalysisResult, ChangedFile, Config, Tree, analyze
from bot.github import RetryPolicy
from bot.report.review import MARKER_PREFIX
from bot.review import Analyzer
from bot.server import LISTEN_BACKLOG, create_app
from bot.server.state import SERVICE, Service
from bot.settings import Settings
from tests.fakegithub import FakeGitHub, GitRepo

SECRET = "e2e-webhook-secret"
RULE = "helm-template-in-raw-manifest"
DEPLOYMENT = "apps/podinfo/deployment.yaml"
IMAGE_LINE = 18  # the `image:` line in deployment()

SYNC = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1m0s
  ref:
    branch: main
  url: ssh://git@github.com/example/gitops
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m0s
  path: ./clusters/prod
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def flux_kustomization(path: str) -> str:
    return f"""\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: {path}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"""


def deployment(image: str, name: str = "podinfo") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
        - name: {name}
          image: {image}
"""


def analyzer_then(
    hook: Callable[[], object] = lambda: None,
    view: Callable[[Tree], Tree] = lambda t: t,
    on_config: Callable[[Config | None], object] = lambda c: None,
) -> Analyzer:
    """The real analysis, with `hook()` run first in the analysis thread, the head tree
    seen through `view` and the config it is given shown to `on_config`."""

    def run(
        head: Tree,
        base: Tree | None,
        changed: Sequence[ChangedFile] | None,
        config: Config | None,
        self_urls: Sequence[str],
        cancel: threading.Event,
    ) -> AnalysisResult:
        hook()
        on_config(config)
        return analyze(view(head), base, changed, config, self_urls=self_urls, cancel=cancel)

    return run


TEMPLATED = "{{ .Values.global.imageRegistry }}/app:1.0"


def incident_repo(git: GitRepo, *, second_file: bool = False, config: str | None = None) -> None:
    """main: a cluster whose `apps` Kustomization applies apps/podinfo raw; branch `feature`:
    the incident, the image turned into a Helm expression."""
    files = {
        "clusters/prod/flux-system/gotk-sync.yaml": SYNC,
        "clusters/prod/apps.yaml": flux_kustomization("./apps/podinfo"),
        DEPLOYMENT: deployment("ghcr.io/stefanprodan/podinfo:6.5.0"),
        "apps/podinfo/worker.yaml": deployment("ghcr.io/example/worker:1.0", "worker"),
    }
    if config is not None:
        files[".github/flux-review.yml"] = config
    git.commit("cluster", files)
    git.branch("feature")
    change = {DEPLOYMENT: deployment(TEMPLATED)}
    if second_file:
        change["apps/podinfo/worker.yaml"] = deployment(TEMPLATED, "worker")
    git.commit("use the global registry", change)
    git.checkout("main")


class LogGuard(logging.Handler):
    """Every log record at DEBUG, formatted with its traceback as an operator would see it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # a broken format string is a finding too
            self.lines.append(f"UNFORMATTABLE {record.msg!r} {record.args!r}: {exc}")

    def text(self) -> str:
        return "\n".join(self.lines)


def secrets_of(fake: FakeGitHub, private_key: str) -> list[str]:
    """Everything that must never reach a log line: installation tokens, the App's JWTs,
    codeload's URL tokens, the webhook secret and the private key."""
    found = [*fake.tokens, *fake.codeload_tokens, SECRET]
    for request in fake.requests:
        _scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if credential.strip():
            found.append(credential.strip())
    found += [line for line in private_key.splitlines() if line and not line.startswith("-----")]
    return found


# Loggers of the libraries under the App, turned up as far as they go.
LIBRARY_LOGGERS = ("aiohttp", "aiohttp.access", "aiohttp.client", "aiohttp.server", "gidgethub")


@pytest.fixture(autouse=True)
def log_guard(fake_github: FakeGitHub, github_app_key: str) -> Iterator[LogGuard]:
    """Every end-to-end test runs with logging at DEBUG, and fails if a secret was logged."""
    guard = LogGuard()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *LIBRARY_LOGGERS)}
    root.addHandler(guard)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield guard
    finally:
        root.removeHandler(guard)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    text = guard.text()
    leaked = [
        secret[:12] + "…" for secret in secrets_of(fake_github, github_app_key) if secret in text
    ]
    assert not leaked, f"secrets in the logs: {leaked}"


class Sleeps:
    """The App's waits, recorded, and slept a thousandth of (capped)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(min(seconds / 1000, 0.05))


@dataclass
class App:
    fake: FakeGitHub
    server: TestServer
    service: Service
    sleeps: Sleeps

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def deliver(self, name: str, **kwargs: Any) -> Any:
        return await self.fake.deliver(self.url, name, SECRET, **kwargs)

    async def send(self, event: str, payload: Any, **kwargs: Any) -> Any:
        return await self.fake.send_webhook(self.url, event, payload, SECRET, **kwargs)

    async def idle(self, timeout: float = 20.0) -> None:
        """Wait until the queue has nothing pending or running."""
        queue = self.service.queue
        async with asyncio.timeout(timeout):
            quiet = 0
            while quiet < 3:
                await asyncio.sleep(0.01)
                quiet = quiet + 1 if queue.depth() == 0 and queue.running() == 0 else 0

    def runs(self) -> list[Any]:
        return self.fake.check_runs_named("flux-review")

    def api_calls(self) -> list[Any]:
        return [r for r in self.fake.requests if not r.path.startswith("/_")]


Starter = Callable[..., Awaitable[App]]


@pytest.fixture
async def start_app(
    fake_github: FakeGitHub, github_app_key: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Starter]:
    # The listen backlog `serve()` uses (aiohttp's test server keeps 128): with less, a burst
    # of deliveries has its connections dropped by the kernel and retried seconds later.
    monkeypatch.setattr(
        aiohttp.test_utils, "SockSite", functools.partial(web.SockSite, backlog=LISTEN_BACKLOG)
    )
    servers: list[TestServer] = []

    async def start(analyzer: Analyzer | None = None, **overrides: Any) -> App:
        settings = Settings(
            app_id=fake_github.app_id,
            private_key=github_app_key,
            webhook_secret=SECRET,
            github_api_url=fake_github.url,
            write_interval=0.0,
            shutdown_grace=2.0,
            review_timeout=20.0,
        )
        settings = replace(settings, **overrides)
        sleeps = Sleeps()
        app = create_app(
            settings, sleep=sleeps, retry_policy=RetryPolicy(jitter=0.0), analyzer=analyzer
        )
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return App(fake_github, server, app[SERVICE], sleeps)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def app(start_app: Starter) -> App:
    return await start_app()


def only(items: Sequence[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]


# -- the webhook endpoint --------------------------------------------------------------------


async def test_unsigned_or_wrongly_signed_deliveries_are_refused(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    payload = app.fake.webhook_payload("pull_request.opened")
    unsigned = await app.fake.send_webhook(app.url, "pull_request", payload, None)
    wrong = await app.fake.send_webhook(app.url, "pull_request", payload, "not-the-secret")
    sha1_only = await app.fake.send_webhook(
        app.url, "pull_request", payload, SECRET, signature="sha1=" + "0" * 40
    )
    assert (unsigned.status, wrong.status, sha1_only.status) == (401, 401, 401)
    await app.idle()
    assert app.api_calls() == []
    assert app.runs() == []


async def test_ping_and_health(app: App) -> None:
    pong = await app.send("ping", app.fake.webhook_payload("ping"))
    assert pong.status == 200 and pong.json() == {"message": "pong"}
    async with ClientSession() as session, session.get(app.url + "/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"


async def test_malformed_deliveries_are_400(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    not_json = await app.send("pull_request", b"{not json")
    no_event = await app.send(
        "pull_request",
        app.fake.webhook_payload("pull_request.opened"),
        headers={"X-GitHub-Event": ""},
    )
    payload = app.fake.webhook_payload("pull_request.opened")
    del payload["pull_request"]
    missing_field = await app.send("pull_request", payload)
    assert (not_json.status, no_event.status, missing_field.status) == (400, 400, 400)
    assert app.api_calls() == []


async def test_oversized_body_is_refused(start_app: Starter) -> None:
    app = await start_app(max_webhook_bytes=4096)
    big = {"zen": "x" * 10_000}
    response = await app.send("ping", big)
    assert response.status == 413


async def test_events_the_app_does_not_handle_are_accepted_and_ignored(app: App) -> None:
    response = await app.deliver("installation.deleted")
    assert response.status == 202 and response.json()["message"] == "ignored"
    assert app.api_calls() == []


# -- the incident ----------------------------------------------------------------------------


async def test_incident_pr_gets_failing_check_annotation_and_one_inline_comment(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    started = time.monotonic()
    response = await app.deliver("pull_request.opened")
    assert response.status == 202
    assert time.monotonic() - started < 2  # answered at once, reviewed in the background
    await app.idle()

    run = only(app.runs())
    assert run.head_sha == app.fake.head_sha(pr)
    assert run.history[0][1]["status"] == "in_progress"
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert run.title == "1 error"
    assert "flux-system/apps" in run.summary  # the consumer that will break
    assert f"`{RULE}`" in run.summary
    annotation = only(run.annotations)
    assert annotation["path"] == DEPLOYMENT
    assert annotation["start_line"] == IMAGE_LINE
    assert annotation["annotation_level"] == "failure"
    assert annotation["title"] == RULE
    assert run.text and RULE in run.text  # the rule's documentation

    review = only(app.fake.reviews_on(pr.number))
    assert review.state == "COMMENTED"
    comment = only(app.fake.comments_on(pr.number))
    assert (comment.path, comment.line, comment.side) == (DEPLOYMENT, IMAGE_LINE, "RIGHT")
    assert RULE in comment.body and MARKER_PREFIX in comment.body


async def test_redelivery_new_events_and_recheck_post_nothing_twice(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    first = await app.deliver("pull_request.opened")
    await app.idle()
    assert len(app.runs()) == 1

    # GitHub's "Redeliver" keeps the delivery id.
    again = await app.send(
        "pull_request",
        app.fake.webhook_payload("pull_request.opened"),
        delivery_id=first.delivery_id,
    )
    assert again.status == 202 and again.json()["message"] == "duplicate delivery"
    # The push's other event for the same head is a duplicate too.
    suite = await app.deliver("check_suite.requested")
    assert suite.status == 202
    await app.idle()
    assert len(app.runs()) == 1

    # A maintainer asks for a recheck: a new check run, the same comment is not repeated.
    app.fake.set_permission("maintainer", "write")
    command = app.fake.add_issue_comment(
        pr.number, "Looks odd.\n/flux-review recheck\n", user="maintainer"
    )
    response = await app.deliver("issue_comment.created", comment=command)
    assert response.status == 202
    await app.idle()
    runs = app.runs()
    assert len(runs) == 2 and all(r.conclusion == "failure" for r in runs)
    assert len(app.fake.comments_on(pr.number)) == 1
    assert len(app.fake.reviews_on(pr.number)) == 1
    assert command.reactions == [("+1", app.fake.bot_login)]

    # A new push that keeps the problem: reviewed again, still no second comment.
    git_repo.checkout("feature")
    git_repo.commit("unrelated", {"README.md": "docs\n"})
    git_repo.checkout("main")
    await app.deliver("pull_request.synchronize")
    await app.idle()
    assert len(app.runs()) == 3
    assert len(app.fake.comments_on(pr.number)) == 1


async def test_recheck_by_read_only_user_gets_one_polite_reply(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.set_permission("visitor", "read")
    for _ in range(2):
        comment = app.fake.add_issue_comment(
            pr.number, "/flux-review recheck", user="visitor", author_association="OWNER"
        )  # not trusted
        await app.deliver("issue_comment.created", comment=comment)
        await app.idle()
        assert comment.reactions == []
    assert app.runs() == []
    replies = [c for c in app.fake.issue_comments if c.user == app.fake.bot_login]
    reply = only(replies)
    assert "@visitor" in reply.body and "write access" in reply.body


async def test_help_and_bots_and_quoted_commands(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.set_permission("renovate[bot]", "write")
    bot = app.fake.add_issue_comment(
        pr.number, "/flux-review recheck", user="renovate[bot]", user_type="Bot"
    )
    await app.deliver("issue_comment.created", comment=bot)
    quoted = app.fake.add_issue_comment(pr.number, "Try:\n```\n/flux-review recheck\n```")
    await app.deliver("issue_comment.created", comment=quoted)
    await app.idle()
    assert app.api_calls() == []

    helper = app.fake.add_issue_comment(pr.number, "/flux-review help")
    await app.deliver("issue_comment.created", comment=helper)
    await app.idle()
    reply = only([c for c in app.fake.issue_comments if c.user == app.fake.bot_login])
    assert "/flux-review recheck" in reply.body
    assert app.runs() == []


# -- triggers ---------------------------------------------------------------------------------


async def test_rerun_button_on_a_fork_pr_looks_the_pr_up(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature", head_repo="contributor/gitops")
    # For fork PRs GitHub sends `pull_requests: []`.
    payload = app.fake.webhook_payload("check_run.rerequested")
    payload["check_run"]["pull_requests"] = []
    assert payload["check_run"]["name"] == "flux-review"
    response = await app.send("check_run", payload)
    assert response.status == 202
    await app.idle()
    assert app.fake.requests_to("GET", r"/commits/[0-9a-f]{40}/pulls$")
    run = only(app.runs())
    assert run.head_sha == app.fake.head_sha(pr) and run.conclusion == "failure"


async def test_check_suite_requested_reviews_the_pr(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    await app.deliver("check_suite.rerequested")
    await app.idle()
    assert only(app.runs()).conclusion == "failure"


async def test_clean_pr_succeeds_without_a_review(app: App, git_repo: GitRepo) -> None:
    git_repo.commit(
        "cluster",
        {
            "clusters/prod/flux-system/gotk-sync.yaml": SYNC,
            "clusters/prod/apps.yaml": flux_kustomization("./apps/podinfo"),
            DEPLOYMENT: deployment("ghcr.io/stefanprodan/podinfo:6.5.0"),
        },
    )
    git_repo.branch("bump")
    git_repo.commit("bump", {DEPLOYMENT: deployment("ghcr.io/stefanprodan/podinfo:6.6.0")})
    pr = app.fake.add_pull("bump")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("success", "No problems found")
    assert app.fake.reviews_on(pr.number) == []


async def test_finding_outside_the_diff_is_annotated_but_not_commented(
    app: App, git_repo: GitRepo
) -> None:
    # The templated file exists already, unread; the PR points the raw Kustomization at it.
    git_repo.commit(
        "cluster",
        {
            "clusters/prod/flux-system/gotk-sync.yaml": SYNC,
            "clusters/prod/apps.yaml": flux_kustomization("./apps/podinfo"),
            DEPLOYMENT: deployment("ghcr.io/stefanprodan/podinfo:6.5.0"),
            "apps/templated/deployment.yaml": deployment(TEMPLATED),
        },
    )
    git_repo.branch("switch")
    git_repo.commit("switch", {"clusters/prod/apps.yaml": flux_kustomization("./apps/templated")})
    pr = app.fake.add_pull("switch")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.conclusion == "failure"
    assert any(a["path"] == "apps/templated/deployment.yaml" for a in run.annotations)
    assert app.fake.comments_on(pr.number) == []


async def test_drafts_follow_the_config_on_the_default_branch(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo, config="review_drafts: false\n")
    pr = app.fake.add_pull("feature", draft=True)
    await app.deliver("pull_request.opened")
    await app.idle()
    assert only(app.runs()).conclusion == "skipped"
    assert app.fake.comments_on(pr.number) == []
    contents = only(app.fake.requests_to("GET", r"/contents/"))
    assert contents.query.get("ref") == "main"

    pr.draft = False
    await app.deliver("pull_request.ready_for_review")
    await app.idle()
    assert [r.conclusion for r in app.runs()] == ["skipped", "failure"]
    assert len(app.fake.comments_on(pr.number)) == 1


async def test_invalid_config_fails_the_check_and_says_why(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo, config="rules:\n  helm-template-in-raw-manifest: of\n")
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.conclusion == "failure"
    assert ".github/flux-review.yml" in run.title
    assert "line 2" in run.summary and "/flux-review recheck" in run.summary
    assert app.fake.comments_on(pr.number) == []


# -- GitHub misbehaving -----------------------------------------------------------------------


async def test_github_502s_and_a_secondary_rate_limit_are_survived(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.fail("GET", r"/pulls/\d+/files$", 502, times=2)
    app.fake.fail("GET", r"/tarball/", 502)
    app.fake.fail_secondary_rate_limit("POST", r"/check-runs$", retry_after=None)
    app.fake.fail("PATCH", r"/check-runs/\d+$", 503)
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert run.title == "1 error"
    assert len(app.fake.comments_on(pr.number)) == 1
    assert max(app.sleeps.waits) >= 60  # the secondary limit's minute, scaled in the test


async def test_github_failing_for_good_still_completes_the_check(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    # Both ways of reading a commit: the tarball, and the Git database behind it.
    app.fake.fail_forever("GET", r"/(tarball|git/trees)/", 502)
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert run.title == "flux-review could not finish"
    assert "its tarball could not be used (GitHub answered 502)" in run.summary
    assert "Git database API failed too (GitHub answered 502)" in run.summary
    assert "/flux-review recheck" in run.summary and "Re-run" in run.summary
    assert app.fake.reviews_on(pr.number) == []


async def test_rate_limit_used_up_completes_the_check(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    app.fake.fail_forever(
        "GET",
        r"/pulls/\d+/files$",
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3000)},
    )
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert "rate limit" in run.summary


async def test_rejected_review_falls_back_to_one_comment_at_a_time(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo, second_file=True)
    pr = app.fake.add_pull("feature")
    thread_error = {
        "message": "Unprocessable Entity",
        "status": "422",
        "errors": ["Pull request review thread line must be part of the diff"],
        "documentation_url": "https://docs.github.com/rest",
    }
    # The whole review is refused, then the first single comment too.
    app.fake.fail("POST", r"/pulls/\d+/reviews$", 422, times=2, body=thread_error)
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.conclusion == "failure" and len(run.annotations) == 2
    comment = only(app.fake.comments_on(pr.number))
    assert comment.path == "apps/podinfo/worker.yaml"


async def test_ambiguous_review_failure_is_checked_before_posting_again(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.fail("POST", r"/pulls/\d+/reviews$", 502)
    await app.deliver("pull_request.opened")
    await app.idle()
    assert len(app.fake.comments_on(pr.number)) == 1
    # The App read the comments back before trying again.
    assert len(app.fake.requests_to("GET", r"/pulls/\d+/comments$")) == 2


async def test_analysis_crash_completes_the_check(start_app: Starter, git_repo: GitRepo) -> None:
    def broken(*_args: Any) -> AnalysisResult:
        raise RuntimeError("boom")

    app = await start_app(analyzer=broken)
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert "internal error" in run.summary and "RuntimeError" in run.summary


async def test_review_timeout_completes_the_check(start_app: Starter, git_repo: GitRepo) -> None:
    release = threading.Event()
    app = await start_app(analyzer=analyzer_then(lambda: release.wait(5)), review_timeout=0.3)
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    try:
        await app.deliver("pull_request.opened")
        await app.idle()
    finally:
        release.set()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "timed_out")
    assert run.title == "flux-review timed out"
    assert "timed out" in run.summary and "longer than its limit of 0.3 seconds" in run.summary
    assert "/flux-review recheck" in run.summary


async def test_shutdown_concludes_in_flight_reviews(start_app: Starter, git_repo: GitRepo) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck(*_args: Any) -> AnalysisResult:
        entered.set()
        release.wait(5)
        raise RuntimeError("released")

    app = await start_app(analyzer=stuck, shutdown_grace=0.1)
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    try:
        await app.deliver("pull_request.opened")
        async with asyncio.timeout(10):
            while not entered.is_set():
                await asyncio.sleep(0.01)
        await app.server.close()  # runs the app's cleanup, as SIGTERM does
    finally:
        release.set()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "cancelled")
    assert run.title == "flux-review restarted: not reviewed"
    assert "restarted" in run.summary and "Re-run" in run.summary


async def test_full_queue_answers_503(start_app: Starter, git_repo: GitRepo) -> None:
    app = await start_app(queue_size=1, workers=1)
    incident_repo(git_repo)
    for _ in range(3):
        app.fake.add_pull("feature")
    app.fake.slow("GET", r"/pulls/1$", 0.3)
    first = await app.deliver("pull_request.opened", pr=1)
    async with asyncio.timeout(5):
        while app.service.queue.running() == 0:
            await asyncio.sleep(0.005)
    second = await app.deliver("pull_request.opened", pr=2)
    third = await app.deliver("pull_request.opened", pr=3)
    assert (first.status, second.status, third.status) == (202, 202, 503)
    await app.idle()
    assert len(app.runs()) == 2
    # A refused delivery is not remembered: its redelivery (same id) is reviewed.
    again = await app.send(
        "pull_request",
        app.fake.webhook_payload("pull_request.opened", pr=3),
        delivery_id=third.delivery_id,
    )
    assert again.status == 202
    await app.idle()
    assert len(app.runs()) == 3


# -- observability ----------------------------------------------------------------------------


async def test_metrics_and_logs_never_leak_secrets_or_content(
    app: App, git_repo: GitRepo, caplog: pytest.LogCaptureFixture, github_app_key: str
) -> None:
    caplog.set_level(logging.DEBUG)
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    async with ClientSession() as session, session.get(app.url + "/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert re.search(
        r'flux_review_webhook_deliveries_total\{event="pull_request",outcome="queued"\} 1', text
    )
    assert re.search(r'flux_review_reviews_total\{conclusion="failure"\} 1', text)
    assert re.search(r'flux_review_github_requests_total\{method="POST",status="201"\}', text)
    assert "flux_review_review_duration_seconds_bucket" in text
    assert "flux_review_queue_depth" in text
    assert "octo-org" not in text and "podinfo" not in text and "Values" not in text

    tokens = list(app.fake.tokens)
    assert tokens
    logs = caplog.text
    for secret in [*tokens, SECRET, "BEGIN PRIVATE KEY", github_app_key.splitlines()[1]]:
        assert secret not in logs
    # Log lines name the delivery, the repository and the PR.
    assert re.search(rf"\[delivery [0-9a-f-]+ octo-org/gitops#{pr.number}\] review finished", logs)


async def test_each_delivery_gets_a_log_line_saying_what_became_of_it(
    app: App, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    for name, delivery in (("pull_request.opened", "first"), ("pull_request.synchronize", "again")):
        payload = app.fake.webhook_payload(name, pr=pr)
        assert (await app.send("pull_request", payload, delivery_id=delivery)).status == 202
    comment = app.fake.add_issue_comment(pr.number, "looks good to me")
    payload = app.fake.webhook_payload("issue_comment.created", comment=comment)
    await app.send("issue_comment", payload, delivery_id="chat")
    refused = await app.fake.send_webhook(
        app.url, "ping", {"zen": "x"}, "not-the-secret", delivery_id="forged"
    )
    assert refused.status == 401
    await app.idle()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.server.webhook"]
    key = f"octo-org/gitops#{pr.number}"
    assert any(
        line.startswith("[delivery first") and f"pull_request: ReviewJob queued ({key})" in line
        for line in lines
    ), lines
    # The same head again, while its review is pending or running: not a second review.
    assert any(
        line.startswith("[delivery again") and "ReviewJob" in line and "queued" not in line
        for line in lines
    ), lines
    assert any(line.startswith("[delivery chat") and "nothing to do" in line for line in lines)
    assert any("forged" in line for line in lines)


async def test_every_api_call_is_authenticated_the_right_way(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    for request in app.api_calls():
        auth = request.headers.get("Authorization", "")
        if request.path.endswith("/access_tokens"):
            assert auth.lower().startswith("bearer ")
        else:
            assert auth.startswith("token ghs_"), request
    assert len(app.fake.requests_to("POST", r"/access_tokens$")) == 1


async def test_many_findings_annotations_in_batches_of_fifty(
    start_app: Starter, git_repo: GitRepo
) -> None:
    from bot.analysis import Finding, Severity

    def many(*_args: Any) -> AnalysisResult:
        findings = [
            Finding(
                rule=RULE,
                severity=Severity.WARNING,
                path="apps/podinfo/worker.yaml",
                line=n,
                message=f"problem {n}: " + "x" * 2000,
                anchor=str(n),
            )
            for n in range(1, 121)
        ]
        return AnalysisResult(findings=findings, consumers={})

    app = await start_app(analyzer=many)
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    # Warnings only: below the default threshold, so the check passes.
    assert (run.conclusion, run.title) == ("success", "120 warnings")
    assert len(run.annotations) == 120
    patches = [body for method, body in run.history if method == "PATCH"]
    assert [len(b["output"].get("annotations", [])) for b in patches] == [50, 50, 20]
    assert patches[0]["status"] == "completed"  # the conclusion does not wait on annotations
    assert len(run.summary) <= 65535 and "more not listed here" in run.summary
    # worker.yaml is not in the diff: no inline comments.
    assert app.fake.reviews_on(pr.number) == []


async def test_file_without_patch_gets_annotations_only(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.omit_patch(pr, DEPLOYMENT)  # as GitHub does for very large diffs
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.conclusion == "failure" and len(run.annotations) == 1
    assert app.fake.reviews_on(pr.number) == []


async def test_a_source_named_after_the_repository_itself_is_this_repository(
    app: App, git_repo: GitRepo
) -> None:
    # Not the bootstrap `flux-system` source: a GitRepository whose URL is this repository's
    # own (the App knows it from the pull request), so its Kustomization applies our files.
    source = SYNC.replace(
        "name: flux-system\n  namespace: flux-system\nspec:\n  interval",
        "name: gitops\n  namespace: flux-system\nspec:\n  interval",
        1,
    )
    source = source.replace(
        "ssh://git@github.com/example/gitops", f"https://github.com/{app.fake.full_name}"
    )
    apps = flux_kustomization("./apps/podinfo").replace("name: flux-system", "name: gitops")
    git_repo.commit(
        "cluster",
        {
            "clusters/prod/sources.yaml": source.split("---")[0],
            "clusters/prod/apps.yaml": apps,
            DEPLOYMENT: deployment("ghcr.io/stefanprodan/podinfo:6.5.0"),
        },
    )
    git_repo.branch("feature")
    git_repo.commit("templated", {DEPLOYMENT: deployment(TEMPLATED)})
    git_repo.checkout("main")
    pr = app.fake.add_pull("feature")
    assert (await app.deliver("pull_request.opened")).status == 202
    await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert only(app.fake.comments_on(pr.number)).line == IMAGE_LINE


async def test_the_analysis_knows_the_branch_the_pull_request_goes_to(
    start_app: Starter, git_repo: GitRepo
) -> None:
    # A cluster found without an entry point that syncs another branch of the repository
    # does not get what the pull request changes (clusters.py, `_root_elsewhere`).
    seen: list[str | None] = []
    app = await start_app(
        analyzer=analyzer_then(on_config=lambda c: seen.append(c.branch if c else None))
    )
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    assert seen == ["main"]
    assert only(app.runs()).status == "completed"
