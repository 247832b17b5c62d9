"""The GitHub REST client: gidgethub on aiohttp, plus what a well-behaved App needs.

- Installation tokens are added to each request (and refreshed once on a 401).
- 5xx, connection errors and timeouts are retried with exponential backoff and jitter.
- Rate limits are honoured: `retry-after`, then `x-ratelimit-reset`, and at least a minute
  for a secondary limit, as GitHub's best-practices page asks.
- Writes to one installation are spaced (GitHub asks for at least 1 s between them).
- Every response is counted by status, through a callback, for the metrics.

All waits go through an injectable `sleep`, so tests run them scaled down.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aiohttp
import gidgethub
import gidgethub.aiohttp
from gidgethub import sansio

from bot.github.auth import AppAuth, InstallationGone
from bot.github.tarball import SnapshotTooLarge

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
# Loggers that put the delivery, repository and PR in front of each message.
AnyLog = logging.Logger | logging.LoggerAdapter[logging.Logger]
# (HTTP method, status code or "error") -> None; counts GitHub calls for the metrics.
ResponseHook = Callable[[str, str], None]
# (method, seconds) of each HTTP exchange with GitHub, failed ones included.
LatencyHook = Callable[[str, float], None]

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "flux-review"

# When a request that creates something fails at the transport or with a 5xx, GitHub may
# still have applied it; repeating it blindly can post the same review twice. Callers that
# can check first mark their request with `no_blind_retry()`.
_blind_retry_allowed: ContextVar[bool] = ContextVar("flux_review_blind_retry", default=True)


@contextlib.contextmanager
def no_blind_retry() -> Iterator[None]:
    """Within this block, a write that may have been applied is not repeated."""
    reset = _blind_retry_allowed.set(False)
    try:
        yield
    finally:
        _blind_retry_allowed.reset(reset)


def _repeatable(method: str) -> bool:
    return method not in WRITE_METHODS or _blind_retry_allowed.get()


class GitHubUnavailable(gidgethub.GitHubException):
    """GitHub could not be reached (connection error or timeout), after retries."""


class UnexpectedResponse(gidgethub.GitHubException):
    """GitHub answered, but not with what its API describes (truncated or garbled JSON, a
    missing field); seen behind misbehaving proxies and during GitHub incidents."""


def _unreadable_json(headers: Mapping[str, str], body: bytes) -> bool:
    """True when gidgethub would fail to decode a body GitHub labelled JSON."""
    if not body:
        return False
    try:
        # The very function gidgethub decodes with, so the answer cannot disagree with it.
        sansio._decode_body(headers.get("content-type"), body)
    except (ValueError, LookupError, RecursionError):
        return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # per request, including the first
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.25  # fraction added at random to each backoff delay
    # GitHub: "wait at least one minute" after a secondary rate limit without retry-after.
    secondary_wait: float = 60.0
    # Longest wait for a primary limit's reset; beyond it the request fails at once.
    max_rate_limit_wait: float = 90.0

    def backoff(self, attempt: int) -> float:
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return delay * (1.0 + self.jitter * random.random())


def rate_limit_delay(
    policy: RetryPolicy,
    status: int,
    headers: Mapping[str, str],
    message: str,
    attempt: int,
    now: float,
) -> float | None:
    """Seconds to wait before repeating a rate-limited request, or None when it is not one.

    GitHub signals both primary and secondary limits with 403 or 429; only the headers and
    the message tell them apart from a permission error.
    """
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after")
    if retry_after:
        seconds = _parse_retry_after(retry_after, now)
        if seconds is not None:
            return seconds if seconds <= policy.max_rate_limit_wait else None
    if headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(headers.get("x-ratelimit-reset", ""))
        except ValueError:
            reset = now + policy.secondary_wait
        # One second more: the reset epoch is rounded down.
        wait = max(0.0, reset - now) + 1.0
        return wait if wait <= policy.max_rate_limit_wait else None
    lowered = message.lower()
    if status == 429 or "secondary rate limit" in lowered or "abuse" in lowered:
        return policy.secondary_wait * 2.0 ** (attempt - 1)
    return None


def _parse_retry_after(value: str, now: float) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class WriteThrottle:
    """Spaces writes per installation: GitHub asks integrators for >= 1 s between them."""

    def __init__(
        self,
        interval: float,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._sleep = sleep
        self._clock = clock
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def wait(self, installation_id: int) -> None:
        if self.interval <= 0:
            return
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            last = self._last.get(installation_id)
            if last is not None:
                delay = last + self.interval - self._clock()
                if delay > 0:
                    await self._sleep(delay)
            self._last[installation_id] = self._clock()


def _with_json_type(headers: Mapping[str, str]) -> Mapping[str, str]:
    fixed = {k.lower(): v for k, v in headers.items()}
    fixed["content-type"] = "application/json; charset=utf-8"
    return fixed


def _origin(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def redact_url(url: str) -> str:
    """A URL fit for a log line: codeload links carry a token in the query string."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class GitHubClient(gidgethub.aiohttp.GitHubAPI):
    """A gidgethub client for one installation (or for the App itself when it has none)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        auth: AppAuth,
        installation_id: int | None,
        policy: RetryPolicy | None = None,
        throttle: WriteThrottle | None = None,
        sleep: Sleep = asyncio.sleep,
        on_response: ResponseHook | None = None,
        clock: Callable[[], float] = time.time,
        log: AnyLog | None = None,
        on_latency: LatencyHook | None = None,
    ) -> None:
        super().__init__(session, USER_AGENT, base_url=base_url)
        self._on_latency = on_latency
        self.log: AnyLog = log or logging.getLogger(__name__)
        self._auth = auth
        self.installation_id = installation_id
        self.policy = policy or RetryPolicy()
        self._throttle = throttle
        self._sleep = sleep
        self._on_response = on_response
        self._clock = clock

    def __repr__(self) -> str:
        return f"GitHubClient(base_url={self.base_url!r}, installation_id={self.installation_id})"

    # -- gidgethub hooks -------------------------------------------------------------------

    async def sleep(self, seconds: float) -> None:
        await self._sleep(seconds)

    async def manage_rate_limit(self, *, method: str, url: str) -> None:
        if (
            self._throttle is not None
            and self.installation_id is not None
            and method in WRITE_METHODS
            and not url.endswith("/access_tokens")
        ):
            await self._throttle.wait(self.installation_id)

    async def handle_rate_limit_error(
        self, *, method: str, url: str, exception: gidgethub.HTTPException, attempt: int
    ) -> bool:
        if attempt >= self.policy.attempts:
            return False
        status = int(exception.status_code)
        delay = rate_limit_delay(
            self.policy, status, exception.headers, str(exception), attempt, self._clock()
        )
        if delay is None:
            if status < 500 or not _repeatable(method):
                return False
            delay = self.policy.backoff(attempt)
            reason = f"GitHub answered {status}"
        else:
            reason = f"GitHub rate limit ({status})"
        self.log.warning(
            "%s %s: %s, retrying in %.1fs (attempt %d of %d)",
            method,
            redact_url(url),
            reason,
            delay,
            attempt + 1,
            self.policy.attempts,
        )
        await self.sleep(delay)
        return True

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes = b""
    ) -> tuple[int, Mapping[str, str], bytes]:
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            request_headers = dict(headers)
            injected = await self._authorize(request_headers, url)
            started = time.monotonic()
            try:
                try:
                    status, response_headers, data = await super()._request(
                        method, url, request_headers, body
                    )
                finally:
                    if self._on_latency is not None:
                        self._on_latency(method, time.monotonic() - started)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._count(method, "error")
                if attempt >= self.policy.attempts or not _repeatable(method):
                    raise GitHubUnavailable(
                        f"{method} {redact_url(url)}: {type(exc).__name__}"
                    ) from exc
                delay = self.policy.backoff(attempt)
                self.log.warning(
                    "%s %s: %s, retrying in %.1fs (attempt %d of %d)",
                    method,
                    redact_url(url),
                    type(exc).__name__,
                    delay,
                    attempt + 1,
                    self.policy.attempts,
                )
                await self.sleep(delay)
                continue
            self._count(method, str(status))
            if _unreadable_json(response_headers, data):
                if not 200 <= status < 300:
                    # Keep the status (a 502 from a proxy is still a 502) but drop a body that
                    # would make gidgethub raise a decoding error instead of an HTTP one.
                    data = json.dumps({"message": f"unreadable {status} response"}).encode()
                    response_headers = _with_json_type(response_headers)
                elif method in WRITE_METHODS:
                    # The write was applied; callers that need its answer check its shape.
                    self.log.warning(
                        "%s %s: GitHub's answer is not valid JSON; ignored",
                        method,
                        redact_url(url),
                    )
                    data = b""
                elif attempt < self.policy.attempts:
                    delay = self.policy.backoff(attempt)
                    self.log.warning(
                        "%s %s: GitHub's answer is not valid JSON (truncated?), retrying in "
                        "%.1fs (attempt %d of %d)",
                        method,
                        redact_url(url),
                        delay,
                        attempt + 1,
                        self.policy.attempts,
                    )
                    await self.sleep(delay)
                    continue
                else:
                    raise UnexpectedResponse(
                        f"{method} {redact_url(url)}: GitHub's answer was not valid JSON "
                        f"after {attempt} attempts"
                    )
            if status == 401 and injected and not refreshed and self.installation_id is not None:
                # The cached token was revoked or expired early (e.g. the installation's
                # permissions changed): mint a new one and try once more.
                self.log.info(
                    "%s %s: token refused (401), minting a new one", method, redact_url(url)
                )
                self._auth.invalidate(self.installation_id)
                refreshed = True
                attempt -= 1
                continue
            return status, response_headers, data

    # -- helpers -----------------------------------------------------------------------------

    def _count(self, method: str, status: str) -> None:
        if self._on_response is not None:
            self._on_response(method, status)

    async def _authorize(self, headers: dict[str, str], url: str) -> bool:
        if "authorization" in headers or self.installation_id is None:
            return False
        if _origin(url) != _origin(self.base_url):
            return False
        token = await self._auth.installation_token(self.installation_id, self._mint_token)
        headers["authorization"] = f"token {token}"
        return True

    async def mint_token(self) -> None:
        """Mint a new installation token (and cache it): proves the App can act."""
        if self.installation_id is None:
            raise ValueError("no installation")
        self._auth.invalidate(self.installation_id)
        await self._auth.installation_token(self.installation_id, self._mint_token)

    async def _mint_token(self, installation_id: int, app_jwt: str) -> dict[str, object]:
        app_client = GitHubClient(
            self._session,
            base_url=self.base_url,
            auth=self._auth,
            installation_id=None,
            policy=self.policy,
            sleep=self._sleep,
            on_response=self._on_response,
            clock=self._clock,
            log=self.log,
            on_latency=self._on_latency,
        )
        # Minting a token twice is harmless, so this write is retried even when the request
        # that needed the token may not be.
        reset = _blind_retry_allowed.set(True)
        try:
            body = await app_client.post(
                "/app/installations/{installation_id}/access_tokens",
                {"installation_id": installation_id},
                data=b"",
                jwt=app_jwt,
            )
        except gidgethub.RateLimitExceeded:
            raise
        except gidgethub.BadRequest as exc:
            # 404: the installation no longer exists (uninstalled); 403: it is suspended.
            # Neither gets better by asking again, so the answer is remembered for a while.
            if (
                int(exc.status_code) in (403, 404)
                and rate_limit_delay(
                    self.policy, int(exc.status_code), exc.headers, str(exc), 1, self._clock()
                )
                is None
            ):
                raise InstallationGone(installation_id, int(exc.status_code)) from None
            raise
        finally:
            _blind_retry_allowed.reset(reset)
        if not isinstance(body, dict):
            raise UnexpectedResponse("GitHub's access token response is not a JSON object")
        return body

    async def download(
        self, url: str, url_vars: Mapping[str, Any], *, max_bytes: int, timeout: float
    ) -> bytes:
        """GET a binary resource (a tarball), following redirects, at most `max_bytes`.

        Redirects are followed by hand: GitHub sends the tarball from another host
        (codeload) with a short-lived token in the URL, and the installation token must
        not travel to any origin but the API's.
        """
        target = sansio.format_url(url, url_vars, base_url=self.base_url)
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._download_once(target, max_bytes, timeout)
            except gidgethub.HTTPException as exc:
                if not await self.handle_rate_limit_error(
                    method="GET", url=target, exception=exc, attempt=attempt
                ):
                    raise

    async def _download_once(self, url: str, max_bytes: int, timeout: float) -> bytes:
        current = url
        refreshed = False
        for _hop in range(6):
            headers = {"user-agent": USER_AGENT, "accept": "application/vnd.github+json"}
            injected = await self._authorize(headers, current)
            status, response_headers, data = await self._fetch(current, headers, max_bytes, timeout)
            if status in REDIRECTS and "location" in response_headers:
                current = urllib.parse.urljoin(current, response_headers["location"])
                continue
            if status == 401 and injected and not refreshed and self.installation_id is not None:
                self._auth.invalidate(self.installation_id)
                refreshed = True
                continue
            if status != 200:
                sansio.decipher_response(status, response_headers, data)
                raise GitHubUnavailable(f"GET {redact_url(current)}: unexpected status {status}")
            return data
        raise GitHubUnavailable(f"GET {redact_url(url)}: too many redirects")

    async def _fetch(
        self, url: str, headers: dict[str, str], max_bytes: int, timeout: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._session.get(
                    url,
                    headers=headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response:
                    self._count("GET", str(response.status))
                    if response.status != 200:
                        # Error bodies are small JSON; redirects have none worth reading.
                        body = await response.content.read(64 * 1024)
                        return response.status, response.headers, body
                    length = response.content_length
                    if length is not None and length > max_bytes:
                        raise SnapshotTooLarge(
                            f"the tarball is {length} bytes, over the limit of {max_bytes} "
                            "(MAX_TARBALL_BYTES)"
                        )
                    chunks: list[bytes] = []
                    total = 0
                    async for chunk in response.content.iter_chunked(256 * 1024):
                        total += len(chunk)
                        if total > max_bytes:
                            raise SnapshotTooLarge(
                                f"the tarball is over the limit of {max_bytes} bytes "
                                "(MAX_TARBALL_BYTES)"
                            )
                        chunks.append(chunk)
                    return response.status, response.headers, b"".join(chunks)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._count("GET", "error")
                if attempt >= self.policy.attempts:
                    raise GitHubUnavailable(f"GET {redact_url(url)}: {type(exc).__name__}") from exc
                delay = self.policy.backoff(attempt)
                self.log.warning(
                    "GET %s: %s, retrying in %.1fs", redact_url(url), type(exc).__name__, delay
                )
                await self.sleep(delay)
