"""Throughput of a whole-tree check, against parsing every YAML file with ruamel.yaml's
round-trip loader, measured in the same run (machines are shared: compare ratios).

    python bench/run.py --apps 1600      # about 10,000 manifests

Prints: the tree's size, the check's time and MB/s (in memory and end to end through
git), the round-trip baseline's time, and the ratio between them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate, write_repo
from bot.analysis import DictTree, analyze
from bot.analysis.parallel import default_workers
from bot.gitrepo import GitTree, resolve


def roundtrip_baseline(files: dict[str, bytes]) -> float:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    start = time.perf_counter()
    for path, data in files.items():
        if path.endswith((".yaml", ".yml")):
            # chart templates are not YAML; the time spent failing still counts
            with contextlib.suppress(Exception):
                list(yaml.load_all(io.BytesIO(data)))
    return time.perf_counter() - start


def best_of(n: int, fn):  # type: ignore[no-untyped-def]
    best = float("inf")
    result = None
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apps", type=int, default=1600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = {p: t.encode() for p, t in generate(args.apps).items()}
    total = sum(len(d) for d in files.values())
    manifests = sum(1 for p, d in files.items() if p.endswith(".yaml") and b"kind:" in d)
    mb = total / 1e6
    print(f"tree: {len(files)} files, {manifests} manifests, {mb:.1f} MB")

    tree = DictTree(files)
    t_mem, result = best_of(args.repeat, lambda: analyze(tree))
    errors = [f for f in result.findings if f.severity.value == "error"]
    print(f"check (in memory):  {t_mem:.2f} s  {mb / t_mem:.1f} MB/s  "
          f"({len(result.findings)} findings, {len(errors)} errors)")

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        write_repo(repo, {p: d.decode() for p, d in files.items()})
        head = resolve(repo, "HEAD")
        t_git, _ = best_of(args.repeat, lambda: analyze(GitTree(repo, head)))
        workers = default_workers()
        t_cli, _ = best_of(args.repeat, lambda: analyze(GitTree(repo, head), workers=workers))
    print(f"check (through git): {t_git:.2f} s  {mb / t_git:.1f} MB/s")
    print(f"check (through git, {workers} processes, as `flux-review check` runs): "
          f"{t_cli:.2f} s  {mb / t_cli:.1f} MB/s")

    tracemalloc.start()
    analyze(tree)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"peak Python memory of a check: {peak / 1e6:.0f} MB")

    t_rt = roundtrip_baseline(files)
    print(f"ruamel.yaml round-trip parse of every YAML file: {t_rt:.2f} s  "
          f"{mb / t_rt:.2f} MB/s")
    print(f"ratio: the check is {t_rt / t_mem:.1f}x faster than the round-trip baseline "
          f"({t_rt / t_git:.1f}x through git, {t_rt / t_cli:.1f}x as the CLI runs it)")


if __name__ == "__main__":
    main()
