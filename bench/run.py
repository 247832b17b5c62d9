"""Cost of a whole-tree check and of pull requests' checks, against reading every YAML file
once with libyaml's composer (the floor of any analysis that reads every document),
measured in the same run (machines are shared: compare ratios).

    python bench/run.py                  # home-ops shape, 2,000 apps: about 10,000 YAML files
    python bench/run.py --shape platform --apps 1600

The default repository is shaped like the home-ops repositories (bench/homeops.py): every
app a Flux Kustomization under a patching parent, built with content. `--shape platform`
uses bench/generate.py's monorepo instead. Prints the tree's size; the whole-tree check,
a 3-file and a 100-file PR's check (in memory and through git, as `flux-review check`
reads a repository), the 3-file PR again with its base's analysis kept (as the App's
worker has it from the previous review); the floor; the process's peak resident memory;
and the ratios, each against its target: a missed target says what the miss means.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import generate as platform
from bench import homeops
from bench.generate import write_repo
from bot.analysis import DictTree, analyze
from bot.analysis.cache import RepositoryCaches, settle_heap
from bot.gitrepo import GitTree, resolve

T = TypeVar("T")


def compose_floor(files: dict[str, bytes]) -> float:
    """PyYAML's libyaml composer over every YAML file: what reading each file once costs."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    start = time.perf_counter()
    for path, data in files.items():
        if path.endswith((".yaml", ".yml")):
            with contextlib.suppress(Exception):
                list(yaml.compose_all(data, Loader=loader))
    return time.perf_counter() - start


def platform_pull_request(files: dict[str, bytes], n: int) -> dict[str, bytes]:
    """A PR on bench/generate.py's tree changing `n` files: a chart bump that every
    HelmRelease pinning the chart has to follow, then deployments."""
    head = dict(files)
    changed = 0
    for path in sorted(files):
        data = files[path]
        if changed == n:
            break
        if path.endswith("Chart.yaml") and changed == 0:
            head[path] = data.replace(b"version: ", b"version: 9", 1)
            changed += 1
        elif path.endswith("deployment.yaml") and changed > 0:
            head[path] = data + b"# reviewed\n"
            changed += 1
    return head


