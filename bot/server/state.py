"""The App's state, built by `create_app` and stored on the aiohttp application."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from cachetools import TTLCache

from bot.github.auth import AppAuth
from bot.github.client import AnyLog, GitHubClient, RetryPolicy, Sleep, WriteThrottle
from bot.github.repo import TreeStore
from bot.queue import JobQueue
from bot.server.jobs import AnyJob, JobRunner
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

    def client(self, installation_id: int, log: AnyLog | None = None) -> GitHubClient:
        if self.session is None:
            raise RuntimeError("the App is not running (no HTTP session)")
        return GitHubClient(
            self.session,
            base_url=self.settings.github_api_url,
            auth=self.auth,
            installation_id=installation_id,
            policy=self.policy,
            throttle=self.throttle,
            sleep=self.sleep,
            on_response=self.metrics.github_response,
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


@dataclass
class Service:
    settings: Settings
    metrics: Metrics
    github: GitHubFactory
    trees: TreeStore
    runner: JobRunner
    queue: JobQueue[AnyJob]
    body_budget: BodyBudget = field(default_factory=lambda: BodyBudget(100 * 1024 * 1024))
    # Delivery ids already accepted; GitHub keeps the id when a delivery is redelivered,
    # and lets anyone redeliver for days.
    deliveries: TTLCache[str, bool] = field(
        default_factory=lambda: TTLCache(maxsize=20_000, ttl=3 * 24 * 3600.0)
    )

    @property
    def secret(self) -> bytes:
        return self.settings.webhook_secret.encode("utf-8")


SERVICE = web.AppKey("flux_review_service", Service)
