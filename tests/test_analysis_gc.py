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
