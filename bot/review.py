"""The review of one pull request: snapshot(base, head) -> analysis -> report.

Whatever happens (GitHub failing, the analysis crashing, the wall-clock limit, a shutdown),
the check run this creates ends `completed`: a required status check must never hang
`in_progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import gidgethub

from bot.analysis import (
    CONFIG_PATH,
    AnalysisResult,
    ChangedFile,
    Config,
    ConfigError,
    Finding,
    Tree,
    analyze,
    parse_config,
)
from bot.analysis.cache import RepositoryCaches, estimated_bytes, settle_heap
from bot.github.auth import InstallationGone
from bot.github.client import GitHubClient, GitHubUnavailable, UnexpectedResponse
from bot.github.repo import (
    SHA,
    FetchedTree,
    RepoRef,
    TreeStore,
    fetch_config,
    get_pull,
    github_problem,
    list_pull_request_files,
)
from bot.github.tarball import SnapshotError, SnapshotTooLarge
from bot.helm import renderer as helm_renderer
from bot.report.checkrun import (
    CHECK_NAME,
    CheckOutput,
    CheckRun,
    annotation_batches,
    conclusion_for,
    count_title,
    render_summary,
    render_text,
)
from bot.report.review import (
    InlineComment,
    plan_comments,
    posted_fingerprints,
    publish_review,
)

Log = logging.LoggerAdapter[logging.Logger]
T = TypeVar("T")

# Completing a failed check run gets its own time, outside the review's limit.
CONCLUDE_TIMEOUT = 30.0


class _ContextAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        prefix = extra.pop("prefix", "")
        # The fields also go on the record, for LOG_FORMAT=json.
        kwargs["extra"] = {**extra, **(kwargs.get("extra") or {})}
        return f"{prefix} {msg}", kwargs


def context_log(
    logger: logging.Logger, *, delivery: str, repo: str | None = None, number: int | None = None
) -> Log:
    """A logger whose messages start with the delivery id, the repository and the PR."""
    prefix = f"[delivery {delivery}"
    if repo:
        prefix += f" {repo}"
        if number is not None:
            prefix += f"#{number}"
    # The prefix becomes part of the format string: a `%` in it must stay a `%`.
    return _ContextAdapter(
        logger,
        {
            "prefix": (prefix + "]").replace("%", "%%"),
            "delivery": delivery,
            "repository": repo,
            "pr": number,
        },
    )


class ClientFactory(Protocol):
    def __call__(self, installation_id: int, log: Log | None = None) -> GitHubClient: ...


class Analyzer(Protocol):
    def __call__(
        self,
        head: Tree,
        base: Tree | None,
        changed: Sequence[ChangedFile] | None,
        config: Config | None,
        self_urls: Sequence[str],
        cancel: threading.Event,
    ) -> AnalysisResult: ...


class CachingAnalyzer:
    """The analysis, keeping per repository what it parsed and built for the next review
    of that repository (bot/analysis/cache.py), within `max_bytes`."""

    def __init__(self, max_bytes: int = 512 * 2**20, settle_above: int = 16 * 2**20) -> None:
        self.caches = RepositoryCaches(max_bytes)
        # Below this (estimated) size, what is kept costs a full collection little.
        self.settle_above = settle_above

    def __call__(
        self,
        head: Tree,
        base: Tree | None,
        changed: Sequence[ChangedFile] | None,
        config: Config | None,
        self_urls: Sequence[str],
        cancel: threading.Event,
    ) -> AnalysisResult:
        repo = self.caches.key(self_urls)
        cache = self.caches.begin(repo)
        # The process's renderer: its children and its render cache serve every review.
        result = analyze(
            head,
            base,
            changed,
            config,
            self_urls=self_urls,
            cancel=cancel,
            renderer=helm_renderer(),
            cache=cache,
        )
        cost = estimated_bytes(head)
        evicted = self.caches.end(repo, cache, cost)
        if cost >= self.settle_above or evicted:
            settle_heap(evicted)
        return result


class Claims(Protocol):
    """Names claimed once across every process of the App (Redis when it is shared)."""

    async def claim_once(self, name: str, ttl: float) -> bool: ...

    async def release(self, name: str) -> None: ...


# How long a posted comment's claim is kept; the comments' hidden fingerprints on GitHub
# keep them from being posted again after that.
COMMENT_CLAIM_TTL = 7 * 24 * 3600.0


@dataclass(frozen=True)
class ReviewServices:
    github: ClientFactory
    trees: TreeStore
    timeout: float = 120.0
    docs_url: str = ""
    analyzer: Analyzer = field(default_factory=CachingAnalyzer)
    claims: Claims | None = None


@dataclass(frozen=True)
class ReviewRequest:
    repo: RepoRef
    number: int
    installation_id: int
    delivery_id: str
    trigger: str
    # The head SHA the triggering event named, when it named one: if the review fails before
    # it has read the PR, its failure is reported on this commit.
    revision: str | None = None
    # Check runs (head SHA, id) an earlier attempt created and never completed (its worker
    # was killed): the one on the head is taken over, the others are concluded.
    adopt: tuple[tuple[str, int], ...] = ()
    # Told of each check run as soon as GitHub created it, for whoever retries the job.
    on_check_run: Callable[[str, int], Awaitable[None]] | None = None
    # An earlier attempt's worker died: it may have created a check run it had no time to
    # note, which GitHub is asked for.
    retried: bool = False


@dataclass
class ReviewResult:
    # success | failure | skipped | config_error | not_run | not_installed | not_found |
    # error | timeout | cancelled
    outcome: str
    findings: int = 0
    comments: int = 0
    duration: float = 0.0
    head_sha: str | None = None
    # Work GitHub or Redis kept the review from doing, in words for the log: a check run it
    # could not conclude, inline comments it could not claim or post. The job runs again.
    pending: str | None = None

    @property
    def finished(self) -> bool:
        """The review did its work (a re-run of the same commit would change nothing)."""
        if self.pending is not None:
            return False
        return self.outcome in (
            "success",
            "failure",
            "skipped",
            "config_error",
            "not_run",
            # Asking again would only repeat the same refusal.
            "not_installed",
            "not_found",
        )


def describe_failure(exc: BaseException) -> str:
    """What went wrong, in words for the check run (never a token or a traceback)."""
    if isinstance(exc, UnexpectedResponse):
        return f"GitHub sent an answer flux-review could not understand ({exc})."
    if isinstance(exc, SnapshotTooLarge):
        return f"The repository is too large to review: {exc}."
    if isinstance(exc, SnapshotError):
        return f"The repository could not be read: {exc}."
    if isinstance(exc, gidgethub.RateLimitExceeded):
        return "GitHub's API rate limit for this installation is used up."
    if isinstance(exc, GitHubUnavailable | gidgethub.GitHubBroken):
        return "GitHub did not answer after several attempts."
    if isinstance(exc, gidgethub.HTTPException):
        status = int(exc.status_code)
        if status in (403, 429):
            return f"GitHub refused a request ({status}: {exc}); this is usually a rate limit."
        return f"GitHub refused a request ({status}: {exc})."
    if isinstance(exc, NotImplementedError):
        return "The analysis engine is not available in this deployment."
    return f"An internal error stopped the review ({type(exc).__name__})."


@dataclass(frozen=True)
class _Pull:
    state: str
    head_sha: str
    base_sha: str
    default_branch: str
    draft: bool
    base_ref: str = ""
    # Where this repository is cloned from: a Flux GitRepository with one of these URLs is
    # this repository, even when it is not the bootstrap `flux-system` one.
    urls: tuple[str, ...] = ()


def _pull_of(pr: Any, number: int) -> _Pull:
    """The fields of GitHub's pull request object the review relies on, checked."""
    try:
        state = pr["state"]
        head_sha = pr["head"]["sha"]
        base_sha = pr["base"]["sha"]
        base_repo = pr["base"]["repo"]
        branch = (base_repo.get("default_branch") if base_repo else None) or pr["base"]["ref"]
    except (LookupError, TypeError, AttributeError):
        raise UnexpectedResponse(f"pull request #{number} lacks its state, head or base") from None
    for value in (head_sha, base_sha):
        if not isinstance(value, str) or not SHA.fullmatch(value):
            raise UnexpectedResponse(f"pull request #{number} has no valid head or base SHA")
    if not isinstance(state, str) or not isinstance(branch, str) or not branch:
        raise UnexpectedResponse(f"pull request #{number} has no valid state or base branch")
    urls = tuple(
        u
        for key in ("clone_url", "ssh_url", "html_url")
        if isinstance(base_repo, dict) and isinstance(u := base_repo.get(key), str)
    )
    base_ref = pr["base"].get("ref")
    return _Pull(
        state,
        head_sha,
        base_sha,
        branch,
        bool(pr.get("draft")),
        base_ref if isinstance(base_ref, str) else "",
        urls,
    )


