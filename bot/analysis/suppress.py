"""Inline suppressions: `# flux-review: ignore RULE-ID -- reason`."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from bot.analysis.lines import split_lines
from bot.analysis.templating import comment_start

_MARK = re.compile(r"#\s*flux-review:\s*(?P<rest>.*)$")  # matched where the comment starts
_IGNORE = re.compile(
    r"^ignore\s+(?P<rules>[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*)\s*(?:--\s*(?P<reason>.*))?$"
)


@dataclass(frozen=True, slots=True)
class Suppression:
    line: int
    rules: frozenset[str]
    error: str | None  # why it does not count, when it does not


def suppressions(text: str, known_rules: Collection[str]) -> list[Suppression]:
    """The suppression comments of a file; one naming a rule not in `known_rules`
    silences nothing."""
    found = []
    for number, line in enumerate(split_lines(text), start=1):
        if "flux-review:" not in line:
            continue
        # Only a YAML comment counts: not `#` inside a quoted string.
        m = _MARK.match(line, comment_start(line))
        if m is None:
            continue
        rest = m.group("rest").strip()
        im = _IGNORE.match(rest)
        if im is None:
            found.append(
                Suppression(
                    number,
                    frozenset(),
                    "this flux-review comment is not "
                    "`flux-review: ignore RULE-ID -- reason`; it silences "
                    "nothing.",
                )
            )
            continue
        rules = frozenset(r.strip() for r in im.group("rules").split(","))
        unknown = sorted(r for r in rules if r not in known_rules)
        reason = (im.group("reason") or "").strip()
        if unknown:
            found.append(
                Suppression(
                    number,
                    frozenset(),
                    f"unknown rule {', '.join(unknown)} in suppression; it silences nothing.",
                )
            )
        elif not reason:
            found.append(
                Suppression(
                    number,
                    frozenset(),
                    "suppression without a reason: write "
                    "`-- why` after the rule id; it silences nothing until "
                    "then.",
                )
            )
        else:
            found.append(Suppression(number, rules, None))
    return found


def suppressed_lines(text: str, known_rules: Collection[str]) -> dict[int, frozenset[str]]:
    """line -> rules silenced there (the comment's line and the line below it)."""
    result: dict[int, set[str]] = {}
    for s in suppressions(text, known_rules):
        if s.error:
            continue
        for line in (s.line, s.line + 1):
            result.setdefault(line, set()).update(s.rules)
    return {k: frozenset(v) for k, v in result.items()}
