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


class Side(enum.StrEnum):
    """Which commit a line number belongs to. A base-side location is a line the change
    deleted or changed away (a removed file, an unlisted resource): it exists only in the
    base, and GitHub comments on it on the left side of the diff."""

    HEAD = "head"
    BASE = "base"


@dataclass(frozen=True, slots=True)
class Location:
    path: str
    line: int
    side: Side = Side.HEAD
    message: str = ""  # what this location has to do with the finding

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "side": self.side.value,
            "message": self.message,
        }


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
    side: Side = Side.HEAD
    # The locations that caused the finding, when they are elsewhere: a Chart.yaml
    # `version:` line behind a HelmRelease that no longer matches it.
    related: tuple[Location, ...] = ()
    # The reasoning behind the message (the consumer chain, the evidence, versions and
    # where they were read): the message says what breaks in one sentence, this says why.
    detail: str = field(default="", compare=False)
    # What makes this finding the same one in another commit, chosen by the rule (the
    # HelmRelease and the field, say); None: its path and line, followed through the diff.
    key: tuple[str, ...] | None = field(default=None, compare=False)
    # Text of the finding's line: identifies a keyless finding across commits even when
    # lines above it move.
    anchor: str = field(default="", compare=False, repr=False)

    @property
    def location(self) -> Location:
        return Location(self.path, self.line, self.side)

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.path, self.line, self.rule, self.message)

    @property
    def fingerprint(self) -> str:
        """Stable identity of a finding on a PR: independent of line moves, and for a
        keyed finding of its wording too (a message that names a new chart version is
        still the same finding)."""
        if self.key is not None:
            raw = "\0".join((self.rule, "key", *self.key))
        else:
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
            "side": self.side.value,
            "related": [r.to_json() for r in self.related],
            "detail": self.detail,
        }