async def review_pull_request(
    services: ReviewServices, request: ReviewRequest, log: Log
) -> ReviewResult:
    started = time.monotonic()
    gh = services.github(request.installation_id, log)
    check: CheckRun | None = None
    reason: str | None = None
    conclusion = "failure"
    title: str | None = None
    result = ReviewResult("error")
    try:
        async with asyncio.timeout(services.timeout):
            data = await get_pull(gh, request.repo, request.number)
            pr = _pull_of(data, request.number) if data is not None else None
            if pr is None or data is None:
                # Deleted, or the repository was removed from the installation: nothing
                # can be read or reported there.
                log.warning("not reviewed: GitHub has no such pull request for the App (404)")
                result = ReviewResult("not_found")
            elif pr.state != "open":
                log.info("not reviewed: the pull request is %s", pr.state)
                result = ReviewResult("not_run")
            else:
                if request.retried:
                    found = await _left_in_progress(gh, request, pr.head_sha, log)
                    request = dataclasses.replace(request, adopt=(*request.adopt, *found))
                adopted = _adoptable(request, pr.head_sha)
                if adopted is not None:
                    # The run a killed worker left in progress on this head: this review
                    # completes it, instead of adding a second run beside it.
                    check = CheckRun(gh, request.repo, adopted, pr.head_sha, log)
                    log.info(
                        "taking over check run %d left in progress on %s",
                        adopted,
                        pr.head_sha[:12],
                    )
                else:
                    creating = asyncio.ensure_future(
                        CheckRun.create(
                            gh,
                            request.repo,
                            pr.head_sha,
                            external_id=request.delivery_id,
                            log=log,
                        )
                    )
                    try:
                        check = await asyncio.shield(creating)
                    except asyncio.CancelledError:
                        # Timed out or shut down while GitHub was creating the run: it may
                        # exist all the same, and a run left in progress blocks the merge
                        # for good. Wait for GitHub's answer so that the run gets concluded.
                        check = await _created_anyway(creating, log)
                        raise
                    if request.on_check_run is not None:
                        await request.on_check_run(check.head_sha, check.id)
                result = await _review(services, gh, request, data, pr, check, log)
    except InstallationGone as exc:
        log.warning("not reviewed: %s", exc)
        result = ReviewResult("not_installed")
    except TimeoutError:
        reason = (
            f"The review timed out: it took longer than its limit of {services.timeout:g} "
            "seconds (`REVIEW_TIMEOUT`) and was stopped."
        )
        conclusion, title = "timed_out", "flux-review timed out"
        log.warning("review timed out after %.0fs", services.timeout)
        result = ReviewResult("timeout")
    except asyncio.CancelledError:
        # `cancelled`, like a review that never started at shutdown: it keeps a required
        # check from passing, and its Re-run button asks for the review again.
        reason = (
            "flux-review was restarted before it finished reviewing this commit. Press "
            "**Re-run** on this check, or comment `/flux-review recheck`, to review it."
        )
        conclusion, title = "cancelled", "flux-review restarted: not reviewed"
        log.warning("review cancelled (shutdown)")
        result = ReviewResult("cancelled")
        raise
    except Exception as exc:
        reason = describe_failure(exc)
        log.exception("review failed: %s", reason)
        result = ReviewResult("error")
    finally:
        unconcluded: list[int] = []
        if check is not None and not check.completed:
            await _to_the_end(
                _conclude_failed(
                    check, reason or "The review stopped unexpectedly.", log, conclusion, title
                )
            )
            if not check.completed:
                unconcluded.append(check.id)
        elif check is None and reason is not None and request.revision is not None:
            # The review failed before it had a check run (GitHub's answer for the PR was
            # unusable, say): the commit the event named still gets its result.
            await _to_the_end(
                _create_failed(gh, request, request.revision, reason, log, conclusion, title)
            )
        orphans = [
            (sha, run_id) for sha, run_id in request.adopt if check is None or run_id != check.id
        ]
        if orphans:
            unconcluded += await _to_the_end(_conclude_orphans(gh, request, orphans, log))
        if unconcluded:
            # A run left in progress blocks a required check for good: the job runs again
            # (and takes these runs over) until GitHub takes a conclusion.
            result.pending = (
                f"GitHub did not take the conclusion of check run "
                f"{', '.join(map(str, unconcluded))}"
                + (f"; also, {result.pending}" if result.pending else "")
            )
        result.duration = time.monotonic() - started
        if check is not None:
            result.head_sha = check.head_sha
    return result


