"""The App against hostile and broken input: from the webhook's senders, and from GitHub.

Every test runs the real App (create_app) on loopback against the fake GitHub, with logging
at DEBUG and a check at teardown that no token, JWT, key or secret was logged (the
`log_guard` fixture of test_app_e2e.py, imported below). The promises under test:
- the webhook answers every request promptly with a clear status, never a 500, and accepts
  nothing it then loses: every delivery answered 202 for a review ends in a completed
  `flux-review` check run;
- whatever GitHub sends back, the check run the App created completes, and its summary
  says what went wrong and how to re-run;
- nothing is ever written to disk, and limits hold while data streams in.
"""

# ruff: noqa: F811
from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import io
import json
import logging
import os
import re
import sys
import tarfile
import threading
import time
import tracemalloc
import urllib.parse
import uuid
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from bot.analysis import (
    AnalysisCancelled,
    AnalysisResult,
    Finding,
    Severity,
    Tree,
)
from bot.server.metrics import KNOWN_EVENTS
from tests.fakegithub import FakeGitHub, GitRepo

# The end-to-end harness's fixtures (`app`, `start_app`, and the autouse `log_guard` that
# fails a test whose logs hold a secret); tests name them as parameters, hence F811 below.
from tests.test_app_e2e import (  # noqa: F401
    DEPLOYMENT,
    IMAGE_LINE,
    RULE,
    SECRET,
    TEMPLATED,
    App,
    LogGuard,
    Starter,
    analyzer_then,
    app,
    deployment,
    flux_kustomization,
    incident_repo,
    log_guard,
    only,
    secrets_of,
    start_app,
)

WORKER = "apps/podinfo/worker.yaml"
HOOK_PATH = "/api/github/webhooks"


# -- helpers ---------------------------------------------------------------------------------


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hook_headers(
    body: bytes,
    event: str = "pull_request",
    *,
    delivery: str | None = None,
    content_type: str | None = "application/json",
) -> list[tuple[str, str]]:
    headers = [
        ("User-Agent", "GitHub-Hookshot/8f3e2a1"),
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", delivery or str(uuid.uuid4())),
        ("X-Hub-Signature-256", sign(body)),
    ]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    return headers


async def post(app: App, body: bytes, headers: Sequence[tuple[str, str]]) -> tuple[int, Any]:
    """POST exactly these headers (repeats included) and body; (status, JSON answer)."""
    async with (
        aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as session,
        session.post(app.url + HOOK_PATH, data=body, headers=CIMultiDict(headers)) as resp,
    ):
        text = await resp.text()
        return resp.status, (json.loads(text) if text.startswith("{") else text)


