"""The command line's output formats: text for people, JSON and SARIF for tools."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bot import __version__
from bot.analysis.diff import ClusterDiff
from bot.analysis.findings import Finding, Severity, Side
from bot.analysis.impact import ClusterImpact
from bot.analysis.rules import RULES
from bot.report import markdown

_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "note"}


def docs_url() -> str:
    """Where docs/rules.md is published (`DOCS_URL`, as for the App); SARIF links to it
    only when it is known, rather than to a guess."""
    return os.environ.get("DOCS_URL", "").strip()


def counts(findings: list[Finding]) -> str:
    by = Counter(f.severity for f in findings)
    parts = []
    for sev in (Severity.ERROR, Severity.WARNING, Severity.NOTICE):
        n = by.get(sev, 0)
        if n:
            parts.append(f"{n} {sev.value}{'s' if n != 1 else ''}")
    return ", ".join(parts) if parts else "no problems found"


# A grouped finding (one deprecated apiVersion on a hundred objects) keeps its text short.
RELATED_SHOWN = 5


def to_text(
    findings: list[Finding],
    color: bool = False,
    impact: Sequence[ClusterImpact] | None = None,
    verbose: bool = False,
) -> str:
    """One line per finding, its related locations and suggestion below it; `verbose`
    adds each finding's detail (the reasoning behind the message) and lists every related
    location, where the short form stops at `RELATED_SHOWN`."""
    colors = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.NOTICE: "\033[36m"}
    lines = []
    for f in findings:
        sev = f.severity.value
        if color:
            sev = f"{colors[f.severity]}{sev}\033[0m"
        marker = "" if f.introduced else " (pre-existing)"
        where = f"{f.path}:{f.line}" + (markdown.BEFORE if f.side is Side.BASE else "")
        lines.append(f"{where}: {sev} [{f.rule}]{marker} {f.message}")
        listed: set[str] = set()
        if verbose and f.detail:
            detail = f.detail.splitlines()
            lines += [f"    {d}" if d else "" for d in detail]
            # A detail that lists the locations itself (`- path:line`, a grouped
            # deprecation's objects) is not followed by the same list again.
            listed = {d[2:].strip() for d in detail if d.startswith("- ")}
        shown = [
            r
            for r in (f.related if verbose else f.related[:RELATED_SHOWN])
            if f"{r.path}:{r.line}" not in listed
        ]
        for r in shown:
            side = markdown.BEFORE if r.side is Side.BASE else ""
            lines.append(
                f"    related: {r.path}:{r.line}{side}" + (f": {r.message}" if r.message else "")
            )
        if not verbose and len(shown) < len(f.related):
            lines.append(f"    related: {len(f.related) - len(shown)} more (-v lists them)")
        if f.suggestion is not None:
            for s in f.suggestion.splitlines() or [""]:
                lines.append(f"    suggestion: {s}")
    lines.append(counts(findings))
    if impact is not None:
        lines += impact_lines(impact)
    return "\n".join(lines) + "\n"


def to_json(
    findings: list[Finding],
    base: str | None,
    head: str,
    impact: Sequence[ClusterImpact] | None = None,
    diff: Sequence[ClusterDiff] | None = None,
) -> str:
    doc: dict[str, Any] = {
        "version": 1,
        "base": base,
        "head": head,
        "findings": [f.to_json() for f in findings],
    }
    if impact is not None:
        doc["impact"] = [c.to_json() for c in impact]
    if diff is not None:
        # The same clusters as `flux-review diff --format json` gives, secrets replaced.
        doc["diff"] = [c.to_json() for c in diff]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def impact_lines(impact: Sequence[ClusterImpact]) -> list[str]:
    """What a change does to each cluster, for the text output."""
    if not impact:
        return ["No cluster is affected: nothing that Flux applies changes."]
    lines = []
    for c in impact:
        lines.append(f"Cluster {c.cluster}:")
        for k in c.kustomizations:
            changed = [c for c in k.changed if c not in k.moved]
            moved = [f"{c} from {k.moved[c]}" for c in k.changed if c in k.moved]
            parts = [
                f"{len(items)} {what} ({_names(items)})"
                for what, items in (
                    ("added", k.added),
                    ("changed", changed),
                    ("moved", moved),
                    ("removed", k.removed),
                )
                if items
            ]
            if k.fails:
                parts.append(
                    f"fails to build ({'; '.join(k.fails[:3])}): Flux applies none of it, "
                    "the cluster keeps what it applied before"
                )
            if k.unknown:
                parts.append(f"not fully known ({'; '.join(k.unknown[:3])})")
            lines.append(f"  {k.label}: {'; '.join(parts)}")
        if c.unfollowed:
            lines.append(
                "  may also change through what flux-review cannot follow: "
                + _names(c.unfollowed, 3, "; ")
            )
    return lines


def _names(items: Sequence[str], shown: int = 5, sep: str = ", ") -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return sep.join(items[:shown]) + more


def _sarif_location(
    path: str, line: int | None, end_line: int | None, side: Side, **extra: Any
) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"}}
    if isinstance(line, int) and line >= 1:
        physical["region"] = {"startLine": line}
        if end_line and end_line >= line:
            physical["region"]["endLine"] = end_line
    location: dict[str, Any] = {**extra, "physicalLocation": physical}
    if side is Side.BASE:
        # The line is in the base revision (a deleted or changed-away line): %SRCROOT% holds
        # the head, so say which revision the region belongs to.
        location["properties"] = {"side": "base"}
    return location


def to_sarif(
    findings: list[Finding],
    base: str | None,
    head: str,
    repository_uri: str | None = None,
    *,
    revision: bool = True,
) -> str:
    """SARIF 2.1.0. `repository_uri` (where the repository is hosted) is what
    `versionControlProvenance` requires; without it the provenance is left out. With
    `revision` false (`head` is the tree of uncommitted changes) it names no revision."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for info in RULES.values():
        index[info.id] = len(rules)
        rules.append(
            {
                "id": info.id,
                "name": "".join(w.capitalize() for w in info.id.split("-")),
                "shortDescription": {"text": info.summary},
                "fullDescription": {"text": info.doc},
                **({"helpUri": f"{docs_url()}#{info.id}"} if docs_url() else {}),
                "help": {"text": info.doc, "markdown": info.doc},
                "defaultConfiguration": {"level": _SARIF_LEVEL[info.default_severity]},
            }
        )
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [_sarif_location(f.path, f.line, f.end_line, f.side)],
            "partialFingerprints": {"fluxReview/v1": f.fingerprint},
        }
        related = [
            _sarif_location(
                loc.path,
                loc.line,
                None,
                loc.side,
                id=i,
                **({"message": {"text": loc.message}} if loc.message else {}),
            )
            for i, loc in enumerate(f.related)
        ]
        if related:
            result["relatedLocations"] = related
        if base is not None:
            result["baselineState"] = "new" if f.introduced else "unchanged"
        if f.suggestion is not None:
            end = f.end_line or f.line
            result["fixes"] = [
                {
                    "description": {"text": "Apply the suggested line"},
                    "artifactChanges": [
                        {
                            "artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                            "replacements": [
                                {
                                    "deletedRegion": {"startLine": f.line, "endLine": end},
                                    "insertedContent": {"text": f.suggestion + "\n"},
                                }
                            ],
                        }
                    ],
                }
            ]
        results.append(result)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "flux-review",
                        "version": __version__,
                        **({"informationUri": docs_url()} if docs_url() else {}),
                        "rules": rules,
                    }
                },
                **(
                    {
                        "versionControlProvenance": [
                            {
                                "repositoryUri": repository_uri,
                                **({"revisionId": head} if revision else {}),
                            }
                        ]
                    }
                    if repository_uri
                    else {}
                ),
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