ORPHAN_REASON = (
    "flux-review was restarted while it reviewed this commit, and the pull request has moved "
    "on (a newer commit, or it was closed) since."
)


async def _left_in_progress(
    gh: GitHubClient, request: ReviewRequest, head_sha: str, log: Log
) -> tuple[tuple[str, int], ...]:
    """This delivery's `flux-review` runs still in progress on the head (their external id
    is the delivery's): what a worker killed between creating a run and noting it left."""
    try:
        answer = await gh.getitem(
            "/repos/{owner}/{repo}/commits/{ref}/check-runs{?check_name,status,per_page}",
            request.repo.vars(
                ref=head_sha, check_name=CHECK_NAME, status="in_progress", per_page=100
            ),
        )
    except (gidgethub.GitHubException, GitHubUnavailable) as exc:
        log.warning("could not list the check runs left in progress: %s", exc)
        return ()
    runs = answer.get("check_runs") if isinstance(answer, dict) else None
    found = []
    for run in runs if isinstance(runs, list) else ():
        if (
            isinstance(run, dict)
            and run.get("external_id") == request.delivery_id[:200]
            and isinstance(run.get("id"), int)
            and run["id"] not in {run_id for _sha, run_id in request.adopt}
        ):
            found.append((head_sha, int(run["id"])))
    return tuple(sorted(found, key=lambda r: r[1]))


