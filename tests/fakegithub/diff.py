"""The pull request "files" view, computed from a real repository the way GitHub does it.

GitHub diffs ``merge-base(base, head)..head`` (the three-dot diff), detects renames, uses three
lines of context, and publishes per file only the hunks (from the first ``@@`` on) as
``patch``. Review comments may only land on lines that appear in those hunks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .gitrepo import GitRepo

_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

# git's one-letter statuses -> GitHub's words. GitHub calls a type change (file <-> symlink)
# "changed"; "unchanged" appears for files in a PR that only changed mode in some views.
_STATUS = {
    "A": "added",
    "D": "removed",
    "M": "modified",
    "R": "renamed",
    "C": "copied",
    "T": "changed",
}


@dataclass
class DiffLine:
    kind: str  # "+", "-", " ", "\\" (no newline marker) or "@" (a hunk header)
    old: int | None  # line number in the old file, for "-" and " "
    new: int | None  # line number in the new file, for "+" and " "
    hunk: int  # index of the hunk this line belongs to
    position: int  # GitHub's "position": lines below the first @@ header, 1-based
    text: str


@dataclass
class FileDiff:
    filename: str
    status: str
    previous_filename: str | None
    additions: int
    deletions: int
    sha: str  # blob SHA at head (at base for removed files)
    patch: str | None  # None: binary, pure rename, mode-only change or empty file
    lines: list[DiffLine] = field(default_factory=list)

    @property
    def changes(self) -> int:
        return self.additions + self.deletions

    def find(self, side: str, line: int) -> DiffLine | None:
        """The diff line a review comment on ``side`` (LEFT/RIGHT) at ``line`` anchors to."""
        for entry in self.lines:
            if side == "RIGHT" and entry.kind in "+ " and entry.new == line:
                return entry
            if side == "LEFT" and entry.kind in "- " and entry.old == line:
                return entry
        return None

    def at_position(self, position: int) -> DiffLine | None:
        for entry in self.lines:
            if entry.position == position:
                return entry
        return None

    def hunk_text(self, upto: DiffLine) -> str:
        """GitHub's ``diff_hunk`` of a comment: its hunk's header through the commented line."""
        out = [e.text for e in self.lines if e.hunk == upto.hunk and e.position <= upto.position]
        return "\n".join(out)


def _split_z(data: bytes) -> list[str]:
    return [p.decode("utf-8", errors="surrogateescape") for p in data.split(b"\0")]


def _parse_lines(patch: bytes) -> list[DiffLine]:
    lines: list[DiffLine] = []
    old = new = 0
    hunk = -1
    position = 0
    for raw in patch.split(b"\n"):
        text = raw.decode("utf-8", errors="replace")
        header = _HUNK.match(raw)
        if header:
            hunk += 1
            old, new = int(header.group(1)), int(header.group(3))
            # The first header is position 0; later headers count, as GitHub documents.
            lines.append(DiffLine("@", None, None, hunk, position, text))
            position += 1
            continue
        if hunk < 0 or not raw:
            continue
        kind = chr(raw[0])
        if kind == " ":
            lines.append(DiffLine(" ", old, new, hunk, position, text))
            old += 1
            new += 1
        elif kind == "-":
            lines.append(DiffLine("-", old, None, hunk, position, text))
            old += 1
        elif kind == "+":
            lines.append(DiffLine("+", None, new, hunk, position, text))
            new += 1
        else:
            lines.append(DiffLine("\\", None, None, hunk, position, text))
        position += 1
    return lines


def _sections(patch: bytes) -> list[bytes]:
    """Split ``git diff -p`` output into one chunk per file (same order as --raw)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    for line in patch.split(b"\n"):
        if line.startswith(b"diff --git "):
            if current:
                chunks.append(b"\n".join(current))
            current = [line]
        elif current:
            current.append(line)
    if current:
        chunks.append(b"\n".join(current))
    return chunks


def compute_files(repo: GitRepo, base: str, head: str) -> list[FileDiff]:
    """GitHub's list of changed files for a PR from ``base`` into ``head`` (both SHAs)."""
    merge_base = repo.merge_base(base, head)
    opts = ("-M",)
    raw = _split_z(repo.diff(merge_base, head, "--raw", "-z", "--no-abbrev", *opts))
    numstat = _split_z(repo.diff(merge_base, head, "--numstat", "-z", *opts))
    patch = repo.diff(merge_base, head, "-p", "-U3", "--full-index", *opts)
    sections = _sections(patch)

    entries: list[tuple[str, str, str | None, str, str]] = []  # status, path, old, sha_a, sha_b
    i = 0
    while i < len(raw) and raw[i]:
        meta = raw[i].lstrip(":").split()
        _, _, sha_a, sha_b, status = meta
        letter = status[0]
        if letter in "RC":
            entries.append((letter, raw[i + 2], raw[i + 1], sha_a, sha_b))
            i += 3
        else:
            entries.append((letter, raw[i + 1], None, sha_a, sha_b))
            i += 2

    counts: list[tuple[int, int]] = []
    j = 0
    while j < len(numstat) and numstat[j]:
        added, deleted, path = numstat[j].split("\t", 2)
        # Binary files report "-": GitHub shows 0/0 for them.
        counts.append((int(added) if added != "-" else 0, int(deleted) if deleted != "-" else 0))
        # Renames print an empty path then old and new as separate NUL-terminated fields.
        j += 3 if path == "" else 1

    files: list[FileDiff] = []
    for index, (letter, path, old, sha_a, sha_b) in enumerate(entries):
        section = sections[index] if index < len(sections) else b""
        start = section.find(b"\n@@ ")
        hunks = section[start + 1 :] if start >= 0 else b""
        hunks = hunks.rstrip(b"\n")
        additions, deletions = counts[index] if index < len(counts) else (0, 0)
        files.append(
            FileDiff(
                filename=path,
                status=_STATUS.get(letter, "modified"),
                previous_filename=old,
                additions=additions,
                deletions=deletions,
                sha=sha_a if letter == "D" else sha_b,
                patch=hunks.decode("utf-8", errors="replace") if hunks else None,
                lines=_parse_lines(hunks) if hunks else [],
            )
        )
    return files
