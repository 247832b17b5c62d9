"""The cyclic garbage collector runs rarely while an analysis runs (at its default
thresholds its collections walked every YAML node of a large repository again and
again) and as before after, also when analyses overlap in threads or one fails."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.analysis import DictTree, analyze
from bot.analysis.engine import ANALYSIS_GC_THRESHOLDS, _gc_paused


class _Watching(DictTree):
    seen: list[tuple[int, int, int]]

    def paths(self) -> Iterator[str]:
        self.seen.append(gc.get_threshold())
        return super().paths()


def test_the_collector_runs_rarely_during_an_analysis_and_as_before_after() -> None:
    before = gc.get_threshold()
    assert before != ANALYSIS_GC_THRESHOLDS
    tree = _Watching({"apps/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"})
    tree.seen = []
    analyze(tree)
    assert tree.seen and set(tree.seen) == {ANALYSIS_GC_THRESHOLDS}
    assert gc.get_threshold() == before
    assert gc.isenabled()


def test_overlapping_analyses_restore_it_once_the_last_ends() -> None:
    before = gc.get_threshold()
    first, second = _gc_paused(), _gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == ANALYSIS_GC_THRESHOLDS
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


def test_a_failing_analysis_restores_it() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), _gc_paused():
        raise RuntimeError("the analysis failed")
    assert gc.get_threshold() == before


def test_a_process_with_its_own_thresholds_gets_them_back() -> None:
    before = gc.get_threshold()
    gc.set_threshold(1234, 5, 6)
    try:
        with _gc_paused():
            pass
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*before)


def test_what_an_analysis_built_is_freed_without_the_collector() -> None:
    # Nothing of a repository's nodes, builds or snapshots is left in reference cycles
    # once an analysis whose cache nobody keeps has ended: the collection at its end
    # has next to nothing to free (a few objects of the libraries it uses).
    from bench import homeops

    base = {p: t.encode() for p, t in homeops.generate(8).items()}
    head = homeops.pull_request(base, 3)
    collected: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["collected"])

    gc.collect()
    gc.disable()
    gc.callbacks.append(watch)
    try:
        analyze(DictTree(head), DictTree(base))
        analyze(DictTree(base))
    finally:
        gc.callbacks.remove(watch)
        gc.enable()
    assert len(collected) == 2, "one collection at the end of each analysis"
    assert max(collected) < 500, collected


def _tracked(obj: object) -> bool:
    """Whether the collector's generations hold `obj` (a frozen object is in none)."""
    return any(o is obj for o in gc.get_objects())


def test_a_kept_analysis_is_out_of_the_full_collections_of_the_next_reviews() -> None:
    # The worker keeps its last analysis of a repository; left in the collector's
    # generations, the next review's allocations would start a full pass over all of it
    # (seconds, for a large repository) that frees nothing.
    import threading

    from bench import homeops
    from bot.review import CachingAnalyzer

    files = {p: t.encode() for p, t in homeops.generate(4).items()}
    analyzer = CachingAnalyzer(settle_above=0)
    try:
        analyzer(
            DictTree(files), None, None, None, ["https://example.test/r.git"], threading.Event()
        )
        ((kept, _),) = analyzer.caches._kept.values()
        nodes = [v for v in kept.values() if gc.is_tracked(v)]
        assert nodes, "the analysis kept what it built"
        assert gc.get_freeze_count() > 0
        assert not any(_tracked(v) for v in nodes[:20])
    finally:
        gc.unfreeze()


def test_cycles_frozen_with_a_kept_analysis_are_freed_once_a_repository_is_evicted() -> None:
    import weakref

    from bot.analysis.cache import settle_heap

    class Node:
        other: object

    try:
        cycle = Node()
        cycle.other = cycle
        gone = weakref.ref(cycle)
        settle_heap(0)  # frozen while a review still used it
        del cycle
        gc.collect()
        assert gone() is not None, "a frozen cycle is out of reach of a collection"
        settle_heap(1)
        assert gone() is None
    finally:
        gc.unfreeze()


def test_the_collection_at_the_end_walks_none_of_what_the_analysis_built() -> None:
    # Everything an analysis built is freed by reference counting before the collection
    # at its end, which then walks only what is still alive: a reference left to one
    # snapshot kept the whole build alive into it (a second of a 10,000-file check).
    from bench import homeops

    base = {p: t.encode() for p, t in homeops.generate(8).items()}
    head = homeops.pull_request(base, 3)
    walked: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 1:
            walked.append(len(gc.get_objects(0)) + len(gc.get_objects(1)))

    gc.collect()
    gc.disable()
    gc.callbacks.append(watch)
    try:
        analyze(DictTree(head), DictTree(base))
    finally:
        gc.callbacks.remove(watch)
        gc.enable()
    assert len(walked) == 1
    assert walked[0] < 1000, walked


def test_a_worker_frees_each_review_it_does_not_keep() -> None:
    # A worker reviews pull request after pull request of one repository. What a review
    # derived beyond the cache it keeps (its two snapshots, their clusters and indexes)
    # must be freed by reference counting: the kept analysis is frozen out of the
    # collector's passes, and so is any cycle left with it, so a snapshot held by a
    # cycle (or by a per-snapshot table whose value refers back to its key) stayed for
    # good, some 30 MiB a review on a 10,000-file repository.
    import threading

    from bench import homeops
    from bot.analysis.snapshot import Snapshot
    from bot.review import CachingAnalyzer

    files = {p: t.encode() for p, t in homeops.generate(12).items()}
    analyzer = CachingAnalyzer(settle_above=0)
    try:
        for review, start in enumerate((1, 3, 5, 7)):
            head = homeops.pull_request(files, 3, start=start)
            analyzer(
                DictTree(head),
                DictTree(files),
                None,
                None,
                ["https://example.test/r.git"],
                threading.Event(),
            )
            gc.unfreeze()
            collected = gc.collect()
            assert not [o for o in gc.get_objects() if isinstance(o, Snapshot)]
            # The first review also leaves what libraries build once, lazily (classes,
            # compiled validators); from the second on, only the review's own.
            if review > 0:
                assert collected < 100, "the review left its own objects in reference cycles"
            gc.freeze()
    finally:
        gc.unfreeze()
