"""POST /api/github/webhooks: verify, dedupe, enqueue, answer at once.

GitHub fails a delivery that gets no 2XX within 10 seconds and does not retry it, so the
handler does no GitHub call: it turns the event into jobs and answers 202.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.parse
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from gidgethub import sansio

from bot.queue import QueueClosed, QueueFull, QueueUnavailable, Submitted
from bot.review import context_log
from bot.server.events import EventContext, router
from bot.server.events.context import Log
from bot.server.jobs import AnyJob
from bot.server.state import SERVICE, BodyBudget, BodyReads

log = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
_EVENT = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DELIVERY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")
SHUTTING_DOWN = "flux-review is shutting down: redeliver this delivery once it is back"


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """True when `X-Hub-Signature-256` is the HMAC-SHA256 of the raw body (constant time)."""
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len(SIGNATURE_PREFIX) :].strip().lower(), expected)


class _Refused(Exception):
    """The delivery is answered `status` with `message`; `outcome` labels the metric."""

    def __init__(self, status: int, message: str, outcome: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.outcome = outcome


async def _read_body(
    request: web.Request, limit: int, budget: BodyBudget, timeout: float, reads: BodyReads
) -> bytes:
    # Refuse by Content-Length before reading a byte, and count while reading, since the
    # header may be absent (chunked) or lie.
    length = request.content_length
    if length is not None and length > limit:
        raise _Refused(413, f"payload too large (over {limit} bytes)", "too_large")
    reserved = 0
    try:
        if length is not None:
            if not budget.take(length):
                raise _Refused(503, "busy receiving other deliveries, redeliver later", "busy")
            reserved = length
        body = bytearray()
        async with asyncio.timeout(timeout) as deadline, reads.watch(deadline):
            async for chunk in request.content.iter_chunked(64 * 1024):
                if len(body) + len(chunk) > limit:
                    raise _Refused(413, f"payload too large (over {limit} bytes)", "too_large")
                body += chunk
                if len(body) > reserved:
                    if not budget.take(len(body) - reserved):
                        raise _Refused(
                            503, "busy receiving other deliveries, redeliver later", "busy"
                        )
                    reserved = len(body)
        return bytes(body)
    except TimeoutError:
        if reads.cut():
            raise _Refused(503, SHUTTING_DOWN, "shutting_down") from None
        raise _Refused(408, "the body took too long to arrive", "timeout") from None
    except (aiohttp.ClientError, ConnectionError, EOFError):
        # The sender went away mid-body; nobody reads this answer, but it is no server error.
        raise _Refused(400, "the body was cut short", "bad_request") from None
    finally:
        budget.give(reserved)


def _single_header(request: web.Request, name: str) -> str:
    """The header's value; a header sent twice with different values is refused, since
    which one a proxy or the signature check saw is then anyone's guess."""
    values = {v.strip() for v in request.headers.getall(name, [])}
    if len(values) > 1:
        raise _Refused(400, f"conflicting {name} headers", "bad_request")
    return values.pop() if values else ""


def _parse_payload(request: web.Request, body: bytes) -> dict[str, Any]:
    """The event payload. GitHub sends JSON, or, for a webhook configured with the
    `application/x-www-form-urlencoded` content type, the JSON in a `payload` form field
    (the signature still covers the raw body)."""
    content_type = request.content_type if request.headers.get("Content-Type") else ""
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields = urllib.parse.parse_qs(
                body.decode("ascii"), strict_parsing=True, max_num_fields=16
            )
        except (UnicodeDecodeError, ValueError):
            raise _Refused(400, "the form-encoded body is malformed", "bad_request") from None
        payloads = fields.get("payload", [])
        if len(payloads) != 1:
            raise _Refused(
                400, "a form-encoded delivery needs exactly one `payload` field", "bad_request"
            )
        text: str | bytes = payloads[0]
    elif content_type in ("", "application/json") or content_type.endswith("+json"):
        text = body
    else:
        raise _Refused(
            415,
            f"unsupported Content-Type {content_type[:60]!r}: set the webhook's content type "
            "to application/json",
            "bad_request",
        )
    try:
        data = _loads(text)
    except (ValueError, RecursionError):
        # ValueError covers bad UTF-8, bad JSON and integers past Python's digit limit;
        # RecursionError a body of a few hundred thousand nested brackets.
        raise _Refused(400, "the body is not JSON", "bad_request") from None
    if not isinstance(data, dict):
        raise _Refused(400, "the body is not a JSON object", "bad_request")
    return data


def _loads(text: str | bytes) -> Any:
    # orjson parses a pull request's payload (tens of kB) in a fifth of the time json
    # takes, which is most of what a webhook costs; what orjson refuses and json takes
    # (NaN, lone surrogates, a BOM) gets json's answer. Unlike json, orjson reads an
    # integer past 64 bits as a float: no id GitHub sends comes near that.
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _where(data: dict[str, Any]) -> tuple[str | None, int | None]:
    """Repository and PR number of a payload, for log lines."""
    repository = data.get("repository")
    repo = repository.get("full_name") if isinstance(repository, dict) else None
    item = data.get("pull_request") or data.get("issue")
    number = item.get("number") if isinstance(item, dict) else None
    return (str(repo) if repo else None), (number if isinstance(number, int) else None)


def _log_jobs(dlog: Log, event_name: str, ctx: EventContext) -> None:
    for job, submitted in zip(ctx.jobs, ctx.outcomes, strict=True):
        dlog.info("%s: %s %s (%s)", event_name, type(job).__name__, submitted.value, job.key)


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


def _unavailable(message: str) -> web.Response:
    response = _answer(503, message)
    response.headers["Retry-After"] = "60"
    return response


