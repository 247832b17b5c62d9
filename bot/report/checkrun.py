"""The `flux-review` check run: one per head commit, always brought to `completed`.

Rendering is pure (title, summary, annotations); `CheckRun` does the three kinds of call:
create it `in_progress`, complete it with the first 50 annotations, append the rest.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.analysis import ClusterImpact, Finding, Severity, Side
from bot.analysis.diff import ClusterDiff, Redactor
from bot.analysis.options import fails
from bot.github.client import GitHubClient, UnexpectedResponse
from bot.github.repo import RepoRef
from bot.report.diff import section as diff_section
from bot.report.markdown import BEFORE as _BEFORE
from bot.report.markdown import ICON as _ICON
from bot.report.markdown import clip as _clip
from bot.report.markdown import code as _code
from bot.report.markdown import count_title as count_title
from bot.report.markdown import impact_section
from bot.report.markdown import lines as _lines
from bot.report.markdown import related_text as related_text
from bot.report.markdown import rule_link as rule_link

CHECK_NAME = "flux-review"
# GitHub: at most 50 annotations per create/update call; further PATCH calls append more.
MAX_ANNOTATIONS_PER_REQUEST = 50
# GitHub: `output.summary` and `output.text` are at most 65535 characters each.
MAX_OUTPUT_CHARS = 65535
MAX_MESSAGE_CHARS = 4000
RERUN_HINT = (
    "To try again, comment `/flux-review recheck` on the pull request or use the "
    "**Re-run** button of this check."
)

_LEVEL = {
    Severity.ERROR: "failure",
    Severity.WARNING: "warning",
    Severity.NOTICE: "notice",
}


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def conclusion_for(findings: Iterable[Finding], fail_on: Severity | None) -> str:
    return "failure" if fails(findings, fail_on) else "success"


def render_summary(
    findings: Sequence[Finding],
    consumers: Mapping[str, Sequence[str]],
    *,
    fail_on: Severity | None,
    docs_url: str = "",
    rule_errors: Sequence[str] = (),
    notes: Sequence[str] = (),
    impact: Sequence[ClusterImpact] | None = None,
    limit: int = MAX_OUTPUT_CHARS,
) -> str:
    """Markdown: findings grouped by file, each file with the controllers that read it.

    `notes` (how the commit had to be read, what was skipped) come first, then which
    clusters the change reaches, so that a cut at the size limit never drops them."""
    lead = "".join(f"> **Note:** {_clip(n, 1000)}\n\n" for n in notes[:5])
    lead += _clip(impact_section(impact, heading="####"), 20_000)
    return (
        lead
        + _render_summary(findings, consumers, fail_on, docs_url, rule_errors, limit - len(lead))
    )[:limit]


def _render_summary(
    findings: Sequence[Finding],
    consumers: Mapping[str, Sequence[str]],
    fail_on: Severity | None,
    docs_url: str,
    rule_errors: Sequence[str],
    limit: int,
) -> str:
    note = ""
    if rule_errors:
        # A rule that crashed is flux-review's bug; say so rather than imply a clean bill.
        note = (
            f"\n\n> **Note:** {len(rule_errors)} check(s) could not run on this commit because "
            "of a flux-review bug, so this review is incomplete.\n"
            + "".join(f"> - {_clip(e, 300)}\n" for e in rule_errors[:5])
        )
    if not findings:
        return (
            "flux-review read this pull request the way the cluster will and found nothing "
            "that would break." + note
        )[:limit]
    conclusion = conclusion_for(findings, fail_on)
    if fail_on is None:
        verdict = "The check passes whatever it finds (`fail_on: never`)."
    else:
        threshold = f"severity `{fail_on.value}` or higher (`fail_on: {fail_on.value}`)"
        verdict = (
            f"The check fails: findings of {threshold} block the merge."
            if conclusion == "failure"
            else f"The check passes: only findings of {threshold} fail it."
        )
    docs = "" if docs_url else " Each rule's documentation follows the list."
    head = [f"**{count_title(findings)}** introduced by this pull request. {verdict}{docs}", "", ""]
    by_path: dict[str, list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: f.sort_key()):
        by_path.setdefault(finding.path, []).append(finding)

    out = "\n".join(head)
    budget = limit - 400  # room for the "N more" trailer
    shown = 0
    full = False
    for path, group in by_path.items():
        section = [f"### {_code(path)}"]
        readers = consumers.get(path) or ()
        if readers:
            section.append("Read by: " + "; ".join(_clip(r, 300) for r in readers))
        block = "\n".join(section) + "\n\n"
        if len(out) + len(block) > budget:
            break
        out += block
        for finding in group:
            message = _clip(finding.message, MAX_MESSAGE_CHARS)
            causes = related_text(finding)
            if causes:
                message += "\n" + causes
            message = message.replace("\n", "\n  ")
            item = (
                f"- {_ICON[finding.severity]} **{_lines(finding)}** "
                f"{rule_link(finding.rule, docs_url)}: {message}\n"
            )
            if len(out) + len(item) > budget:
                full = True
                break
            out += item
            shown += 1
        out += "\n"
        if full:
            break
    if shown < len(findings):
        out += (
            f"\n…and {len(findings) - shown} more not listed here: every finding is an "
            "annotation of this check.\n"
        )
    return (out + note)[:limit]


def render_text(
    rules: Iterable[str],
    diff: Sequence[ClusterDiff] | None,
    redactor: Redactor | None,
    *,
    base: str | None,
    head: str,
    limit: int = MAX_OUTPUT_CHARS,
) -> str:
    """`output.text`: what the pull request changes, object by object (after the findings
    of the summary), then the documentation of each rule that fired. The rules' documents
    are kept whole and first in the budget: they explain the findings above."""
    docs = render_rule_docs(rules, limit)
    changes = diff_section(
        diff, redactor, base=base, head=head, limit=limit - len(docs), heading="##"
    )
    return (changes + docs)[:limit]


def render_rule_docs(rules: Iterable[str], limit: int = MAX_OUTPUT_CHARS) -> str:
    """`output.text`: the documentation of each rule that fired, shown under the summary."""
    try:
        from bot.analysis.rules import RULES
    except ImportError:  # the engine is optional for rendering
        return ""
    out = ""
    for rule in sorted(set(rules)):
        info = RULES.get(rule)
        if info is None:
            continue
        block = f"## {rule}\n\n{info.doc.strip()}\n\n"
        if len(out) + len(block) > limit:
            break
        out += block
    return out


def annotation(finding: Finding) -> dict[str, Any] | None:
    """The annotation of a finding, on its line; a finding on a line the change deleted
    sits on its first related line of the head instead (GitHub shows annotations on the
    head commit's files only), or gets none (the summary lists it)."""
    path, line = finding.path, finding.line
    end = finding.end_line if finding.end_line and finding.end_line >= finding.line else None
    message = finding.message
    if finding.side is Side.BASE:
        head_side = next((r for r in finding.related if r.side is Side.HEAD), None)
        if head_side is None:
            return None
        path, line, end = head_side.path, head_side.line, None
        message = f"{finding.path} line {finding.line}{_BEFORE}: {message}"
    extra = related_text(finding)
    if extra:
        message = f"{message}\n\n{extra}"
    out: dict[str, Any] = {
        "path": path,
        "start_line": line,
        "end_line": end or line,
        "annotation_level": _LEVEL[finding.severity],
        "title": finding.rule[:255],
        "message": _clip(message, 60_000),
    }
    if finding.detail:
        # GitHub folds raw_details under the annotation ("Show more"): the reasoning
        # stays one click away from the one-sentence message. Its limit is 64 KB.
        out["raw_details"] = _clip(finding.detail, 60_000)
    return out


def annotation_batches(findings: Sequence[Finding]) -> list[list[dict[str, Any]]]:
    items = [
        a for f in sorted(findings, key=lambda f: f.sort_key()) if (a := annotation(f)) is not None
    ]
    size = MAX_ANNOTATIONS_PER_REQUEST
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True)
class CheckOutput:
    title: str
    summary: str
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "title": _clip(self.title, 255),
            "summary": _clip(self.summary, MAX_OUTPUT_CHARS),
        }
        if self.text:
            body["text"] = _clip(self.text, MAX_OUTPUT_CHARS)
        return body