# GitHub Actions workflow commands: `::error file=F,line=N::message` on stdout becomes an
# annotation on that line of the PR's Files tab. GitHub decodes %25, %0D and %0A in the
# message, and additionally %3A and %2C in property values, where a raw `:` or `,` would
# end the value (actions/toolkit, `command.ts`).
_GITHUB_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTICE: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(finding: Finding) -> str:
    """One workflow command. A finding on a line the change deleted sits on its first
    related line of the head, as in the check run (GitHub shows annotations on the head's
    files only), or, without one, on no file: the annotation still lists it in the run."""
    path: str | None = finding.path
    line, end = finding.line, finding.end_line
    message = finding.message
    if finding.side is Side.BASE:
        head_side = next((r for r in finding.related if r.side is Side.HEAD), None)
        path, line, end = (head_side.path, head_side.line, None) if head_side else (None, 0, None)
        message = f"{finding.path} line {finding.line}{markdown.BEFORE}: {message}"
    related = markdown.related_text(finding)
    if related:
        message += "\n\n" + related
    if finding.suggestion is not None:
        message += "\n\nSuggestion:\n" + finding.suggestion
    title = finding.rule if finding.introduced else f"{finding.rule} (pre-existing)"
    props = []
    if path is not None:
        props.append(f"file={escape_property(path)}")
        props.append(f"line={line}")
        if end and end > line:
            props.append(f"endLine={end}")
    props.append(f"title={escape_property(title)}")
    return f"::{_GITHUB_COMMAND[finding.severity]} {','.join(props)}::{escape_data(message)}"


def to_github(findings: list[Finding]) -> str:
    """One workflow command per finding, introduced ones first: GitHub shows only the
    first 10 annotations of each level of a step on the Files tab."""
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTICE: 2}
    ranked = sorted(findings, key=lambda f: (not f.introduced, order[f.severity], f.sort_key()))
    return "".join(github_annotation(f) + "\n" for f in ranked)
