"""How the App's HTTP server treats connections: deadlines and a bound, so that slow or
idle clients cannot starve the deliveries.

aiohttp has no deadline for a request's headers: a client that sends them a byte at a time
holds its connection (and a file descriptor) for as long as it likes, and a few hundred of
them use up the process's open files, after which GitHub's deliveries are not even
accepted. Two rules keep that from happening:
- a connection must send a whole request line and headers within `HEADER_TIMEOUT` of
  connecting or of its previous answer (aiohttp's keep-alive timer, which it starts at
  connection time, does exactly this: it closes a connection still waiting for its request);
- at most `MAX_CONNECTIONS` connections (less when the open-file limit is lower) are open
  at once; beyond it the oldest connection that is not in the middle of a request (slow
  headers, or idle between requests) is closed to make room, and only when every one is
  busy is the new connection refused.
The body has its own deadline (`WEBHOOK_READ_TIMEOUT`, bot/server/webhook.py).
"""

from __future__ import annotations

import logging
import resource
import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bot.settings import Settings

log = logging.getLogger(__name__)

# Of the open-file limit: what the connections may take, the rest is for Redis, GitHub
# and the files a process needs.
_FD_SHARE = 0.8
_LOG_EVERY = 60.0


def connection_limit(settings: Settings) -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return settings.max_connections
    return max(min(settings.max_connections, int(soft * _FD_SHARE)), 1)


def _waiting_for_request(handler: RequestHandler) -> bool:
    # aiohttp's handler awaits `_waiter` until a whole request has been parsed: set and not
    # done, the connection is sending headers or idle between requests.
    waiter = getattr(handler, "_waiter", None)
    return waiter is not None and not waiter.done()


class _Bound:
    """Wraps `Server.connection_made` (called for each new connection) with the bound."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self._server = server
        self._limit = limit
        self._admit = server.connection_made
        self.closed = 0
        self._logged = 0.0

    def __call__(self, handler: RequestHandler, transport: Any) -> None:
        self._admit(handler, transport)
        connections = self._server._connections
        if len(connections) <= self._limit:
            return
        victim = next(
            (h for h in connections if h is not handler and _waiting_for_request(h)), handler
        )
        victim.force_close()
        self.closed += 1
        now = time.monotonic()
        if now - self._logged >= _LOG_EVERY:
            self._logged = now
            log.warning(
                "%d connections open, the limit (MAX_CONNECTIONS or the open-file limit): "
                "closing %s (%d closed so far)",
                len(connections),
                "the new one, every other is busy"
                if victim is handler
                else "the oldest one that has not sent a whole request",
                self.closed,
            )


class BoundedRunner(web.AppRunner):
    """aiohttp's AppRunner, with the header deadline and the connection bound."""

    def __init__(self, app: web.Application, settings: Settings, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=settings.header_timeout, **kwargs)
        self.limit = connection_limit(settings)
        self.bound: _Bound | None = None

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        self.bound = _Bound(server, self.limit)
        # The one hook aiohttp calls for each new connection, with the handler.
        server.connection_made = self.bound  # type: ignore[method-assign]
        return server
