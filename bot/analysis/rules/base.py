"""What every rule receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.analysis.findings import Finding, Severity
from bot.analysis.model import Repository
from bot.analysis.tree import ChangedFile


@dataclass
class Context:
    repo: Repository  # the repository at head
    base: Repository | None = None  # at base, when a change is reviewed
    changed: dict[str, ChangedFile] = field(default_factory=dict)  # by head path
    # Shared between rules: (path, line) pairs already explained by a template action,
    # so the same root cause is never reported twice.
    template_lines: dict[str, set[int]] = field(default_factory=dict)

    def finding(
        self,
        rule: str,
        severity: Severity,
        path: str,
        line: int,
        message: str,
        end_line: int | None = None,
        suggestion: str | None = None,
    ) -> Finding:
        return Finding(
            rule=rule,
            severity=severity,
            path=path,
            line=max(1, line),
            message=message,
            end_line=end_line,
            suggestion=suggestion,
        )
