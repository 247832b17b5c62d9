"""The GitHub App's web service: `python -m bot serve` runs `serve()`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from bot.server.app import create_app
from bot.server.listen import BoundedRunner
from bot.server.shutdown import ShutdownPlan
from bot.settings import Settings, SettingsError, configure_logging, load_settings

__all__ = ["LISTEN_BACKLOG", "create_app", "serve", "work"]

log = logging.getLogger(__name__)
# Connections the kernel queues before the event loop accepts them. aiohttp's 128 is
# overrun by a burst of deliveries (GitHub opens one connection per delivery), and the
# kernel then drops the surplus, which the sender retries only after 1, 3, 7... seconds.
LISTEN_BACKLOG = 1024


def _settings() -> Settings | None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"flux-review: {exc}", file=sys.stderr)
        return None
    configure_logging(settings)
    if (
        settings.redis_url
        and settings.redis_persistence == "require"
        and not _redis_keeps(settings.redis_url)
    ):
        print(
            "flux-review: REDIS_PERSISTENCE=require, and the Redis at REDIS_URL keeps no "
            "append-only file (set `appendonly yes`; see docs/deployment.md)",
            file=sys.stderr,
        )
        return None
    return settings


def _redis_keeps(url: str) -> bool:
    """Whether the Redis at `url` keeps an append-only file; an unreachable one is given
    the benefit of the doubt (/readyz says it is unreachable)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        info = client.info("persistence")
    except (redis.RedisError, OSError):
        return True
    finally:
        client.close()
    return bool(int(info.get("aof_enabled", 0)))


def serve(host: str | None = None, port: int | None = None, *, worker: bool = True) -> int:
    """Run the App until SIGINT/SIGTERM; the exit status (2: invalid settings).

    Without REDIS_URL the reviews run in this process. With it, this process answers
    webhooks and queues in Redis, and, unless `worker` is False, starts one worker
    process beside it (`python -m bot worker`) and starts it again if it dies."""
    settings = _settings()
    if settings is None:
        return 2
    if not worker and not settings.redis_url:
        print("flux-review: --no-worker needs REDIS_URL (the shared queue)", file=sys.stderr)
        return 2
    role = "web" if settings.redis_url else "all"
    app = create_app(settings, role=role)
    _freeze_heap()
    if settings.redis_url and worker:
        app.cleanup_ctx.append(_worker_child)
    bind_host = host or settings.host
    bind_port = port or settings.port
    try:
        asyncio.run(_serve(app, settings, bind_host, bind_port))
    except OSError as exc:
        print(
            f"flux-review: cannot listen on {bind_host}:{bind_port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    return 0


async def _serve(app: web.Application, settings: Settings, host: str, port: int) -> None:
    runner = BoundedRunner(
        app,
        settings,
        # How long webhook requests in flight when the listener closed may still take; the
        # reviews are stopped in parallel, and both end within SHUTDOWN_GRACE
        # (bot/server/shutdown.py).
        shutdown_timeout=ShutdownPlan.of(settings).webhooks,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=LISTEN_BACKLOG).start()
        log.info("listening on %s:%d (at most %d connections)", host, port, runner.limit)
        await _until_signalled()
    finally:
        await runner.cleanup()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _worker_child(_app: web.Application) -> AsyncIterator[None]:
    """A `python -m bot worker` process beside the web one, for as long as it runs: the
    reviews compete with the webhooks for the CPU, not for one interpreter."""
    stopping = asyncio.Event()

    async def keep() -> None:
        while not stopping.is_set():
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "worker", "--exit-with-parent"
            )
            log.info("worker process %d started", child.pid)
            procs.append(child)
            code = await child.wait()
            procs.remove(child)
            if stopping.is_set():
                return
            log.error("worker process %d exited (%s); starting another", child.pid, code)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)

    procs: list[asyncio.subprocess.Process] = []
    keeper = asyncio.create_task(keep(), name="flux-review-worker-process")
    try:
        yield
    finally:
        stopping.set()
        for child in list(procs):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(keeper, timeout=_CHILD_GRACE)
        for child in list(procs):
            with contextlib.suppress(ProcessLookupError):
                child.kill()


def _freeze_heap() -> None:
    """Leave what the imports and the app's setup made (tens of thousands of objects, all
    kept for the process's life) out of the garbage collector's full passes, which would
    otherwise walk them all, each a pause of tens of milliseconds in the middle of a burst
    of webhooks or a review."""
    gc.collect()
    gc.freeze()


# SHUTDOWN_GRACE is the worker's own; it ends within it.
_CHILD_GRACE = 30.0


def work(port: int | None = None, *, exit_with_parent: bool = False) -> int:
    """`python -m bot worker`: review jobs from the shared queue until SIGTERM. With
    `port`, also answer /healthz, /readyz and /metrics there."""
    settings = _settings()
    if settings is None:
        return 2
    if not settings.redis_url:
        print("flux-review: the worker needs REDIS_URL (the shared queue)", file=sys.stderr)
        return 2
    try:
        asyncio.run(_work(settings, port, exit_with_parent))
    except OSError as exc:
        print(f"flux-review: cannot listen on port {port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _work(settings: Settings, port: int | None, exit_with_parent: bool) -> None:
    app = create_app(settings, role="worker")
    _freeze_heap()
    if exit_with_parent:
        # The worker `serve` starts beside itself shares the machine with the process that
        # answers webhooks: a review may wait a moment for the CPU, an acknowledgement
        # should not (GitHub gives up on a delivery after 10 s, and a burst is hundreds).
        with contextlib.suppress(OSError):
            os.nice(10)
    runner = BoundedRunner(app, settings)
    await runner.setup()
    if port:
        await web.TCPSite(runner, settings.host, port, backlog=LISTEN_BACKLOG).start()
        log.info("worker health and metrics on %s:%d", settings.host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()

    async def orphaned() -> None:
        # The web process that started this one was killed (SIGKILL leaves no chance to
        # stop it): finish like on SIGTERM; what runs is concluded or given back.
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        log.warning("the web process is gone; stopping")
        stop.set()

    watcher = asyncio.create_task(orphaned()) if exit_with_parent else None
    await stop.wait()
    if watcher is not None:
        watcher.cancel()
    await runner.cleanup()
