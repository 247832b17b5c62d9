"""The rule contract.

A rule is one module named after its id, with a docstring (its documentation), `ID`,
`SEVERITY` and one or both of:

- `check(ctx: Context)`: a SNAPSHOT rule, an invariant of one tree. It runs on the
  head; on the base only when a head finding has to be matched against the baseline.
- `check_change(ctx: ChangeContext)`: a CHANGE rule, a predicate over a change. It runs
  once per reviewed change, and every finding it yields is introduced by the change.

An error in a file that no cluster applies is made a notice by the engine (it breaks
nothing yet), unless the module sets `ABOUT_UNAPPLIED_FILES = True`: a rule whose very
subject is that a file is not applied.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.analysis.change import Change
from bot.analysis.findings import Finding, Location, Severity, Side
from bot.analysis.snapshot import Snapshot


class Scope(enum.StrEnum):
    SNAPSHOT = "snapshot"
    CHANGE = "change"


def _finding(
    rule: str,
    severity: Severity,
    path: str,
    line: int,
    message: str,
    end_line: int | None,
    suggestion: str | None,
    related: Iterable[Location],
    key: Iterable[str] | None,
    side: Side,
    detail: str = "",
) -> Finding:
    return Finding(
        rule=rule,
        severity=severity,
        path=path,
        line=max(1, line),
        message=message,
        end_line=end_line,
        suggestion=suggestion,
        side=side,
        related=tuple(related),
        key=tuple(key) if key is not None else None,
        detail=detail,
    )


@dataclass
class Context:
    """What a SNAPSHOT rule sees: one commit."""

    repo: Snapshot
    # Every rule id the registry knows (a suppression may name any of them).
    rule_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def snapshot(self) -> Snapshot:
        return self.repo

    def finding(
        self,
        rule: str,
        severity: Severity,
        path: str,
        line: int,
        message: str,
        end_line: int | None = None,
        suggestion: str | None = None,
        related: Iterable[Location] = (),
        key: Iterable[str] | None = None,
        detail: str = "",
    ) -> Finding:
        return _finding(
            rule,
            severity,
            path,
            line,
            message,
            end_line,
            suggestion,
            related,
            key,
            Side.HEAD,
            detail,
        )


@dataclass
class ChangeContext:
    """What a CHANGE rule sees: the change, with both snapshots."""

    change: Change
    rule_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def head(self) -> Snapshot:
        return self.change.head

    @property
    def base(self) -> Snapshot:
        return self.change.base

    def finding(
        self,
        rule: str,
        severity: Severity,
        path: str,
        line: int,
        message: str,
        end_line: int | None = None,
        suggestion: str | None = None,
        related: Iterable[Location] = (),
        key: Iterable[str] | None = None,
        side: Side = Side.HEAD,
        detail: str = "",
    ) -> Finding:
        return _finding(
            rule, severity, path, line, message, end_line, suggestion, related, key, side, detail
        )
