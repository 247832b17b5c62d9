"""The aiohttp application: built by `create_app(settings)`, never at import time."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from bot.github.auth import AppAuth
from bot.github.client import RetryPolicy, Sleep, WriteThrottle
from bot.github.gitdata import GitApiLimits
from bot.github.repo import RepoRef, TreeStore
from bot.github.tarball import TarballLimits
from bot.queue import InProcessQueue, JobHandler, JobQueue, QueueFull, Submitted
from bot.review import CONCLUDE_TIMEOUT, Analyzer, CachingAnalyzer, ReviewServices
from bot.server.jobs import AnyJob, JobRunner, ReviewJob, decode_job, encode_job
from bot.server.metrics import Metrics
from bot.server.reconcile import (
    PassReport,
    SeenRepos,
    Stranded,
    reconcile,
    reconcile_delivery_id,
    sleep_until,
)
from bot.server.shutdown import ShutdownPlan
from bot.server.state import SERVICE, BodyBudget, GitHubFactory, Service
from bot.server.webhook import handle_webhook
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.server.redisqueue import RedisQueue

log = logging.getLogger(__name__)

QueueFactory = Callable[[JobHandler[AnyJob], Settings], JobQueue[AnyJob]]


def _in_process_queue(handler: JobHandler[AnyJob], settings: Settings) -> JobQueue[AnyJob]:
    return InProcessQueue(handler, workers=settings.workers, maxsize=settings.queue_size)


ROLES = ("all", "web", "worker")


def create_app(
    settings: Settings,
    *,
    sleep: Sleep | None = None,
    retry_policy: RetryPolicy | None = None,
    analyzer: Analyzer | None = None,
    queue_factory: QueueFactory | None = None,
    role: str = "all",
) -> web.Application:
    """The App. `sleep`, `retry_policy` and `analyzer` are for tests (scaled-down waits, a
    stand-in engine); `queue_factory` swaps the in-process queue for another one.

    With `settings.redis_url` the queue is the shared one on Redis, and `role` says what
    this process does: `web` answers webhooks and queues, `worker` runs reviews (and
    serves only /healthz, /readyz and /metrics), `all` both."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if role != "all" and not settings.redis_url:
        raise ValueError("separate web and worker processes need REDIS_URL")
    sleep = sleep or asyncio.sleep
    metrics = Metrics()
    auth = AppAuth(settings.app_id, settings.private_key)
    redis_client = None
    throttle = WriteThrottle(settings.write_interval, sleep=sleep)
    if settings.redis_url and queue_factory is None:
        from bot.server.redisqueue import RedisWriteThrottle, connect

        # Each worker holds a connection while it waits for work (BLPOP).
        redis_client = connect(settings.redis_url, connections=32 + 2 * settings.workers)
        throttle = RedisWriteThrottle(
            redis_client, settings.write_interval, prefix=settings.redis_prefix, sleep=sleep
        )
    github = GitHubFactory(
        settings=settings,
        auth=auth,
        metrics=metrics,
        policy=retry_policy or RetryPolicy(),
        sleep=sleep,
        throttle=throttle,
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
        analyzer=CachingAnalyzer(settings.analysis_cache_bytes),
    )
    if analyzer is not None:
        review_services = dataclasses.replace(review_services, analyzer=analyzer)
    shared: RedisQueue[AnyJob] | None = None
    if redis_client is not None:
        from bot.server.redisqueue import RedisQueue

        shared = RedisQueue(
            redis_client,
            None,
            encode=encode_job,
            decode=decode_job,
            workers=settings.workers if role != "web" else 0,
            maxsize=settings.queue_size,
            prefix=settings.redis_prefix,
            lease=settings.job_lease,
        )
        runner = JobRunner(
            review_services,
            metrics,
            shared=shared,
            max_attempts=settings.max_attempts,
            retry_delay=settings.retry_delay,
        )
        if role != "web":
            shared.set_handler(runner.run_claimed)
        queue: JobQueue[AnyJob] = shared
    else:
        runner = JobRunner(review_services, metrics, retry_delay=settings.retry_delay)
        queue = (queue_factory or _in_process_queue)(runner, settings)

    async def follow_up(job: AnyJob) -> Submitted:
        return await queue.submit(job, follow_up=True)

    runner.bind(follow_up)
    metrics.track_queue(queue.depth, queue.running)
    if shared is not None:
        metrics.track_shared(shared)

    service = Service(
        settings=settings,
        metrics=metrics,
        github=github,
        trees=trees,
        runner=runner,
        queue=queue,
        body_budget=BodyBudget(settings.max_webhook_inflight_bytes),
        shared=shared,
        role=role,
    )
    app = web.Application()
    app[SERVICE] = service
    if role != "worker":
        app.router.add_post("/api/github/webhooks", handle_webhook)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
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
    shared = service.shared
    if shared is not None:
        shared.on_data_lost = lambda: _data_lost(service)
        await _check_persistence(service)
    await service.queue.start()
    reconciling = (
        asyncio.create_task(_reconcile_loop(service), name="flux-review-reconcile")
        if service.role != "web"
        else None
    )
    log.info(
        "flux-review ready (%s): app %d, GitHub API %s, %s",
        service.role,
        settings.app_id,
        settings.github_api_url,
        "no workers"
        if service.role == "web"
        else f"{settings.workers} workers"
        + (" on the shared queue" if service.shared is not None else ""),
    )
    try:
        yield
    finally:
        if reconciling is not None:
            reconciling.cancel()
            await asyncio.wait({reconciling})
        try:
            # Started by `_begin_shutdown`, unless the app stops without aiohttp's shutdown.
            await _shut_down(service)
        finally:
            service.github.session = None
            await session.close()
            if service.shared is not None:
                await service.shared.redis.aclose()