def _adoptable(request: ReviewRequest, head_sha: str) -> int | None:
    for sha, run_id in reversed(request.adopt):
        if sha == head_sha:
            return run_id
    return None


async def _conclude_orphans(
    gh: GitHubClient, request: ReviewRequest, orphans: Sequence[tuple[str, int]], log: Log
) -> list[int]:
    """Complete the runs an earlier attempt left in progress that this review did not take
    over: a run left in progress blocks a required check for good. A run an earlier attempt
    did conclude keeps its result. Returns the runs GitHub would not conclude."""
    failed = []
    for sha, run_id in dict.fromkeys(orphans):
        run = CheckRun(gh, request.repo, run_id, sha, log)
        try:
            if await run.is_completed():
                continue
        except Exception as exc:
            log.warning("could not read check run %d: %s", run_id, describe_failure(exc))
        await _conclude_failed(
            run, ORPHAN_REASON, log, "cancelled", "flux-review restarted: not reviewed"
        )
        if not run.completed:
            failed.append(run_id)
    return failed


async def _created_anyway(creating: asyncio.Future[CheckRun], log: Log) -> CheckRun | None:
    """The check run being created when the review stopped, once GitHub has answered.

    `asyncio.wait` never cancels what it waits for, and a second cancel (a shutdown after
    a timeout) does not end the wait: the run would be created all the same, unconcluded."""
    deadline = asyncio.get_running_loop().time() + CONCLUDE_TIMEOUT
    while not creating.done():
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            break
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([creating], timeout=remaining)
    if not creating.done():
        creating.cancel()
        log.warning(
            "no answer from GitHub for the check run being created when the review "
            "stopped; it may stay in progress"
        )
        return None
    if creating.cancelled() or creating.exception() is not None:
        log.warning(
            "the check run being created when the review stopped was not created: %s",
            None if creating.cancelled() else creating.exception(),
        )
        return None
    return creating.result()


