"""The work the webhook hands to the queue, and the runner that does it.

Webhook handlers only translate a payload into a job (no GitHub call: GitHub gives up on
a delivery after 10 s); everything that talks to GitHub runs here, in a queue worker, or at
shutdown for the jobs that never got one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import gidgethub
from cachetools import TTLCache

from bot.github.auth import InstallationGone
from bot.github.client import GitHubClient
from bot.github.repo import SHA, RepoRef, get_pull, open_pulls_for_commit
from bot.queue import QueueFull, Retry, Submitted
from bot.report.checkrun import CheckRun
from bot.review import (
    Claims,
    ReviewRequest,
    ReviewServices,
    context_log,
    describe_failure,
    review_pull_request,
)
from bot.server.commands import Command, handle_commands
from bot.server.metrics import Metrics
from bot.server.reconcile import SeenRepos

log = logging.getLogger(__name__)
Log = logging.LoggerAdapter[logging.Logger]

# A job that never started because the service stopped. `cancelled` fails a required check,
# as it must (`neutral` and `skipped` would pass it and let an unreviewed change merge), and
# its Re-run button sends `check_run.rerequested`, which reviews the commit.
NOT_STARTED_CONCLUSION = "cancelled"
NOT_STARTED_TITLE = "flux-review restarted: not reviewed"
NOT_STARTED_REASON = "flux-review was restarted before it could review this commit."
# Of a shutdown's not-started budget: the longest wait for posts cancelled at its end.
_SETTLE = 0.5


@dataclass
class _Target:
    """A commit that gets one `cancelled` check run, and the jobs that were about it."""

    repo: RepoRef
    installation_id: int
    sha: str
    jobs: list[AnyJob] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class ReviewJob:
    """Review the PR's current head."""

    repo: RepoRef
    installation_id: int
    number: int
    delivery_id: str
    trigger: str
    revision: str | None = None  # the head SHA the trigger was about, when it said
    force: bool = False

    @property
    def key(self) -> str:
        return f"{self.repo.full_name.lower()}#{self.number}"


@dataclass(frozen=True, kw_only=True)
class CommitJob:
    """Find the open PRs whose head is `sha` and review them (fork PRs' check events)."""

    repo: RepoRef
    installation_id: int
    sha: str
    delivery_id: str
    trigger: str
    force: bool = False

    @property
    def key(self) -> str:
        return f"{self.repo.full_name.lower()}@{self.sha}"

    @property
    def revision(self) -> str | None:
        return self.sha


@dataclass(frozen=True, kw_only=True)
class CommandJob:
    """`/flux-review ...` commands in one PR comment."""

    repo: RepoRef
    installation_id: int
    number: int
    comment_id: int
    login: str
    commands: tuple[Command, ...]
    delivery_id: str
    force: bool = True

    @property
    def key(self) -> str:
        return f"{self.repo.full_name.lower()}#{self.number}/comment/{self.comment_id}"

    @property
    def revision(self) -> str | None:
        return None


AnyJob = ReviewJob | CommitJob | CommandJob
Submit = Callable[[AnyJob], Awaitable[Submitted]]

# A job whose worker died this many times is not tried again: it is the job that kills it
# (a repository that takes all the memory, say).
MAX_ATTEMPTS = 3
DEAD_TITLE = "flux-review could not review this commit"
# A job whose work GitHub or Redis keeps failing (a check run it cannot conclude, comments it
# cannot post) runs again after RETRY_DELAY seconds, then twice as long each time up to an
# hour: about a day in all before it is given up, with a reason, in the dead letters.
MAX_RETRIES = 30
RETRY_MAX_DELAY = 3600.0


def retry_delay(first: float, retries: int) -> float:
    """Seconds before the run after `retries` earlier ones."""
    return min(first * 2.0 ** min(retries, 20), RETRY_MAX_DELAY)


