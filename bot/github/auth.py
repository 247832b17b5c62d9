"""GitHub App authentication: the App's JWT and cached installation tokens.

A GitHub App authenticates as itself with a short-lived JWT signed by its private key,
then exchanges it for an installation token (valid one hour) to act on a repository.
Tokens are cached per installation until shortly before they expire, instead of minting
one per event.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import gidgethub
import jwt
from cachetools import TLRUCache, TTLCache

# GitHub rejects a JWT whose `iat` is in the future by its clock, so backdate it to absorb
# clock drift; `exp` may be at most 10 minutes after the moment GitHub receives it.
JWT_BACKDATE = 60
JWT_LIFETIME = 9 * 60
# Refresh a token this long before `expires_at`, so a review that starts with a
# cached token never sees it expire halfway through.
TOKEN_REFRESH_MARGIN = 5 * 60
# How long an installation GitHub refused a token for is not asked again: deliveries keep
# coming for a while after an uninstall, and each would otherwise cost a token request.
GONE_TTL = 60.0


class InstallationGone(gidgethub.GitHubException):
    """GitHub refused an installation token: the App was uninstalled or suspended."""

    def __init__(self, installation_id: int, status: int) -> None:
        super().__init__(
            f"installation {installation_id} cannot get an access token ({status}): "
            "the App was uninstalled from the account, or suspended"
        )
        self.installation_id = installation_id
        self.status = status


@dataclass(frozen=True)
class InstallationToken:
    token: str = field(repr=False)  # must never reach a log line
    expires_at: float  # epoch seconds


# (installation id, JWT) -> the JSON body of POST /app/installations/{id}/access_tokens
TokenRequester = Callable[[int, str], Awaitable[dict[str, object]]]


class AppAuth:
    """Signs App JWTs and hands out installation tokens, cached per installation."""

    def __init__(
        self,
        app_id: int,
        private_key: str,
        *,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = TOKEN_REFRESH_MARGIN,
        max_installations: int = 4096,
    ) -> None:
        self.app_id = app_id
        self._private_key = private_key
        self._clock = clock
        self._margin = refresh_margin
        self._tokens: TLRUCache[int, InstallationToken] = TLRUCache(
            maxsize=max_installations, ttu=self._token_ttu, timer=clock
        )
        self._locks: dict[int, asyncio.Lock] = {}
        self._gone: TTLCache[int, int] = TTLCache(
            maxsize=max_installations, ttl=GONE_TTL, timer=clock
        )

    def __repr__(self) -> str:
        return f"AppAuth(app_id={self.app_id})"

    def _token_ttu(self, _key: int, value: InstallationToken, _now: float) -> float:
        return value.expires_at - self._margin

    def app_jwt(self) -> str:
        """A JWT authenticating as the App (RS256, `iat` backdated, `exp` under 10 minutes)."""
        now = int(self._clock())
        payload = {"iat": now - JWT_BACKDATE, "exp": now + JWT_LIFETIME, "iss": str(self.app_id)}
        return jwt.encode(payload, self._private_key, algorithm="RS256")

    async def installation_token(self, installation_id: int, request: TokenRequester) -> str:
        """A token for the installation, from the cache or freshly minted via `request`."""
        cached = self._tokens.get(installation_id)
        if cached is not None:
            return cached.token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            # Another task may have minted one while this one waited for the lock.
            cached = self._tokens.get(installation_id)
            if cached is not None:
                return cached.token
            status = self._gone.get(installation_id)
            if status is not None:
                raise InstallationGone(installation_id, status)
            try:
                body = await request(installation_id, self.app_jwt())
            except InstallationGone as exc:
                self._gone[installation_id] = exc.status
                raise
            token = _parse_token(body, self._clock())
            self._tokens[installation_id] = token
            return token.token

    def is_gone(self, installation_id: int) -> bool:
        return installation_id in self._gone

    def invalidate(self, installation_id: int) -> None:
        """Forget a token GitHub refused (revoked, or the installation's permissions changed)."""
        self._tokens.pop(installation_id, None)

    def cached(self, installation_id: int) -> bool:
        return installation_id in self._tokens


def _parse_token(body: dict[str, object], now: float) -> InstallationToken:
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise ValueError("GitHub's access token response has no token")
    expires = body.get("expires_at")
    expires_at = now + 3600.0
    if isinstance(expires, str):
        try:
            parsed = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.UTC)
            expires_at = parsed.timestamp()
    return InstallationToken(token=token, expires_at=expires_at)