PERSISTENCE_WARNING = (
    "Redis at REDIS_URL keeps no append-only file (appendonly no): if it restarts, the "
    "reviews it holds are lost and only found again by reconciliation with GitHub. Set "
    "`appendonly yes` (see docs/deployment.md), or REDIS_PERSISTENCE=require to refuse "
    "to start without it."
)


async def _check_persistence(service: Service) -> None:
    assert service.shared is not None
    try:
        service.redis_persistence = await service.shared.persistence()
    except Exception as exc:
        log.warning("could not read Redis's persistence settings (%s)", type(exc).__name__)
        return
    if service.redis_persistence != "aof":
        log.error(PERSISTENCE_WARNING)


async def _data_lost(service: Service) -> None:
    """Redis came back without its data: put back what this process knows (the
    repositories it saw) and ask a worker for a reconciliation pass."""
    shared = service.shared
    assert shared is not None
    repos = [(s.installation_id, s.repo.owner, s.repo.name) for s in service.runner.seen]
    try:
        await shared.remember_repos(repos)
        await shared.request_reconcile()
    except Exception as exc:
        log.error("could not ask for a reconciliation (%s)", type(exc).__name__)
    service.reconcile_now.set()


# How often a worker looks whether a reconciliation pass is wanted.
RECONCILE_POLL = 2.0


async def _reconcile_loop(service: Service) -> None:
    settings = service.settings
    interval = settings.reconcile_interval
    last = time.monotonic()
    while True:
        asked = await sleep_until(service.reconcile_now, RECONCILE_POLL)
        service.reconcile_now.clear()
        due = asked or (interval > 0 and time.monotonic() - last >= interval)
        shared = service.shared
        try:
            if shared is not None:
                due = await shared.take_reconcile_request() or due
                if due and not await shared.claim_once("reconcile", max(interval / 2, 30.0)):
                    last = time.monotonic()  # another worker has it
                    continue
            if not due:
                continue
            last = time.monotonic()
            await reconcile_once(service)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciliation failed")