def encode_job(job: AnyJob) -> str:
    """The job as JSON, for the shared queue."""
    base: dict[str, Any] = {
        "repo": [job.repo.owner, job.repo.name],
        "installation_id": job.installation_id,
        "delivery_id": job.delivery_id,
        "force": job.force,
    }
    if isinstance(job, ReviewJob):
        base |= {
            "type": "review",
            "number": job.number,
            "trigger": job.trigger,
            "revision": job.revision,
        }
    elif isinstance(job, CommitJob):
        base |= {"type": "commit", "sha": job.sha, "trigger": job.trigger}
    else:
        base |= {
            "type": "command",
            "number": job.number,
            "comment_id": job.comment_id,
            "login": job.login,
            "commands": [c.value for c in job.commands],
        }
    return json.dumps(base, separators=(",", ":"))


def decode_job(text: str) -> AnyJob:
    data = json.loads(text)
    common: dict[str, Any] = {
        "repo": RepoRef(str(data["repo"][0]), str(data["repo"][1])),
        "installation_id": int(data["installation_id"]),
        "delivery_id": str(data["delivery_id"]),
        "force": bool(data["force"]),
    }
    kind = data["type"]
    if kind == "review":
        return ReviewJob(
            number=int(data["number"]),
            trigger=str(data["trigger"]),
            revision=data.get("revision"),
            **common,
        )
    if kind == "commit":
        return CommitJob(sha=str(data["sha"]), trigger=str(data["trigger"]), **common)
    if kind == "command":
        return CommandJob(
            number=int(data["number"]),
            comment_id=int(data["comment_id"]),
            login=str(data["login"]),
            commands=tuple(Command(c) for c in data["commands"]),
            **common,
        )
    raise ValueError(f"unknown job type {kind!r}")


class ClaimedJob(Protocol):
    """What a worker of the shared queue holds (bot.server.redisqueue.Claimed)."""

    @property
    def job(self) -> AnyJob: ...

    @property
    def attempts(self) -> int: ...

    @property
    def runs(self) -> tuple[tuple[str, int], ...]: ...

    @property
    def retries(self) -> int: ...


class SharedState(Claims, Protocol):
    """Across processes: the check runs a job created, review counts, the dead letters."""

    async def note_run(self, key: str, sha: str, run_id: int) -> None: ...

    async def count_review(self, outcome: str) -> None: ...

    async def dead_letter(self, claimed: Any, reason: str) -> None: ...

    async def remember_repos(self, repos: list[tuple[int, str, str]]) -> None: ...


class LocalClaims:
    """Claims within one process (the in-process queue's)."""

    def __init__(self) -> None:
        self._names: TTLCache[str, float] = TTLCache(maxsize=100_000, ttl=7 * 24 * 3600.0)

    async def claim_once(self, name: str, ttl: float) -> bool:
        now = time.monotonic()
        until = self._names.get(name)
        if until is not None and until > now:
            return False
        self._names[name] = now + ttl
        return True

    async def release(self, name: str) -> None:
        self._names.pop(name, None)