def best_of(n: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `n` (at least one) runs of `fn`, and what the last one returned."""
    times = []
    for _ in range(max(n, 1)):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Each target, and what missing it means: a missed target is printed with its meaning and
# where to look, so that a figure is never read without knowing what it says.
PROFILE = "profile it: python -m cProfile -s cumtime bench/run.py --apps 200 --repeat 1"
TARGETS: dict[str, tuple[float, str]] = {
    "pr3/tree": (
        0.25,
        "a PR's base shares with its head every parse, build, merge and schema check whose "
        "inputs are equal (keyed by blob id or by what a build read), and the schema rules "
        "judge only the objects the change reached, but with nothing kept from an earlier "
        "run the head still parses every file and builds every cluster (a parent that "
        "patches every child merges into all of them): parses and builds are about half "
        "of a whole-tree check, so no narrowing of the rules brings this under about "
        "0.5; only what an earlier run kept does (the worker's, see the kept line: "
        "a copy of it on disk, unpickled, costs about 60% of building it again) "
        f"({PROFILE})",
    ),
    "kept/tree": (
        0.25,
        "with the base's analysis kept, the head parses and builds only what the change "
        "reached; what is left is per snapshot and walks every object again (the "
        "kustomization and Flux object indexes, the rules' own passes, the change summary) "
        f"({PROFILE})",
    ),
    "tree/floor": (
        1.0,
        "the floor is reading every YAML file once with libyaml's composer; above it the "
        "check does more than one read's worth of work per file (a second parse, scans "
        f"of every object per object, the builds' own cost) ({PROFILE})",
    ),
    "rss": (
        400.0,
        "the check keeps more than the parsed trees and their builds: look for copies "
        "of objects kept per cluster or per Kustomization (tracemalloc's top allocations)",
    ),
}


def verdict(name: str, value: float) -> str:
    """A figure against its target: `ok`, or `MISSED` with what the miss means. Both
    sides of a ratio are measured in the same run, so a shared machine's noise moves
    them alike; a miss by a few percent may still be noise (run with --repeat 3)."""
    target, meaning = TARGETS[name]
    if value <= target:
        return f"{value:.2f} (target <= {target:g}: ok)"
    return (
        f"{value:.2f} (target <= {target:g}: MISSED by {value / target - 1:.0%})\n  why: {meaning}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=("homeops", "platform"), default="homeops")
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-git", action="store_true", help="in memory only")
    args = parser.parse_args()
    pull_request: Callable[[dict[str, bytes], int], dict[str, bytes]]
    if args.shape == "homeops":
        files = {p: t.encode() for p, t in homeops.generate(args.apps).items()}
        pull_request = homeops.pull_request
    else:
        files = {p: t.encode() for p, t in platform.generate(args.apps).items()}
        pull_request = platform_pull_request
    total = sum(len(d) for d in files.values())
    yaml_files = sum(1 for p in files if p.endswith((".yaml", ".yml")))
    mb = total / 1e6
    print(
        f"tree ({args.shape}, {args.apps} apps): {len(files)} files, {yaml_files} YAML, {mb:.1f} MB"
    )

    tree = DictTree(files)
    # The peak after one check: a second one's objects would coexist with the first's.
    t_tree, result = best_of(1, lambda: analyze(tree))
    rss = peak_rss_mib()
    if args.repeat > 1:
        del result
        t_more, result = best_of(args.repeat - 1, lambda: analyze(tree))
        t_tree = min(t_tree, t_more)
    errors = [f for f in result.findings if f.severity.value == "error"]
    print(
        f"whole tree (in memory): {t_tree:.2f} s  {mb / t_tree:.1f} MB/s  "
        f"({len(result.findings)} findings, {len(errors)} errors)"
    )
    heads = {n: pull_request(files, n) for n in (3, 100)}
    t_pr: dict[int, float] = {}
    for n, head_files in heads.items():
        changed = sum(1 for p, d in head_files.items() if files.get(p) != d)
        head_tree = DictTree(head_files)
        t_pr[n], pr = best_of(args.repeat, lambda t=head_tree: analyze(t, tree))  # type: ignore[misc]
        print(
            f"PR, {changed} files changed (in memory): {t_pr[n]:.2f} s  "
            f"({len(pr.findings)} findings introduced)"
        )

    # As the App's worker reviews it: the previous review of the repository (here, of
    # its base) left what it parsed and built.
    caches = RepositoryCaches(1 << 40)
    kept = caches.begin("repo")
    analyze(tree, cache=kept)
    settle_heap(caches.end("repo", kept, 0))
    warm = caches.begin("repo")
    start = time.perf_counter()
    analyze(DictTree(heads[3]), tree, cache=warm)
    t_warm = time.perf_counter() - start
    print(f"PR, 3 files changed, the base's analysis kept (the App's worker): {t_warm:.2f} s")

    if not args.no_git:
        with tempfile.TemporaryDirectory() as tmp:
            repo = Path(tmp) / "repo"
            write_repo(repo, {p: d.decode() for p, d in files.items()})
            base = resolve(repo, "HEAD")
            t_git, _ = best_of(args.repeat, lambda: analyze(GitTree(repo, base)))
            write_repo(repo, {p: d.decode() for p, d in heads[3].items()}, message="change")
            head = resolve(repo, "HEAD")
            t_git_pr, _ = best_of(
                args.repeat, lambda: analyze(GitTree(repo, head), GitTree(repo, base))
            )
        print(f"whole tree (through git): {t_git:.2f} s")
        print(f"PR, 3 files changed (through git): {t_git_pr:.2f} s")

    t_floor = compose_floor(files)
    print(f"floor: libyaml compose of every YAML file: {t_floor:.2f} s  {mb / t_floor:.1f} MB/s")
    print(f"peak resident memory (MiB) after the whole-tree check: {verdict('rss', rss)}")
    print(f"3-file PR / whole tree, in memory: {verdict('pr3/tree', t_pr[3] / t_tree)}")
    if not args.no_git:
        print(f"3-file PR / whole tree, through git: {verdict('pr3/tree', t_git_pr / t_git)}")
    print(f"3-file PR, base kept / whole tree: {verdict('kept/tree', t_warm / t_tree)}")
    print(f"100-file PR / whole tree, in memory: {t_pr[100] / t_tree:.2f}")
    print(f"whole tree / floor: {verdict('tree/floor', t_tree / t_floor)}")
    print(f"3-file PR / floor: {t_pr[3] / t_floor:.2f}")


if __name__ == "__main__":
    main()
