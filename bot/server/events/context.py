"""What an event handler gets besides the event: the delivery, the queue, a logger."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.github.repo import RepoRef
from bot.queue import Submitted
from bot.server.jobs import AnyJob

Log = logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True)
class EventContext:
    delivery_id: str
    submit: Callable[[AnyJob], Awaitable[Submitted]]
    log: Log
    app_id: int
    # What the handlers queued and what became of it, for the log, the response and the
    # metrics (with Redis, the outcomes are known only once the delivery is accepted).
    jobs: list[AnyJob] = field(default_factory=list)
    outcomes: list[Submitted] = field(default_factory=list)

    async def enqueue(self, job: AnyJob) -> None:
        """Queue a job; QueueFull propagates so the webhook can answer 503."""
        outcome = await self.submit(job)
        self.jobs.append(job)
        self.outcomes.append(outcome)


def installation_id(data: Mapping[str, Any]) -> int | None:
    installation = data.get("installation")
    if isinstance(installation, Mapping) and isinstance(installation.get("id"), int):
        return int(installation["id"])
    return None


def repo_of(data: Mapping[str, Any]) -> RepoRef:
    return RepoRef.from_payload(data["repository"])