async def handle_webhook(request: web.Request) -> web.Response:
    started = time.monotonic()
    try:
        return await _handle_webhook(request)
    finally:
        request.app[SERVICE].metrics.ack(time.monotonic() - started)


REDIS_DOWN = "flux-review cannot reach its queue (Redis): redeliver this delivery once it is back"


async def _handle_webhook(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    metrics = service.metrics
    settings = service.settings
    event_name = request.headers.get("X-GitHub-Event", "")
    try:
        body = await _read_body(
            request,
            settings.max_webhook_bytes,
            service.body_budget,
            settings.webhook_read_timeout,
            service.body_reads,
        )
        signature = _single_header(request, "X-Hub-Signature-256")
        if not verify_signature(service.secret, body, signature):
            log.warning(
                "webhook with a missing or wrong signature refused (event %r, delivery %r)",
                event_name[:40],
                request.headers.get("X-GitHub-Delivery", "")[:64],
            )
            raise _Refused(401, "invalid signature", "bad_signature")
        event_name = _single_header(request, "X-GitHub-Event")
        delivery = _single_header(request, "X-GitHub-Delivery")
        if not event_name or not delivery:
            raise _Refused(400, "missing X-GitHub-Event or X-GitHub-Delivery", "bad_request")
        # GitHub's event names are snake_case words and delivery ids GUIDs; anything else
        # would only end up in log lines and the dedupe cache.
        if not _EVENT.fullmatch(event_name) or not _DELIVERY.fullmatch(delivery):
            raise _Refused(400, "malformed X-GitHub-Event or X-GitHub-Delivery", "bad_request")
        data = _parse_payload(request, body)
    except _Refused as refused:
        metrics.delivery(event_name, refused.outcome)
        if refused.outcome != "bad_signature":  # logged as a warning above
            log.info(
                "delivery %r (%s) refused: %d %s",
                request.headers.get("X-GitHub-Delivery", "")[:64],
                event_name[:40],
                refused.status,
                refused.message,
            )
        response = _answer(refused.status, refused.message)
        if refused.outcome == "shutting_down":
            response.headers["Retry-After"] = "60"
        return response
    del body

    repo, number = _where(data)
    dlog = context_log(log, delivery=delivery, repo=repo, number=number)

    if event_name == "ping":
        metrics.delivery(event_name, "ping")
        dlog.info("ping: %s", str(data.get("zen", ""))[:100])
        return web.json_response({"message": "pong"})

    # GitHub keeps the delivery id on a redelivery; one that was accepted already is a
    # duplicate. A delivery refused with 503 is not remembered, so its redelivery runs.
    shared = service.shared
    if delivery in service.deliveries:
        metrics.delivery(event_name, "duplicate")
        dlog.info("%s: duplicate delivery ignored", event_name)
        return _answer(202, "duplicate delivery")
    event = sansio.Event(data, event=event_name, delivery_id=delivery)

    async def collect(job: AnyJob) -> Submitted:
        # With Redis, the delivery's jobs are queued together with its id, below.
        return Submitted.QUEUED

    ctx = EventContext(
        delivery_id=delivery,
        submit=collect if shared is not None else service.queue.submit,
        log=dlog,
        app_id=settings.app_id,
    )
    try:
        await router.dispatch(event, ctx)
        # The payload is not needed past this point; under a burst hundreds of them would
        # otherwise wait for Redis together, and the garbage collector walk them all.
        del data, event
        if shared is not None:
            accepted = await shared.accept(delivery, ctx.jobs)
            if accepted is None:
                metrics.delivery(event_name, "duplicate")
                dlog.info("%s: duplicate delivery ignored", event_name)
                return _answer(202, "duplicate delivery")
            ctx.outcomes[:] = accepted
    except QueueUnavailable as exc:
        metrics.delivery(event_name, "unavailable")
        dlog.error("%s: refused, %s", event_name, exc)
        return _unavailable(REDIS_DOWN)
    except QueueClosed:
        # Only a request already being handled when the listener closed gets here; later
        # ones are refused at the connection. Accepting it now could not promise a review;
        # a failed delivery can be redelivered from the App's settings once it is back.
        metrics.delivery(event_name, "shutting_down")
        dlog.warning("%s: refused, shutting down", event_name)
        response = _answer(503, SHUTTING_DOWN)
        response.headers["Retry-After"] = "60"
        return response
    except QueueFull as exc:
        metrics.delivery(event_name, "queue_full")
        if shared is None:
            # In-process, the jobs queued before the one that did not fit will run (with
            # Redis a delivery is queued whole or not at all).
            _log_jobs(dlog, event_name, ctx)
        dlog.warning("%s: refused, queue full (%s)", event_name, exc)
        response = _answer(
            503, "the review queue is full: redeliver this delivery once it has drained"
        )
        response.headers["Retry-After"] = "60"
        return response
    except (LookupError, TypeError, ValueError, AttributeError) as exc:
        # A payload without the fields its event always has, or with the wrong types.
        metrics.delivery(event_name, "bad_request")
        dlog.warning("%s: malformed payload (%s: %s)", event_name, type(exc).__name__, exc)
        return _answer(400, "malformed payload")

    if shared is None:
        service.deliveries[delivery] = True
    for job in ctx.jobs:
        # What reconciliation walks, should the queue lose this delivery's jobs.
        service.runner.seen.add(job.installation_id, job.repo)
    _log_jobs(dlog, event_name, ctx)
    if not ctx.outcomes:
        dlog.info("%s: nothing to do", event_name)
        outcome = "ignored"
    elif any(o is Submitted.QUEUED for o in ctx.outcomes):
        outcome = "queued"
    elif any(o is Submitted.REPLACED for o in ctx.outcomes):
        outcome = "replaced"
    else:
        outcome = "duplicate_job"
    metrics.delivery(event_name, outcome)
    return _answer(202, outcome)
