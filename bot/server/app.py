"""The aiohttp application: built by `create_app(settings)`, never at import time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.github.auth import AppAuth
from bot.github.client import RetryPolicy, Sleep, WriteThrottle
from bot.github.gitdata import GitApiLimits
from bot.github.repo import TreeStore
from bot.github.tarball import TarballLimits
from bot.queue import InProcessQueue, JobHandler, JobQueue, Submitted
from bot.review import Analyzer, ReviewServices
from bot.server.jobs import AnyJob, JobRunner
from bot.server.metrics import Metrics
from bot.server.shutdown import ShutdownPlan
from bot.server.state import SERVICE, BodyBudget, GitHubFactory, Service
from bot.server.webhook import handle_webhook
from bot.settings import Settings

log = logging.getLogger(__name__)

QueueFactory = Callable[[JobHandler[AnyJob], Settings], JobQueue[AnyJob]]


def _in_process_queue(handler: JobHandler[AnyJob], settings: Settings) -> JobQueue[AnyJob]:
    return InProcessQueue(handler, workers=settings.workers, maxsize=settings.queue_size)


def create_app(
    settings: Settings,
    *,
    sleep: Sleep | None = None,
    retry_policy: RetryPolicy | None = None,
    analyzer: Analyzer | None = None,
    queue_factory: QueueFactory | None = None,
) -> web.Application:
    """The App. `sleep`, `retry_policy` and `analyzer` are for tests (scaled-down waits, a
    stand-in engine); `queue_factory` swaps the in-process queue for a shared one."""
    sleep = sleep or asyncio.sleep
    metrics = Metrics()
    auth = AppAuth(settings.app_id, settings.private_key)
    github = GitHubFactory(
        settings=settings,
        auth=auth,
        metrics=metrics,
        policy=retry_policy or RetryPolicy(),
        sleep=sleep,
        throttle=WriteThrottle(settings.write_interval, sleep=sleep),
    )
    limits = TarballLimits(
        max_compressed=settings.max_tarball_bytes,
        max_unpacked=settings.max_unpacked_bytes,
        max_file=settings.max_file_bytes,
        max_members=settings.max_tarball_members,
    )
    trees = TreeStore(
        limits,
        settings.tree_cache_bytes,
        download_timeout=settings.review_timeout,
        git_api=GitApiLimits(
            max_blobs=settings.git_api_max_blobs,
            max_bytes=settings.git_api_max_bytes,
            max_file=settings.max_file_bytes,
            max_entries=settings.max_tarball_members,
        ),
    )
    review_services = ReviewServices(
        github=github.client,
        trees=trees,
        timeout=settings.review_timeout,
        docs_url=settings.docs_url,
        **({"analyzer": analyzer} if analyzer is not None else {}),
    )
    runner = JobRunner(review_services, metrics)
    queue = (queue_factory or _in_process_queue)(runner, settings)

    async def follow_up(job: AnyJob) -> Submitted:
        return await queue.submit(job, follow_up=True)

    runner.bind(follow_up)
    metrics.track_queue(queue.depth, queue.running)

    service = Service(
        settings=settings,
        metrics=metrics,
        github=github,
        trees=trees,
        runner=runner,
        queue=queue,
        body_budget=BodyBudget(settings.max_webhook_inflight_bytes),
    )
    app = web.Application()
    app[SERVICE] = service
    app.router.add_post("/api/github/webhooks", handle_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.on_shutdown.append(_begin_shutdown)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    service = app[SERVICE]
    settings = service.settings
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=60, connect=10),
        # GitHub's secondary limits allow 100 concurrent requests per installation; stay
        # well under it.
        connector=aiohttp.TCPConnector(limit=32),
    )
    service.github.session = session
    await service.queue.start()
    log.info(
        "flux-review ready: app %d, GitHub API %s, %d workers",
        settings.app_id,
        settings.github_api_url,
        settings.workers,
    )
    try:
        yield
    finally:
        try:
            # Started by `_begin_shutdown`, unless the app stops without aiohttp's shutdown.
            await _shut_down(service)
        finally:
            service.github.session = None
            await session.close()


async def _begin_shutdown(app: web.Application) -> None:
    # aiohttp calls this as soon as it has closed the listener, then waits for the requests
    # in flight (up to `shutdown_timeout`) before it runs the cleanup: the grace starts
    # here, and runs in parallel with that wait.
    _start(app[SERVICE])


def _start(service: Service) -> asyncio.Task[None]:
    if service.stopping is None:
        service.stopping = asyncio.create_task(_stop(service), name="flux-review-shutdown")
    return service.stopping


async def _shut_down(service: Service) -> None:
    try:
        await _start(service)
    except Exception:
        log.exception("shutdown failed")


async def _stop(service: Service) -> None:
    plan = ShutdownPlan.of(service.settings)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + plan.grace
    # aiohttp reads nothing more from a connection once the listener has closed, so a body
    # still arriving would only wait for its read timeout; it gets its 503 now. So does a
    # request past its body: the queue takes no more.
    service.body_reads.cut_off(loop.time())
    log.info(
        "shutting down within %.1fs: pending reviews may start for %.1fs, then running ones "
        "get %.1fs to conclude their check runs",
        plan.grace,
        plan.drain,
        plan.cancel_wait,
    )
    left = await service.queue.close(plan.drain, cancel_wait=plan.cancel_wait)
    if left:
        budget = deadline - plan.margin - loop.time()
        concluded = await service.runner.conclude_not_started(left, budget)
        log.warning(
            "shutdown: %d jobs never started; %d check runs concluded `cancelled`",
            len(left),
            concluded,
        )


async def healthz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.json_response(
        {
            "status": "ok",
            "queue_depth": service.queue.depth(),
            "running": service.queue.running(),
        }
    )


async def metrics_view(request: web.Request) -> web.Response:
    body, content_type = request.app[SERVICE].metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