async def _to_the_end(concluding: Coroutine[Any, Any, T]) -> T:
    """Conclude a check run even if the review is cancelled meanwhile (a shutdown while a
    failure is being reported): a PATCH cut short leaves the run in progress for good.
    A cancel received meanwhile is raised once the conclusion is done (each conclusion
    has its own time limit)."""
    task = asyncio.ensure_future(concluding)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait([task])
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


async def _create_failed(
    gh: GitHubClient,
    request: ReviewRequest,
    sha: str,
    reason: str,
    log: Log,
    conclusion: str,
    title: str | None,
) -> None:
    if not SHA.fullmatch(sha):
        return
    try:
        async with asyncio.timeout(CONCLUDE_TIMEOUT):
            await CheckRun.create_failed(
                gh,
                request.repo,
                sha,
                reason,
                external_id=request.delivery_id,
                log=log,
                conclusion=conclusion,
                title=title,
            )
    except Exception as exc:
        log.error("could not report the failure on %s either: %s", sha[:12], exc)


async def _conclude_failed(
    check: CheckRun, reason: str, log: Log, conclusion: str = "failure", title: str | None = None
) -> None:
    try:
        async with asyncio.timeout(CONCLUDE_TIMEOUT):
            await check.fail(reason, conclusion=conclusion, title=title)
    except Exception:
        log.exception("could not complete check run %d after a failure", check.id)