async def reconcile_once(service: Service) -> PassReport:
    """One pass: every open pull request of the repositories seen, against its reviews."""
    settings = service.settings
    shared = service.shared
    runner = service.runner
    repos = SeenRepos()
    if shared is not None:
        for iid, owner, name in await shared.remembered_repos():
            repos.add(iid, RepoRef(owner, name))
    for seen in runner.seen:
        repos.add(seen.installation_id, seen.repo)
    delivery = reconcile_delivery_id()

    async def held() -> set[str]:
        if shared is not None:
            return await shared.held_keys()
        keys = getattr(service.queue, "keys", None)
        return set(keys()) if keys is not None else set()

    async def queue(stranded: Stranded) -> bool:
        job = ReviewJob(
            repo=stranded.seen.repo,
            installation_id=stranded.seen.installation_id,
            number=stranded.number,
            delivery_id=delivery,
            trigger="reconciliation",
            revision=stranded.head_sha,
        )
        try:
            if shared is not None:
                outcome = await shared.submit(job, runs=stranded.runs)
            else:
                runner.take_over(job.key, stranded.runs)
                outcome = await service.queue.submit(job)
        except QueueFull as exc:
            log.warning("reconciliation: %s not queued (%s)", job.key, exc)
            return False
        return outcome is not Submitted.DUPLICATE

    report = await reconcile(
        repos,
        lambda iid: service.github.client(iid),
        queue,
        held,
        app_id=settings.app_id,
        # Past any review's limit, its conclusion's own, and a dead worker's lease.
        stale_after=settings.review_timeout + 2 * CONCLUDE_TIMEOUT + settings.job_lease,
        max_calls=settings.reconcile_max_calls,
    )
    log.info(
        "reconciliation (%s): %d repositories, %d open pull requests, %d reviews queued "
        "(%d with check runs left in progress), %d GitHub calls",
        delivery,
        report.repos,
        report.pulls,
        len(report.queued),
        sum(1 for s in report.queued if s.runs),
        report.calls,
    )
    if report.cut_short:
        log.warning(
            "reconciliation stopped at RECONCILE_MAX_CALLS (%d GitHub calls); the next pass "
            "goes on from the start",
            settings.reconcile_max_calls,
        )
    return report


# /readyz wants GitHub to have accepted the App's credentials within this long.
GITHUB_FRESH = 60.0


async def check_github(service: Service) -> tuple[bool, str]:
    """Whether GitHub accepted the App's credentials in the last minute; if not, mint an
    installation token now to find out. A process that has seen no installation yet (a
    fresh deployment, a web process) has nothing to mint a token for and is not held back."""
    github = service.github
    if github.ok_at is not None and time.monotonic() - github.ok_at <= GITHUB_FRESH:
        return True, "ok"
    if github.last_installation is None:
        return True, "no installation seen yet"
    try:
        async with asyncio.timeout(10.0):
            await github.client(github.last_installation).mint_token()
    except Exception as exc:
        service.github_error = f"no token could be minted: {type(exc).__name__}"
        return False, service.github_error
    github.ok_at = time.monotonic()
    return True, "ok"


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
    """Liveness: the process answers. What it depends on is /readyz's."""
    service = request.app[SERVICE]
    return web.json_response(
        {
            "status": "ok",
            "role": service.role,
            "queue_depth": service.queue.depth(),
            "running": service.queue.running(),
        }
    )


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when this process can do its part, else 503 with the reasons."""
    service = request.app[SERVICE]
    problems: list[str] = []
    checks: dict[str, object] = {}
    if service.stopping is not None:
        problems.append("shutting down")
    shared = service.shared
    if shared is not None:
        try:
            async with asyncio.timeout(2.0):
                await shared.redis.ping()
            checks["redis"] = "ok"
            if service.redis_persistence is not None:
                checks["redis_persistence"] = service.redis_persistence
        except Exception as exc:
            checks["redis"] = "unreachable"
            problems.append(f"Redis unreachable ({type(exc).__name__})")
        else:
            # Redis answers reads while it refuses writes (`maxmemory` reached with
            # `noeviction`, a replica that became read-only): every delivery would get 503.
            refusal = await shared.write_probe()
            if refusal is not None:
                checks["redis"] = "refuses writes"
                problems.append(f"Redis refuses writes ({refusal})")
            stats = await shared.read_stats()
            checks["workers_alive"] = stats.workers_alive
            checks["queue_depth"] = stats.depth
            checks["oldest_job_age_seconds"] = round(stats.oldest_age, 3)
            if stats.workers_alive == 0:
                problems.append("no worker has sent a heartbeat to Redis lately")
            if service.role != "worker" and stats.depth >= service.settings.queue_size:
                problems.append(f"the queue is full ({stats.depth} jobs pending)")
    elif service.queue.depth() >= service.settings.queue_size:
        problems.append(f"the queue is full ({service.queue.depth()} jobs pending)")
    github_ok, github_note = await check_github(service)
    checks["github"] = github_note
    if not github_ok:
        problems.append(f"GitHub did not accept the App in the last minute: {github_note}")
    body: dict[str, object] = {
        "status": "ok" if not problems else "unavailable",
        "checks": checks,
    }
    if problems:
        body["problems"] = problems
    return web.json_response(body, status=200 if not problems else 503)


async def metrics_view(request: web.Request) -> web.Response:
    body, content_type = request.app[SERVICE].metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
