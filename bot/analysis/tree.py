"""Read-only views of a repository at one commit.

The analysis never touches git, the network or the disk directly: the CLI hands it a
tree read with `git cat-file --batch`, the App one unpacked from a tarball in memory.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol


class Tree(Protocol):
    """Files of one commit: regular files only (no symlinks, no submodules)."""

    def paths(self) -> Iterable[str]:
        """Every regular file path, relative to the root, with `/` separators."""
        ...

    def read(self, path: str) -> bytes | None:
        """Content of a file, or None when it is missing or unreadable."""
        ...

    def blob_id(self, path: str) -> str | None:
        """An identifier that changes when the content does (git blob SHA when known)."""
        ...


def git_blob_id(data: bytes) -> str:
    """git's blob id of `data` (`git hash-object`): caches keyed by it agree whichever
    way a commit was read (git, a tarball, the Git database API)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class DictTree:
    """A tree held in memory."""

    def __init__(self, files: Mapping[str, bytes], ids: Mapping[str, str] | None = None) -> None:
        """`ids`, when given, are the files' git blob ids, known already."""
        self._files = dict(files)
        self._ids: dict[str, str] = dict(ids) if ids is not None else {}

    def paths(self) -> Iterator[str]:
        return iter(self._files)

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def blob_id(self, path: str) -> str | None:
        known = self._ids.get(path)
        if known is not None:
            return known
        data = self._files.get(path)
        if data is None:
            return None
        blob = self._ids[path] = git_blob_id(data)
        return blob

    def __len__(self) -> int:
        return len(self._files)


class ChangeStatus(enum.StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"
    RENAMED = "renamed"


@dataclass(frozen=True, slots=True)
class ChangedFile:
    path: str
    status: ChangeStatus
    previous_path: str | None = None
