"""The pull request review: an inline comment on the exact line of each new finding.

GitHub rejects a whole review when one of its comments targets a line outside the diff
("Pull request review thread line must be part of the diff"), so a comment is only
planned for a line inside a hunk of the file's patch; everything else is left to the check
run's annotations. Each comment carries a hidden fingerprint, and comments already on the
PR are read first, so redeliveries, rechecks and new pushes never repeat a finding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gidgethub

from bot.analysis import Finding, Location, Severity, Side
from bot.github.client import GitHubClient, GitHubUnavailable, no_blind_retry
from bot.github.repo import RepoRef
from bot.report.checkrun import rule_link

MARKER_PREFIX = "<!-- flux-review:fingerprint="
_MARKER_RE = re.compile(r"<!-- flux-review:fingerprint=([0-9a-f]{6,64}) -->")
_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
# Reviews with very many comments have failed on GitHub's side; split them.
MAX_COMMENTS_PER_REVIEW = 30

_LABEL = {Severity.ERROR: "Error", Severity.WARNING: "Warning", Severity.NOTICE: "Notice"}


def marker(fingerprint: str) -> str:
    return f"{MARKER_PREFIX}{fingerprint} -->"


def hunk_ranges(patch: str | None, side: Side = Side.HEAD) -> list[range]:
    """The lines of each hunk that a comment may target: new-file lines for `side:
    RIGHT` (the head), old-file lines for `side: LEFT` (the base).

    In a unified diff a hunk `@@ -a,b +c,d @@` covers old lines a..a+b-1 and new lines
    c..c+d-1 (context and changes); a count is 1 when left out and 0 for a hunk that
    only adds (old side) or only deletes (new side).
    """
    if not patch:
        return []
    group = 1 if side is Side.BASE else 3
    hunks = []
    for line in patch.splitlines():
        match = _HUNK_RE.match(line)
        if match:
            start = int(match.group(group))
            count = int(match.group(group + 1)) if match.group(group + 1) is not None else 1
            if count > 0:
                hunks.append(range(start, start + count))
    return hunks


def _hunk_of(hunks: Sequence[range], line: int) -> range | None:
    for hunk in hunks:
        if line in hunk:
            return hunk
    return None


@dataclass(frozen=True)
class InlineComment:
    path: str
    line: int
    body: str
    fingerprint: str
    start_line: int | None = None
    side: Side = Side.HEAD

    def to_json(self) -> dict[str, Any]:
        side = "LEFT" if self.side is Side.BASE else "RIGHT"
        data: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "side": side,
            "body": self.body,
        }
        if self.start_line is not None and self.start_line < self.line:
            data["start_line"] = self.start_line
            data["start_side"] = side
        return data


def _fence(text: str) -> str:
    """A fence longer than any backtick run in the suggestion, so it cannot close early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def comment_body(
    finding: Finding,
    docs_url: str = "",
    *,
    with_suggestion: bool = True,
    elsewhere: Location | None = None,
) -> str:
    """The comment of a finding; `elsewhere` when it sits on one of the finding's causes
    rather than on the finding's own line (which is not in the diff)."""
    where = ""
    if elsewhere is not None:
        side = " (before this change)" if finding.side is Side.BASE else ""
        where = f"This change breaks `{finding.path}` line {finding.line}{side}: "
        if elsewhere.message:
            where = f"{elsewhere.message}. {where}"
    parts = [
        f"**{_LABEL[finding.severity]}** {rule_link(finding.rule, docs_url)}: {where}"
        f"{finding.message}"
    ]
    if with_suggestion and finding.suggestion is not None:
        suggestion = finding.suggestion
        if suggestion and not suggestion.endswith("\n"):
            suggestion += "\n"
        fence = _fence(suggestion)
        parts.append(f"{fence}suggestion\n{suggestion}{fence}")
    parts.append(marker(finding.fingerprint))
    return "\n\n".join(parts)


