"""The command line's output formats: text for people, JSON and SARIF for tools."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from bot import __version__
from bot.analysis.findings import Finding, Severity
from bot.analysis.rules import RULES

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


def to_text(findings: list[Finding], color: bool = False) -> str:
    colors = {Severity.ERROR: "\033[31m", Severity.WARNING: "\033[33m", Severity.NOTICE: "\033[36m"}
    lines = []
    for f in findings:
        sev = f.severity.value
        if color:
            sev = f"{colors[f.severity]}{sev}\033[0m"
        marker = "" if f.introduced else " (pre-existing)"
        lines.append(f"{f.path}:{f.line}: {sev} [{f.rule}]{marker} {f.message}")
        if f.suggestion is not None:
            for s in f.suggestion.splitlines() or [""]:
                lines.append(f"    suggestion: {s}")
    lines.append(counts(findings))
    return "\n".join(lines) + "\n"


def to_json(findings: list[Finding], base: str | None, head: str) -> str:
    doc = {"version": 1, "base": base, "head": head, "findings": [f.to_json() for f in findings]}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def related_locations(finding: Finding) -> list[dict[str, Any]]:
    """The locations that caused a finding, as plain dicts (`path`, `line`, `side`,
    `message`), whether the engine gives them as objects or as dicts."""
    out = []
    for loc in getattr(finding, "related", None) or ():
        if not isinstance(loc, dict):
            to_json = getattr(loc, "to_json", None)
            loc = to_json() if callable(to_json) else {
                k: getattr(loc, k, None) for k in ("path", "line", "side", "message")
            }
        if isinstance(loc, dict) and isinstance(loc.get("path"), str):
            out.append(loc)
    return out


def _side(obj: object) -> str:
    side = obj.get("side") if isinstance(obj, dict) else getattr(obj, "side", None)
    return str(getattr(side, "value", side) or "head")


def _sarif_location(path: str, line: int | None, end_line: int | None, side: str,
                    **extra: Any) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"}}
    if isinstance(line, int) and line >= 1:
        physical["region"] = {"startLine": line}
        if end_line and end_line >= line:
            physical["region"]["endLine"] = end_line
    location: dict[str, Any] = {**extra, "physicalLocation": physical}
    if side == "base":
        # The line is in the base revision (a deleted or changed-away line): %SRCROOT% holds
        # the head, so say which revision the region belongs to.
        location["properties"] = {"side": "base"}
    return location


def to_sarif(
    findings: list[Finding], base: str | None, head: str, repository_uri: str | None = None,
    *, revision: bool = True,
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
            "locations": [_sarif_location(f.path, f.line, f.end_line, _side(f))],
            "partialFingerprints": {"fluxReview/v1": f.fingerprint},
        }
        related = [
            _sarif_location(
                loc["path"], loc.get("line"), None, _side(loc), id=i,
                **({"message": {"text": str(loc["message"])}} if loc.get("message") else {}),
            )
            for i, loc in enumerate(related_locations(f))
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
                    {"versionControlProvenance": [
                        {"repositoryUri": repository_uri,
                         **({"revisionId": head} if revision else {})}
                    ]}
                    if repository_uri else {}
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
    message = finding.message
    related = related_locations(finding)
    if related:
        message += "\n\nRelated:" + "".join(
            f"\n- {loc['path']}:{loc.get('line') or ''}"
            f"{' (before this change)' if _side(loc) == 'base' else ''}"
            f"{': ' + str(loc['message']) if loc.get('message') else ''}"
            for loc in related
        )
    if finding.suggestion is not None:
        message += "\n\nSuggestion:\n" + finding.suggestion
    title = finding.rule if finding.introduced else f"{finding.rule} (pre-existing)"
    props = []
    side = getattr(finding, "side", None)
    if str(getattr(side, "value", side) or "head") == "base":
        # The line is in the base revision (deleted or changed away): pinned to the head
        # file it would land on the wrong line, so the annotation names it in the text.
        message = f"{finding.path}:{finding.line} (before this change): {message}"
    else:
        props.append(f"file={escape_property(finding.path)}")
        props.append(f"line={finding.line}")
        if finding.end_line and finding.end_line > finding.line:
            props.append(f"endLine={finding.end_line}")
    props.append(f"title={escape_property(title)}")
    return f"::{_GITHUB_COMMAND[finding.severity]} {','.join(props)}::{escape_data(message)}"


def to_github(findings: list[Finding]) -> str:
    """One workflow command per finding, introduced ones first: GitHub shows only the
    first 10 annotations of each level of a step on the Files tab."""
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.NOTICE: 2}
    ranked = sorted(findings, key=lambda f: (not f.introduced, order[f.severity], f.sort_key()))
    return "".join(github_annotation(f) + "\n" for f in ranked)
