"""Reconciliation: the pull requests GitHub says are open, against the reviews they have.

A webhook answered 202 is a promise, and a queue can still lose what it held: a Redis
restarted without its append-only file comes back empty, and a delivery GitHub could not
make (the App down, a proxy refusing it) never arrives. And a check run can be stranded
`in_progress` when a worker dies with the job that held it lost. So, periodically and at
once when Redis is found to have lost its data, a worker walks the open pull requests of
the repositories the App has seen (at most a bounded number of GitHub calls a pass) and,
for each head without a completed `flux-review` run of this App, queues a review; a run
left `in_progress` past any review's time limit, with no job holding it, is handed to that
review to take over and conclude.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import gidgethub

from bot.github.auth import InstallationGone
from bot.github.client import GitHubClient, GitHubUnavailable
from bot.github.repo import SHA, RepoRef
from bot.report.checkrun import CHECK_NAME

log = logging.getLogger(__name__)

# Repositories remembered per process; the oldest seen is forgotten first.
MAX_REPOS = 10_000
# Pull requests looked at per repository and pass: the most recently updated first.
PULLS_PER_REPO = 100


@dataclass(frozen=True)
class SeenRepo:
    installation_id: int
    repo: RepoRef


class SeenRepos:
    """The repositories this process saw a delivery or a job for."""

    def __init__(self, maxsize: int = MAX_REPOS) -> None:
        self._repos: OrderedDict[str, SeenRepo] = OrderedDict()
        self._maxsize = maxsize

    def add(self, installation_id: int, repo: RepoRef) -> bool:
        """True when the repository is new to this process."""
        key = repo.full_name.lower()
        new = key not in self._repos
        self._repos[key] = SeenRepo(installation_id, repo)
        self._repos.move_to_end(key)
        while len(self._repos) > self._maxsize:
            self._repos.popitem(last=False)
        return new

    def __iter__(self) -> Any:
        return iter(list(self._repos.values()))

    def __len__(self) -> int:
        return len(self._repos)


@dataclass(frozen=True)
class Stranded:
    """An open pull request's head that needs a review, and the runs it is to conclude."""

    seen: SeenRepo
    number: int
    head_sha: str
    runs: tuple[tuple[str, int], ...] = ()


@dataclass
class PassReport:
    repos: int = 0
    pulls: int = 0
    queued: list[Stranded] = field(default_factory=list)
    calls: int = 0
    cut_short: bool = False


ClientFor = Callable[[int], GitHubClient]
# Queues a review of one head (with the runs to take over); False when the queue refused.
Queue = Callable[[Stranded], Awaitable[bool]]


def _started(run: dict[str, Any]) -> float | None:
    text = run.get("started_at")
    if not isinstance(text, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    return None


async def reconcile(
    repos: Iterable[SeenRepo],
    client_for: ClientFor,
    queue: Queue,
    held: Callable[[], Awaitable[set[str]]],
    *,
    app_id: int,
    stale_after: float,
    max_calls: int = 300,
    clock: Callable[[], float] = time.time,
) -> PassReport:
    """One pass over `repos`. `held`: the keys of the jobs pending or running now (a run of
    their PR is theirs to conclude); `stale_after`: seconds after which an `in_progress`
    run no job holds is stranded."""
    report = PassReport()
    for seen in repos:
        if report.calls >= max_calls:
            report.cut_short = True
            break
        report.repos += 1
        gh = client_for(seen.installation_id)
        try:
            report.calls += 1
            pulls = await gh.getitem(
                "/repos/{owner}/{repo}/pulls{?state,sort,direction,per_page}",
                seen.repo.vars(state="open", sort="updated", direction="desc", per_page=100),
            )
        except InstallationGone:
            continue
        except (gidgethub.GitHubException, GitHubUnavailable) as exc:
            log.warning(
                "reconciliation: could not list the pull requests of %s: %s",
                seen.repo.full_name,
                exc,
            )
            continue
        for pull in pulls[:PULLS_PER_REPO] if isinstance(pulls, list) else ():
            head = pull.get("head") if isinstance(pull, dict) else None
            sha = head.get("sha") if isinstance(head, dict) else None
            number = pull.get("number") if isinstance(pull, dict) else None
            if not isinstance(sha, str) or not SHA.fullmatch(sha) or not isinstance(number, int):
                continue
            if report.calls >= max_calls:
                report.cut_short = True
                break
            report.pulls += 1
            report.calls += 1
            try:
                answer = await gh.getitem(
                    "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,per_page}",
                    seen.repo.vars(ref=sha, check_name=CHECK_NAME, per_page=100),
                )
            except (gidgethub.GitHubException, GitHubUnavailable) as exc:
                log.warning(
                    "reconciliation: could not list the check runs of %s: %s", sha[:12], exc
                )
                continue
            runs = answer.get("check_runs") if isinstance(answer, dict) else None
            ours = [
                r
                for r in (runs if isinstance(runs, list) else ())
                if isinstance(r, dict)
                and isinstance(r.get("id"), int)
                and isinstance(r.get("app"), dict)
                and r["app"].get("id") == app_id
            ]
            if any(r.get("status") == "completed" for r in ours):
                continue
            key = f"{seen.repo.full_name.lower()}#{number}"
            if key in await held():
                continue
            now = clock()
            stuck = []
            waiting = False
            for run in ours:
                started = _started(run)
                if started is not None and now - started < stale_after:
                    waiting = True  # a review may still be at it
                else:
                    stuck.append((sha, int(run["id"])))
            if waiting:
                continue
            stranded = Stranded(seen, number, sha, tuple(sorted(stuck, key=lambda r: r[1])))
            if await queue(stranded):
                report.queued.append(stranded)
    return report


def reconcile_delivery_id() -> str:
    """The delivery id of the jobs a pass queues, so that log lines tell them apart."""
    return f"reconcile-{uuid.uuid4().hex[:12]}"


async def sleep_until(event: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less when `event` is set; True when it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()