class JobRunner:
    """Runs one job of any kind; the queue calls it from its workers."""

    def __init__(
        self,
        services: ReviewServices,
        metrics: Metrics,
        *,
        shared: SharedState | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        retry_delay: float = 30.0,
        max_retries: int = MAX_RETRIES,
    ) -> None:
        self.services = services
        self.metrics = metrics
        self.shared = shared
        self.claims: Claims = shared if shared is not None else LocalClaims()
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.max_retries = max_retries
        # In-process only (Redis keeps these with the job): the check runs each PR's job
        # created and has not seen concluded, and how often it was retried.
        self._runs: dict[str, list[tuple[str, int]]] = {}
        self._retries: dict[str, int] = {}
        # The repositories jobs were for: what reconciliation walks.
        self.seen = SeenRepos()
        self._submit: Submit | None = None
        # Commits whose review concluded its check run: at shutdown, a job for one of them
        # that never started (the commit job of a fork push, twin of the PR's review) must
        # not put a `cancelled` run over that result.
        self._reviewed: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=10_000, ttl=3600)

    def bind(self, submit: Submit) -> None:
        """Follow-up work (a recheck, the PRs of a commit) goes back through the queue."""
        self._submit = submit

    def github(self, installation_id: int, jlog: Log) -> GitHubClient:
        return self.services.github(installation_id, jlog)

    def take_over(self, key: str, runs: Sequence[tuple[str, int]]) -> None:
        """In-process: check runs the next job of `key` is to take over or conclude."""
        if runs:
            self._runs.setdefault(key, []).extend(runs)

    async def _saw(self, job: AnyJob) -> None:
        if self.seen.add(job.installation_id, job.repo) and self.shared is not None:
            with _suppress_logged(log_for(job), "could not remember the repository"):
                await self.shared.remember_repos(
                    [(job.installation_id, job.repo.owner, job.repo.name)]
                )

    async def __call__(self, job: AnyJob) -> bool:
        await self._saw(job)
        if isinstance(job, ReviewJob):
            return await self._review(
                job,
                adopt=tuple(self._runs.get(job.key, ())),
                retries=self._retries.get(job.key, 0),
            )
        if isinstance(job, CommitJob):
            return await self._commit(job)
        return await self._command(job)

    async def run_claimed(self, claimed: ClaimedJob) -> bool:
        """A job of the shared queue: its `attempts` count the workers that took it; past
        `max_attempts` it is dead-lettered instead of run."""
        job = claimed.job
        await self._saw(job)
        if claimed.attempts > self.max_attempts:
            await self._dead_letter(claimed)
            return True
        if claimed.attempts > 1:
            log.warning(
                "delivery %s: %s again, attempt %d of %d (its worker stopped)",
                job.delivery_id,
                job.key,
                claimed.attempts,
                self.max_attempts,
            )
        if isinstance(job, ReviewJob):
            return await self._review(
                job,
                adopt=claimed.runs,
                retried=claimed.attempts > 1,
                retries=claimed.retries,
                claimed=claimed,
            )
        if claimed.runs:
            # Only reviews create check runs; a commit job's runs are its reviews'.
            log.warning("delivery %s: %s had check runs noted", job.delivery_id, job.key)
        return await self(job)

    async def _dead_letter(self, claimed: ClaimedJob) -> None:
        job = claimed.job
        number = job.number if isinstance(job, ReviewJob | CommandJob) else None
        jlog = context_log(log, delivery=job.delivery_id, repo=job.repo.full_name, number=number)
        reason = (
            f"flux-review gave up on this commit: its review stopped the worker running it "
            f"{claimed.attempts - 1} times in a row (the repository may be too large for "
            "the worker's memory, or hit a bug). The job was put aside for the operators."
        )
        jlog.error("%s dead-lettered after %d attempts", job.key, claimed.attempts - 1)
        self.metrics.review("dead_letter", 0.0)
        if self.shared is not None:
            await self.shared.count_review("dead_letter")
            await self.shared.dead_letter(claimed, reason)
        if not isinstance(job, ReviewJob):
            return
        gh = self.github(job.installation_id, jlog)
        concluded: set[str] = set()
        for run_sha, run_id in dict.fromkeys(claimed.runs):
            try:
                await CheckRun(gh, job.repo, run_id, run_sha, jlog).fail(
                    reason, conclusion="failure", title=DEAD_TITLE
                )
                concluded.add(run_sha)
            except Exception as exc:
                jlog.error("could not complete check run %d: %s", run_id, describe_failure(exc))
        sha: str | None = job.revision
        if sha is None:
            with _suppress_logged(jlog):
                sha = await _open_head(gh, job.repo, job.number)
        if sha is not None and sha not in concluded and SHA.fullmatch(sha):
            with _suppress_logged(jlog):
                await CheckRun.create_failed(
                    gh,
                    job.repo,
                    sha,
                    reason,
                    external_id=job.delivery_id,
                    log=jlog,
                    conclusion="failure",
                    title=DEAD_TITLE,
                )

    async def _review(
        self,
        job: ReviewJob,
        adopt: tuple[tuple[str, int], ...] = (),
        retried: bool = False,
        retries: int = 0,
        claimed: ClaimedJob | None = None,
    ) -> bool:
        jlog = context_log(
            log, delivery=job.delivery_id, repo=job.repo.full_name, number=job.number
        )
        jlog.info("review started (%s)", job.trigger)
        shared = self.shared

        async def noted(sha: str, run_id: int) -> None:
            if shared is not None:
                await shared.note_run(job.key, sha, run_id)
            else:
                self._runs.setdefault(job.key, []).append((sha, run_id))

        request = ReviewRequest(
            job.repo,
            job.number,
            job.installation_id,
            job.delivery_id,
            job.trigger,
            revision=job.revision,
            adopt=adopt,
            on_check_run=noted,
            retried=retried,
        )
        services = self.services
        if services.claims is None:
            services = replace(services, claims=self.claims)
        result = await review_pull_request(services, request, jlog)
        if result.head_sha is not None:
            self._reviewed[(job.repo.full_name.lower(), result.head_sha)] = True
        self.metrics.review(result.outcome, result.duration)
        if shared is not None:
            await shared.count_review(result.outcome)
        jlog.info(
            "review finished: %s in %.1fs",
            result.outcome,
            result.duration,
            extra={"head": result.head_sha, "duration": round(result.duration, 3)},
        )
        if result.pending is None:
            self._runs.pop(job.key, None)
            self._retries.pop(job.key, None)
            return result.finished
        if retries < self.max_retries:
            self._retries[job.key] = retries + 1
            raise Retry(retry_delay(self.retry_delay, retries), result.pending)
        return await self._give_up(job, result.pending, retries, claimed, jlog)

    async def _give_up(
        self, job: ReviewJob, pending: str, retries: int, claimed: ClaimedJob | None, jlog: Log
    ) -> bool:
        """The job is finished without its work done, and says so where an operator looks:
        an error in the log, `given_up` in the metrics and, with Redis, a dead letter."""
        self._runs.pop(job.key, None)
        self._retries.pop(job.key, None)
        reason = f"given up after {retries} retries: {pending}"
        jlog.error("%s %s", job.key, reason)
        self.metrics.review("given_up", 0.0)
        if self.shared is not None:
            with _suppress_logged(jlog, "could not record the job given up"):
                await self.shared.count_review("given_up")
                if claimed is not None:
                    await self.shared.dead_letter(claimed, reason)
        return True

    async def _commit(self, job: CommitJob) -> bool:
        jlog = context_log(log, delivery=job.delivery_id, repo=job.repo.full_name)
        gh = self.github(job.installation_id, jlog)
        try:
            numbers = await open_pulls_for_commit(gh, job.repo, job.sha)
        except InstallationGone as exc:
            jlog.warning("not reviewed: %s", exc)
            return True
        except gidgethub.GitHubException as exc:
            jlog.error("could not list the pull requests of %s: %s", job.sha[:12], exc)
            return False
        if not numbers:
            jlog.info("%s is not the head of an open pull request", job.sha[:12])
        for number in numbers:
            await self.submit(
                ReviewJob(
                    repo=job.repo,
                    installation_id=job.installation_id,
                    number=number,
                    delivery_id=job.delivery_id,
                    trigger=job.trigger,
                    revision=job.sha,
                    force=job.force,
                ),
                jlog,
            )
        return True

    async def _command(self, job: CommandJob) -> bool:
        jlog = context_log(
            log, delivery=job.delivery_id, repo=job.repo.full_name, number=job.number
        )
        gh = self.github(job.installation_id, jlog)

        async def recheck() -> bool:
            return await self.submit(
                ReviewJob(
                    repo=job.repo,
                    installation_id=job.installation_id,
                    number=job.number,
                    delivery_id=job.delivery_id,
                    trigger="recheck command",
                    force=True,
                ),
                jlog,
            )

        try:
            await handle_commands(
                gh,
                job.repo,
                job.number,
                job.comment_id,
                job.login,
                job.commands,
                recheck=recheck,
                log=jlog,
                once=self._once,
            )
        except InstallationGone as exc:
            jlog.warning("command not answered: %s", exc)
            return True
        except gidgethub.GitHubException as exc:
            jlog.error(
                "command %s by %s failed: %s",
                ",".join(c.value for c in job.commands),
                job.login,
                exc,
            )
            return False
        return True

    async def _once(self, name: str) -> bool:
        # A command job run again after its worker died must not react twice.
        return await self.claims.claim_once(name, 7 * 24 * 3600.0)

    async def conclude_not_started(self, jobs: Sequence[AnyJob], budget: float) -> int:
        """At shutdown, give the head commit of each job that never started a completed
        `cancelled` check run, so that no PR waits for a review that will not come. One
        check run per commit, however many jobs were about it: a push to a fork's PR
        queues both a PR review and a commit job. Takes at most `budget` seconds in all
        (GitHub may be what hangs); logs what it could not conclude. Returns how many
        check runs it completed."""
        if not jobs:
            return 0
        budget = max(budget, 0.0)
        loop = asyncio.get_running_loop()
        # Cancelled posts need a moment to stop; it comes out of the budget.
        settle = min(_SETTLE, budget / 5)
        deadline = loop.time() + budget - settle
        late: list[AnyJob] = []
        stopping: list[asyncio.Task[Any]] = []

        heads = [(job, asyncio.create_task(self._head_of(job))) for job in jobs]
        stopping += await _until({task for _job, task in heads}, deadline)
        targets: dict[tuple[str, str], _Target] = {}
        for job, head in heads:
            if not head.done():
                late.append(job)
            elif (sha := head.result()) is not None:
                if (job.repo.full_name.lower(), sha) in self._reviewed:
                    log.info("%s of %s already has its review", sha[:12], job.repo.full_name)
                    continue
                target = targets.setdefault(
                    (job.repo.full_name.lower(), sha), _Target(job.repo, job.installation_id, sha)
                )
                target.jobs.append(job)

        posts = [
            (target, asyncio.create_task(self._post_not_started(target)))
            for target in targets.values()
        ]
        stopping += await _until({task for _target, task in posts}, deadline)
        concluded = 0
        for target, post in posts:
            if not post.done():
                late.extend(target.jobs)
            elif post.result():
                concluded += 1
        if stopping:
            await asyncio.wait(stopping, timeout=settle)
        for job in late:
            _log_unconcluded(job, budget)
        return concluded

    async def _head_of(self, job: AnyJob) -> str | None:
        """The commit a job that never started would have reviewed; None when there is
        none to conclude a check run on."""
        number = job.number if isinstance(job, ReviewJob | CommandJob) else None
        jlog = context_log(log, delivery=job.delivery_id, repo=job.repo.full_name, number=number)
        if isinstance(job, CommandJob):
            # The author's permission was never checked, so the command must not change the
            # PR's check; its earlier result stands. The author gets no reaction, which says
            # the command was not taken.
            jlog.warning(
                "command %s by %s not answered: the service stopped first",
                ",".join(c.value for c in job.commands),
                job.login,
            )
            return None
        if isinstance(job, CommitJob):
            sha: str | None = job.sha
        else:
            try:
                sha = job.revision or await _open_head(
                    self.github(job.installation_id, jlog), job.repo, job.number
                )
            except InstallationGone as exc:
                jlog.warning("not concluded: %s", exc)
                return None
            except Exception as exc:
                jlog.error(
                    "%s never started; its check run could not be concluded: %s", job.key, exc
                )
                return None
        if sha is None or not SHA.fullmatch(sha):
            jlog.info("no open head commit to conclude a check run on")
            return None
        return sha

    async def _post_not_started(self, target: _Target) -> bool:
        first = target.jobs[0]
        number = first.number if isinstance(first, ReviewJob) else None
        jlog = context_log(
            log, delivery=first.delivery_id, repo=target.repo.full_name, number=number
        )
        gh = self.github(target.installation_id, jlog)
        try:
            # Every push asks for a check suite; a commit that heads no open PR was never
            # going to get a check run, and must not get a failing one now.
            if all(isinstance(job, CommitJob) for job in target.jobs) and not (
                await open_pulls_for_commit(gh, target.repo, target.sha)
            ):
                jlog.info("%s is not the head of an open pull request", target.sha[:12])
                return False
            await CheckRun.create_failed(
                gh,
                target.repo,
                target.sha,
                NOT_STARTED_REASON,
                external_id=first.delivery_id,
                log=jlog,
                conclusion=NOT_STARTED_CONCLUSION,
                title=NOT_STARTED_TITLE,
            )
        except InstallationGone as exc:
            jlog.warning("not concluded: %s", exc)
            return False
        except Exception as exc:
            jlog.error(
                "%s never started; its check run could not be concluded: %s",
                ", ".join(job.key for job in target.jobs),
                exc,
            )
            return False
        if len(target.jobs) > 1:
            jlog.info(
                "one check run on %s for %s",
                target.sha[:12],
                ", ".join(job.key for job in target.jobs),
            )
        return True

    async def submit(self, job: ReviewJob, jlog: logging.LoggerAdapter[logging.Logger]) -> bool:
        if self._submit is None:
            raise RuntimeError("JobRunner.bind() was not called")
        try:
            outcome = await self._submit(job)
        except QueueFull as exc:
            jlog.warning("review of #%d not queued: %s", job.number, exc)
            return False
        jlog.info("review of #%d %s", job.number, outcome.value)
        return True


