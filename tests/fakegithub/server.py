"""A fake api.github.com (plus codeload) on loopback, backed by a real git repository.

Design notes:

* One catch-all aiohttp handler does GitHub's request pipeline in GitHub's order: record,
  OpenAPI-check, injected failures, routing, authentication, rate limiting, then the
  endpoint. Endpoints return ``Reply`` objects so the fake can also check its *own* JSON
  against the response schemas (``response_errors``): a fake that drifts from GitHub's shapes
  would let the App pass tests it would fail in production.
* State is plain Python objects (``pulls``, ``check_runs``, ``reviews``, ``review_comments``,
  ``issue_comments``, ``tokens``…) that tests may read and change directly.
* The git repository is the single source of truth for commits, diffs, contents and
  tarballs: a PR has branch names, and its SHAs follow the branches, as on GitHub.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import string
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp
import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict, CIMultiDictProxy

from .diff import DiffLine, FileDiff, compute_files
from .gitrepo import GitError, GitRepo
from .openapi import OpenAPIValidator, default_validator, lenient_validator
from .payloads import deep_merge, event_of, load_payload

DOCS = "https://docs.github.com/rest"
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID {rid}."
)
JSON_TYPE = "application/json; charset=utf-8"
MAX_ANNOTATIONS_PER_REQUEST = 50
MAX_OUTPUT_CHARS = 65535
MAX_PR_FILES = 3000
MAX_COMPARE_COMMITS = 250
MAX_COMPARE_FILES = 300
MAX_CONTENTS_JSON_BYTES = 1024 * 1024
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
PERMISSION_ROLES = {"admin": "admin", "maintain": "maintain", "write": "write"}
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    # GitHub always answers in UTC with a "Z" suffix and whole seconds.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_id(text: str) -> int:
    return zlib.crc32(text.encode()) % 90_000_000 + 10_000_000


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode().rstrip("=")


def _to_sentence(items: list[str]) -> str:
    # GitHub (Rails) joins several validation messages into ONE string: "a, b, and c".
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


class ApiError(Exception):
    """Raised by endpoints; rendered as GitHub's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        docs: str = DOCS,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})
        self.docs = docs

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            out["errors"] = self.errors
        out["documentation_url"] = self.docs
        out["status"] = str(self.status)
        return out


def _unprocessable(*messages: str) -> ApiError:
    return ApiError(422, "Unprocessable Entity", errors=[_to_sentence(list(messages))])


def _validation_failed(resource: str, field_name: str, message: str) -> ApiError:
    return ApiError(
        422,
        "Validation Failed",
        errors=[{"resource": resource, "code": "custom", "field": field_name, "message": message}],
    )


@dataclass
class Reply:
    status: int = 200
    data: Any = None  # JSON-serialisable, or bytes for a raw body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE
    transfer: str = "whole"  # for bytes: "whole", "chunked" or "drop" (see tarball_transfer)


# -- recorded state -------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str  # canonical path (``/repositories/<id>/`` links are mapped to /repos/o/r/)
    raw_path: str  # exactly what was requested, including the query string
    query: dict[str, str]  # last value wins, like GitHub
    headers: CIMultiDict[str]
    body: Any  # parsed JSON, None when the body was empty
    raw_body: bytes
    operation_id: str | None = None
    openapi_errors: list[str] = field(default_factory=list)
    status: int | None = None  # the status the fake answered with

    def __repr__(self) -> str:
        return f"<{self.method} {self.raw_path} -> {self.status}>"


@dataclass
class InstallationToken:
    token: str
    installation_id: int
    expires_at: datetime
    permissions: dict[str, str]

    @property
    def live(self) -> bool:
        return utcnow() < self.expires_at


@dataclass
class RateLimit:
    limit: int = 5000
    remaining: int = 5000
    reset: int = field(default_factory=lambda: int(time.time()) + 3600)
    resource: str = "core"

    @property
    def used(self) -> int:
        return self.limit - self.remaining


@dataclass
class PullRequest:
    number: int
    head_ref: str
    base_ref: str
    title: str = "Update manifests"
    body: str | None = None
    user: str = "octocat"
    user_type: str = "User"
    state: str = "open"  # open | closed
    draft: bool = False
    merged: bool = False
    head_repo: str | None = None  # "someone/gitops" for a PR from a fork
    labels: list[str] = field(default_factory=list)
    omit_patch: set[str] = field(default_factory=set)  # files whose `patch` GitHub drops
    head_sha_pin: str | None = None  # fixed head SHA instead of following head_ref
    base_sha_pin: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    id: int = 0


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str = "queued"
    conclusion: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    details_url: str | None = None
    external_id: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    # Every accepted create/update body, in order: (method, body).
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    check_suite_id: int = 0


@dataclass
class Review:
    id: int
    pull_number: int
    user: str
    user_type: str
    body: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | PENDING
    commit_id: str
    submitted_at: str | None
    comment_ids: list[int] = field(default_factory=list)


@dataclass
class ReviewComment:
    id: int
    pull_number: int
    review_id: int | None
    path: str
    body: str
    commit_id: str
    line: int | None
    side: str
    start_line: int | None
    start_side: str | None
    position: int | None
    diff_hunk: str
    user: str
    user_type: str
    created_at: str
    in_reply_to_id: int | None = None


@dataclass
class IssueComment:
    id: int
    issue_number: int
    body: str
    user: str
    user_type: str = "User"
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    updated_at: str = field(default_factory=lambda: iso(utcnow()))
    author_association: str = "MEMBER"
    via_app: bool = False
    reactions: list[tuple[str, str]] = field(default_factory=list)  # (content, login)


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int | None  # None: only delay, then answer normally
    remaining: int | None  # None = forever
    headers: dict[str, str]
    body: Any
    delay: float = 0.0


@dataclass
class WebhookResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    delivery_id: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Ctx:
    request: web.Request
    record: RecordedRequest
    params: dict[str, str]
    token: InstallationToken | None = None


Handler = Callable[[_Ctx], Awaitable[Reply]]


# -- the fake ---------------------------------------------------------------------------------


