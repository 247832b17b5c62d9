"""What a worker keeps of its analyses, so that the next review of a repository does not
parse and build again what it already did.

Every entry of an analysis's cache is keyed by content (a parse by blob id, a build by
what it read, see snapshot/build/clusters.py), so an entry is as good for the next
commit as for this one. Per repository, the worker keeps what the last analysis used
(the base of the next pull request is almost always among it); across repositories,
the least recently reviewed go first once their estimated size passes the budget.
Repositories never share entries: a blob id names content within one repository's
history, and one installation's files must not answer for another's.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, MutableMapping
from typing import TypeVar

from bot.analysis.tree import Tree

_MISSING = object()
T = TypeVar("T")
R = TypeVar("R")


def of_object(
    shared: MutableMapping[object, object] | None, name: str, obj: T, make: Callable[[T], R]
) -> R:
    """`make(obj)`, once per object in the cache an analysis shares: for what is a
    function of an object that is the very same one on both sides of a change and in a
    kept analysis (a build nothing changed hands over its nodes). Keyed by the object's
    id, and checked to be that object still: an id is reused once its object is freed."""
    if shared is None:
        return make(obj)
    key = (name, id(obj))
    found = shared.get(key)
    if isinstance(found, tuple) and found[0] is obj:
        return found[1]  # type: ignore[no-any-return]
    value = make(obj)
    shared[key] = (obj, value)
    return value


# Python's node trees of a YAML file, its scan and the objects built from it take about
# this many times the file's size (measured on bench/homeops.py's repository: the
# worker's resident memory after a review, less before, over the YAML bytes read).
BYTES_PER_YAML_BYTE = 60


class Carried(dict[object, object]):
    """One analysis's cache: what it computes, and on first use whatever the previous
    analysis of the same repository kept."""

    def __init__(self, previous: dict[object, object] | None = None) -> None:
        super().__init__()
        self._previous = previous if previous is not None else {}

    # Asked tens of thousands of times per analysis (every parse, per-file index and
    # build lookup): a key already taken over is answered by the dict's own lookup,
    # `self[key]` without a call into Python.
    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        found = self._previous.get(key, _MISSING)
        if found is _MISSING:
            return False
        dict.__setitem__(self, key, found)
        return True

    def __missing__(self, key: object) -> object:
        found = self._previous.get(key, _MISSING)
        if found is _MISSING:
            raise KeyError(key)
        dict.__setitem__(self, key, found)
        return found

    def get(self, key: object, default: object = None) -> object:
        found = dict.get(self, key, _MISSING)
        if found is _MISSING:
            found = self._previous.get(key, _MISSING)
            if found is _MISSING:
                return default
            dict.__setitem__(self, key, found)
        return found

    def setdefault(self, key: object, default: object = None) -> object:
        found = self.get(key, _MISSING)
        if found is _MISSING:
            dict.__setitem__(self, key, default)
            return default
        return found

    def kept(self) -> dict[object, object]:
        """What this analysis used, for the next one."""
        return dict(self.items())


def estimated_bytes(tree: Tree) -> int:
    """What an analysis of `tree` keeps in memory, about."""
    total = 0
    for path in tree.paths():
        if path.endswith((".yaml", ".yml")):
            total += len(tree.read(path) or b"")
    return total * BYTES_PER_YAML_BYTE


class RepositoryCaches:
    """Per repository, what its last analysis used; at most `max_bytes` in all (by
    `estimated_bytes`), the least recently reviewed repository out first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._kept: OrderedDict[Hashable, tuple[dict[object, object], int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(urls: Iterable[str]) -> Hashable | None:
        """A repository's key: its clone URLs (None without any: nothing is kept)."""
        found = tuple(sorted({u for u in urls if u}))
        return found or None

    def begin(self, repo: Hashable | None) -> Carried:
        with self._lock:
            kept = self._kept.get(repo) if repo is not None else None
            if kept is not None:
                self._kept.move_to_end(repo)
        return Carried(kept[0] if kept is not None else None)

    def end(self, repo: Hashable | None, cache: Carried, cost: int) -> int:
        """Keep what `cache` used for `repo`'s next analysis, within the budget; the
        number of other repositories' analyses dropped to make room."""
        if repo is None or cost > self.max_bytes:
            with self._lock:
                if repo is not None:
                    self._kept.pop(repo, None)
            return 0
        kept = cache.kept()
        evicted = 0
        with self._lock:
            self._kept[repo] = (kept, cost)
            self._kept.move_to_end(repo)
            total = sum(c for _, c in self._kept.values())
            while total > self.max_bytes and len(self._kept) > 1:
                _, (_, dropped) = self._kept.popitem(last=False)
                total -= dropped
                evicted += 1
        return evicted

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(c for _, c in self._kept.values())


_heap_lock = threading.Lock()
# Settles between full passes: each review may freeze some short-lived objects of its
# own (an HTTP exchange in flight, a traceback) that later become cyclic garbage.
FULL_PASS_EVERY = 16
_settles = 0


def settle_heap(evicted: int) -> None:
    """Leave what a process keeps across analyses out of the cyclic collector's full
    passes. CPython starts a full pass once the objects that survived younger passes
    since the last full one outnumber a quarter of those it found then: right after an
    analysis is kept (millions of YAML nodes and built objects for a 10,000-file
    repository), the next review's first allocations start one, and it walks everything
    kept to free nothing (1.4 s in the middle of a warm review, measured with
    bench/service.py). Frozen objects are still freed by reference counting when the
    cache drops them, and what an analysis keeps holds no reference cycles
    (tests/test_analysis_gc.py); cycles that other code left among frozen objects are
    freed by one full pass when a repository's analysis was evicted, and every
    FULL_PASS_EVERY settles, so they never accumulate."""
    global _settles
    with _heap_lock:
        _settles += 1
        if evicted or _settles % FULL_PASS_EVERY == 0:
            gc.unfreeze()
            gc.collect()
        gc.freeze()