def plan_comments(
    findings: Iterable[Finding],
    patches: Mapping[str, str | None],
    already_posted: set[str],
    docs_url: str = "",
) -> list[InlineComment]:
    """Comments for new findings whose line is in the diff, at most one per fingerprint."""
    hunks_by_path: dict[tuple[str, Side], list[range]] = {}

    def hunk(location: Location) -> range | None:
        where = (location.path, location.side)
        if where not in hunks_by_path:
            hunks_by_path[where] = hunk_ranges(patches.get(location.path), location.side)
        return _hunk_of(hunks_by_path[where], location.line)

    planned: list[InlineComment] = []
    seen = set(already_posted)
    for finding in sorted(findings, key=lambda f: f.sort_key()):
        if not finding.introduced or finding.fingerprint in seen:
            continue
        own = hunk(finding.location)
        if own is None:
            # The finding's line is not in the diff: comment on the first of its causes
            # that is (the Chart.yaml `version:` line a bump changed, say).
            cause = next((r for r in finding.related if hunk(r) is not None), None)
            if cause is None:
                continue
            seen.add(finding.fingerprint)
            planned.append(
                InlineComment(
                    cause.path,
                    cause.line,
                    comment_body(finding, docs_url, with_suggestion=False, elsewhere=cause),
                    finding.fingerprint,
                    side=cause.side,
                )
            )
            continue
        seen.add(finding.fingerprint)
        end = finding.end_line
        if end is not None and end > finding.line and end in own:
            # A multi-line comment: both ends must be in the same hunk.
            planned.append(
                InlineComment(
                    finding.path,
                    end,
                    comment_body(finding, docs_url),
                    finding.fingerprint,
                    start_line=finding.line,
                    side=finding.side,
                )
            )
        else:
            # A suggestion replaces exactly the commented lines; one that spans lines this
            # comment does not cover would be applied wrongly, so it is left out. Nor can
            # a deleted line take one.
            whole = (end is None or end <= finding.line) and finding.side is Side.HEAD
            planned.append(
                InlineComment(
                    finding.path,
                    finding.line,
                    comment_body(finding, docs_url, with_suggestion=whole),
                    finding.fingerprint,
                    side=finding.side,
                )
            )
    return planned


def fingerprints_in(comments: Iterable[Mapping[str, Any]]) -> set[str]:
    """Fingerprints of findings the App already commented on (its own comments only)."""
    found: set[str] = set()
    for comment in comments:
        user = comment.get("user") or {}
        if user.get("type") != "Bot":
            continue
        found.update(_MARKER_RE.findall(str(comment.get("body") or "")))
    return found


async def posted_fingerprints(gh: GitHubClient, repo: RepoRef, number: int) -> set[str]:
    comments = [
        c
        async for c in gh.getiter(
            "/repos/{owner}/{repo}/pulls/{pull_number}/comments{?per_page}",
            repo.vars(pull_number=number, per_page=100),
        )
    ]
    return fingerprints_in(comments)


def review_body(count: int, total: int) -> str:
    noun = "problem" if count == 1 else "problems"
    more = ""
    if total > count:
        more = f" ({total - count} more outside the changed lines are in the check run)"
    return (
        f"flux-review found {count} new {noun} in the changed lines{more}. "
        "The `flux-review` check has the full report."
    )


@dataclass
class ReviewPosted:
    posted: int = 0
    dropped: int = 0
    reviews: int = 0


async def publish_review(
    gh: GitHubClient,
    repo: RepoRef,
    number: int,
    head_sha: str,
    comments: Sequence[InlineComment],
    *,
    total_findings: int,
    log: logging.LoggerAdapter[logging.Logger],
) -> ReviewPosted:
    """Post the comments as COMMENT reviews; one bad comment never loses the others."""
    result = ReviewPosted()
    for start in range(0, len(comments), MAX_COMMENTS_PER_REVIEW):
        chunk = list(comments[start : start + MAX_COMMENTS_PER_REVIEW])
        try:
            await _post(gh, repo, number, head_sha, chunk, total_findings, log)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) != 422:
                raise
            log.warning(
                "review with %d comments refused (422: %s); posting them one by one",
                len(chunk),
                exc,
            )
            for comment in chunk:
                try:
                    await _post(gh, repo, number, head_sha, [comment], total_findings, log)
                except gidgethub.BadRequest as single:
                    if int(single.status_code) != 422:
                        raise
                    log.warning(
                        "comment on %s line %d refused (422: %s); dropped",
                        comment.path,
                        comment.line,
                        single,
                    )
                    result.dropped += 1
                    continue
                result.posted += 1
                result.reviews += 1
            continue
        result.posted += len(chunk)
        result.reviews += 1
    return result


async def _post(
    gh: GitHubClient,
    repo: RepoRef,
    number: int,
    head_sha: str,
    chunk: list[InlineComment],
    total: int,
    log: logging.LoggerAdapter[logging.Logger],
) -> None:
    """POST one review. After an ambiguous failure (5xx, lost connection) GitHub may have
    created it anyway, so the comments are read back before trying again."""
    pending = chunk
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            with no_blind_retry():
                await gh.post(
                    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews",
                    repo.vars(pull_number=number),
                    data={
                        "commit_id": head_sha,
                        "event": "COMMENT",
                        "body": review_body(len(pending), total),
                        "comments": [c.to_json() for c in pending],
                    },
                )
            return
        except (gidgethub.GitHubBroken, GitHubUnavailable) as exc:
            if attempt == attempts:
                raise
            log.warning("posting the review failed (%s); checking what GitHub kept", exc)
            await gh.sleep(gh.policy.backoff(attempt))
            done = await posted_fingerprints(gh, repo, number)
            pending = [c for c in pending if c.fingerprint not in done]
            if not pending:
                return