def log_for(job: AnyJob) -> Log:
    number = job.number if isinstance(job, ReviewJob | CommandJob) else None
    return context_log(log, delivery=job.delivery_id, repo=job.repo.full_name, number=number)


async def _open_head(gh: GitHubClient, repo: RepoRef, number: int) -> str | None:
    """The head SHA of an open PR; None when it is closed or gone."""
    pull = await get_pull(gh, repo, number)
    if not isinstance(pull, dict) or pull.get("state") != "open":
        return None
    head = pull.get("head")
    sha = head.get("sha") if isinstance(head, dict) else None
    return sha if isinstance(sha, str) else None


class _suppress_logged:
    """Log and swallow what a best-effort GitHub call raises."""

    def __init__(self, jlog: Log, what: str = "could not report the dead letter") -> None:
        self._log = jlog
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        self._log.error("%s: %s", self._what, describe_failure(exc))
        return True


async def _until(tasks: set[asyncio.Task[Any]], deadline: float) -> list[asyncio.Task[Any]]:
    """Wait for `tasks` until `deadline` (loop time); cancels and returns those not done."""
    if not tasks:
        return []
    timeout = max(deadline - asyncio.get_running_loop().time(), 0.0)
    _done, late = await asyncio.wait(tasks, timeout=timeout)
    for task in late:
        task.cancel()
    return list(late)


def _log_unconcluded(job: AnyJob, budget: float) -> None:
    if isinstance(job, CommandJob):
        log.warning(
            "delivery %s: %s not answered: the service stopped first", job.delivery_id, job.key
        )
        return
    log.error(
        "delivery %s: %s never started and its check run could not be concluded within %.1fs "
        "of shutdown; a push or `/flux-review recheck` reviews it",
        job.delivery_id,
        job.key,
        budget,
    )
