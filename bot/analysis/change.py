"""A change: two snapshots, the files between them, and keyed before/after views of
what the rules compare (charts, Flux objects, kustomization files, consumer edges), so
that no rule derives its own diff."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Generic, TypeVar

from bot.analysis.findings import Location, Side
from bot.analysis.lines import split_lines
from bot.analysis.model import Chart, Consumer, FluxObject, KustomizationFile
from bot.analysis.snapshot import Snapshot
from bot.analysis.tree import ChangedFile, ChangeStatus, Tree

K = TypeVar("K")
V = TypeVar("V")


def changed_files(head: Tree, base: Tree) -> list[ChangedFile]:
    """What changed between two trees, by content (no rename detection)."""
    head_paths = set(head.paths())
    base_paths = set(base.paths())
    changes = [ChangedFile(p, ChangeStatus.ADDED) for p in head_paths - base_paths]
    changes += [ChangedFile(p, ChangeStatus.REMOVED) for p in base_paths - head_paths]
    changes += [
        ChangedFile(p, ChangeStatus.MODIFIED)
        for p in head_paths & base_paths
        if head.blob_id(p) != base.blob_id(p)
    ]
    return sorted(changes, key=lambda c: c.path)


@dataclass(frozen=True)
class Keyed(Generic[K, V]):
    """One kind of thing in both commits, by key."""

    before: Mapping[K, V]
    after: Mapping[K, V]

    @property
    def added(self) -> list[K]:
        return [k for k in self.after if k not in self.before]

    @property
    def removed(self) -> list[K]:
        return [k for k in self.before if k not in self.after]

    @property
    def common(self) -> list[K]:
        return [k for k in self.after if k in self.before]

    def pairs(self) -> Iterable[tuple[K, V | None, V | None]]:
        for k in dict.fromkeys([*self.before, *self.after]):
            yield k, self.before.get(k), self.after.get(k)


def _by(items: Iterable[V], key: Callable[[V], K]) -> dict[K, V]:
    result: dict[K, V] = {}
    for item in items:
        result.setdefault(key(item), item)
    return result


def object_key(obj: FluxObject) -> tuple[str, str, str]:
    return (f"{obj.group}/{obj.kind}", obj.namespace or "", obj.name)


@dataclass(frozen=True, slots=True)
class LineDiff:
    """Which lines of one file the change touched, on each side."""

    head: frozenset[int]  # lines added or rewritten in the head
    base: frozenset[int]  # lines deleted or rewritten away from the base
    head_to_base: Mapping[int, int]  # untouched head line -> its base line


class Change:
    """The step from `base` to `head` (two snapshots sharing one parse cache)."""

    def __init__(self, base: Snapshot, head: Snapshot, files: Iterable[ChangedFile]) -> None:
        self.base = base
        self.head = head
        self.files: dict[str, ChangedFile] = {c.path: c for c in files}
        # A removed or renamed-away file, by the path it had at the base.
        self.base_files: dict[str, ChangedFile] = {}
        for c in self.files.values():
            if c.status is ChangeStatus.REMOVED:
                self.base_files[c.path] = c
            elif c.status is ChangeStatus.RENAMED and c.previous_path:
                self.base_files[c.previous_path] = c
            elif c.status is ChangeStatus.MODIFIED:
                self.base_files[c.path] = c
        self._diffs: dict[str, LineDiff] = {}

    # --- files and lines ---------------------------------------------------------------

    def base_path(self, head_path: str) -> str | None:
        """Where a head file was at the base; None for an added file."""
        c = self.files.get(head_path)
        if c is None:
            return head_path
        if c.status is ChangeStatus.ADDED:
            return None
        if c.status is ChangeStatus.RENAMED:
            return c.previous_path
        return head_path

    def diff(self, head_path: str) -> LineDiff | None:
        """The line diff of a file changed in place or renamed; None when untouched,
        added or removed."""
        c = self.files.get(head_path)
        if c is None or c.status in (ChangeStatus.ADDED, ChangeStatus.REMOVED):
            return None
        if head_path not in self._diffs:
            self.head.checkpoint()
            old = _lines(self.base, self.base_path(head_path) or head_path)
            new = _lines(self.head, head_path)
            touched_head: set[int] = set()
            touched_base: set[int] = set()
            mapping: dict[int, int] = {}
            matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag == "equal":
                    for k in range(i2 - i1):
                        mapping[j1 + k + 1] = i1 + k + 1
                else:
                    touched_head.update(range(j1 + 1, j2 + 1))
                    touched_base.update(range(i1 + 1, i2 + 1))
            self._diffs[head_path] = LineDiff(
                frozenset(touched_head), frozenset(touched_base), mapping
            )
        return self._diffs[head_path]

    def touched(self, location: Location) -> bool:
        """Whether the change wrote (head) or deleted (base) this line."""
        if location.side is Side.BASE:
            c = self.base_files.get(location.path)
            if c is None:
                return False
            if c.status is ChangeStatus.REMOVED:
                return True
            d = self.diff(c.path)
            return d is not None and location.line in d.base
        c = self.files.get(location.path)
        if c is None or c.status is ChangeStatus.REMOVED:
            return False
        if c.status is ChangeStatus.ADDED:
            return True
        d = self.diff(location.path)
        return d is not None and location.line in d.head

    def base_line(self, head_path: str, line: int) -> int | None:
        """The base line an untouched head line was; None when the change wrote it."""
        c = self.files.get(head_path)
        if c is None:
            return line
        d = self.diff(head_path)
        return d.head_to_base.get(line) if d is not None else None

    # --- keyed views -----------------------------------------------------------------

    @cached_property
    def charts(self) -> Keyed[str, Chart]:
        """Charts by directory."""
        return Keyed(
            _by(self.base.charts, lambda c: c.directory),
            _by(self.head.charts, lambda c: c.directory),
        )

    @cached_property
    def flux_objects(self) -> Keyed[tuple[str, str, str], FluxObject]:
        """Flux objects by (group/kind, namespace as written, name)."""
        return Keyed(
            _by(self.base.flux_objects, object_key), _by(self.head.flux_objects, object_key)
        )

    @cached_property
    def kustomizations(self) -> Keyed[str, KustomizationFile]:
        """Kustomization files by path."""
        return Keyed(self.base.kustomizations, self.head.kustomizations)

    @cached_property
    def consumers(self) -> Keyed[str, list[Consumer]]:
        """Who reads each file, by path."""
        return Keyed(self.base.consumers, self.head.consumers)


def _lines(repo: Snapshot, path: str) -> list[str]:
    text = repo.text(path)
    if text is not None:
        return split_lines(text)
    data = repo.data(path) or b""
    return data.decode("utf-8", "replace").split("\n")