class FakeGitHub:
    """GitHub's REST API for one App, one installation and one repository.

    Create, ``await start()``, point the App's ``GITHUB_API_URL`` at ``url``, and
    ``await close()`` at the end (or use ``async with``).
    """

    def __init__(
        self,
        repo: GitRepo,
        *,
        app_public_key: str | bytes,
        owner: str = "octo-org",
        name: str = "gitops",
        app_id: int = 4242,
        app_slug: str = "flux-review",
        installation_id: int = 99,
        default_branch: str = "main",
        validator: OpenAPIValidator | None = None,
        token_ttl: timedelta = timedelta(hours=1),
    ) -> None:
        self.git = repo
        self.app_public_key = app_public_key
        self.owner = owner
        self.name = name
        self.app_id = app_id
        self.app_slug = app_slug
        self.installation_id = installation_id
        self.default_branch = default_branch
        self.validator = validator or default_validator()
        self.token_ttl = token_ttl
        self.repo_id = _stable_id(self.full_name)
        self.owner_type = "Organization"
        self.private = True

        # Recorded traffic and the verdicts on it.
        self.requests: list[RecordedRequest] = []
        self.openapi_errors: list[str] = []
        self.response_errors: list[str] = []
        self.internal_errors: list[str] = []
        self.allow_openapi_errors = False
        self.validate_responses = True
        # Link headers point at /repositories/<id>/… as GitHub's do for most list endpoints,
        # so a client must follow the URL it is given rather than rebuild one.
        self.link_style = "repositories"  # or "repos"
        self.token_format = "classic"  # or "stateless": ghs_<appid>_<jwt-ish>, much longer
        self.api_versions = {"2022-11-28", "2026-03-10"}
        self.require_user_agent = True

        # Repository state.
        self.pulls: dict[int, PullRequest] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.reviews: list[Review] = []
        self.review_comments: list[ReviewComment] = []
        self.issue_comments: list[IssueComment] = []
        # `confirm_manifest` codes not exchanged yet, and the manifests exchanged.
        self.manifest_codes: dict[str, tuple[dict[str, Any], str]] = {}
        self.manifest_conversions: list[dict[str, Any]] = []
        self.permissions: dict[str, str] = {}
        self.default_permission = "read"
        self.tarball_overrides: dict[str, bytes] = {}
        # How codeload sends an archive: "whole" (Content-Length), "chunked" (no length, as a
        # streamed archive is), or "drop" (chunked, the connection closed half way).
        self.tarball_transfer = "whole"
        # The next `tarball_cuts` archives end cleanly after this fraction of their bytes,
        # sent without a length: what a proxy that cuts a download short delivers.
        self.tarball_cut = 0.5
        self.tarball_cuts = 0
        # A recursive git tree with more entries than this comes back `truncated: true`
        # (GitHub's limit is 100,000 entries or 7 MB).
        self.tree_entry_limit = 100_000
        self.tokens: dict[str, InstallationToken] = {}
        self.installations: set[int] = {installation_id}
        self.rate_limit = RateLimit()

        self._failures: list[_Failure] = []
        self._ids = 1000
        self._codeload_tokens: dict[str, float] = {}
        self._diff_cache: dict[tuple[str, str], list[FileDiff]] = {}
        # Every comparison answered, so tests can see how large the App let them get.
        self.compare_answers: list[dict[str, Any]] = []
        self._archive_cache: dict[str, bytes] = {}
        self._server: TestServer | None = None
        self._handling: set[asyncio.Future[web.StreamResponse]] = set()
        self._routes: list[tuple[str, re.Pattern[str], Handler, str]] = []
        self._add_routes()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> FakeGitHub:
        # client_max_size: GitHub accepts bodies far above aiohttp's 1 MiB default (50
        # annotations with 64 KB messages each are legal).
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # No access log: these are GitHub's logs, not the App's, and tests that watch the
        # App's logs for secrets (codeload URLs carry a token) must see only the App's.
        self._server = TestServer(app, host="127.0.0.1", port=None)
        await self._server.start_server(access_log=None)
        return self

    async def close(self) -> None:
        for handling in list(self._handling):
            handling.cancel()
        if self._handling:
            _done, left = await asyncio.wait(self._handling, timeout=10)
            if left:
                raise RuntimeError(f"{len(left)} requests to the fake GitHub never ended")
        if self._server is not None:
            await self._server.close()
            self._server = None

    async def __aenter__(self) -> FakeGitHub:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """Base URL of the fake API (what ``GITHUB_API_URL`` must be), no trailing slash."""
        if self._server is None:
            raise RuntimeError("FakeGitHub is not started")
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def api_repo_url(self) -> str:
        return f"{self.url}/repos/{self.full_name}"

    @property
    def html_repo_url(self) -> str:
        return f"https://github.com/{self.full_name}"

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]"

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # -- test set-up API ------------------------------------------------------------------------

    def add_pull(
        self,
        head: str,
        base: str | None = None,
        *,
        number: int | None = None,
        title: str = "Update manifests",
        body: str | None = None,
        user: str = "octocat",
        user_type: str = "User",
        draft: bool = False,
        state: str = "open",
        head_repo: str | None = None,
        labels: Iterable[str] = (),
    ) -> PullRequest:
        """Open a PR from branch ``head`` into ``base`` (default: the default branch)."""
        base = base or self.default_branch
        for ref in (head, base):
            if self.git.resolve(ref) is None:
                raise ValueError(f"unknown ref {ref!r}")
        if number is None:
            number = max([0, *self.pulls]) + 1
        pr = PullRequest(
            number=number,
            head_ref=head,
            base_ref=base,
            title=title,
            body=body,
            user=user,
            user_type=user_type,
            draft=draft,
            state=state,
            head_repo=head_repo,
            labels=list(labels),
            id=_stable_id(f"{self.full_name}#{number}"),
        )
        self.pulls[number] = pr
        return pr

    def pull(self, number: int) -> PullRequest:
        try:
            return self.pulls[number]
        except KeyError:
            raise KeyError(f"no pull request #{number}") from None

    def head_sha(self, pr: PullRequest | int) -> str:
        pr = self.pull(pr) if isinstance(pr, int) else pr
        return pr.head_sha_pin or self.git.rev_parse(pr.head_ref)

    def _open_pulls_at(self, sha: str) -> list[PullRequest]:
        """Open PRs whose head is ``sha``, by number; each branch is resolved once, so that
        tests with hundreds of PRs on one branch do not run git hundreds of times."""
        heads: dict[str, str] = {}
        found = []
        for pr in sorted(self.pulls.values(), key=lambda p: p.number):
            if pr.state != "open":
                continue
            head = pr.head_sha_pin or heads.get(pr.head_ref)
            if head is None:
                head = heads[pr.head_ref] = self.git.rev_parse(pr.head_ref)
            if head == sha:
                found.append(pr)
        return found

    def base_sha(self, pr: PullRequest | int) -> str:
        pr = self.pull(pr) if isinstance(pr, int) else pr
        return pr.base_sha_pin or self.git.rev_parse(pr.base_ref)

    def resolve_ref(self, ref: str) -> str | None:
        """A ref as GitHub resolves it: branch, tag, SHA, or a PR's ``refs/pull/<n>/head``."""
        found = re.fullmatch(r"(?:refs/)?pull/(\d+)/head", ref)
        if found:
            pr = self.pulls.get(int(found.group(1)))
            return self.head_sha(pr) if pr is not None else None
        return self.git.resolve(ref)

    def omit_patch(self, pr: PullRequest | int, *filenames: str) -> None:
        """Make ``patch`` missing for these files, as GitHub does for diffs too large to show."""
        (self.pull(pr) if isinstance(pr, int) else pr).omit_patch.update(filenames)

    def set_permission(self, username: str, permission: str) -> None:
        """``admin | maintain | write | triage | read | none`` for a user (default ``read``)."""
        self.permissions[username] = permission

    @property
    def codeload_tokens(self) -> list[str]:
        """The short-lived tokens put in tarball redirects (secrets, like installation tokens)."""
        return list(self._codeload_tokens)

    def set_tarball(self, ref: str, data: bytes) -> None:
        """Serve ``data`` instead of ``git archive`` output for ``ref`` (branch, tag or SHA)."""
        self.tarball_overrides[self.resolve_ref(ref) or ref] = data

    def add_issue_comment(
        self,
        issue_number: int,
        body: str,
        *,
        user: str = "octocat",
        user_type: str = "User",
        author_association: str = "MEMBER",
    ) -> IssueComment:
        comment = IssueComment(
            id=self._next_id(),
            issue_number=issue_number,
            body=body,
            user=user,
            user_type=user_type,
            author_association=author_association,
        )
        self.issue_comments.append(comment)
        return comment

    def add_review_comment(
        self,
        pull_number: int,
        path: str,
        line: int,
        body: str,
        *,
        side: str = "RIGHT",
        user: str | None = None,
        user_type: str = "Bot",
        commit_id: str | None = None,
    ) -> ReviewComment:
        """A pre-existing review comment (e.g. left by an earlier run); not diff-checked."""
        commit_id = commit_id or self.head_sha(pull_number)
        diff = next((f for f in self.pr_files(pull_number, commit_id) if f.filename == path), None)
        anchor = diff.find(side, line) if diff else None
        comment = ReviewComment(
            id=self._next_id(),
            pull_number=pull_number,
            review_id=None,
            path=path,
            body=body,
            commit_id=commit_id,
            line=line,
            side=side,
            start_line=None,
            start_side=None,
            position=anchor.position if anchor else None,
            diff_hunk=diff.hunk_text(anchor) if diff and anchor else "",
            user=user or self.bot_login,
            user_type=user_type,
            created_at=iso(utcnow()),
        )
        self.review_comments.append(comment)
        return comment

    def create_token(self, installation_id: int | None = None) -> str:
        """Mint an installation token directly (for tests that call the API themselves)."""
        return self._mint_token(installation_id or self.installation_id, None).token

    def _mint_token(
        self, installation_id: int, permissions: dict[str, str] | None
    ) -> InstallationToken:
        if self.token_format == "stateless":
            token = f"ghs_{self.app_id}_" + secrets.token_urlsafe(180).replace("-", "A")
        else:
            alphabet = string.ascii_letters + string.digits
            token = "ghs_" + "".join(secrets.choice(alphabet) for _ in range(36))
        minted = InstallationToken(
            token,
            installation_id,
            utcnow() + self.token_ttl,
            permissions or dict(self.app_json()["permissions"]),
        )
        self.tokens[token] = minted
        return minted

    def expire_tokens(self) -> None:
        """Make every issued installation token expired (the next use answers 401)."""
        past = utcnow() - timedelta(seconds=1)
        for token in self.tokens.values():
            token.expires_at = past

    def set_rate_limit(
        self, remaining: int, *, limit: int | None = None, reset_in: int | None = None
    ) -> None:
        if limit is not None:
            self.rate_limit.limit = limit
        self.rate_limit.remaining = remaining
        if reset_in is not None:
            self.rate_limit.reset = int(time.time()) + reset_in

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests matching with ``status`` instead.

        ``method`` is an HTTP method or ``"*"``; ``path_regex`` is searched in the path
        (without query). ``body`` defaults to GitHub's JSON for the status.
        """
        self._failures.append(
            _Failure(
                method.upper(),
                re.compile(path_regex),
                status,
                times,
                dict(headers or {}),
                body,
                delay,
            )
        )

    def fail_forever(
        self,
        method: str,
        path_regex: str,
        status: int,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        delay: float = 0.0,
    ) -> None:
        self._failures.append(
            _Failure(
                method.upper(),
                re.compile(path_regex),
                status,
                None,
                dict(headers or {}),
                body,
                delay,
            )
        )

    def fail_secondary_rate_limit(
        self,
        method: str,
        path_regex: str,
        *,
        times: int = 1,
        retry_after: int | None = 1,
        status: int = 403,
    ) -> None:
        """GitHub's secondary ("abuse") limit: 403 (or 429), ``retry-after`` when it says so."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        body = {
            "message": SECONDARY_RATE_LIMIT_MESSAGE.format(rid="0000:FAKE:0000"),
            "documentation_url": "https://docs.github.com/free-pro-team@latest/rest/"
            "overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            "status": str(status),
        }
        self.fail(method, path_regex, status, times, headers, body)

    def slow(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Delay matching requests by ``seconds``, then answer them normally."""
        self._failures.append(
            _Failure(method.upper(), re.compile(path_regex), None, times, {}, None, seconds)
        )

    def clear_failures(self) -> None:
        self._failures.clear()

    # -- inspection helpers -------------------------------------------------------------------

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [
            r
            for r in self.requests
            if (method == "*" or r.method == method.upper()) and pattern.search(r.path)
        ]

    def check_runs_named(self, name: str = "flux-review") -> list[CheckRun]:
        return [run for run in self.check_runs.values() if run.name == name]

    def comments_on(self, pull_number: int) -> list[ReviewComment]:
        return [c for c in self.review_comments if c.pull_number == pull_number]

    def reviews_on(self, pull_number: int) -> list[Review]:
        return [r for r in self.reviews if r.pull_number == pull_number]

    def pr_files(self, pr: PullRequest | int, commit_id: str | None = None) -> list[FileDiff]:
        """The files GitHub lists for the PR (capped at 3000), computed from git."""
        pr = self.pull(pr) if isinstance(pr, int) else pr
        head = commit_id or self.head_sha(pr)
        key = (self.base_sha(pr), head)
        if key not in self._diff_cache:
            self._diff_cache[key] = compute_files(self.git, *key)
        return self._diff_cache[key]

    # -- webhooks -----------------------------------------------------------------------------

    async def send_webhook(
        self,
        app_url: str,
        event: str,
        payload: Mapping[str, Any] | bytes,
        secret: str | bytes | None,
        *,
        delivery_id: str | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
        path: str = "/api/github/webhooks",
        timeout: float = 60.0,
    ) -> WebhookResponse:
        """POST a delivery to the App exactly as GitHub does; returns the App's answer.

        ``signature`` overrides ``X-Hub-Signature-256`` (for bad-signature tests).
        """
        body = (
            payload
            if isinstance(payload, bytes)
            else json.dumps(payload, separators=(",", ":")).encode()
        )
        delivery_id = delivery_id or str(uuid.uuid4())
        hook_headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/8f3e2a1",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": "123456789",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(self.app_id),
        }
        if secret is not None:
            key = secret.encode() if isinstance(secret, str) else secret
            # GitHub still sends the legacy SHA-1 signature next to the SHA-256 one.
            hook_headers["X-Hub-Signature"] = (
                "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
            )
            hook_headers["X-Hub-Signature-256"] = (
                "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            )
        if signature is not None:
            hook_headers["X-Hub-Signature-256"] = signature
        hook_headers.update(headers or {})
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.post(app_url.rstrip("/") + path, data=body, headers=hook_headers) as resp,
        ):
            return WebhookResponse(resp.status, resp.headers, await resp.read(), delivery_id)

    async def deliver(
        self, app_url: str, name: str, secret: str | bytes | None, **kwargs: Any
    ) -> WebhookResponse:
        """``send_webhook`` of ``webhook_payload(name, **kwargs)`` with the right event."""
        return await self.send_webhook(
            app_url, event_of(name), self.webhook_payload(name, **kwargs), secret
        )

    def webhook_payload(
        self,
        name: str,
        *,
        pr: PullRequest | int | None = None,
        check_run: CheckRun | int | None = None,
        comment: IssueComment | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """A vendored payload adapted to this fake's repo, installation, PR and SHAs."""
        return adapt_payload(
            load_payload(name), self, pr=pr, check_run=check_run, comment=comment, **overrides
        )

    # -- JSON shapes --------------------------------------------------------------------------

    def user_json(self, login: str, user_type: str = "User") -> dict[str, Any]:
        api = f"{self.url}/users/{quote(login)}"
        uid = _stable_id(login)
        return {
            "login": login,
            "id": uid,
            "node_id": _node_id("U_", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"https://github.com/{quote(login)}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": user_type,
            "user_view_type": "public",
            "site_admin": False,
        }

    def bot_json(self) -> dict[str, Any]:
        return self.user_json(self.bot_login, "Bot")

    def app_json(self) -> dict[str, Any]:
        return {
            "id": self.app_id,
            "slug": self.app_slug,
            "node_id": _node_id("A_", self.app_id),
            "client_id": f"Iv1.{self.app_id:016x}",
            "owner": self.user_json(self.owner, self.owner_type),
            "name": self.app_slug,
            "description": "Reviews Flux CD pull requests",
            "external_url": "https://example.com/flux-review",
            "html_url": f"https://github.com/apps/{self.app_slug}",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": {
                "checks": "write",
                "contents": "read",
                "issues": "write",
                "metadata": "read",
                "pull_requests": "write",
            },
            "events": ["check_run", "check_suite", "issue_comment", "pull_request"],
        }

    def repo_json(self, full_name: str | None = None) -> dict[str, Any]:
        full_name = full_name or self.full_name
        owner, name = full_name.split("/", 1)
        api = f"{self.url}/repos/{full_name}"
        html = f"https://github.com/{full_name}"
        rid = self.repo_id if full_name == self.full_name else _stable_id(full_name)
        templated = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        out: dict[str, Any] = {
            "id": rid,
            "node_id": _node_id("R_", rid),
            "name": name,
            "full_name": full_name,
            "owner": self.user_json(owner, self.owner_type if owner == self.owner else "User"),
            "private": self.private,
            "html_url": html,
            "description": "Flux CD cluster configuration",
            "fork": full_name != self.full_name,
            "url": api,
        }
        out.update({key: api + suffix for key, suffix in templated.items()})
        out.update(
            {
                "git_url": f"git://github.com/{full_name}.git",
                "ssh_url": f"git@github.com:{full_name}.git",
                "clone_url": f"{html}.git",
                "svn_url": html,
                "mirror_url": None,
                "homepage": None,
                "language": None,
                "size": 100,
                "forks": 0,
                "forks_count": 0,
                "stargazers_count": 0,
                "watchers": 0,
                "watchers_count": 0,
                "open_issues": sum(1 for p in self.pulls.values() if p.state == "open"),
                "open_issues_count": sum(1 for p in self.pulls.values() if p.state == "open"),
                "default_branch": self.default_branch,
                "has_issues": True,
                "has_projects": False,
                "has_downloads": True,
                "has_wiki": False,
                "has_pages": False,
                "has_discussions": False,
                "archived": False,
                "disabled": False,
                "license": None,
                "visibility": "private" if self.private else "public",
                "topics": [],
                "allow_forking": True,
                "is_template": False,
                "web_commit_signoff_required": False,
                "pushed_at": "2024-01-01T00:00:00Z",
                "created_at": "2024-01-01T00:00:00Z",
                "updated_at": "2024-01-01T00:00:00Z",
            }
        )
        return out

    def _pr_urls(self, number: int) -> dict[str, str]:
        api = self.api_repo_url
        html = f"{self.html_repo_url}/pull/{number}"
        return {
            "url": f"{api}/pulls/{number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": f"{api}/issues/{number}",
            "commits_url": f"{api}/pulls/{number}/commits",
            "review_comments_url": f"{api}/pulls/{number}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{number}/comments",
        }

    def _branch_json(self, pr: PullRequest, side: str) -> dict[str, Any]:
        if side == "head":
            ref, sha = pr.head_ref, self.head_sha(pr)
            full_name = pr.head_repo or self.full_name
        else:
            ref, sha = pr.base_ref, self.base_sha(pr)
            full_name = self.full_name
        owner = full_name.split("/", 1)[0]
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user_json(owner, self.owner_type if owner == self.owner else "User"),
            "repo": self.repo_json(full_name),
        }

    def pr_json(self, pr: PullRequest, *, full: bool = True) -> dict[str, Any]:
        urls = self._pr_urls(pr.number)
        head_sha = self.head_sha(pr)
        links = {
            "self": {"href": urls["url"]},
            "html": {"href": urls["html_url"]},
            "issue": {"href": urls["issue_url"]},
            "comments": {"href": urls["comments_url"]},
            "review_comments": {"href": urls["review_comments_url"]},
            "review_comment": {"href": urls["review_comment_url"]},
            "commits": {"href": urls["commits_url"]},
            "statuses": {"href": f"{self.api_repo_url}/statuses/{head_sha}"},
        }
        out: dict[str, Any] = {
            **urls,
            "id": pr.id,
            "node_id": _node_id("PR_", pr.id),
            "number": pr.number,
            "state": pr.state,
            "locked": False,
            "title": pr.title,
            "user": self.user_json(pr.user, pr.user_type),
            "body": pr.body,
            "labels": [
                {
                    "id": _stable_id(label),
                    "node_id": _node_id("LA_", _stable_id(label)),
                    "url": f"{self.api_repo_url}/labels/{quote(label)}",
                    "name": label,
                    "description": None,
                    "color": "ededed",
                    "default": False,
                }
                for label in pr.labels
            ],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": iso(pr.created_at),
            "updated_at": iso(utcnow()),
            "closed_at": None if pr.state == "open" else iso(utcnow()),
            "merged_at": iso(utcnow()) if pr.merged else None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "draft": pr.draft,
            "statuses_url": f"{self.api_repo_url}/statuses/{head_sha}",
            "head": self._branch_json(pr, "head"),
            "base": self._branch_json(pr, "base"),
            "_links": links,
            "author_association": "MEMBER" if pr.user_type == "User" else "NONE",
            "auto_merge": None,
        }
        if full:
            files = self.pr_files(pr)
            merge_base = self.git.merge_base(self.base_sha(pr), head_sha)
            commits = len(self.git.log(f"{merge_base}..{head_sha}"))
            out.update(
                {
                    "merged": pr.merged,
                    # GitHub computes mergeability in the background; `null` means "not yet".
                    "mergeable": True if pr.state == "open" else None,
                    "rebaseable": True if pr.state == "open" else None,
                    "mergeable_state": "draft" if pr.draft else "clean",
                    "merged_by": None,
                    "comments": sum(1 for c in self.issue_comments if c.issue_number == pr.number),
                    "review_comments": len(self.comments_on(pr.number)),
                    "maintainer_can_modify": False,
                    "commits": commits,
                    "additions": sum(f.additions for f in files),
                    "deletions": sum(f.deletions for f in files),
                    "changed_files": len(files),
                }
            )
        return out

    def pr_minimal_json(self, pr: PullRequest) -> dict[str, Any]:
        def ref(side: str) -> dict[str, Any]:
            branch = self._branch_json(pr, side)
            repo = branch["repo"]
            return {
                "ref": branch["ref"],
                "sha": branch["sha"],
                "repo": {"id": repo["id"], "url": repo["url"], "name": repo["name"]},
            }

        return {
            "id": pr.id,
            "number": pr.number,
            "url": f"{self.api_repo_url}/pulls/{pr.number}",
            "head": ref("head"),
            "base": ref("base"),
        }

    def check_run_json(self, run: CheckRun) -> dict[str, Any]:
        with self.git.resolving_once():
            return self._check_run_json(run)

    def _check_run_json(self, run: CheckRun) -> dict[str, Any]:
        url = f"{self.api_repo_url}/check-runs/{run.id}"
        html = f"{self.html_repo_url}/runs/{run.id}"
        return {
            "id": run.id,
            "node_id": _node_id("CR_", run.id),
            "head_sha": run.head_sha,
            "external_id": run.external_id or "",
            "url": url,
            "html_url": html,
            "details_url": run.details_url or html,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "output": {
                "title": run.title,
                "summary": run.summary,
                "text": run.text,
                "annotations_count": len(run.annotations),
                "annotations_url": f"{url}/annotations",
            },
            "name": run.name,
            "check_suite": {"id": run.check_suite_id},
            "app": self.app_json(),
            "pull_requests": [self.pr_minimal_json(pr) for pr in self._open_pulls_at(run.head_sha)],
        }

    def review_json(self, review: Review) -> dict[str, Any]:
        pr_url = f"{self.api_repo_url}/pulls/{review.pull_number}"
        html = f"{self.html_repo_url}/pull/{review.pull_number}#pullrequestreview-{review.id}"
        out: dict[str, Any] = {
            "id": review.id,
            "node_id": _node_id("PRR_", review.id),
            "user": self.user_json(review.user, review.user_type),
            "body": review.body,
            "state": review.state,
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": "NONE",
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "commit_id": review.commit_id,
        }
        if review.submitted_at:
            out["submitted_at"] = review.submitted_at
        return out

    def review_comment_json(self, comment: ReviewComment) -> dict[str, Any]:
        url = f"{self.api_repo_url}/pulls/comments/{comment.id}"
        pr_url = f"{self.api_repo_url}/pulls/{comment.pull_number}"
        html = f"{self.html_repo_url}/pull/{comment.pull_number}#discussion_r{comment.id}"
        out: dict[str, Any] = {
            "url": url,
            "pull_request_review_id": comment.review_id,
            "id": comment.id,
            "node_id": _node_id("PRRC_", comment.id),
            "diff_hunk": comment.diff_hunk,
            "path": comment.path,
            "commit_id": comment.commit_id,
            "original_commit_id": comment.commit_id,
            "user": self.user_json(comment.user, comment.user_type),
            "body": comment.body,
            "created_at": comment.created_at,
            "updated_at": comment.created_at,
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": "NONE",
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "pull_request": {"href": pr_url},
            },
            "start_line": comment.start_line,
            "original_start_line": comment.start_line,
            "start_side": comment.start_side,
            "line": comment.line,
            "original_line": comment.line,
            "side": comment.side,
            "subject_type": "line",
        }
        if comment.position is not None:
            # Outdated comments have no position; the description types it as a plain
            # integer, so leave it out rather than sending null.
            out["position"] = out["original_position"] = comment.position
        if comment.in_reply_to_id is not None:
            out["in_reply_to_id"] = comment.in_reply_to_id
        return out

    def issue_comment_json(self, comment: IssueComment) -> dict[str, Any]:
        url = f"{self.api_repo_url}/issues/comments/{comment.id}"
        counts = {content: 0 for content in REACTIONS}
        for content, _ in comment.reactions:
            counts[content] += 1
        return {
            "id": comment.id,
            "node_id": _node_id("IC_", comment.id),
            "url": url,
            "html_url": (
                f"{self.html_repo_url}/pull/{comment.issue_number}#issuecomment-{comment.id}"
            ),
            "body": comment.body,
            "user": self.user_json(comment.user, comment.user_type),
            "created_at": comment.created_at,
            "updated_at": comment.updated_at,
            "issue_url": f"{self.api_repo_url}/issues/{comment.issue_number}",
            "author_association": comment.author_association,
            "performed_via_github_app": self.app_json() if comment.via_app else None,
            "reactions": {"url": f"{url}/reactions", "total_count": sum(counts.values()), **counts},
        }

    # -- plumbing -----------------------------------------------------------------------------

    def _add_routes(self) -> None:
        repo = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        table: list[tuple[str, str, Handler, str]] = [
            ("POST", r"^/app/installations/(?P<iid>\d+)/access_tokens$", self._access_token, "jwt"),
            (
                "POST",
                r"^/app-manifests/(?P<code>[^/]+)/conversions$",
                self._manifest_conversion,
                "none",
            ),
            ("GET", repo + r"/pulls$", self._list_pulls, "token"),
            ("GET", repo + r"/pulls/(?P<number>\d+)$", self._get_pull, "token"),
            ("GET", repo + r"/pulls/(?P<number>\d+)/files$", self._list_files, "token"),
            (
                "GET",
                repo + r"/pulls/(?P<number>\d+)/comments$",
                self._list_review_comments,
                "token",
            ),
            ("POST", repo + r"/pulls/(?P<number>\d+)/reviews$", self._create_review, "token"),
            ("GET", repo + r"/tarball(?:/(?P<ref>.+))?$", self._tarball, "token"),
            ("GET", repo + r"/git/trees/(?P<ref>.+)$", self._git_tree, "token"),
            ("GET", repo + r"/git/blobs/(?P<sha>[^/]+)$", self._git_blob, "token"),
            ("GET", repo + r"/contents(?:/(?P<path>.*))?$", self._contents, "token"),
            ("GET", repo + r"/commits/(?P<sha>[^/]+)/pulls$", self._commit_pulls, "token"),
            ("GET", repo + r"/commits/(?P<ref>[^/]+)/check-runs$", self._ref_check_runs, "token"),
            ("GET", repo + r"/compare/(?P<basehead>.+)$", self._compare, "token"),
            ("POST", repo + r"/check-runs$", self._create_check_run, "token"),
            ("GET", repo + r"/check-runs/(?P<id>\d+)$", self._get_check_run, "token"),
            ("PATCH", repo + r"/check-runs/(?P<id>\d+)$", self._update_check_run, "token"),
            (
                "GET",
                repo + r"/collaborators/(?P<username>[^/]+)/permission$",
                self._permission,
                "token",
            ),
            (
                "POST",
                repo + r"/issues/comments/(?P<id>\d+)/reactions$",
                self._create_reaction,
                "token",
            ),
            (
                "GET",
                repo + r"/issues/(?P<number>\d+)/comments$",
                self._list_issue_comments,
                "token",
            ),
            (
                "POST",
                repo + r"/issues/(?P<number>\d+)/comments$",
                self._create_issue_comment,
                "token",
            ),
            (
                "GET",
                r"^/_codeload/(?P<owner>[^/]+)/(?P<repo>[^/]+)/legacy\.tar\.gz/(?P<ref>.+)$",
                self._codeload,
                "none",
            ),
            (
                "GET",
                r"^/_raw/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<ref>[^/]+)/(?P<path>.+)$",
                self._raw,
                "none",
            ),
        ]
        self._routes = [(m, re.compile(p), h, auth) for m, p, h, auth in table]

    def _canonical_path(self, path: str) -> str:
        # Link headers name the repository by id; GitHub serves both spellings.
        found = re.match(r"^/repositories/(\d+)(/.*)?$", path)
        if found and int(found.group(1)) == self.repo_id:
            return f"/repos/{self.full_name}{found.group(2) or ''}"
        return path

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_body = await request.read()
        path = self._canonical_path(request.path)
        internal = path.startswith("/_")
        record = RecordedRequest(
            method=request.method,
            path=path,
            raw_path=request.raw_path,
            query=dict(parse_qsl(request.query_string, keep_blank_values=True)),
            headers=request.headers.copy(),
            body=None,
            raw_body=raw_body,
        )
        self.requests.append(record)
        # GitHub carries out a request it has received even when the client stops waiting
        # for the answer (a timeout, a restart): so does the fake.
        handling = asyncio.ensure_future(self._handle(request, record, path, internal))
        self._handling.add(handling)
        handling.add_done_callback(self._handling.discard)
        response = await asyncio.shield(handling)
        record.status = response.status
        return response

    async def _handle(
        self, request: web.Request, record: RecordedRequest, path: str, internal: bool
    ) -> web.StreamResponse:
        body_error: str | None = None
        if raw_body := record.raw_body:
            try:
                record.body = json.loads(raw_body)
            except ValueError as exc:
                body_error = f"body is not JSON: {exc}"
        if not internal:
            query = f"?{request.query_string}" if request.query_string else ""
            errors = self.validator.validate(record.method, path + query, record.body)
            if body_error:
                errors.append(f"{record.method} {path}: {body_error}")
            found = self.validator.match(record.method, path)
            record.operation_id = found.operation.operation_id if found else None
            record.openapi_errors = errors
            self.openapi_errors.extend(errors)
        # GitHub validates bodies against the same schema and answers 422 "Invalid request"
        # (it only ignores unknown properties), so the fake refuses them too.
        rejected = (
            lenient_validator().body_errors(record.method, path, record.body)
            if record.openapi_errors and not internal
            else []
        )

        try:
            injected = await self._injected_failure(record.method, path)
            if injected is not None:
                return injected
            if body_error:
                raise ApiError(400, "Problems parsing JSON")
            if not internal:
                self._check_headers(request)
            for method, pattern, handler, auth in self._routes:
                found_route = pattern.match(path)
                if not found_route or method != record.method:
                    continue
                params = {k: v for k, v in found_route.groupdict().items() if v is not None}
                ctx = _Ctx(request, record, params)
                repo_name = f"{params.get('owner')}/{params.get('repo')}".lower()
                if "owner" in params and not internal and repo_name != self.full_name.lower():
                    # Private repositories the token cannot see are "Not Found", never 403.
                    self._authenticate(ctx, auth)
                    raise ApiError(404, "Not Found")
                if auth != "none":
                    self._authenticate(ctx, auth)
                    self._consume_rate_limit()
                if rejected:
                    raise ApiError(422, "Invalid request.\n\n" + "\n".join(rejected))
                try:
                    reply = await handler(ctx)
                except ApiError:
                    raise
                except Exception as exc:
                    # A crash in the fake is a bug in the fake; make it loud, not a mystery 500.
                    self.internal_errors.append(f"{record.method} {record.raw_path}: {exc!r}")
                    raise ApiError(500, f"fake GitHub crashed: {exc!r}") from exc
                if self.validate_responses and not internal:
                    self._check_response(record, path, reply)
                return self._render(reply, rate_limited=not internal)
            raise ApiError(404, "Not Found")
        except ApiError as err:
            return self._render(
                Reply(err.status, err.body(), err.headers), rate_limited=not internal
            )

    def _check_headers(self, request: web.Request) -> None:
        if self.require_user_agent and not request.headers.get("User-Agent"):
            # Verbatim what GitHub answers to a request without a User-Agent.
            raise ApiError(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header",
            )
        version = request.headers.get("X-GitHub-Api-Version")
        if version is not None and version not in self.api_versions:
            raise ApiError(400, f"API version '{version}' is not supported.")

    async def _injected_failure(self, method: str, path: str) -> web.StreamResponse | None:
        for failure in self._failures:
            if failure.method not in ("*", method) or not failure.pattern.search(path):
                continue
            if failure.remaining is not None:
                if failure.remaining <= 0:
                    continue
                failure.remaining -= 1
            if failure.delay:
                await asyncio.sleep(failure.delay)
            if failure.status is None:
                return None
            body = failure.body
            if body is None:
                body = ApiError(failure.status, _default_message(failure.status)).body()
            return self._render(Reply(failure.status, body, dict(failure.headers)))
        return None

    def _authenticate(self, ctx: _Ctx, kind: str) -> None:
        header = ctx.request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        if kind == "jwt":
            if scheme != "bearer" or not credential:
                raise ApiError(401, "A JSON web token could not be decoded")
            self._verify_jwt(credential)
            return
        if not header:
            raise ApiError(401, "Requires authentication")
        token = self.tokens.get(credential) if scheme in ("token", "bearer") else None
        if token is None or not token.live:
            raise ApiError(401, "Bad credentials")
        ctx.token = token

    def _verify_jwt(self, credential: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                credential,
                self.app_public_key,
                algorithms=["RS256"],
                options={
                    "require": ["iat", "exp", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded") from None
        now = time.time()
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int) or iat > now + 1:
            # GitHub rejects a token "issued in the future"; clients backdate iat for drift.
            raise ApiError(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that the "
                "assertion was issued",
            )
        if not isinstance(exp, int) or exp <= now:
            raise ApiError(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires",
            )
        if exp - iat > 600 or exp > now + 600:
            raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
        if str(claims["iss"]) != str(self.app_id):
            raise ApiError(401, "A JSON web token could not be decoded")
        return claims

    def _consume_rate_limit(self) -> None:
        limit = self.rate_limit
        if time.time() >= limit.reset:
            limit.remaining = limit.limit
            limit.reset = int(time.time()) + 3600
        if limit.remaining <= 0:
            raise ApiError(
                403,
                f"API rate limit exceeded for installation ID {self.installation_id}. If you "
                "reach out to GitHub Support for help, please include the request ID "
                "0000:FAKE:0000 and timestamp " + iso(utcnow()) + ".",
                docs="https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
        limit.remaining -= 1

    def _render(self, reply: Reply, *, rate_limited: bool = True) -> web.StreamResponse:
        headers: dict[str, str] = {
            "X-GitHub-Request-Id": f"{secrets.token_hex(4).upper()}:{secrets.token_hex(4)}",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
        }
        if rate_limited:
            limit = self.rate_limit
            headers.update(
                {
                    "X-RateLimit-Limit": str(limit.limit),
                    "X-RateLimit-Remaining": str(max(limit.remaining, 0)),
                    "X-RateLimit-Reset": str(limit.reset),
                    "X-RateLimit-Used": str(limit.used),
                    "X-RateLimit-Resource": limit.resource,
                }
            )
        headers.update(reply.headers)
        if reply.status in (204, 301, 302, 304):
            return web.Response(status=reply.status, headers=headers)
        if isinstance(reply.data, bytes):
            body = reply.data
        else:
            body = json.dumps(reply.data, ensure_ascii=False).encode()
        headers["Content-Type"] = reply.content_type
        if reply.transfer != "whole":
            # No Content-Length: the client learns the size only by reading to the end.
            payload = aiohttp.payload.AsyncIterablePayload(
                _chunks(body, drop=reply.transfer == "drop")
            )
            return web.Response(status=reply.status, body=payload, headers=headers)
        return web.Response(status=reply.status, body=body, headers=headers)

    def _check_response(self, record: RecordedRequest, path: str, reply: Reply) -> None:
        if isinstance(reply.data, bytes) or reply.status >= 300:
            return
        errors = self.validator.validate_response(
            record.method, path, reply.status, reply.data, reply.content_type
        )
        self.response_errors.extend(errors)

    # -- pagination ---------------------------------------------------------------------------

    def _paginate(self, ctx: _Ctx, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        query = ctx.request.query
        try:
            per_page = int(query.get("per_page", DEFAULT_PER_PAGE))
        except ValueError:
            per_page = DEFAULT_PER_PAGE
        # GitHub clamps per_page to 100 silently and treats nonsense as the default.
        per_page = DEFAULT_PER_PAGE if per_page <= 0 else min(per_page, MAX_PER_PAGE)
        try:
            page = max(int(query.get("page", 1)), 1)
        except ValueError:
            page = 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        if last == 1:
            return chunk, {}
        path = ctx.record.path
        if self.link_style == "repositories":
            path = path.replace(f"/repos/{self.full_name}", f"/repositories/{self.repo_id}", 1)
        keep = [(k, v) for k, v in parse_qsl(ctx.request.query_string) if k != "page"]

        def link(target: int, rel: str) -> str:
            return f'<{self.url}{path}?{urlencode([*keep, ("page", str(target))])}>; rel="{rel}"'

        # GitHub's order: prev, next, last, first; "next"/"last" vanish on the last page and
        # "prev"/"first" on the first.
        parts = []
        if page > 1:
            parts.append(link(min(page - 1, last), "prev"))
        if page < last:
            parts.append(link(page + 1, "next"))
            parts.append(link(last, "last"))
        if page > 1:
            parts.append(link(1, "first"))
        return chunk, {"Link": ", ".join(parts)} if parts else {}

    # -- endpoints ----------------------------------------------------------------------------

    def _pr_or_404(self, ctx: _Ctx) -> PullRequest:
        pr = self.pulls.get(int(ctx.params["number"]))
        if pr is None:
            raise ApiError(404, "Not Found")
        return pr

    def confirm_manifest(self, manifest: Mapping[str, Any], private_key: str) -> str:
        """What GitHub's "Create GitHub App" page does with a posted manifest: creates the
        App and hands back a one-time code (for `POST /app-manifests/{code}/conversions`)."""
        code = secrets.token_hex(10)
        self.manifest_codes[code] = (dict(manifest), private_key)
        return code

    async def _manifest_conversion(self, ctx: _Ctx) -> Reply:
        # The code is good once (GitHub: within an hour), and is all the authentication.
        found = self.manifest_codes.pop(ctx.params["code"], None)
        if found is None:
            raise ApiError(404, "Not Found")
        manifest, private_key = found
        self.manifest_conversions.append(manifest)
        body = self.app_json()
        body.update(
            name=str(manifest.get("name") or self.app_slug),
            description=manifest.get("description"),
            external_url=str(manifest.get("url") or body["external_url"]),
            permissions=dict(manifest.get("default_permissions") or {}),
            events=list(manifest.get("default_events") or []),
            client_secret=secrets.token_hex(20),
            webhook_secret=(manifest.get("hook_attributes") or {}).get("secret")
            or secrets.token_hex(20),
            pem=private_key,
        )
        return Reply(201, body)

    async def _access_token(self, ctx: _Ctx) -> Reply:
        installation_id = int(ctx.params["iid"])
        if installation_id not in self.installations:
            raise ApiError(404, "Not Found")
        body = ctx.record.body if isinstance(ctx.record.body, dict) else {}
        minted = self._mint_token(installation_id, body.get("permissions"))
        return Reply(
            201,
            {
                "token": minted.token,
                "expires_at": iso(minted.expires_at),
                "permissions": minted.permissions,
                "repository_selection": "selected",
            },
        )

    async def _get_pull(self, ctx: _Ctx) -> Reply:
        pr = self._pr_or_404(ctx)
        accept = ctx.request.headers.get("Accept", "")
        if "diff" in accept or "patch" in accept:
            merge_base = self.git.merge_base(self.base_sha(pr), self.head_sha(pr))
            data = self.git.diff(merge_base, self.head_sha(pr), "-M", "--full-index")
            return Reply(200, data, content_type="text/plain; charset=utf-8")
        return Reply(200, self.pr_json(pr))

    async def _list_pulls(self, ctx: _Ctx) -> Reply:
        state = ctx.record.query.get("state", "open")
        prs = [
            pr
            for pr in sorted(self.pulls.values(), key=lambda p: p.number, reverse=True)
            if state == "all" or pr.state == state
        ]
        page, headers = self._paginate(ctx, prs)
        return Reply(200, [self.pr_json(pr, full=False) for pr in page], headers)

    async def _list_files(self, ctx: _Ctx) -> Reply:
        pr = self._pr_or_404(ctx)
        files = (await asyncio.to_thread(self.pr_files, pr))[:MAX_PR_FILES]
        page, headers = self._paginate(ctx, files)
        head = self.head_sha(pr)
        out = []
        for f in page:
            entry = self._diff_entry(f, head)
            # GitHub drops `patch` for binary files, pure renames and diffs too big to show.
            if f.filename in pr.omit_patch:
                entry.pop("patch", None)
            out.append(entry)
        return Reply(200, out, headers)

    async def _list_review_comments(self, ctx: _Ctx) -> Reply:
        pr = self._pr_or_404(ctx)
        comments = sorted(self.comments_on(pr.number), key=lambda c: c.id)
        if ctx.request.query.get("direction") == "desc":
            comments.reverse()
        since = ctx.request.query.get("since")
        if since:
            comments = [c for c in comments if c.created_at >= since]
        page, headers = self._paginate(ctx, comments)
        return Reply(200, [self.review_comment_json(c) for c in page], headers)

    async def _create_review(self, ctx: _Ctx) -> Reply:
        pr = self._pr_or_404(ctx)
        body = ctx.record.body if isinstance(ctx.record.body, dict) else {}
        event = body.get("event")
        text = body.get("body") or ""
        if event in ("REQUEST_CHANGES", "COMMENT") and not text:
            action = "request changes" if event == "REQUEST_CHANGES" else "comment"
            raise _unprocessable(f"Review Can not {action} on a pull request without a body")
        head = self.head_sha(pr)
        commit_id = body.get("commit_id") or head
        if commit_id != head:
            resolved = self.git.resolve(commit_id)
            merge_base = self.git.merge_base(self.base_sha(pr), head)
            if (
                resolved is None
                or resolved == merge_base
                or not self._is_ancestor(resolved, head)
                or self._is_ancestor(resolved, merge_base)
            ):
                raise _unprocessable("commit_id is not part of the pull request")
            commit_id = resolved
        if event is None and any(
            r.state == "PENDING" and r.user == self.bot_login for r in self.reviews_on(pr.number)
        ):
            raise _unprocessable("User can only have one pending review per pull request")
        files = {f.filename: f for f in self.pr_files(pr, commit_id)}

        problems: list[str] = []
        planned: list[tuple[dict[str, Any], FileDiff, DiffLine, DiffLine | None]] = []
        for comment in body.get("comments") or []:
            diff = files.get(comment.get("path", ""))
            if diff is None:
                problems.append("Path could not be resolved")
                continue
            anchor, start = self._anchor(comment, diff, problems)
            if anchor is not None:
                planned.append((comment, diff, anchor, start))
        if problems:
            # One bad comment sinks the whole review: nothing is stored.
            raise _unprocessable(*dict.fromkeys(problems))

        state = {
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
            None: "PENDING",
        }[event]
        review = Review(
            id=self._next_id(),
            pull_number=pr.number,
            user=self.bot_login,
            user_type="Bot",
            body=text,
            state=state,
            commit_id=commit_id,
            submitted_at=None if state == "PENDING" else iso(utcnow()),
        )
        self.reviews.append(review)
        for comment, diff, anchor, start in planned:
            side = "LEFT" if anchor.kind == "-" else comment.get("side", "RIGHT")
            line = anchor.old if side == "LEFT" else anchor.new
            created = ReviewComment(
                id=self._next_id(),
                pull_number=pr.number,
                review_id=review.id,
                path=diff.filename,
                body=comment["body"],
                commit_id=commit_id,
                line=line,
                side=side,
                start_line=comment.get("start_line") if start is not None else None,
                start_side=(comment.get("start_side") or side) if start is not None else None,
                position=anchor.position,
                diff_hunk=diff.hunk_text(anchor),
                user=self.bot_login,
                user_type="Bot",
                created_at=iso(utcnow()),
            )
            self.review_comments.append(created)
            review.comment_ids.append(created.id)
        return Reply(200, self.review_json(review))

    def _anchor(
        self, comment: Mapping[str, Any], diff: FileDiff, problems: list[str]
    ) -> tuple[DiffLine | None, DiffLine | None]:
        """Where a draft review comment lands, or (None, None) after adding the reasons."""
        if "line" not in comment and "position" in comment:
            entry = diff.at_position(int(comment["position"]))
            if entry is None or entry.kind not in "+- ":
                problems.append("Pull request review thread position is invalid")
                return None, None
            return entry, None
        if "line" not in comment:
            problems.append("Pull request review thread line must be part of the diff")
            return None, None
        side = comment.get("side", "RIGHT")
        if side not in ("LEFT", "RIGHT"):
            problems.append("Pull request review thread side is invalid")
            return None, None
        anchor = diff.find(side, int(comment["line"]))
        if anchor is None:
            problems.append("Pull request review thread line must be part of the diff")
            if not diff.lines:
                problems.append("Pull request review thread diff hunk can't be blank")
            return None, None
        start = None
        if comment.get("start_line") is not None:
            start = diff.find(comment.get("start_side") or side, int(comment["start_line"]))
            if start is None or start.hunk != anchor.hunk:
                problems.append(
                    "Pull request review thread start line must be part of the same hunk as "
                    "the line."
                )
                return None, None
            if start.position >= anchor.position:
                problems.append("Pull request review thread start line must precede the end line.")
                return None, None
        return anchor, start

    def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            self.git.git("merge-base", "--is-ancestor", ancestor, descendant)
        except Exception:
            return False
        return True

    async def _tarball(self, ctx: _Ctx) -> Reply:
        ref = ctx.params.get("ref") or self.default_branch
        if self.resolve_ref(ref) is None:
            raise ApiError(404, "Not Found")
        # Private repositories redirect to codeload with a short-lived token in the query;
        # the archive itself needs no Authorization header.
        token = secrets.token_urlsafe(24)
        self._codeload_tokens[token] = time.time() + 300
        location = f"{self.url}/_codeload/{self.full_name}/legacy.tar.gz/{quote(ref)}?token={token}"
        return Reply(302, None, {"Location": location})

    async def _codeload(self, ctx: _Ctx) -> Reply:
        token = ctx.request.query.get("token", "")
        if self._codeload_tokens.get(token, 0) < time.time():
            raise ApiError(404, "Not Found")
        if f"{ctx.params['owner']}/{ctx.params['repo']}".lower() != self.full_name.lower():
            raise ApiError(404, "Not Found")
        ref = ctx.params["ref"]
        sha = self.resolve_ref(ref)
        if sha is None:
            raise ApiError(404, "Not Found")
        prefix = f"{self.owner}-{self.name}-{sha[:7]}"
        data = self.tarball_overrides.get(sha) or self.tarball_overrides.get(ref)
        if data is None:
            if sha not in self._archive_cache:
                self._archive_cache[sha] = await asyncio.to_thread(
                    self.git.archive, sha, prefix + "/"
                )
            data = self._archive_cache[sha]
        transfer = self.tarball_transfer
        if self.tarball_cuts > 0:
            self.tarball_cuts -= 1
            data = data[: int(len(data) * self.tarball_cut)]
            transfer = "chunked"
        return Reply(
            200,
            data,
            {"Content-Disposition": f"attachment; filename={prefix}.tar.gz", "ETag": f'"{sha}"'},
            content_type="application/x-gzip",
            transfer=transfer,
        )

    async def _git_tree(self, ctx: _Ctx) -> Reply:
        ref = ctx.params["ref"]
        tree_sha = self._tree_sha(ref)
        if tree_sha is None:
            raise ApiError(404, "Not Found")
        # Any value of `recursive` (even "0" or "false") asks for the whole tree.
        recursive = "recursive" in ctx.request.query
        args = ["ls-tree", "-z", "--long"] + (["-r", "-t"] if recursive else []) + [tree_sha]
        out = await asyncio.to_thread(self.git.git_bytes, *args)
        entries: list[dict[str, Any]] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, name = record.split(b"\t", 1)
            mode, kind, sha, size = meta.decode().split()
            entry: dict[str, Any] = {
                "path": name.decode("utf-8"),
                "mode": mode,
                "type": kind,
                "sha": sha,
            }
            if kind == "blob":
                entry["size"] = int(size)
                entry["url"] = f"{self.api_repo_url}/git/blobs/{sha}"
            elif kind == "tree":
                entry["url"] = f"{self.api_repo_url}/git/trees/{sha}"
            entries.append(entry)
        truncated = recursive and len(entries) > self.tree_entry_limit
        return Reply(
            200,
            {
                "sha": tree_sha,
                "url": f"{self.api_repo_url}/git/trees/{tree_sha}",
                "tree": entries[: self.tree_entry_limit] if truncated else entries,
                "truncated": truncated,
            },
        )

    def _tree_sha(self, ref: str) -> str | None:
        """A tree SHA from a tree SHA, a commit SHA, a branch or a tag, as GitHub resolves it."""
        if not ref or ref.startswith("-"):
            return None
        commit = self.resolve_ref(ref)
        spec = f"{commit}^{{tree}}" if commit else f"{ref}^{{tree}}"
        try:
            return self.git.git("rev-parse", "--verify", "--quiet", spec)
        except Exception:
            return None

    async def _git_blob(self, ctx: _Ctx) -> Reply:
        sha = ctx.params["sha"]
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise _validation_failed("Blob", "sha", "sha must be a 40-character hex string")
        try:
            kind = self.git.git("cat-file", "-t", sha)
        except Exception:
            kind = ""
        if kind != "blob":
            raise ApiError(404, "Not Found")
        data = await asyncio.to_thread(self.git.git_bytes, "cat-file", "blob", sha)
        if "raw" in ctx.request.headers.get("Accept", ""):
            return Reply(200, data, content_type="application/vnd.github.raw")
        encoded = base64.b64encode(data).decode()
        # Like the contents API, GitHub wraps the base64 at 60 columns.
        wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
        return Reply(
            200,
            {
                "sha": sha,
                "node_id": _node_id("B_", _stable_id(sha)),
                "size": len(data),
                "url": f"{self.api_repo_url}/git/blobs/{sha}",
                "content": wrapped,
                "encoding": "base64",
            },
        )

    def _content_entry(self, ref: str, path: str, kind: str, sha: str, size: int) -> dict[str, Any]:
        quoted = quote(path)
        url = f"{self.api_repo_url}/contents/{quoted}?ref={quote(ref)}"
        git_kind = "trees" if kind == "dir" else "blobs"
        git_url = f"{self.api_repo_url}/git/{git_kind}/{sha}"
        html = f"{self.html_repo_url}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{quoted}"
        download = (
            f"{self.url}/_raw/{self.full_name}/{quote(ref, safe='')}/{quoted}"
            if kind == "file"
            else None
        )
        return {
            "type": kind,
            "size": size,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html,
            "download_url": download,
            "_links": {"self": url, "git": git_url, "html": html},
        }

    async def _contents(self, ctx: _Ctx) -> Reply:
        ref = ctx.request.query.get("ref") or self.default_branch
        sha = self.resolve_ref(ref)
        if sha is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        path = ctx.params.get("path", "").strip("/")
        info = self.git.object_info(sha, path)
        if info is None:
            raise ApiError(404, "Not Found")
        mode, kind, obj = info
        if mode == "120000":
            target = self.git.git_bytes("cat-file", "blob", obj).decode()
            # GitHub follows a symlink to a regular file of the same repository and answers
            # with that file; any other link is described as a symlink.
            resolved = _join_link(path, target)
            target_info = self.git.object_info(sha, resolved) if resolved else None
            if resolved and target_info and target_info[1] == "blob" and target_info[0] != "120000":
                path, (mode, kind, obj) = resolved, target_info
            else:
                entry = self._content_entry(ref, path, "symlink", obj, len(target))
                entry["target"] = target
                return Reply(200, entry)
        raw_wanted = "raw" in ctx.request.headers.get("Accept", "")
        if kind == "tree":
            listing = []
            for e_mode, e_kind, e_sha, e_size, e_name in self.git.ls_tree(sha, path):
                child = f"{path}/{e_name}" if path else e_name
                e_type = {"tree": "dir", "commit": "submodule"}.get(e_kind, "file")
                if e_mode == "120000":
                    e_type = "symlink"
                listing.append(self._content_entry(ref, child, e_type, e_sha, max(e_size, 0)))
            return Reply(200, listing)
        if kind != "blob":
            entry = self._content_entry(ref, path, "submodule", obj, 0)
            entry["submodule_git_url"] = ""
            return Reply(200, entry)
        data = self.git.git_bytes("cat-file", "blob", obj)
        if raw_wanted:
            return Reply(200, data, content_type="text/plain; charset=utf-8")
        entry = self._content_entry(ref, path, "file", obj, len(data))
        if len(data) > MAX_CONTENTS_JSON_BYTES:
            # 1-100 MB files come back without content; only the raw media type has them.
            entry.update({"content": "", "encoding": "none"})
        else:
            encoded = base64.b64encode(data).decode()
            # GitHub wraps the base64 at 60 columns with "\n" (and ends with one).
            wrapped = "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))
            entry.update({"content": wrapped, "encoding": "base64"})
        return Reply(200, entry)

    async def _raw(self, ctx: _Ctx) -> Reply:
        sha = self.resolve_ref(ctx.params["ref"])
        info = self.git.object_info(sha, ctx.params["path"]) if sha else None
        if not info or info[1] != "blob":
            raise ApiError(404, "Not Found")
        data = self.git.git_bytes("cat-file", "blob", info[2])
        return Reply(200, data, content_type="text/plain; charset=utf-8")

    async def _commit_pulls(self, ctx: _Ctx) -> Reply:
        sha = self.resolve_ref(ctx.params["sha"])
        if sha is None:
            raise _unprocessable(f"No commit found for SHA: {ctx.params['sha']}")
        prs = self._open_pulls_at(sha)
        page, headers = self._paginate(ctx, prs)
        out = []
        for pr in page:
            entry = self.pr_json(pr, full=False)
            out.append(entry)
        return Reply(200, out, headers)

    def commit_json(self, sha: str) -> dict[str, Any]:
        """GitHub's ``commit`` object for a commit of the repository."""
        fields = self.git.git_bytes(
            "show", "-s", "--format=%T%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B", sha
        ).decode("utf-8", errors="replace")
        tree, parents, a_name, a_email, a_time, c_name, c_email, c_time, message = fields.split(
            "\0", 8
        )
        api, html = self.api_repo_url, self.html_repo_url

        def person(name: str, email: str, seconds: str) -> dict[str, str]:
            return {
                "name": name,
                "email": email,
                "date": iso(datetime.fromtimestamp(int(seconds), UTC)),
            }

        return {
            "sha": sha,
            "node_id": _node_id("C_", _stable_id(sha)),
            "commit": {
                "author": person(a_name, a_email, a_time),
                "committer": person(c_name, c_email, c_time),
                "message": message.rstrip("\n"),
                "tree": {"sha": tree, "url": f"{api}/git/trees/{tree}"},
                "url": f"{api}/git/commits/{sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": f"{api}/commits/{sha}",
            "html_url": f"{html}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            # The test identity's e-mail belongs to no GitHub account: GitHub says null.
            "author": None,
            "committer": None,
            "parents": [
                {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{html}/commit/{p}"}
                for p in parents.split()
            ],
        }

    def _compare_side(self, spec: str) -> str:
        # `USER:REF` names a ref in a repository of the same network (a fork).
        owner, _, ref = spec.rpartition(":")
        forks = {
            pr.head_repo.split("/", 1)[0].lower() for pr in self.pulls.values() if pr.head_repo
        }
        if owner and owner.lower() != self.owner.lower() and owner.lower() not in forks:
            raise ApiError(404, "Not Found")
        sha = self.resolve_ref(ref)
        if sha is None:
            raise ApiError(404, "Not Found")
        return sha

    async def _compare(self, ctx: _Ctx) -> Reply:
        basehead = ctx.params["basehead"]
        base_spec, sep, head_spec = basehead.partition("...")
        if not sep or not base_spec or not head_spec:
            raise ApiError(404, "Not Found")
        base, head = self._compare_side(base_spec), self._compare_side(head_spec)
        try:
            merge_base = self.git.merge_base(base, head)
        except GitError:
            # Verbatim GitHub's answer for unrelated histories (a rewritten branch).
            raise ApiError(
                404, f"No common ancestor between {base_spec} and {head_spec}."
            ) from None
        ahead = list(reversed(self.git.log(f"{base}..{head}")))  # oldest first, like GitHub
        behind_by = len(self.git.log(f"{head}..{base}"))
        if not ahead and not behind_by:
            status = "identical"
        elif not behind_by:
            status = "ahead"
        elif not ahead:
            status = "behind"
        else:
            status = "diverged"
        query = ctx.request.query
        paged = "per_page" in query or "page" in query
        if paged:
            commits, headers = self._paginate(ctx, ahead)
        else:
            # Unpaged, GitHub lists at most 250 commits, ending with the newest.
            commits, headers = ahead[-MAX_COMPARE_COMMITS:], {}
        try:
            first_page = int(query.get("page", 1)) <= 1
        except ValueError:
            first_page = True
        api, html = self.api_repo_url, self.html_repo_url
        out: dict[str, Any] = {
            "url": f"{api}/compare/{basehead}",
            "html_url": f"{html}/compare/{basehead}",
            "permalink_url": f"{html}/compare/{self.owner}:{base}...{self.owner}:{head}",
            "diff_url": f"{html}/compare/{basehead}.diff",
            "patch_url": f"{html}/compare/{basehead}.patch",
            "base_commit": self.commit_json(base),
            "merge_base_commit": self.commit_json(merge_base),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": behind_by,
            "total_commits": len(ahead),
            "commits": [self.commit_json(sha) for sha in commits],
        }
        if first_page:
            # The changed files come with the first page only, at most 300 of them.
            files = (await asyncio.to_thread(compute_files, self.git, base, head))[
                :MAX_COMPARE_FILES
            ]
            out["files"] = [self._diff_entry(f, head) for f in files]
        self.compare_answers.append(out)
        return Reply(200, out, headers)

    def _diff_entry(self, f: FileDiff, head: str) -> dict[str, Any]:
        quoted = quote(f.filename)
        entry: dict[str, Any] = {
            "sha": f.sha,
            "filename": f.filename,
            "status": f.status,
            "additions": f.additions,
            "deletions": f.deletions,
            "changes": f.changes,
            "blob_url": f"{self.html_repo_url}/blob/{head}/{quoted}",
            "raw_url": f"{self.html_repo_url}/raw/{head}/{quoted}",
            "contents_url": f"{self.api_repo_url}/contents/{quoted}?ref={head}",
        }
        if f.patch is not None:
            entry["patch"] = f.patch
        if f.previous_filename is not None:
            entry["previous_filename"] = f.previous_filename
        return entry

    # check runs ---------------------------------------------------------------------------

    def _check_run_rules(self, body: Mapping[str, Any], run: CheckRun | None) -> None:
        """GitHub's semantic checks beyond the schema (all 422)."""
        output = body.get("output")
        if output is not None:
            if not isinstance(output, dict) or not output.get("title") or "summary" not in output:
                missing = [k for k in ("title", "summary") if not (output or {}).get(k)]
                raise ApiError(
                    422,
                    "Invalid request.\n\n"
                    + "\n".join(f'"{k}" wasn\'t supplied.' for k in missing or ["output"]),
                )
            for key in ("summary", "text"):
                value = output.get(key)
                if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
                    raise _validation_failed(
                        "CheckRun", key, f"Output {key} is too long (maximum is 65535 characters)"
                    )
            annotations = output.get("annotations") or []
            if len(annotations) > MAX_ANNOTATIONS_PER_REQUEST:
                raise ApiError(
                    422,
                    "Invalid request.\n\nOnly 50 annotations are allowed per request.",
                )
            for note in annotations:
                if not isinstance(note, dict):
                    continue
                if note.get("start_line", 0) > note.get("end_line", 0):
                    raise _validation_failed(
                        "CheckRun", "annotations", "start_line must not be after end_line"
                    )
                if ("start_column" in note or "end_column" in note) and note.get(
                    "start_line"
                ) != note.get("end_line"):
                    # Documented: columns only when the annotation is on a single line.
                    raise _validation_failed(
                        "CheckRun",
                        "annotations",
                        "start_column and end_column may only be used on a single line",
                    )
        actions = body.get("actions") or []
        if len(actions) > 3:
            raise ApiError(422, "Invalid request.\n\nA maximum of three actions are accepted.")
        status = body.get("status")
        if (status == "completed" or body.get("completed_at")) and body.get("conclusion") is None:
            # The schema's anyOf says the same for PATCH; POST's schema forgets, GitHub doesn't.
            raise ApiError(422, 'Invalid request.\n\n"conclusion" wasn\'t supplied.')
        if status in ("waiting", "requested", "pending"):
            raise ApiError(
                422, "Only GitHub Actions can set a status of waiting, requested or pending."
            )
        if body.get("conclusion") == "stale":
            raise ApiError(422, "Invalid request.\n\nOnly GitHub can set a conclusion of stale.")

    def _apply_check_run(self, run: CheckRun, method: str, body: Mapping[str, Any]) -> None:
        for key in ("name", "details_url", "external_id", "started_at"):
            if key in body:
                setattr(run, key, body[key])
        if "status" in body:
            run.status = body["status"]
        if body.get("conclusion") is not None:
            # Documented: a conclusion implies status=completed.
            run.conclusion = body["conclusion"]
            run.status = "completed"
            run.completed_at = body.get("completed_at") or iso(utcnow())
        elif "completed_at" in body:
            run.completed_at = body["completed_at"]
        output = body.get("output")
        if output:
            run.title = output.get("title", run.title)
            run.summary = output.get("summary", run.summary)
            if "text" in output:
                run.text = output["text"]
            # GitHub's rule: annotations (and images) accumulate across updates; they are
            # never replaced, so re-sending the same list duplicates them.
            run.annotations.extend(output.get("annotations") or [])
            run.images.extend(output.get("images") or [])
        if "actions" in body:
            run.actions = list(body["actions"])
        run.history.append((method, dict(body)))

    async def _create_check_run(self, ctx: _Ctx) -> Reply:
        body = ctx.record.body if isinstance(ctx.record.body, dict) else {}
        if not body.get("name") or not body.get("head_sha"):
            raise ApiError(422, 'Invalid request.\n\n"name", "head_sha" weren\'t supplied.')
        head_sha = self.git.resolve(str(body["head_sha"]))
        if head_sha is None or len(str(body["head_sha"])) != 40:
            raise _unprocessable(f"No commit found for SHA: {body['head_sha']}")
        self._check_run_rules(body, None)
        run = CheckRun(
            id=self._next_id(),
            name=body["name"],
            head_sha=head_sha,
            started_at=iso(utcnow()),
            check_suite_id=_stable_id(f"suite:{head_sha}"),
        )
        self._apply_check_run(run, "POST", body)
        self.check_runs[run.id] = run
        return Reply(201, self.check_run_json(run))

    async def _ref_check_runs(self, ctx: _Ctx) -> Reply:
        sha = self.git.resolve(ctx.params["ref"])
        if sha is None:
            raise _unprocessable(f"No commit found for SHA: {ctx.params['ref']}")
        query = ctx.record.query
        runs = [
            run
            for run in self.check_runs.values()
            if run.head_sha == sha
            and (not query.get("check_name") or run.name == query["check_name"])
            and (not query.get("status") or run.status == query["status"])
        ]
        runs.sort(key=lambda run: run.id, reverse=True)
        per_page = int(query.get("per_page") or 30)
        return Reply(
            200,
            {
                "total_count": len(runs),
                "check_runs": [self.check_run_json(run) for run in runs[:per_page]],
            },
        )

    def _run_or_404(self, ctx: _Ctx) -> CheckRun:
        run = self.check_runs.get(int(ctx.params["id"]))
        if run is None:
            raise ApiError(404, "Not Found")
        return run

    async def _get_check_run(self, ctx: _Ctx) -> Reply:
        return Reply(200, self.check_run_json(self._run_or_404(ctx)))

    async def _update_check_run(self, ctx: _Ctx) -> Reply:
        run = self._run_or_404(ctx)
        body = ctx.record.body if isinstance(ctx.record.body, dict) else {}
        self._check_run_rules(body, run)
        self._apply_check_run(run, "PATCH", body)
        return Reply(200, self.check_run_json(run))

    # people and comments ------------------------------------------------------------------

    async def _permission(self, ctx: _Ctx) -> Reply:
        username = ctx.params["username"]
        permission = self.permissions.get(username, self.default_permission)
        # `permission` is the legacy four-level view (maintain -> write, triage -> read);
        # `role_name` is the real role.
        legacy = {"maintain": "write", "triage": "read"}.get(permission, permission)
        role = PERMISSION_ROLES.get(permission, permission)
        user = self.user_json(username)
        user["permissions"] = {
            "admin": permission == "admin",
            "maintain": permission in ("admin", "maintain"),
            "push": permission in ("admin", "maintain", "write"),
            "triage": permission in ("admin", "maintain", "write", "triage"),
            "pull": permission != "none",
        }
        user["role_name"] = role
        return Reply(200, {"permission": legacy, "role_name": role, "user": user})

    def _issue_or_404(self, ctx: _Ctx) -> int:
        number = int(ctx.params["number"])
        if number not in self.pulls:
            raise ApiError(404, "Not Found")
        return number

    async def _list_issue_comments(self, ctx: _Ctx) -> Reply:
        number = self._issue_or_404(ctx)
        comments = [c for c in self.issue_comments if c.issue_number == number]
        since = ctx.request.query.get("since")
        if since:
            comments = [c for c in comments if c.updated_at >= since]
        page, headers = self._paginate(ctx, comments)
        return Reply(200, [self.issue_comment_json(c) for c in page], headers)

    async def _create_issue_comment(self, ctx: _Ctx) -> Reply:
        number = self._issue_or_404(ctx)
        body = ctx.record.body if isinstance(ctx.record.body, dict) else {}
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise _validation_failed("IssueComment", "body", "body wasn't supplied")
        if len(text) > MAX_OUTPUT_CHARS:
            raise _validation_failed(
                "IssueComment", "data", "Body is too long (maximum is 65536 characters)"
            )
        comment = IssueComment(
            id=self._next_id(),
            issue_number=number,
            body=text,
            user=self.bot_login,
            user_type="Bot",
            author_association="NONE",
            via_app=True,
        )
        self.issue_comments.append(comment)
        return Reply(
            201,
            self.issue_comment_json(comment),
            {"Location": f"{self.api_repo_url}/issues/comments/{comment.id}"},
        )

    async def _create_reaction(self, ctx: _Ctx) -> Reply:
        comment_id = int(ctx.params["id"])
        comment = next((c for c in self.issue_comments if c.id == comment_id), None)
        if comment is None:
            raise ApiError(404, "Not Found")
        body = ctx.record.body if isinstance(ctx.record.body, dict) else {}
        content = body.get("content")
        if content not in REACTIONS:
            raise _validation_failed("Reaction", "content", "content is not included in the list")
        reaction_id = _stable_id(f"{comment_id}:{content}:{self.bot_login}")
        created_at = iso(utcnow())
        status = 201
        if (content, self.bot_login) in comment.reactions:
            status = 200  # GitHub answers 200 with the existing reaction: idempotent.
        else:
            comment.reactions.append((content, self.bot_login))
        return Reply(
            status,
            {
                "id": reaction_id,
                "node_id": _node_id("REA_", reaction_id),
                "user": self.bot_json(),
                "content": content,
                "created_at": created_at,
            },
        )


def _default_message(status: int) -> str:
    return {
        400: "Bad Request",
        401: "Bad credentials",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
        422: "Unprocessable Entity",
        429: "Too Many Requests",
        500: "Server Error",
        502: "Server Error",
        503: "Service Unavailable",
        504: "We couldn't respond to your request in time. Sorry about that.",
    }.get(status, "Error")


async def _chunks(data: bytes, *, drop: bool, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    end = len(data) // 2 if drop else len(data)
    for start in range(0, end, size):
        yield data[start : min(start + size, end)]
        await asyncio.sleep(0)
    if drop:
        # Raising inside the payload makes aiohttp abort the connection mid-body.
        raise ConnectionResetError("fake GitHub dropped the connection")


def _join_link(link_path: str, target: str) -> str | None:
    """Resolve a symlink target relative to its directory; None if it leaves the repo."""
    if target.startswith("/"):
        return None
    parts = link_path.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts) or None


# -- payload adaptation -------------------------------------------------------------------------


def _rewrite_urls(node: Any, old_api: str, new_api: str, old_repo: str, new_repo: str) -> Any:
    if isinstance(node, dict):
        return {k: _rewrite_urls(v, old_api, new_api, old_repo, new_repo) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite_urls(v, old_api, new_api, old_repo, new_repo) for v in node]
    if isinstance(node, str):
        return node.replace(old_api, new_api).replace(old_repo, new_repo)
    return node


def adapt_payload(
    payload: dict[str, Any],
    fake: FakeGitHub,
    *,
    pr: PullRequest | int | None = None,
    check_run: CheckRun | int | None = None,
    comment: IssueComment | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Point a vendored payload at ``fake``: repository, installation, PR, SHAs and URLs.

    Every ``https://api.github.com`` URL becomes the fake's URL, so an App that follows URLs
    from payloads still never leaves loopback. Unspecified PR/check run: the only/first one.
    """
    old_repo = payload.get("repository", {}).get("full_name", "Codertocat/Hello-World")
    payload = _rewrite_urls(payload, "https://api.github.com", fake.url, old_repo, fake.full_name)
    if "repository" in payload:
        payload["repository"] = deep_merge(payload["repository"], fake.repo_json())
    if "installation" in payload or "action" in payload:
        payload.setdefault("installation", {})
        payload["installation"].update(
            {"id": fake.installation_id, "node_id": _node_id("I_", fake.installation_id)}
        )
    if "organization" in payload:
        payload["organization"]["login"] = fake.owner
    if "hook" in payload:  # ping
        payload["hook"]["app_id"] = fake.app_id
        payload["hook"]["type"] = "App"
        payload.pop("installation", None)

    if isinstance(pr, int):
        pr = fake.pull(pr)
    if isinstance(check_run, int):
        check_run = fake.check_runs[check_run]
    if (
        pr is None
        and fake.pulls
        and any(k in payload for k in ("pull_request", "check_run", "check_suite", "issue"))
    ):
        if check_run is not None:
            pr = next(
                (p for p in fake.pulls.values() if fake.head_sha(p) == check_run.head_sha), None
            )
        pr = pr or fake.pulls[min(fake.pulls)]

    if "pull_request" in payload and pr is not None:
        payload["pull_request"] = deep_merge(payload["pull_request"], fake.pr_json(pr))
        payload["number"] = pr.number
        payload["sender"] = fake.user_json(pr.user, pr.user_type)
        if payload.get("action") == "synchronize":
            payload["after"] = fake.head_sha(pr)

    if "check_suite" in payload:
        suite = payload["check_suite"]
        head_sha = fake.head_sha(pr) if pr is not None else fake.git.rev_parse("HEAD")
        suite.update(
            {
                "id": _stable_id(f"suite:{head_sha}"),
                "head_sha": head_sha,
                "head_branch": pr.head_ref if pr is not None else fake.default_branch,
                "pull_requests": [fake.pr_minimal_json(pr)] if pr is not None else [],
                "app": deep_merge(suite.get("app") or {}, fake.app_json()),
            }
        )
        suite.setdefault("before", head_sha)
        suite["after"] = head_sha

    if "check_run" in payload:
        data = payload["check_run"]
        if check_run is not None:
            data.update(fake.check_run_json(check_run))
            data["app"] = deep_merge(data.get("app") or {}, fake.app_json())
        else:
            head_sha = fake.head_sha(pr) if pr is not None else fake.git.rev_parse("HEAD")
            data.update(
                {
                    "name": fake.app_slug,
                    "head_sha": head_sha,
                    "pull_requests": [fake.pr_minimal_json(pr)] if pr is not None else [],
                    "app": deep_merge(data.get("app") or {}, fake.app_json()),
                }
            )
        suite = data.setdefault("check_suite", {})
        suite.update(
            {
                "id": _stable_id(f"suite:{data['head_sha']}"),
                "head_sha": data["head_sha"],
                "head_branch": pr.head_ref if pr is not None else fake.default_branch,
                "pull_requests": data["pull_requests"],
                "app": deep_merge(suite.get("app") or {}, fake.app_json()),
            }
        )

    if "issue" in payload and pr is not None:
        issue = payload["issue"]
        urls = fake._pr_urls(pr.number)
        issue.update(
            {
                "number": pr.number,
                "title": pr.title,
                "state": pr.state,
                "draft": pr.draft,
                "user": fake.user_json(pr.user, pr.user_type),
                "url": urls["issue_url"],
                "html_url": urls["html_url"],
                "comments_url": urls["comments_url"],
                "repository_url": fake.api_repo_url,
                "pull_request": {
                    "url": urls["url"],
                    "html_url": urls["html_url"],
                    "diff_url": urls["diff_url"],
                    "patch_url": urls["patch_url"],
                    "merged_at": None,
                },
            }
        )
        if "comment" in payload:
            if comment is None:
                comment = fake.add_issue_comment(pr.number, payload["comment"].get("body", ""))
            payload["comment"].update(fake.issue_comment_json(comment))
            payload["sender"] = fake.user_json(comment.user, comment.user_type)

    if payload.get("action") == "deleted" and "installation" in payload:
        installation = payload["installation"]
        installation["app_id"] = fake.app_id
        installation["app_slug"] = fake.app_slug
        installation["account"] = fake.user_json(fake.owner, fake.owner_type)

    return deep_merge(payload, overrides)
