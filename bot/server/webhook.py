"""POST /api/github/webhooks: verify, dedupe, enqueue, answer at once.

GitHub fails a delivery that gets no 2XX within 10 seconds and does not retry it, so the
handler does no GitHub call: it turns the event into jobs and answers 202.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from aiohttp import web
from gidgethub import sansio

from bot.queue import QueueFull, Submitted
from bot.review import context_log
from bot.server.events import EventContext, router
from bot.server.state import SERVICE

log = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body (constant time)."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len(SIGNATURE_PREFIX) :].strip().lower(), expected)


class _TooLarge(Exception):
    pass


async def _read_body(request: web.Request, limit: int) -> bytes:
    # Refuse by Content-Length before reading a byte, and count while reading, since the
    # header may be absent (chunked) or lie.
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _where(data: dict[str, Any]) -> tuple[str | None, int | None]:
    """Repository and PR number of a payload, for log lines."""
    repository = data.get("repository")
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    item = data.get("pull_request") or data.get("issue")
    number = item.get("number") if isinstance(item, dict) else None
    return (str(repo) if repo else None), (number if isinstance(number, int) else None)


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def handle_webhook(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    metrics = service.metrics
    event_name = request.headers.get("X-GitHub-Event", "")
    try:
        body = await _read_body(request, service.settings.max_webhook_bytes)
    except _TooLarge:
        metrics.delivery(event_name, "too_large")
        return _answer(413, "payload too large")

    if not verify_signature(service.secret, body, request.headers.get("X-Hub-Signature-256")):
        metrics.delivery(event_name, "bad_signature")
        log.warning(
            "webhook with a missing or wrong signature refused (event %r, delivery %r)",
            event_name[:40],
            request.headers.get("X-GitHub-Delivery", "")[:64],
        )
        return _answer(401, "invalid signature")

    delivery = request.headers.get("X-GitHub-Delivery", "").strip()
    if not event_name or not delivery:
        metrics.delivery(event_name, "bad_request")
        return _answer(400, "missing X-GitHub-Event or X-GitHub-Delivery")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        metrics.delivery(event_name, "bad_request")
        return _answer(400, "the body is not JSON")
    if not isinstance(data, dict):
        metrics.delivery(event_name, "bad_request")
        return _answer(400, "the body is not a JSON object")

    repo, number = _where(data)
    dlog = context_log(log, delivery=delivery, repo=repo, number=number)

    if event_name == "ping":
        metrics.delivery(event_name, "ping")
        dlog.info("ping: %s", str(data.get("zen", ""))[:100])
        return web.json_response({"message": "pong"})

    # GitHub keeps the delivery id on a redelivery; one that was accepted already is a
    # duplicate. A delivery refused with 503 is not remembered, so its redelivery runs.
    if delivery in service.deliveries:
        metrics.delivery(event_name, "duplicate")
        dlog.info("%s: duplicate delivery ignored", event_name)
        return _answer(202, "duplicate delivery")

    event = sansio.Event(data, event=event_name, delivery_id=delivery)
    ctx = EventContext(
        delivery_id=delivery, submit=service.queue.submit, log=dlog, app_id=service.settings.app_id
    )
    try:
        await router.dispatch(event, ctx)
    except QueueFull as exc:
        metrics.delivery(event_name, "queue_full")
        dlog.warning("%s: refused, queue full (%s)", event_name, exc)
        return _answer(503, "busy, redeliver later")
    except (KeyError, TypeError, ValueError) as exc:
        # A payload without the fields its event always has.
        metrics.delivery(event_name, "bad_request")
        dlog.warning("%s: malformed payload (%s: %s)", event_name, type(exc).__name__, exc)
        return _answer(400, "malformed payload")

    service.deliveries[delivery] = True
    if not ctx.outcomes:
        outcome = "ignored"
    elif any(o is Submitted.QUEUED for o in ctx.outcomes):
        outcome = "queued"
    elif any(o is Submitted.REPLACED for o in ctx.outcomes):
        outcome = "replaced"
    else:
        outcome = "duplicate_job"
    metrics.delivery(event_name, outcome)
    return _answer(202, outcome)