def failure_output(reason: str, title: str = "flux-review could not finish") -> CheckOutput:
    return CheckOutput(
        title=title,
        summary=f"{reason}\n\nNothing was reviewed for this commit. {RERUN_HINT}",
    )


def _check_run_id(body: Any) -> int:
    run_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(run_id, int):
        raise UnexpectedResponse("GitHub's answer to creating the check run has no id")
    return run_id


class CheckRun:
    """One `flux-review` check run on GitHub."""

    def __init__(
        self,
        gh: GitHubClient,
        repo: RepoRef,
        check_run_id: int,
        head_sha: str,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.gh = gh
        self.repo = repo
        self.id = check_run_id
        self.head_sha = head_sha
        self.completed = False
        self.conclusion: str | None = None
        self._log = log

    @classmethod
    async def create(
        cls,
        gh: GitHubClient,
        repo: RepoRef,
        head_sha: str,
        *,
        external_id: str,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> CheckRun:
        body = await gh.post(
            "/repos/{owner}/{repo}/check-runs",
            repo.vars(),
            data={
                "name": CHECK_NAME,
                "head_sha": head_sha,
                "status": "in_progress",
                "started_at": now_iso(),
                "external_id": external_id[:200],
                "output": {
                    "title": "Reviewing…",
                    "summary": "flux-review is reading this commit the way the cluster will.",
                },
            },
        )
        run = cls(gh, repo, _check_run_id(body), head_sha, log)
        log.info("check run %d created on %s", run.id, head_sha[:12])
        return run

    async def _patch(self, data: dict[str, Any]) -> None:
        await self.gh.patch(
            "/repos/{owner}/{repo}/check-runs/{check_run_id}",
            self.repo.vars(check_run_id=self.id),
            data=data,
        )

    async def complete(
        self,
        conclusion: str,
        output: CheckOutput,
        annotations: Sequence[Sequence[dict[str, Any]]] = (),
    ) -> int:
        """Complete the run with the first batch of annotations, then append the others.

        The conclusion goes out first: a required check must not wait on annotations. An
        annotation batch GitHub refuses is logged and skipped. Returns how many were added.
        """
        first = list(annotations[0]) if annotations else []
        body: dict[str, Any] = {
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": now_iso(),
            "output": {**output.to_json(), **({"annotations": first} if first else {})},
        }
        await self._patch(body)
        self.completed = True
        self.conclusion = conclusion
        added = len(first)
        for batch in annotations[1:]:
            try:
                await self._patch({"output": {**output.to_json(), "annotations": list(batch)}})
            except Exception as exc:
                self._log.warning(
                    "check run %d: could not add %d annotations: %s", self.id, len(batch), exc
                )
                continue
            added += len(batch)
        self._log.info("check run %d completed: %s (%d annotations)", self.id, conclusion, added)
        return added

    async def is_completed(self) -> bool:
        """Whether GitHub has the run completed (an earlier attempt may have concluded it)."""
        body = await self.gh.getitem(
            "/repos/{owner}/{repo}/check-runs/{check_run_id}",
            self.repo.vars(check_run_id=self.id),
        )
        self.completed = isinstance(body, dict) and body.get("status") == "completed"
        return self.completed

    async def fail(
        self, reason: str, *, conclusion: str = "failure", title: str | None = None
    ) -> None:
        output = failure_output(reason) if title is None else failure_output(reason, title)
        await self.complete(conclusion, output)

    @classmethod
    async def create_failed(
        cls,
        gh: GitHubClient,
        repo: RepoRef,
        head_sha: str,
        reason: str,
        *,
        external_id: str,
        log: logging.LoggerAdapter[logging.Logger],
        conclusion: str = "failure",
        title: str | None = None,
    ) -> CheckRun:
        """A check run created already completed: the review failed before it could create
        one, and the commit must not be left without a `flux-review` result."""
        output = failure_output(reason) if title is None else failure_output(reason, title)
        now = now_iso()
        body = await gh.post(
            "/repos/{owner}/{repo}/check-runs",
            repo.vars(),
            data={
                "name": CHECK_NAME,
                "head_sha": head_sha,
                "status": "completed",
                "conclusion": conclusion,
                "started_at": now,
                "completed_at": now,
                "external_id": external_id[:200],
                "output": output.to_json(),
            },
        )
        run = cls(gh, repo, _check_run_id(body), head_sha, log)
        run.completed = True
        run.conclusion = conclusion
        log.info("check run %d created completed (%s) on %s", run.id, conclusion, head_sha[:12])
        return run
