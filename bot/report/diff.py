"""The diff of a change as people read it: text for a terminal, Markdown for a check
run's `text` and the Action's job summary, JSON for tools.

Markdown is cut to a size (GitHub caps a check run's `text` at 65,535 characters): the
largest clusters first, whole objects only (a `diff` block is never cut), and a last line
that says how many objects are not shown and how to see them all.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass

from bot.analysis.diff import ClusterDiff, Entry, KustomizationDiff, Redactor, counts, entries

HEADING = "What this pull request changes"
NO_CHANGE = "This change touches no object that a cluster applies."


def command(base: str | None, head: str | None, staged: bool = False) -> str:
    b = base[:12] if base else "BASE"
    if staged:
        return f"flux-review diff --base {b} --staged"
    return f"flux-review diff --base {b} --head {head[:12] if head else 'HEAD'}"


def to_json(
    clusters: Sequence[ClusterDiff], base: str | None, head: str | None, redactor: Redactor
) -> str:
    doc = {
        "version": 1,
        "base": base,
        "head": head,
        "clusters": [c.to_json() for c in clusters],
    }
    return redactor.scrub(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"


_COLORS = {"+": "\x1b[32m", "-": "\x1b[31m", "@": "\x1b[36m", "#": "\x1b[1m"}
_RESET = "\x1b[0m"


def _paint(line: str, color: bool) -> str:
    if not color or not line:
        return line
    start = _COLORS.get(line[0])
    return f"{start}{line}{_RESET}" if start else line


def _kustomization_lines(k: KustomizationDiff) -> list[str]:
    if k.fails and not k.objects:
        out = [
            f"  {k.label}: fails to build, so Flux applies none of it (the cluster keeps "
            "what it applied before)"
        ]
    else:
        out = [f"  {k.label}: {counts(k.objects)}"]
    out += [f"    fails to build: {why}" for why in k.fails]
    out += [f"    not fully known: {why}" for why in k.unknown]
    return out


def to_text(
    clusters: Sequence[ClusterDiff],
    redactor: Redactor,
    *,
    color: bool = False,
    cluster: str | None = None,
) -> str:
    shown = [c for c in clusters if cluster is None or c.cluster == cluster]
    if not shown:
        if cluster is not None:
            return f"This change touches no object that {cluster} applies.\n"
        return NO_CHANGE + "\n"
    lines: list[str] = []
    for c in shown:
        lines.append(_paint(f"# Cluster {c.cluster}", color))
        for name in c.unfollowed:
            lines.append(f"  may also be applied through {name}, which flux-review cannot follow")
        for k in c.kustomizations:
            lines += [_paint(line, color) for line in _kustomization_lines(k)]
            for e in entries(k.objects):
                lines.append("")
                lines += ["    " + _paint(line, color) if line else "" for line in e.lines]
            lines.append("")
    return redactor.scrub("\n".join(lines).rstrip("\n") + "\n")


# --- Markdown -------------------------------------------------------------------------


def _fence(lines: Sequence[str]) -> str:
    """A code fence longer than any run of backticks inside (a value may hold ```)."""
    longest = 0
    for line in lines:
        run = 0
        for ch in line:
            run = run + 1 if ch == "`" else 0
            longest = max(longest, run)
    return "`" * max(3, longest + 1)


@dataclass
class _Block:
    cluster: str
    k: KustomizationDiff
    entries: list[Entry]


def _summary_line(cluster: str, k: KustomizationDiff, shown: int) -> str:
    part = f" ({shown} shown)" if shown < len(k.objects) else ""
    return (
        f"<summary><code>{html.escape(cluster)}</code> · {html.escape(k.label)}: "
        f"{html.escape(counts(k.objects))}{part}</summary>"
    )


def _render_block(cluster: str, k: KustomizationDiff, shown: Sequence[Entry]) -> str:
    count = sum(e.count for e in shown)
    out = ["<details>", _summary_line(cluster, k, count), ""]
    out += [f"> Not fully known: {html.escape(why)}" for why in k.unknown]
    if k.unknown:
        out.append("")
    if shown:
        lines = [line for e in shown for line in (*e.lines, "")]
        fence = _fence(lines)
        out += [f"{fence}diff", *lines[:-1], fence, ""]
    out += ["</details>", ""]
    return "\n".join(out) + "\n"


def section(
    clusters: Sequence[ClusterDiff] | None,
    redactor: Redactor | None,
    *,
    base: str | None,
    head: str | None,
    limit: int,
    heading: str = "##",
) -> str:
    """The "What this pull request changes" section within `limit` characters ('' when
    no diff was computed, or when not even its heading fits)."""
    if clusters is None or redactor is None:
        return ""
    title = f"{heading} {HEADING}\n\n"
    if not clusters:
        text = title + NO_CHANGE + "\n\n"
        return text if len(text) <= limit else ""
    # Largest clusters first: when not everything fits, the most of the change is shown.
    ordered = sorted(clusters, key=lambda c: -c.size)
    blocks = [_Block(c.cluster, k, entries(k.objects)) for c in ordered for k in c.kustomizations]
    total = sum(len(k.objects) for c in clusters for k in c.kustomizations)
    out = title
    unfollowed = [(c.cluster, u) for c in ordered for u in c.unfollowed]
    for name, via in unfollowed[:10]:
        out += (
            f"- `{name}` may also be changed through {html.escape(via)}, which flux-review "
            "cannot follow.\n"
        )
    if unfollowed:
        out += "\n"
    # Room for the last line, whatever it says.
    trailer_room = 300
    hidden_objects = 0
    hidden_in: set[int] = set()
    for i, b in enumerate(blocks):
        shell = _render_block(b.cluster, b.k, [])
        if len(out) + len(shell) + trailer_room > limit:
            hidden_objects += len(b.k.objects)
            if b.k.objects:
                hidden_in.add(i)
            continue
        room = limit - trailer_room - len(out) - len(shell) - 20
        shown: list[Entry] = []
        for e in b.entries:
            size = sum(len(line) + 1 for line in e.lines) + 1
            if size <= room:
                shown.append(e)
                room -= size
            else:
                hidden_objects += e.count
                hidden_in.add(i)
        if shown or b.k.unknown:
            out += _render_block(b.cluster, b.k, shown)
    if hidden_objects:
        out += (
            f"{hidden_objects} more object{'s' if hidden_objects != 1 else ''} in "
            f"{len(hidden_in)} Kustomization{'s' if len(hidden_in) != 1 else ''} "
            f"{'are' if hidden_objects != 1 else 'is'} not shown (of {total}); run "
            f"`{command(base, head)}` to see every change.\n\n"
        )
    return redactor.scrub(out)
