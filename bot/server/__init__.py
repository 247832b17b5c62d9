"""The GitHub App's web service: `python -m bot serve` runs `serve()`."""

from __future__ import annotations

import logging
import sys

from bot.server.app import create_app
from bot.server.shutdown import ShutdownPlan
from bot.settings import SettingsError, configure_logging, load_settings

__all__ = ["LISTEN_BACKLOG", "create_app", "serve"]

log = logging.getLogger(__name__)
# Connections the kernel queues before the event loop accepts them. aiohttp's 128 is
# overrun by a burst of deliveries (GitHub opens one connection per delivery), and the
# kernel then drops the surplus, which the sender retries only after 1, 3, 7... seconds.
LISTEN_BACKLOG = 1024


def serve(host: str | None = None, port: int | None = None) -> int:
    """Run the App until SIGINT/SIGTERM; the exit status (2: invalid settings)."""
    from aiohttp import web

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"flux-review: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    app = create_app(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    try:
        web.run_app(
            app,
            host=bind_host,
            port=bind_port,
            # How long webhook requests in flight when the listener closed may still take;
            # the reviews are stopped in parallel, and both end within SHUTDOWN_GRACE
            # (bot/server/shutdown.py).
            shutdown_timeout=ShutdownPlan.of(settings).webhooks,
            backlog=LISTEN_BACKLOG,
            print=lambda _text: log.info("listening on %s:%d", bind_host, bind_port),
        )
    except OSError as exc:
        print(
            f"flux-review: cannot listen on {bind_host}:{bind_port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    return 0
