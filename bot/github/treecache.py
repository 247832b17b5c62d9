"""Repository trees cached by commit, each distinct file content held once.

The base and the head of a pull request differ by a few files out of thousands, and the
commits of one repository share most of their blobs: cached tree by tree, a repository of
100 MB would fill a 256 MB cache with two commits. Here every cached tree maps its paths to
contents kept once by git blob id, so a commit costs its paths plus the blobs no other
cached commit has, and the parse cache of an analysis (keyed by the same blob ids, see
bot/analysis/snapshot/files.py) finds the base's unchanged files already parsed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.analysis.tree import git_blob_id

V = TypeVar("V")

# What a path costs besides its content and its length: its str object, its blob id's,
# and its slots in the tree's two dicts (measured with tracemalloc: about 270 bytes).
PATH_OVERHEAD = 280


def blob_ids(files: Mapping[str, bytes]) -> dict[str, str]:
    return {path: git_blob_id(data) for path, data in files.items()}


@dataclass
class _Entry(Generic[V]):
    value: V
    blobs: tuple[str, ...]  # ids of the pooled contents this tree holds
    own_bytes: int  # what it holds alone: its paths, or contents not pooled


class TreeCache(Generic[V]):
    """Values (a commit's `FetchedTree`) by key, least recently used out first, within
    `max_bytes` counted as the distinct contents of all cached trees plus their paths."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._blobs: dict[str, bytes] = {}
        self._refs: dict[str, int] = {}
        self.nbytes = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry.value

    def share(self, files: Mapping[str, bytes], ids: Mapping[str, str]) -> dict[str, bytes]:
        """`files` with each content that a cached tree (or another path of `files`)
        holds already replaced by that very object, so that caching it costs nothing more."""
        pooled = self._blobs
        first: dict[str, bytes] = {}
        shared: dict[str, bytes] = {}
        for path, data in files.items():
            blob = ids[path]
            found = pooled.get(blob)
            if found is None:
                found = first.setdefault(blob, data)
            # Compared, not trusted: the pool serves every installation, and SHA-1 is
            # not collision-proof (git itself checks for the known attack).
            shared[path] = found if found is data or found == data else data
        return shared

    def put(
        self,
        key: Hashable,
        value: V,
        files: Mapping[str, bytes],
        ids: Mapping[str, str],
        extra_bytes: int = 0,
    ) -> bool:
        """Cache `value`, whose tree holds `files` (their blob ids in `ids`) and
        `extra_bytes` more of its own. False when it is larger than the whole cache."""
        if key in self._entries:
            self._drop(key)
        distinct = {ids[path]: data for path, data in files.items()}
        new_bytes = sum(len(data) for blob, data in distinct.items() if blob not in self._blobs)
        own = extra_bytes + PATH_OVERHEAD * len(ids) + sum(len(p) for p in ids)
        if own + sum(len(data) for data in distinct.values()) > self.max_bytes:
            return False
        for blob, data in distinct.items():
            if blob not in self._blobs:
                self._blobs[blob] = data
            self._refs[blob] = self._refs.get(blob, 0) + 1
        self._entries[key] = _Entry(value, tuple(distinct), own)
        self.nbytes += own + new_bytes
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            self._drop(next(iter(self._entries)))
        return True

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self.nbytes -= entry.own_bytes
        for blob in entry.blobs:
            refs = self._refs[blob] - 1
            if refs:
                self._refs[blob] = refs
            else:
                del self._refs[blob]
                self.nbytes -= len(self._blobs.pop(blob))


__all__ = ["TreeCache", "blob_ids"]