def payload_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def raw_request(app: App, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = app.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    return reader, writer


async def status_line(reader: asyncio.StreamReader, timeout: float = 2.0) -> str:
    async with asyncio.timeout(timeout):
        return (await reader.readline()).decode().strip()


def request_head(*, length: int | None = None, chunked: bool = False, event: str = "ping") -> bytes:
    lines = [
        f"POST {HOOK_PATH} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"X-GitHub-Event: {event}",
        f"X-GitHub-Delivery: {uuid.uuid4()}",
        "X-Hub-Signature-256: sha256=" + "0" * 64,
    ]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def runs_completed(app: App) -> bool:
    return all(run.status == "completed" for run in app.runs())


def app_errors(guard: LogGuard) -> list[str]:
    """Log lines that mean the App itself broke (a crashed job or worker, a 500)."""
    marks = ("queue worker died", "job ", "Error handling request", "Unhandled exception")
    return [
        line
        for line in guard.lines
        if line.startswith(("ERROR", "CRITICAL")) and any(m in line for m in marks)
    ]


# -- nothing on disk -------------------------------------------------------------------------

_WATCHING: list[list[str]] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _WATCHING:
        return
    if event == "open":
        path, mode, flags = [*list(args), None, None, None][:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        name = str(path)
        # Python's bytecode cache and subprocess's /dev/null are not the App writing files.
        ignored = name.endswith(".pyc") or "__pycache__" in name or name == "/dev/null"
        if writes and not ignored and not isinstance(path, int):
            _WATCHING[-1].append(f"open {name} {mode or flags}")
    elif event in ("os.mkdir", "os.symlink", "os.link", "os.rename", "shutil.unpack_archive"):
        _WATCHING[-1].append(f"{event} {args[:2]}")


sys.addaudithook(_audit)


class DiskWatch:
    """`with watch:` records every file the process opens for writing (any thread), in a
    working directory and temp dir of its own that must stay empty."""

    def __init__(self, cwd: Path, tmp: Path) -> None:
        self.cwd, self.tmp = cwd, tmp
        self.writes: list[str] = []

    def __enter__(self) -> DiskWatch:
        _WATCHING.append(self.writes)
        return self

    def __exit__(self, *exc: object) -> None:
        _WATCHING.remove(self.writes)
        assert list(self.cwd.iterdir()) == [] and list(self.tmp.iterdir()) == []
        assert self.writes == [], self.writes


@pytest.fixture
def no_disk_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DiskWatch:
    cwd = tmp_path / "cwd"
    tmp = tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    return DiskWatch(cwd, tmp)


# -- the webhook: bodies ---------------------------------------------------------------------

NESTED = b"[" * 300_000 + b"]" * 300_000
MALFORMED = {
    "empty": b"",
    "not JSON": b"{not json",
    "truncated": b'{"action": "opened", "pull_request": {"number": 1',
    "an array": b"[1, 2]",
    "a string": b'"opened"',
    "null": b"null",
    "not UTF-8": b'{"action": "\xff\xfe"}',
    "nested 300k deep": NESTED,
    "a 5000-digit number": b'{"number": ' + b"9" * 5000 + b"}",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_json_is_400_without_a_github_call(
    app: App, git_repo: GitRepo, body: bytes
) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    status, answer = await post(app, body, hook_headers(body))
    assert status == 400 and "JSON" in answer["message"]
    await app.idle()
    assert app.api_calls() == []


async def test_form_encoded_delivery_is_reviewed_like_json(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    payload = payload_bytes(app.fake.webhook_payload("pull_request.opened"))
    # GitHub's other content type: the JSON in a `payload` field, the signature over the
    # form-encoded body.
    body = urllib.parse.urlencode({"payload": payload.decode()}).encode()
    status, answer = await post(
        app, body, hook_headers(body, content_type="application/x-www-form-urlencoded")
    )
    assert (status, answer["message"]) == (202, "queued")
    await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion, run.title) == ("completed", "failure", "1 error")


@pytest.mark.parametrize(
    ("content_type", "body", "status", "says"),
    [
        ("application/x-www-form-urlencoded", b"zen=hi", 400, "payload"),
        ("application/x-www-form-urlencoded", b"payload=%7B%7D&payload=%7B%7D", 400, "payload"),
        ("application/x-www-form-urlencoded", b"payload=%ZZ%7B", 400, "JSON"),
        ("text/plain", b"{}", 415, "application/json"),
        ("multipart/form-data; boundary=x", b"--x--", 415, "application/json"),
    ],
)
async def test_other_content_types_are_refused_clearly(
    app: App, content_type: str, body: bytes, status: int, says: str
) -> None:
    answer_status, answer = await post(
        app, body, hook_headers(body, "ping", content_type=content_type)
    )
    assert answer_status == status and says in answer["message"]
    assert app.api_calls() == []


async def test_missing_and_conflicting_headers(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    body = payload_bytes(app.fake.webhook_payload("pull_request.opened"))
    good = hook_headers(body)

    def without(name: str) -> list[tuple[str, str]]:
        return [(k, v) for k, v in good if k != name]

    def plus(name: str, value: str) -> list[tuple[str, str]]:
        return [*good, (name, value)]

    cases = {
        "no event": (without("X-GitHub-Event"), 400),
        "no delivery": (without("X-GitHub-Delivery"), 400),
        "no signature": (without("X-Hub-Signature-256"), 401),
        "two events": (plus("X-GitHub-Event", "issue_comment"), 400),
        "two deliveries": (plus("X-GitHub-Delivery", str(uuid.uuid4())), 400),
        "two signatures": (plus("X-Hub-Signature-256", "sha256=" + "0" * 64), 400),
        "event not a name": ([*without("X-GitHub-Event"), ("X-GitHub-Event", "pull request")], 400),
        "delivery too long": (
            [*without("X-GitHub-Delivery"), ("X-GitHub-Delivery", "a" * 300)],
            400,
        ),
        "delivery with %s": (
            [*without("X-GitHub-Delivery"), ("X-GitHub-Delivery", "%s%s%(x)s")],
            400,
        ),
    }
    for name, (headers, expected) in cases.items():
        status, answer = await post(app, body, headers)
        assert status == expected, name
        assert isinstance(answer, dict) and answer["message"], name
    await app.idle()
    assert app.api_calls() == [] and app.runs() == []

    # The same header twice with the same value is no conflict: reviewed once.
    status, answer = await post(app, body, plus("X-GitHub-Event", "pull_request"))
    assert (status, answer["message"]) == (202, "queued")
    await app.idle()
    assert only(app.runs()).status == "completed"


async def test_unknown_events_and_actions_are_ignored_without_a_github_call(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    opened = app.fake.webhook_payload("pull_request.opened")
    comment = app.fake.webhook_payload("issue_comment.created")
    comment["comment"]["body"] = "/flux-review recheck"
    deliveries = [
        ("made_up_event", {"action": "whatever", "zen": "?"}),
        ("push", {"ref": "refs/heads/main", "repository": opened["repository"]}),
        ("installation", app.fake.webhook_payload("installation.deleted")),
        ("installation_repositories", {**opened, "action": "removed"}),
        ("check_run", app.fake.webhook_payload("check_run.requested_action")),
        ("check_run", {**app.fake.webhook_payload("check_run.rerequested"), "action": "completed"}),
        ("pull_request", {**opened, "action": "closed"}),
        ("pull_request", {**opened, "action": "labeled"}),
        ("pull_request", {**opened, "action": "a-new-action-github-adds-tomorrow"}),
        ("pull_request", {k: v for k, v in opened.items() if k != "action"}),
        ("issue_comment", {**comment, "action": "edited"}),
        ("issue_comment", {**comment, "action": "deleted"}),
    ]
    for event, payload in deliveries:
        body = payload_bytes(payload)
        status, answer = await post(app, body, hook_headers(body, event))
        assert (status, answer["message"]) == (202, "ignored"), (event, payload.get("action"))
    await app.idle()
    assert app.api_calls() == []


def _mutations(node: Any, path: tuple[Any, ...], depth: int) -> Iterator[tuple[Any, ...]]:
    """Every path below `node` to `depth` levels (lists: their first item)."""
    if depth == 0:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key)
            yield from _mutations(value, (*path, key), depth - 1)
    elif isinstance(node, list) and node:
        yield (*path, 0)
        yield from _mutations(node[0], (*path, 0), depth - 1)


def _mutated(payload: dict[str, Any], path: tuple[Any, ...], how: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(payload))
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    else:
        value = parent[last]
        parent[last] = (
            None
            if how == "null"
            else ("x" if isinstance(value, dict | list | int) or value is None else {"x": [1]})
        )
    return copy


# What the handlers read, below the two levels every field is mangled at.
READ = [
    ("pull_request", "head", "sha"),
    ("repository", "owner", "login"),
    ("installation", "id"),
    ("check_suite", "pull_requests", 0, "number"),
    ("check_suite", "pull_requests", 0, "base", "repo", "id"),
    ("check_run", "pull_requests", 0, "number"),
    ("check_run", "pull_requests", 0, "base", "repo", "id"),
    ("comment", "user", "login"),
    ("comment", "user", "type"),
]


def _paths_to_mangle(payload: dict[str, Any]) -> list[tuple[Any, ...]]:
    paths = set(_mutations(payload, (), 2))
    for path in READ:
        # The field and each object on the way to it.
        paths.update(path[:n] for n in range(1, len(path) + 1) if _has(payload, path[:n]))
    return sorted(paths, key=str)


def _has(node: Any, path: tuple[Any, ...]) -> bool:
    for part in path:
        try:
            node = node[part]
        except (LookupError, TypeError):
            return False
    return True


async def test_payloads_missing_or_mistyped_fields_never_500_nor_crash_a_worker(
    start_app: Starter, git_repo: GitRepo, log_guard: LogGuard
) -> None:
    app = await start_app(queue_size=1000)
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    app.fake.allow_openapi_errors = True  # mangled SHAs and names make odd requests
    originals = {
        "pull_request": app.fake.webhook_payload("pull_request.opened"),
        "check_suite": app.fake.webhook_payload("check_suite.requested"),
        "check_run": app.fake.webhook_payload("check_run.rerequested"),
        "issue_comment": app.fake.webhook_payload("issue_comment.created"),
    }
    originals["issue_comment"]["comment"]["body"] = "/flux-review recheck"
    app.fake.set_permission(originals["issue_comment"]["comment"]["user"]["login"], "write")
    cases = [
        (event, _mutated(payload, path, how))
        for event, payload in originals.items()
        for path in _paths_to_mangle(payload)
        for how in ("delete", "null", "retype")
    ]
    assert len(cases) > 1000

    async def send(session: aiohttp.ClientSession, event: str, payload: Any) -> int:
        body = payload_bytes(payload)
        headers = hook_headers(body, event)
        async with session.post(app.url + HOOK_PATH, data=body, headers=headers) as resp:
            return resp.status

    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        for start in range(0, len(cases), 25):
            batch = cases[start : start + 25]
            statuses += await asyncio.gather(*(send(session, e, p) for e, p in batch))
    assert set(statuses) <= {202, 400}, sorted(set(statuses))
    await app.idle(60)
    assert runs_completed(app)
    assert app_errors(log_guard) == []
    # The workers are all still there: a new PR is reviewed.
    git_repo.branch("another", "feature", checkout=False)
    pr = app.fake.add_pull("another")
    response = await app.deliver("pull_request.opened", pr=pr)
    assert response.status == 202
    await app.idle()
    assert [r.conclusion for r in app.runs() if r.external_id == response.delivery_id] == [
        "failure"
    ]


# -- the webhook: size, time and memory ------------------------------------------------------


async def test_content_length_over_the_cap_is_refused_before_the_body_is_sent(
    start_app: Starter,
) -> None:
    app = await start_app(max_webhook_bytes=8192)
    reader, writer = await raw_request(app, request_head(length=10**12))
    try:
        # Not a byte of the body was sent: the answer comes from the header alone.
        assert (await status_line(reader)).startswith("HTTP/1.1 413")
    finally:
        writer.close()
    assert app.service.body_budget.used == 0


async def test_chunked_body_growing_past_the_cap_is_refused_while_it_streams(
    start_app: Starter,
) -> None:
    app = await start_app(max_webhook_bytes=8192)
    reader, writer = await raw_request(app, request_head(chunked=True))
    answer = asyncio.ensure_future(status_line(reader, timeout=5))
    sent = 0
    try:
        while not answer.done() and sent < 10 * 8192:
            chunk = b" " * 1024
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += len(chunk)
            await asyncio.sleep(0.002)
        # The last chunk was never sent: the App answered while the body was still coming.
        assert (await answer).startswith("HTTP/1.1 413")
        assert sent <= 8192 + 3 * 64 * 1024
    finally:
        writer.close()
    assert app.service.body_budget.used == 0


async def test_a_body_that_trickles_in_times_out(start_app: Starter) -> None:
    app = await start_app(webhook_read_timeout=0.2)
    reader, writer = await raw_request(app, request_head(length=1000) + b'{"zen": ')
    try:
        assert (await status_line(reader)).startswith("HTTP/1.1 408")
    finally:
        writer.close()
    assert app.service.body_budget.used == 0


async def test_bodies_in_flight_share_a_memory_budget(start_app: Starter) -> None:
    app = await start_app(max_webhook_bytes=48 * 1024, max_webhook_inflight_bytes=64 * 1024)
    # A sender that announces 40 KiB and stalls holds 40 KiB of the budget...
    _reader_a, writer_a = await raw_request(app, request_head(length=40 * 1024) + b"{")
    async with asyncio.timeout(2):
        while app.service.body_budget.used == 0:
            await asyncio.sleep(0.005)
    # ...so a second one of the same size is turned away at once, not buffered.
    reader_b, writer_b = await raw_request(app, request_head(length=40 * 1024))
    try:
        assert (await status_line(reader_b)).startswith("HTTP/1.1 503")
    finally:
        writer_b.close()
        writer_a.close()
    async with asyncio.timeout(2):
        while app.service.body_budget.used:
            await asyncio.sleep(0.005)
    pong = await app.send("ping", app.fake.webhook_payload("ping"))
    assert pong.status == 200


async def test_burst_of_500_deliveries_every_accepted_one_completes(
    start_app: Starter, git_repo: GitRepo
) -> None:
    queue_size = 50
    app = await start_app(queue_size=queue_size, workers=4)
    incident_repo(git_repo)
    pulls = [app.fake.add_pull("feature") for _ in range(500)]
    # Pinned SHAs spare the fake a `git rev-parse` per PR each time it lists a commit's PRs.
    head, base = git_repo.rev_parse("feature"), git_repo.rev_parse("main")
    for pr in pulls:
        pr.head_sha_pin, pr.base_sha_pin = head, base
    # Every check run lists the 500 PRs of its commit; checking the fake's own answers
    # against the schema would be most of this test's time (the App's requests still are).
    app.fake.validate_responses = False
    # One real payload, renumbered: the PRs differ only in their number.
    template = app.fake.webhook_payload("pull_request.opened", pr=pulls[0])
    bodies = []
    for pr in pulls:
        template["number"] = template["pull_request"]["number"] = pr.number
        template["pull_request"]["id"] = pr.id
        bodies.append(payload_bytes(template))
    depths: list[int] = []

    async def sample() -> None:
        while True:
            depths.append(app.service.queue.depth())
            await asyncio.sleep(0.001)

    async def send(session: aiohttp.ClientSession, body: bytes) -> tuple[str, int, Any, float]:
        delivery = str(uuid.uuid4())
        started = time.monotonic()
        async with session.post(
            app.url + HOOK_PATH, data=body, headers=hook_headers(body, delivery=delivery)
        ) as resp:
            answer = await resp.json()
            retry_after = resp.headers.get("Retry-After")
            return delivery, resp.status, (answer, retry_after), time.monotonic() - started

    sampler = asyncio.create_task(sample())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        answers = await asyncio.gather(*(send(session, body) for body in bodies))
    accepted = {d for d, status, _, _ in answers if status == 202}
    refused = [(answer, retry) for _, status, (answer, retry), _ in answers if status == 503]
    assert len(accepted) + len(refused) == 500
    assert len(accepted) >= queue_size and refused
    assert all("queue is full" in a["message"] and r == "60" for a, r in refused)
    # GitHub fails a delivery after 10 s; each of these was answered well within that.
    assert max(seconds for *_, seconds in answers) < 5
    # Refused deliveries are not remembered (their redelivery is reviewed)...
    assert len(app.service.deliveries) == len(accepted)
    await app.idle(120)
    sampler.cancel()
    # ...the queue never held more than its bound...
    assert max(depths) <= queue_size
    # ...and every accepted delivery ended in a completed check run, nothing lost.
    runs = app.runs()
    assert {r.external_id for r in runs} == accepted and len(runs) == len(accepted)
    assert {(r.status, r.conclusion) for r in runs} == {("completed", "failure")}


# -- deliveries GitHub cannot be asked about -------------------------------------------------


@pytest.mark.parametrize("how", ["uninstalled", "suspended"])
async def test_no_installation_token_is_logged_once_without_retries(
    app: App, git_repo: GitRepo, log_guard: LogGuard, how: str
) -> None:
    incident_repo(git_repo)
    for _ in range(3):
        app.fake.add_pull("feature")
    if how == "uninstalled":
        app.fake.installations.clear()
    else:
        app.fake.fail_forever(
            "POST",
            r"/access_tokens$",
            403,
            body={"message": "This installation has been suspended", "status": "403"},
        )
    for number in (1, 2, 3):
        assert (await app.deliver("pull_request.opened", pr=number)).status == 202
    await app.idle()
    # One token request in all: the answer is remembered, no storm of retries.
    assert [r.path for r in app.api_calls()] == ["/app/installations/99/access_tokens"]
    assert app.sleeps.waits == [] and app.runs() == []
    assert "uninstalled from the account, or suspended" in log_guard.text()
    assert not [line for line in log_guard.lines if line.startswith("ERROR")]


async def test_repository_removed_from_the_installation(
    app: App, git_repo: GitRepo, log_guard: LogGuard
) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    # The token works, but it no longer sees the repository: GitHub says 404, not 403.
    app.fake.fail_forever("*", r"^/repos/", 404)
    assert (await app.deliver("pull_request.opened")).status == 202
    await app.idle()
    assert [(r.method, r.status) for r in app.api_calls()] == [("POST", 201), ("GET", 404)]
    assert app.sleeps.waits == []
    assert "no such pull request" in log_guard.text()


# -- the PR changing under the review --------------------------------------------------------


async def test_pr_closed_before_the_fetch_is_not_reviewed(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    payload = app.fake.webhook_payload("pull_request.opened")  # says "open"
    pr.state = "closed"
    assert (await app.send("pull_request", payload)).status == 202
    await app.idle()
    assert app.runs() == [] and app.fake.reviews == []
    assert [r.method for r in app.api_calls() if r.method != "GET"] == ["POST"]  # the token


def _force_push(git: GitRepo, branch: str) -> str:
    """A rewritten history for `branch`: from main, with the problem in worker.yaml only."""
    git.branch(branch, "main")
    sha = git.commit("rewritten", {WORKER: deployment(TEMPLATED, "worker")})
    git.checkout("main")
    return sha


async def test_force_push_during_the_review_posts_nothing_on_the_new_head(
    start_app: Starter, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    new_head = _force_push(git_repo, "rewritten")
    pushed = threading.Event()
    holder: dict[str, Any] = {}

    def push() -> None:
        if not pushed.is_set():
            holder["pr"].head_sha_pin = new_head  # the branch now points elsewhere
            pushed.set()

    app = await start_app(analyzer=analyzer_then(push))
    pr = holder["pr"] = app.fake.add_pull("feature")
    old_head = app.fake.head_sha(pr)
    await app.deliver("pull_request.opened")
    await app.idle()
    old_run = only(app.runs())
    # The stale head's check run completes with what was found on that commit...
    assert (old_run.head_sha, old_run.status, old_run.conclusion) == (
        old_head,
        "completed",
        "failure",
    )
    assert [a["path"] for a in old_run.annotations] == [DEPLOYMENT]
    # ...but its line numbers are not posted on the new head: the review names the commit
    # reviewed, which GitHub refuses once it is no longer part of the pull request.
    assert app.fake.reviews == [] and app.fake.comments_on(pr.number) == []
    assert all(r.status == 422 for r in app.fake.requests_to("POST", r"/reviews$"))

    await app.deliver("pull_request.synchronize")
    await app.idle()
    new_run = [r for r in app.runs() if r.head_sha == new_head]
    assert only(new_run).conclusion == "failure"
    comment = only(app.fake.comments_on(pr.number))
    assert (comment.path, comment.commit_id) == (WORKER, new_head)


async def test_force_push_between_the_event_and_the_fetch_reviews_the_new_head(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    new_head = _force_push(git_repo, "rewritten")
    pr = app.fake.add_pull("feature")
    stale = app.fake.webhook_payload("pull_request.opened")  # names the old head
    pr.head_sha_pin = new_head
    await app.send("pull_request", stale)
    await app.idle()
    # The App reads the PR when the job runs: the head it reviews and comments on is the
    # new one, never lines of a commit the branch no longer has.
    run = only(app.runs())
    assert (run.head_sha, run.conclusion) == (new_head, "failure")
    assert [a["path"] for a in run.annotations] == [WORKER]
    comment = only(app.fake.comments_on(pr.number))
    assert (comment.path, comment.commit_id) == (WORKER, new_head)


async def test_head_gone_before_the_fetch_completes_the_check_saying_so(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    head = app.fake.head_sha(pr)
    # Force-pushed away and collected: no archive, no tree for that commit any more.
    app.fake.fail_forever("GET", rf"/(tarball|git/trees)/{head}$", 404)
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert f"no longer has commit `{head[:12]}`" in run.summary
    assert "force-pushed or deleted" in run.summary and "/flux-review recheck" in run.summary
    assert app.fake.reviews == []


async def test_3000_file_pr_is_paged_to_the_end_and_reviewed(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    git_repo.commit(
        "bulk apps",
        {
            "clusters/prod/bulk.yaml": flux_kustomization("./zz/bulk").replace(
                "name: apps", "name: bulk"
            )
        },
    )
    git_repo.checkout("feature")
    git_repo.git("merge", "--quiet", "--no-edit", "main")
    bulk = {
        f"zz/bulk/cm{n:04}.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{n}\n"
        for n in range(3005)
    }
    # Past GitHub's 3000-file ceiling: listed by nobody, found from the trees.
    bulk["zz/bulk/cm3004.yaml"] = deployment(TEMPLATED, "late")
    git_repo.commit("3005 more", bulk)
    git_repo.checkout("main")
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle(60)
    pages = app.fake.requests_to("GET", r"/pulls/\d+/files$")
    assert sorted(int(p.query.get("page", "1")) for p in pages) == list(range(1, 31))
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "2 errors")
    assert {a["path"] for a in run.annotations} == {DEPLOYMENT, "zz/bulk/cm3004.yaml"}
    # The file GitHub listed gets its comment; the one past the ceiling has no diff to
    # comment on, only its annotation.
    comment = only(app.fake.comments_on(pr.number))
    assert (comment.path, comment.line) == (DEPLOYMENT, IMAGE_LINE)


async def test_file_without_a_patch_gets_annotations_and_the_rest_is_posted(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo, second_file=True)
    pr = app.fake.add_pull("feature")
    app.fake.omit_patch(pr, DEPLOYMENT)  # as GitHub does for diffs too large to show
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert {a["path"] for a in run.annotations} == {DEPLOYMENT, WORKER}
    review = only(app.fake.reviews_on(pr.number))
    assert review.state == "COMMENTED"
    assert only(app.fake.comments_on(pr.number)).path == WORKER


# -- what GitHub sends back: garbage ---------------------------------------------------------

TRUNCATED = b'{"url": "https://api.github.com/repos/octo-org/gitops/pulls/1", "head": {"sha'
GARBAGE_CASES = {
    # where, how often, body, what the check run then says (None: reviewed normally)
    "PR truncated once": ("GET", r"/pulls/\d+$", 1, TRUNCATED, None),
    "PR truncated always": ("GET", r"/pulls/\d+$", None, TRUNCATED, "not valid JSON"),
    "PR of the wrong shape": ("GET", r"/pulls/\d+$", None, b'{"state": "open"}', "lacks"),
    "PR not UTF-8": ("GET", r"/pulls/\d+$", None, b'{"state": "\xff"}', "not valid JSON"),
    "files truncated always": ("GET", r"/files$", None, b'[{"sha": "1', "not valid JSON"),
    "files of the wrong shape": ("GET", r"/files$", None, b'{"a": 1}', "malformed"),
    "check run answer garbled": ("POST", r"/check-runs$", 1, b"<html>oops", "has no id"),
    "tree garbage": ("GET", r"/git/trees/", None, b'{"tree": 5}', "no `tree` array"),
}


@pytest.mark.parametrize(
    ("method", "where", "times", "body", "says"), GARBAGE_CASES.values(), ids=GARBAGE_CASES.keys()
)
async def test_garbage_from_github_ends_in_a_completed_check_saying_what_went_wrong(
    app: App,
    git_repo: GitRepo,
    method: str,
    where: str,
    times: int | None,
    body: bytes,
    says: str | None,
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    status = 201 if method == "POST" else 200
    if where.startswith(r"/git/"):
        app.fake.fail_forever("GET", r"/tarball/", 404)  # so the Git database is used
    if times is None:
        app.fake.fail_forever(method, where, status, body=body)
    else:
        app.fake.fail(method, where, status, times=times, body=body)
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.status == "completed" and run.head_sha == app.fake.head_sha(pr)
    if says is None:
        assert (run.conclusion, run.title) == ("failure", "1 error")
    else:
        assert (run.conclusion, run.title) == ("failure", "flux-review could not finish")
        assert says in run.summary and "could not understand" in run.summary
        assert "/flux-review recheck" in run.summary and "Re-run" in run.summary
        assert app.fake.reviews == []


async def test_proxy_error_page_labelled_json_is_retried_as_the_5xx_it_is(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    app.fake.fail("GET", r"/pulls/\d+$", 502, times=2, body=b"<html>Bad Gateway</html>")
    await app.deliver("pull_request.opened")
    await app.idle()
    assert only(app.runs()).title == "1 error"
    assert app.sleeps.waits[:2] == [1.0, 2.0]


# -- what GitHub sends back: archives --------------------------------------------------------


def _archive(git: GitRepo, sha: str) -> bytes:
    return git.archive(sha, f"octo-org-gitops-{sha[:7]}/")


def _rebuild(
    archive: bytes, extra: Sequence[tuple[str, str, bytes | None]], *, compress: bool = True
) -> bytes:
    """GitHub's archive of a commit with hostile entries added: (name, type, data)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as target,
    ):
        target.pax_headers = source.pax_headers
        for member in source:
            target.addfile(member, source.extractfile(member) if member.isreg() else None)
        for name, kind, data in extra:
            info = tarfile.TarInfo(name)
            info.type = kind.encode()
            if kind in (tarfile.SYMTYPE.decode(), tarfile.LNKTYPE.decode()):
                info.linkname = "/etc/passwd" if "abs" in name else "../../../etc/passwd"
            if data is not None:
                info.size = len(data)
            target.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(out.getvalue()) if compress else out.getvalue()


async def test_hostile_tarball_members_are_skipped_and_nothing_touches_the_disk(
    app: App, git_repo: GitRepo, no_disk_writes: DiskWatch
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    head = app.fake.head_sha(pr)
    root = f"octo-org-gitops-{head[:7]}"
    templated = deployment(TEMPLATED, "evil").encode()
    sym, hard = tarfile.SYMTYPE.decode(), tarfile.LNKTYPE.decode()
    app.fake.set_tarball(
        head,
        _rebuild(
            _archive(git_repo, head),
            [
                (f"{root}/apps/podinfo/link.yaml", sym, None),
                (f"{root}/apps/podinfo/abs-link.yaml", sym, None),
                (f"{root}/apps/podinfo/hard.yaml", hard, None),
                (f"{root}/apps/podinfo/tty.yaml", tarfile.CHRTYPE.decode(), None),
                (f"{root}/apps/podinfo/disk.yaml", tarfile.BLKTYPE.decode(), None),
                (f"{root}/apps/podinfo/pipe.yaml", tarfile.FIFOTYPE.decode(), None),
                ("/etc/cron.d/evil.yaml", tarfile.REGTYPE.decode(), templated),
                (f"{root}/../apps/podinfo/escape.yaml", tarfile.REGTYPE.decode(), templated),
                (f"{root}/apps/../../x.yaml", tarfile.REGTYPE.decode(), templated),
                ("elsewhere/apps/podinfo/other.yaml", tarfile.REGTYPE.decode(), templated),
            ],
        ),
    )
    with no_disk_writes:
        await app.deliver("pull_request.opened")
        await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert [a["path"] for a in run.annotations] == [DEPLOYMENT]
    # Symlinks are ordinary in git and skipped silently; the rest cannot come from git.
    assert "8 entries that cannot come from a git repository" in run.summary


TARBALL_FAILURES = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"<html>not a tarball</html>" * 10,
    "empty": lambda data: b"",
    "gzip of nothing": lambda data: gzip.compress(b""),
}


@pytest.mark.parametrize("damage", TARBALL_FAILURES.values(), ids=TARBALL_FAILURES.keys())
async def test_unusable_tarball_falls_back_to_the_git_database(
    app: App, git_repo: GitRepo, no_disk_writes: DiskWatch, damage: Any
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    head = app.fake.head_sha(pr)
    app.fake.set_tarball(head, damage(_archive(git_repo, head)))
    with no_disk_writes:
        await app.deliver("pull_request.opened")
        await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert f"The tarball of `{head[:12]}` could not be used" in run.summary
    assert "Git database API" in run.summary
    assert only(app.fake.comments_on(pr.number)).path == DEPLOYMENT


async def test_tarball_connection_dropped_half_way_falls_back(
    app: App, git_repo: GitRepo, no_disk_writes: DiskWatch
) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    app.fake.tarball_transfer = "drop"
    with no_disk_writes:
        await app.deliver("pull_request.opened")
        await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert "GitHub could not be reached" in run.summary and "Git database API" in run.summary


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.6])
async def test_a_tarball_cut_short_is_never_reviewed_as_the_commit(
    app: App, git_repo: GitRepo, no_disk_writes: DiskWatch, fraction: float
) -> None:
    # A proxy ends every download early, cleanly and without a length: the archives look
    # like archives, only shorter. A partial tree must not be reviewed as the commit.
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    head = app.fake.head_sha(pr)
    app.fake.tarball_cut, app.fake.tarball_cuts = fraction, 1000
    with no_disk_writes:
        await app.deliver("pull_request.opened")
        await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert [a["path"] for a in run.annotations] == [DEPLOYMENT]
    assert f"The tarball of `{head[:12]}` could not be used (the archive" in run.summary
    assert "Git database API" in run.summary
    # Each commit's archive was downloaded twice before the Git database was asked.
    assert len(app.fake.requests_to("GET", f"/tarball/{head}")) == 2


async def test_a_tarball_cut_short_once_is_downloaded_again(
    app: App, git_repo: GitRepo, no_disk_writes: DiskWatch
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.tarball_cut, app.fake.tarball_cuts = 0.5, 1
    with no_disk_writes:
        await app.deliver("pull_request.opened")
        await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert "could not be used" not in run.summary
    assert app.fake.requests_to("GET", r"/git/") == []
    assert len(app.fake.requests_to("GET", f"/tarball/{app.fake.head_sha(pr)}")) == 2


async def test_unusable_tarball_and_git_database_down_says_both(
    app: App, git_repo: GitRepo, no_disk_writes: DiskWatch
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    head = app.fake.head_sha(pr)
    app.fake.set_tarball(head, _archive(git_repo, head)[:100])
    app.fake.fail_forever("GET", r"/git/trees/", 502)
    with no_disk_writes:
        await app.deliver("pull_request.opened")
        await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert "could not be read" in run.summary
    assert "its tarball could not be used (the archive was cut short" in run.summary
    assert "Git database API failed too (GitHub answered 502)" in run.summary
    assert "/flux-review recheck" in run.summary


def _bomb(root: str, size: int) -> bytes:
    """A tarball of one file of `size` zero bytes, gzip'd to a thousandth of that."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(f"{root}/zeros.yaml")
        info.size = size
        tar.addfile(info, io.BytesIO(b"\0" * size))
    return zlib.compress(raw.getvalue(), 9, wbits=31)


@pytest.mark.parametrize("git_database", ["up", "down"])
async def test_gzip_bomb_is_stopped_while_it_inflates(
    start_app: Starter, git_repo: GitRepo, no_disk_writes: DiskWatch, git_database: str
) -> None:
    app = await start_app(max_unpacked_bytes=4 * 1024 * 1024)
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    head = app.fake.head_sha(pr)
    bomb = _bomb(f"octo-org-gitops-{head[:7]}", 64 * 1024 * 1024)
    assert len(bomb) < 100 * 1024
    app.fake.set_tarball(head, bomb)
    if git_database == "down":
        app.fake.fail_forever("GET", r"/git/trees/", 503)
    tracemalloc.start()
    try:
        with no_disk_writes:
            await app.deliver("pull_request.opened")
            await app.idle()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Inflating it whole would take 64 MiB; it was stopped a step past the 4 MiB limit.
    assert peak < 24 * 1024 * 1024
    run = only(app.runs())
    assert run.status == "completed"
    assert "unpacks to more than 4194304 bytes (MAX_UNPACKED_BYTES)" in run.summary
    if git_database == "up":
        assert run.title == "1 error" and "Git database API instead" in run.summary
    else:
        assert run.title == "flux-review could not finish"
        assert "/flux-review recheck" in run.summary


async def test_chunked_tarball_over_the_limit_is_stopped_while_it_downloads(
    start_app: Starter, git_repo: GitRepo
) -> None:
    app = await start_app(max_tarball_bytes=4096)
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    head = app.fake.head_sha(pr)
    app.fake.set_tarball(head, os.urandom(1024 * 1024))  # no Content-Length to refuse by
    app.fake.tarball_transfer = "chunked"
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert run.title == "1 error"
    assert "over the limit of 4096 bytes (MAX_TARBALL_BYTES)" in run.summary


# -- the Git database fallback ---------------------------------------------------------------


async def test_tarball_404_for_an_existing_commit_falls_back_end_to_end(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    git_repo.commit(
        "docs", {"README.md": "# platform\n", "docs/big.bin": os.urandom(4096), "a.json": "{}"}
    )
    git_repo.checkout("feature")
    git_repo.git("merge", "--quiet", "--no-edit", "main")
    git_repo.checkout("main")
    pr = app.fake.add_pull("feature")
    app.fake.fail_forever("GET", r"/tarball/", 404)
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert only(run.annotations)["start_line"] == IMAGE_LINE
    assert "GitHub answered 404" in run.summary
    assert only(app.fake.comments_on(pr.number)).path == DEPLOYMENT
    # One recursive listing per commit, then only the blobs the analysis reads (JSON too:
    # kustomize takes JSON resources), no README, no binary; identical files across the
    # two commits fetched once.
    trees = app.fake.requests_to("GET", r"/git/trees/")
    assert len(trees) == 2 and all(t.query == {"recursive": "1"} for t in trees)
    fetched = {r.path.rsplit("/", 1)[1] for r in app.fake.requests_to("GET", r"/git/blobs/")}
    wanted = set()
    for sha in (app.fake.head_sha(pr), app.fake.base_sha(pr)):
        for line in git_repo.git("ls-tree", "-r", sha).splitlines():
            meta, path = line.split("\t")
            if path.endswith((".yaml", ".json")):
                wanted.add(meta.split()[2])
    assert fetched == wanted
    assert len(app.fake.requests_to("GET", r"/git/blobs/")) == len(wanted)


async def test_tarball_5xx_after_retries_falls_back_and_is_not_retried_for_the_base(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    app.fake.fail_forever("GET", r"/tarball/", 503)
    await app.deliver("pull_request.opened")
    await app.idle()
    assert only(app.runs()).title == "1 error"
    # Four attempts for the head; the base went straight to the Git database.
    assert len(app.fake.requests_to("GET", r"/tarball/")) == 4


async def test_truncated_tree_listing_is_walked_directory_by_directory(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.fail_forever("GET", r"/tarball/", 404)
    app.fake.tree_entry_limit = 3
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert only(app.fake.comments_on(pr.number)).line == IMAGE_LINE
    listings = app.fake.requests_to("GET", r"/git/trees/")
    assert sum(1 for r in listings if "recursive" in r.query) == 2
    # Root, apps, apps/podinfo, clusters, clusters/prod, clusters/prod/flux-system: twice.
    assert sum(1 for r in listings if "recursive" not in r.query) == 12


@pytest.mark.parametrize(
    ("limits", "says"),
    [({"git_api_max_blobs": 2}, "GIT_API_MAX_BLOBS"), ({"git_api_max_bytes": 1000}, "bytes")],
)
async def test_git_database_beyond_its_caps_says_the_repository_is_too_large(
    start_app: Starter, git_repo: GitRepo, limits: dict[str, int], says: str
) -> None:
    app = await start_app(**limits)
    incident_repo(git_repo)
    app.fake.add_pull("feature")
    app.fake.fail_forever("GET", r"/tarball/", 404)
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(app.runs())
    assert (run.status, run.conclusion) == ("completed", "failure")
    assert "too large to review" in run.summary and "Git database API" in run.summary
    assert says in run.summary and "/flux-review recheck" in run.summary
    # Known from the listing: not one blob was fetched before giving up.
    assert app.fake.requests_to("GET", r"/git/blobs/") == []


# -- secrets, metrics, the wall clock --------------------------------------------------------


async def test_the_log_guard_catches_a_leak(fake_github: FakeGitHub, github_app_key: str) -> None:
    token = fake_github.create_token()
    guard = LogGuard()
    logging.getLogger("bot.test").addHandler(guard)
    try:
        logging.getLogger("bot.test").warning("GET %s", f"https://x/?token={token}")
    finally:
        logging.getLogger("bot.test").removeHandler(guard)
    assert [s for s in secrets_of(fake_github, github_app_key) if s in guard.text()] == [token]
    fake_github.tokens.clear()  # the guard of this very test must not trip on it


async def test_metrics_carry_no_repository_content(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature", title="Secret rollout of payments-db")
    await app.deliver("pull_request.opened")
    for event in ("made_up_payments_event", "installation_repositories"):
        body = payload_bytes({"action": "payments", "zen": "payments"})
        await post(app, body, hook_headers(body, event))
    await app.idle()
    async with aiohttp.ClientSession() as session, session.get(app.url + "/metrics") as resp:
        text = await resp.text()
    head = app.fake.head_sha(pr)
    for content in (
        "octo-org", "gitops", "payments", "Secret rollout", "feature", "podinfo", "apps/",
        "imageRegistry", "Values", head[:7], "ghs_", "delivery",
    ):  # fmt: skip
        assert content not in text, content
    allowed = {
        "event": KNOWN_EVENTS | {"other"},
        "method": {"GET", "POST", "PATCH", "PUT", "DELETE"},
        "conclusion": {"success", "failure", "skipped", "config_error", "not_run", "error",
                       "timeout", "cancelled", "not_installed", "not_found"},
    }  # fmt: skip
    for label, value in re.findall(r'(\w+)="([^"]*)"', text):
        if label in allowed:
            assert value in allowed[label], (label, value)
        elif label == "status":
            assert value.isdigit() or value == "error"
        elif label == "outcome":
            assert re.fullmatch(r"[a-z_]+", value)


async def test_a_check_run_created_as_the_review_times_out_is_concluded(
    start_app: Starter, git_repo: GitRepo
) -> None:
    # GitHub answers the creation after the review's limit: the run exists all the same,
    # and must not stay in progress, nor get a second run beside it.
    app = await start_app(review_timeout=2.0)
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.slow("POST", r"/check-runs$", 4.0)
    await app.deliver("pull_request.opened")
    await app.idle()
    await asyncio.sleep(1.0)  # anything GitHub was still doing is done
    head = git_repo.rev_parse(pr.head_ref)
    runs = [r for r in app.fake.check_runs_named() if r.head_sha == head]
    assert [(r.status, r.conclusion) for r in runs] == [("completed", "timed_out")]
    # The run GitHub created late is the one concluded.
    assert [h[0] for h in runs[0].history] == ["POST", "PATCH"]


async def test_a_timed_out_review_stops_its_analysis(start_app: Starter, git_repo: GitRepo) -> None:
    # The real analysis, on a tree whose files take 0.2 s each to read: far longer than
    # the review's limit. Python cannot kill the thread; the review tells it to stop.
    stopped = threading.Event()
    reads: list[str] = []

    class SlowTree:
        def __init__(self, inner: Tree) -> None:
            self.inner = inner

        def paths(self) -> Any:
            return self.inner.paths()

        def read(self, path: str) -> bytes | None:
            reads.append(path)
            time.sleep(0.3)
            return self.inner.read(path)

        def blob_id(self, path: str) -> str | None:
            return self.inner.blob_id(path)

    analysis = analyzer_then(view=SlowTree)

    def slow(*args: Any) -> AnalysisResult:
        try:
            result: AnalysisResult = analysis(*args)
            return result
        except AnalysisCancelled:
            stopped.set()
            raise

    app = await start_app(analyzer=slow, review_timeout=4.0)
    incident_repo(git_repo)
    git_repo.checkout("feature")
    extra = {
        f"apps/podinfo/config-{i}.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
        f"  name: config-{i}\n"
        for i in range(60)
    }
    git_repo.commit("more configuration", extra)
    git_repo.checkout("main")
    app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    assert only(app.runs()).conclusion == "timed_out"
    assert reads, "the review timed out before its analysis started"
    # It stops at the next file instead.
    async with asyncio.timeout(5):
        while not stopped.is_set():
            await asyncio.sleep(0.05)
    read_when_stopped = len(reads)
    assert read_when_stopped < len(extra)
    await asyncio.sleep(0.5)
    assert len(reads) == read_when_stopped


async def test_a_timed_out_review_never_writes_afterwards(
    start_app: Starter, git_repo: GitRepo
) -> None:
    release = threading.Event()
    finished = threading.Event()

    entered = threading.Event()

    def slow(*_args: Any) -> AnalysisResult:
        entered.set()
        release.wait(30)
        finished.set()
        finding = Finding(
            rule=RULE,
            severity=Severity.ERROR,
            path=DEPLOYMENT,
            line=IMAGE_LINE,
            message="late",
            anchor="late",
        )
        return AnalysisResult(findings=[finding], consumers={})

    # The limit leaves a slow machine time to reach the analysis, which then holds.
    app = await start_app(analyzer=slow, review_timeout=3.0)
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    assert entered.is_set(), "the review timed out before its analysis started"
    run = only(app.runs())
    assert (run.status, run.conclusion, run.title) == (
        "completed",
        "timed_out",
        "flux-review timed out",
    )
    assert "timed out" in run.summary and "/flux-review recheck" in run.summary
    calls = len(app.api_calls())
    # This analysis ignores the stop signal; it finishes now, with a finding...
    release.set()
    async with asyncio.timeout(5):
        while not finished.is_set():
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    await app.idle()
    # ...and nothing is done with it: no PATCH, no review, no request at all.
    assert len(app.api_calls()) == calls
    assert [method for method, _ in run.history] == ["POST", "PATCH"]
    assert app.fake.reviews_on(pr.number) == []
