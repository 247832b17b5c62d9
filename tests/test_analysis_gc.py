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
