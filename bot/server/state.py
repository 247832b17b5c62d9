"""The App's state, built by `create_app` and stored on the aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from cachetools import TTLCache

from bot.github.auth import AppAuth
from bot.github.client import AnyLog, GitHubClient, RetryPolicy, Sleep, WriteThrottle
from bot.github.repo import TreeStore
from bot.queue import JobQueue
from bot.server.jobs import AnyJob, JobRunner

if TYPE_CHECKING:
    from bot.server.redisqueue import RedisQueue
from bot.server.metrics import Metrics
from bot.settings import Settings


@dataclass
class GitHubFactory:
    """Clients for installations; the HTTP session exists only while the app runs."""

    settings: Settings
    auth: AppAuth
    metrics: Metrics
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Sleep = asyncio.sleep
    throttle: WriteThrottle = field(default_factory=lambda: WriteThrottle(1.0))
    session: aiohttp.ClientSession | None = None
    # The last installation a job was for, and when GitHub last answered the App as one
    # that can act (monotonic): what /readyz reports.
    last_installation: int | None = None
    ok_at: float | None = None

    def _response(self, method: str, status: str) -> None:
        self.metrics.github_response(method, status)
        if status.isdigit() and int(status) < 500 and int(status) != 401:
            self.ok_at = time.monotonic()

    def client(self, installation_id: int, log: AnyLog | None = None) -> GitHubClient:
        if self.session is None:
            raise RuntimeError("the App is not running (no HTTP session)")
        self.last_installation = installation_id
        return GitHubClient(
            self.session,
            base_url=self.settings.github_api_url,
            auth=self.auth,
            installation_id=installation_id,
            policy=self.policy,
            throttle=self.throttle,
            sleep=self.sleep,
            on_response=self._response,
            on_latency=self.metrics.github_latency,
            log=log,
        )


class BodyBudget:
    """Bytes of webhook bodies being received at once, over all requests.

    One delivery is at most MAX_WEBHOOK_BYTES, but a burst of large ones, or senders that
    trickle their bodies, would otherwise hold that much memory each.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, nbytes: int) -> bool:
        if self.used + nbytes > self.limit:
            return False
        self.used += nbytes
        return True

    def give(self, nbytes: int) -> None:
        self.used -= nbytes


class BodyReads:
    """The deadlines of webhook bodies being received. aiohttp reads nothing more from a
    connection once its listener has closed, so at shutdown a body still arriving can never
    complete: the shutdown brings these deadlines forward and the request is answered."""

    def __init__(self) -> None:
        self._deadlines: set[asyncio.Timeout] = set()
        self.cutoff: float | None = None  # loop time; set once shutting down

    @contextlib.asynccontextmanager
    async def watch(self, deadline: asyncio.Timeout) -> AsyncIterator[None]:
        self._bring_forward(deadline)
        self._deadlines.add(deadline)
        try:
            yield
        finally:
            self._deadlines.discard(deadline)

    def cut_off(self, when: float) -> None:
        self.cutoff = when
        for deadline in self._deadlines:
            self._bring_forward(deadline)

    def cut(self) -> bool:
        """Whether the shutdown's cut-off has passed."""
        return self.cutoff is not None and asyncio.get_running_loop().time() >= self.cutoff

    def _bring_forward(self, deadline: asyncio.Timeout) -> None:
        if self.cutoff is None:
            return
        when = deadline.when()
        if when is None or when > self.cutoff:
            deadline.reschedule(self.cutoff)


@dataclass
class Service:
    settings: Settings
    metrics: Metrics
    github: GitHubFactory
    trees: TreeStore
    runner: JobRunner
    queue: JobQueue[AnyJob]
    body_budget: BodyBudget = field(default_factory=lambda: BodyBudget(100 * 1024 * 1024))
    body_reads: BodyReads = field(default_factory=BodyReads)
    # Delivery ids already accepted; GitHub keeps the id when a delivery is redelivered,
    # and lets anyone redeliver for days.
    deliveries: TTLCache[str, bool] = field(
        default_factory=lambda: TTLCache(maxsize=20_000, ttl=3 * 24 * 3600.0)
    )
    # The shutdown, from the moment the listener closed; see bot/server/shutdown.py.
    stopping: asyncio.Task[None] | None = None
    # The shared queue, when REDIS_URL is set (then `queue` is it too).
    shared: RedisQueue[AnyJob] | None = None
    # "all": webhooks and reviews; "web": webhooks only; "worker": reviews only.
    role: str = "all"
    github_error: str | None = None
    # `aof` or `none`, once read from Redis at start.
    redis_persistence: str | None = None
    # Set when a reconciliation pass is wanted now (Redis lost its data).
    reconcile_now: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def secret(self) -> bytes:
        return self.settings.webhook_secret.encode("utf-8")


SERVICE = web.AppKey("flux_review_service", Service)