async def _review(
    services: ReviewServices,
    gh: GitHubClient,
    request: ReviewRequest,
    data: dict[str, Any],
    pr: _Pull,
    check: CheckRun,
    log: Log,
) -> ReviewResult:
    repo = request.repo
    head_sha = pr.head_sha
    # The config comes from the default branch, not the PR: a PR must not be able to
    # switch off its own review.
    default_branch = pr.default_branch
    config: Config | None = None
    try:
        if pr.draft:
            # Whether a draft is reviewed at all is the config's to say: read it first.
            config = await fetch_config(gh, repo, default_branch)
    except ConfigError as exc:
        return await _config_error(check, default_branch, exc, head_sha, log)

    if config is not None and pr.draft and not config.review_drafts:
        await check.complete(
            "skipped",
            CheckOutput(
                title="Draft not reviewed",
                summary=(
                    f"`review_drafts: false` in `{CONFIG_PATH}`: this pull request will be "
                    "reviewed when it is marked ready for review."
                ),
            ),
        )
        return ReviewResult("skipped", head_sha=head_sha)

    # Where a review's time goes, logged with its outcome: an operator whose reviews are
    # slow sees whether GitHub (listing, archives, writes) or the analysis takes it.
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - mark
        mark = now

    files = await list_pull_request_files(gh, repo, request.number)
    if not files.complete:
        log.info("GitHub listed the maximum of files; changes are taken from the trees")
    compared_with, merge_note = await _merge_base(services, gh, repo, pr, log)
    lap("listing")
    head = await services.trees.fetch(gh, repo, head_sha)
    lap("head tree")
    base = await services.trees.fetch(gh, repo, compared_with)
    lap("base tree")
    try:
        if config is None:
            config = _config_in(base, pr, compared_with)
        if config is None:
            config = await fetch_config(gh, repo, default_branch)
    except ConfigError as exc:
        return await _config_error(check, default_branch, exc, head_sha, log)
    # The pull request goes to its base branch: a cluster that syncs another one does
    # not get what it changes.
    config = replace(config, branch=pr.base_ref or None)
    notes = list(dict.fromkeys(head.notes + base.notes + merge_note))
    # The analysis runs in a thread that a timeout or a shutdown cannot kill: they cancel
    # this await, and `cancel` makes the thread stop at its next file or rule (whatever it
    # would have returned is dropped, never reported).
    cancel = threading.Event()
    try:
        analysis = await asyncio.to_thread(
            services.analyzer, head.tree, base.tree, files.changed(), config, pr.urls, cancel
        )
    finally:
        cancel.set()
    lap("analysis")
    findings = sorted((f for f in analysis.findings if f.introduced), key=lambda f: f.sort_key())
    rule_errors = list(getattr(analysis, "errors", None) or ())
    for error in rule_errors:
        log.error("analysis: %s", error)
    conclusion = conclusion_for(findings, config.fail_on)
    output = CheckOutput(
        title=count_title(findings),
        summary=render_summary(
            findings,
            analysis.consumers,
            fail_on=config.fail_on,
            docs_url=services.docs_url,
            rule_errors=rule_errors,
            notes=[
                *notes,
                *analysis.notes,
                *(
                    f"The base could not be compared for one check ({e}): only its findings on "
                    "lines this pull request touched are reported."
                    for e in analysis.base_errors
                ),
            ],
            impact=analysis.impact,
        ),
        text=render_text(
            (f.rule for f in findings),
            getattr(analysis, "diff", None),
            getattr(analysis, "redactor", None),
            base=compared_with,
            head=head_sha,
        ),
    )
    lap("report")
    await check.complete(conclusion, output, annotation_batches(findings))
    lap("check run")
    log.info(
        "%s on %s: %s (%s)",
        conclusion,
        head_sha[:12],
        output.title,
        ", ".join(f"{name} {seconds:.2f} s" for name, seconds in phases.items()),
    )

    comments_posted = 0
    pending = None
    if findings:
        try:
            comments_posted = await _comment(
                services, gh, request, head_sha, findings, files.patches(), log
            )
        except Exception as exc:
            # The check run already carries every finding. The comments are the job's to
            # post still: it runs again, and the fingerprints of what did get posted keep
            # those from being posted twice.
            pending = f"the inline comments were not posted ({_why(exc)})"
            log.warning("%s; the review runs again to post them", pending)
    return ReviewResult(
        conclusion,
        findings=len(findings),
        comments=comments_posted,
        head_sha=head_sha,
        pending=pending,
    )


def _why(exc: BaseException) -> str:
    """Why a GitHub or Redis call failed, for a log line (never a token)."""
    if isinstance(exc, gidgethub.GitHubException):
        return github_problem(exc)
    # Redis's errors say what it refused ("OOM command not allowed...") or where it could
    # not be reached; neither carries the password of REDIS_URL.
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _config_in(base: FetchedTree, pr: _Pull, compared_with: str) -> Config | None:
    """The config from the base tree when that tree is the default branch's tip (a PR into
    the default branch, up to date with it: most of them), saving a call; None when the
    contents API has to be asked. Raises ConfigError like `fetch_config`."""
    if not (base.complete and pr.base_ref == pr.default_branch and compared_with == pr.base_sha):
        return None
    raw = base.tree.read(CONFIG_PATH)
    if raw is None:
        return Config()
    if len(raw) > CONFIG_API_LIMIT:
        # What the contents API would refuse to hand over is refused here too.
        raise ConfigError(f"{CONFIG_PATH}: too large to read (over 1 MB)")
    return parse_config(raw, source=CONFIG_PATH)


# The contents API leaves out the content of files over 1 MB.
CONFIG_API_LIMIT = 1024 * 1024


