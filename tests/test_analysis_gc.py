"""The cyclic garbage collector is off while an analysis runs (its full collections
walked every YAML node of a large repository again and again) and back on after, also
when analyses overlap in threads or one fails."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.analysis import DictTree, analyze
from bot.analysis.engine import _gc_paused


class _Watching(DictTree):
    seen: list[bool]

    def paths(self) -> Iterator[str]:
        self.seen.append(gc.isenabled())
        return super().paths()


def test_the_collector_is_off_during_an_analysis_and_on_after() -> None:
    assert gc.isenabled()
    tree = _Watching({"apps/cm.yaml": b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"})
    tree.seen = []
    analyze(tree)
    assert tree.seen and not any(tree.seen)
    assert gc.isenabled()


def test_overlapping_analyses_leave_it_on_once_the_last_ends() -> None:
    first, second = _gc_paused(), _gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_failing_analysis_turns_it_back_on() -> None:
    with pytest.raises(RuntimeError), _gc_paused():
        raise RuntimeError("the analysis failed")
    assert gc.isenabled()


def test_a_process_that_turned_it_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with _gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
