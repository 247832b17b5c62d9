"""Markdown shared by the check run's summary and the job summary of `check --format markdown`.

GitHub renders both with the same flavour of Markdown (GFM), so the pieces are the same:
the counts, rule links, the per-cluster impact of a change and the findings table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from bot.analysis.diff import ClusterDiff, Redactor
from bot.analysis.findings import Finding, Severity, Side
from bot.analysis.impact import ClusterImpact, KustomizationImpact
from bot.analysis.options import fails
from bot.report.diff import section

ICON = {
    Severity.ERROR: ":x:",
    Severity.WARNING: ":warning:",
    Severity.NOTICE: ":information_source:",
}
ORDER = (Severity.ERROR, Severity.WARNING, Severity.NOTICE)
# GitHub: a step's job summary is at most 1 MiB; a larger one is not shown at all.
MAX_JOB_SUMMARY_BYTES = 1024 * 1024
# The diff of a job summary is held to what a check run's `text` holds (GitHub's 65,535
# characters), so both show the same.
DIFF_LIMIT = 65535
# How many object names an impact cell lists before it only counts.
_NAMES_SHOWN = 5


def count_title(findings: Sequence[Finding]) -> str:
    """'2 errors, 1 warning' or 'No problems found'."""
    parts = []
    for severity in ORDER:
        n = sum(1 for f in findings if f.severity is severity)
        if n:
            parts.append(f"{n} {severity.value}{'' if n == 1 else 's'}")
    return ", ".join(parts) if parts else "No problems found"


def rule_link(rule: str, docs_url: str) -> str:
    if docs_url:
        return f"[`{rule}`]({docs_url}#{rule})"
    return f"`{rule}`"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def code(text: str) -> str:
    """Inline code that survives backticks in a path."""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}" if fence == "`" else f"{fence} {text} {fence}"


# A base-side finding is on a line as the base had it: the line, not always its file, is
# gone from the head (a removed list entry, a resource moved away).
BEFORE = " (before this change)"


def lines(finding: Finding) -> str:
    deleted = BEFORE if finding.side is Side.BASE else ""
    if finding.end_line and finding.end_line != finding.line:
        return f"lines {finding.line}–{finding.end_line}{deleted}"
    return f"line {finding.line}{deleted}"


def related_text(finding: Finding) -> str:
    """The finding's causes elsewhere, one line each, for texts that carry no links."""
    lines = []
    for r in finding.related:
        where = f"{r.path}:{r.line}" + (BEFORE if r.side is Side.BASE else "")
        lines.append(f"- {where}" + (f": {r.message}" if r.message else ""))
    return "Related:\n" + "\n".join(lines) if lines else ""


_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.DOTALL)


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cell(text: str, limit: int = 2000) -> str:
    """Text in a GFM table cell: a `|` (even inside code) ends the cell, a newline the row,
    and `<...>` outside code would be taken for HTML and hidden (inside code GitHub shows
    an entity as typed, so code spans keep their text)."""
    text = clip(text, limit).replace("\r\n", "\n")
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_escape_html(text[pos : m.start()]))
        out.append(m.group(0).replace("\n", " "))
        pos = m.end()
    out.append(_escape_html(text[pos:]))
    return "".join(out).replace("|", "\\|").replace("\n", "<br>")


def findings_table(
    findings: Sequence[Finding], docs_url: str = "", *, limit_bytes: int = MAX_JOB_SUMMARY_BYTES
) -> str:
    """One row per finding, in report order; rows past `limit_bytes` are counted instead."""
    if not findings:
        return ""
    out = "| | Rule | Where | Message |\n|---|---|---|---|\n"
    size = len(out.encode())
    shown = 0
    for f in findings:
        where = f"{code(f.path)} {lines(f)}"
        if not f.introduced:
            where += " (pre-existing)"
        message = f.message
        if f.related:
            message += "\n" + related_text(f)
        row = (
            f"| {ICON[f.severity]} | {rule_link(f.rule, docs_url)} | {cell(where)} | "
            f"{cell(message)} |\n"
        )
        if size + len(row.encode()) > limit_bytes - 200:
            break
        out += row
        size += len(row.encode())
        shown += 1
    if shown < len(findings):
        out += f"\n…and {len(findings) - shown} more not listed here.\n"
    return out


# -- impact ----------------------------------------------------------------------------------


def _marked_moves(k: KustomizationImpact) -> list[str]:
    """The changed objects, those now defined in another file said so (the diff's
    "moved")."""
    return [f"{c} (moved from {k.moved[c]})" if c in k.moved else c for c in k.changed]


def _objects(items: Sequence[str]) -> str:
    if not items:
        return "–"
    shown = ", ".join(code(n) for n in items[:_NAMES_SHOWN])
    more = len(items) - _NAMES_SHOWN
    return f"{len(items)}: {shown}{f' and {more} more' if more > 0 else ''}"