async def _config_error(
    check: CheckRun, default_branch: str, exc: ConfigError, head_sha: str, log: Log
) -> ReviewResult:
    log.info("invalid config on %s: %s", default_branch, exc)
    await check.complete(
        "failure",
        CheckOutput(
            title=f"Invalid {CONFIG_PATH}",
            summary=(
                f"The repository config on `{default_branch}` could not be used, so nothing "
                f"was reviewed:\n\n```\n{exc}\n```\n\nFix `{CONFIG_PATH}` on `{default_branch}`"
                ", then comment `/flux-review recheck` on this pull request."
            ),
        ),
    )
    return ReviewResult("config_error", head_sha=head_sha)


async def _merge_base(
    services: ReviewServices, gh: GitHubClient, repo: RepoRef, pr: _Pull, log: Log
) -> tuple[str, tuple[str, ...]]:
    """The commit the head is compared with, and a note when it is not the merge base."""
    try:
        sha = await services.trees.merge_bases.find(gh, repo, pr.base_sha, pr.head_sha)
    except (gidgethub.HTTPException, GitHubUnavailable, UnexpectedResponse) as exc:
        # Unrelated histories (a force-push that rewrote the branch from scratch) are a 404
        # "No common ancestor"; the base tip is the best comparison left, and reviewing
        # against it beats failing the check.
        problem = github_problem(exc)
        log.warning(
            "no merge base for %s...%s (%s); comparing with the base branch tip",
            pr.base_sha[:12],
            pr.head_sha[:12],
            problem,
        )
        return pr.base_sha, (
            f"GitHub could not give the commit this pull request branched from ({problem}), "
            f"so findings were judged against the tip of the base branch (`{pr.base_sha[:12]}`) "
            "instead: a problem that the base branch gained or fixed since this branch was "
            "created may be reported as this pull request's, or missed.",
        )
    if sha != pr.base_sha:
        log.info(
            "comparing with the merge base %s, not the base branch tip %s",
            sha[:12],
            pr.base_sha[:12],
        )
    return sha, ()


async def _comment(
    services: ReviewServices,
    gh: GitHubClient,
    request: ReviewRequest,
    head_sha: str,
    findings: Sequence[Finding],
    patches: dict[str, str | None],
    log: Log,
) -> int:
    posted = await posted_fingerprints(gh, request.repo, request.number)
    comments = plan_comments(findings, patches, posted, services.docs_url)
    claimed: list[str] = []
    if comments and services.claims is not None:
        # Two replicas reviewing the same head both find none of these posted yet; the
        # claim, atomic in Redis, lets exactly one of them post each comment.
        kept = []
        pull = f"{request.repo.full_name.lower()}#{request.number}"
        for comment in comments:
            name = f"comment:{pull}:{comment.fingerprint}"
            if await services.claims.claim_once(name, COMMENT_CLAIM_TTL):
                kept.append(comment)
                claimed.append(name)
        if len(kept) < len(comments):
            log.info("%d comments are being posted by another review", len(comments) - len(kept))
        comments = kept
    try:
        return await _post_comments(services, gh, request, head_sha, findings, comments, log)
    except BaseException:
        # Not posted: the next review may post them.
        if services.claims is not None:
            for name in claimed:
                with contextlib.suppress(Exception):
                    await services.claims.release(name)
        raise


async def _post_comments(
    services: ReviewServices,
    gh: GitHubClient,
    request: ReviewRequest,
    head_sha: str,
    findings: Sequence[Finding],
    comments: Sequence[InlineComment],
    log: Log,
) -> int:
    if not comments:
        log.info("no new inline comments (all posted before, or outside the diff)")
        return 0
    # The review is posted on the commit reviewed (`commit_id`), not on whatever the head is
    # now, without reading the PR again: after a push during the review GitHub shows the
    # comments on that earlier commit (outdated where the lines changed), and after a
    # force-push it refuses them (422: not part of the pull request) and none is posted.
    # The new head has its own event and its own review.
    outcome = await publish_review(
        gh,
        request.repo,
        request.number,
        head_sha,
        comments,
        total_findings=len(findings),
        log=log,
    )
    log.info("review posted: %d comments (%d dropped)", outcome.posted, outcome.dropped)
    return outcome.posted
