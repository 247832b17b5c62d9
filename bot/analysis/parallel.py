"""Checking the YAML of a large tree on every core.

libyaml's events cost about a microsecond each in Python, and every manifest of the
repository has to be checked: on a 10,000-manifest monorepo that one pass is most of a
whole-tree check. It parallelises perfectly. Forked workers inherit the tree, so nothing
but paths and small summaries cross process boundaries. Only for callers that own their
process (the command line): forking a threaded server is not safe.
"""

from __future__ import annotations

import multiprocessing
import os

from bot.analysis import yamlscan as ys
from bot.analysis.tree import Tree

# Below this many bytes a pool costs more than it saves.
MIN_BYTES = 1_000_000

_tree: Tree | None = None


def _scan_chunk(paths: list[str]) -> list[tuple[str, ys.YamlInfo]]:
    assert _tree is not None
    out = []
    for path in paths:
        data = _tree.read(path)
        out.append((path, ys.scan(data) if data is not None else ys.YamlInfo(None, [])))
    return out


def scan_all(tree: Tree, paths: list[str], workers: int) -> dict[str, ys.YamlInfo]:
    """yamlscan.scan of every path, on `workers` processes when it pays off."""
    global _tree
    sizes = 0
    for path in paths:
        data = tree.read(path)
        sizes += len(data) if data else 0
    if workers < 2 or sizes < MIN_BYTES or "fork" not in multiprocessing.get_all_start_methods():
        return {}
    chunk = max(64, len(paths) // (workers * 8))
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    _tree = tree
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results: dict[str, ys.YamlInfo] = {}
            for part in pool.imap_unordered(_scan_chunk, chunks):
                results.update(part)
            return results
    finally:
        _tree = None


def default_workers() -> int:
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
