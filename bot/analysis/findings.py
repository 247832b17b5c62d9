"""What the analysis reports."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"

    @property
    def rank(self) -> int:
        return {"notice": 1, "warning": 2, "error": 3}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    path: str
    line: int
    message: str
    end_line: int | None = None
    suggestion: str | None = None
    introduced: bool = True
    # Text of the finding's line: what makes a finding "the same" across commits
    # even when lines above it move.
    anchor: str = field(default="", compare=False, repr=False)

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.path, self.line, self.rule, self.message)

    @property
    def fingerprint(self) -> str:
        """Stable identity of a finding on a PR: independent of line moves."""
        raw = "\0".join((self.rule, self.path, self.anchor.strip(), self.message))
        return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "path": self.path,
            "line": self.line,
            "end_line": self.end_line,
            "message": self.message,
            "introduced": self.introduced,
            "suggestion": self.suggestion,
        }