def impact_section(impact: Sequence[ClusterImpact] | None, heading: str = "###") -> str:
    """Which clusters the change reaches: per cluster, its affected Flux Kustomizations
    with the objects added, changed and removed. '' when no impact was computed (a
    whole-tree check)."""
    if impact is None:
        return ""
    out = f"{heading} Clusters this change reaches\n\n"
    if not impact:
        return out + "No cluster is affected: nothing a Flux Kustomization applies changes.\n"
    for cluster in impact:
        out += f"**{cell(cluster.cluster, 200)}**\n\n"
        # What is not fully known has a column of its own: a Kustomization the change
        # drops can both prune a PersistentVolumeClaim and hold a chart not rendered.
        unknown = any(k.unknown or k.fails for k in cluster.kustomizations)
        if cluster.kustomizations:
            out += "| Flux Kustomization | added | changed | removed |"
            title = (
                "fails to build or not fully known"
                if any(k.fails for k in cluster.kustomizations)
                else "not fully known"
            )
            out += f" {title} |\n|---|---|---|---|---|\n" if unknown else "\n|---|---|---|---|\n"
        for k in cluster.kustomizations:
            out += (
                f"| {cell(k.label, 300)} | {cell(_objects(k.added), 600)} | "
                f"{cell(_objects(_marked_moves(k)), 600)} | {cell(_objects(k.removed), 600)} |"
            )
            if unknown:
                why = [f"fails to build: {f}" for f in k.fails[:3]] + k.unknown[:3]
                out += f" {cell('; '.join(why[:3]) or '–', 600)} |"
            out += "\n"
        if cluster.unfollowed:
            shown = "; ".join(clip(u, 200) for u in cluster.unfollowed[:5])
            more = len(cluster.unfollowed) - 5
            out += (
                ("\n" if cluster.kustomizations else "")
                + f"May also change through what flux-review cannot follow: {shown}"
                + (f" and {more} more" if more > 0 else "")
                + ".\n"
            )
        out += "\n"
    return out


def readers_section(
    findings: Sequence[Finding],
    consumers: Mapping[str, Sequence[str]],
    heading: str = "###",
    limit: int = 100_000,
) -> str:
    """Each file with findings and the controllers that read it, as the check run says."""
    out = ""
    for path in dict.fromkeys(f.path for f in findings):
        readers = consumers.get(path) or ()
        if not readers:
            continue
        item = f"- {code(path)}: " + "; ".join(clip(r, 300) for r in readers) + "\n"
        if len(out) + len(item) > limit:
            break
        out += item
    return f"{heading} Who reads these files\n\n{out}\n" if out else ""


def job_summary(
    findings: Sequence[Finding],
    *,
    base: str | None,
    head: str,
    impact: Sequence[ClusterImpact] | None = None,
    fail_on: Severity | None = Severity.ERROR,
    docs_url: str = "",
    rule_errors: Sequence[str] = (),
    consumers: Mapping[str, Sequence[str]] | None = None,
    diff: Sequence[ClusterDiff] | None = None,
    redactor: Redactor | None = None,
) -> str:
    """The job summary of a workflow step: the counts and verdict, the clusters the change
    reaches, every finding in a table, who reads the files that have findings, then what
    the change does to each object (as in the check run's text)."""
    scope = (
        f"introduced by the change {code(base[:12])}…{code(head[:12])}"
        if base
        else f"in the tree at {code(head[:12])}"
    )
    out = f"## flux-review\n\n**{count_title(findings)}** {scope}."
    if fail_on is None and findings:
        out += " The step passes whatever it finds (fail-on `never`)."
    elif fail_on is not None and findings:
        out += (
            f" The step fails: findings of severity `{fail_on.value}` or higher fail it."
            if fails(findings, fail_on)
            else f" The step passes: only findings of severity `{fail_on.value}` or higher fail it."
        )
    out += "\n\n"
    if rule_errors:
        # A rule that crashed is flux-review's bug; say so rather than imply a clean bill.
        out += (
            f"> **Note:** {len(rule_errors)} check(s) could not run because of a flux-review "
            "bug, so this review is incomplete.\n"
            + "".join(f"> - {cell(e, 300)}\n" for e in rule_errors[:5])
            + "\n"
        )
    out += impact_section(impact)
    if out and not out.endswith("\n\n"):
        out += "\n"
    readers = readers_section(findings, consumers or {})
    if findings:
        room = MAX_JOB_SUMMARY_BYTES - len(out.encode()) - len(readers.encode()) - 100
        out += "### Findings\n\n" + findings_table(findings, docs_url, limit_bytes=room)
        out += "\n" + readers
    room = min(DIFF_LIMIT, MAX_JOB_SUMMARY_BYTES - len(out.encode()) - 100)
    if not out.endswith("\n\n"):
        out += "\n"
    out += section(diff, redactor, base=base, head=head, limit=room, heading="###")
    return out
