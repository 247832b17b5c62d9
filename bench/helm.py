"""The Helm renderer's costs, measured in one run (the machine is shared: read ratios).

    python bench/helm.py            # needs the helm extra: pip install -e '.[helm]'

Prints:
- what starting a renderer child costs (a Python interpreter that loads the SDK's
  library), against starting a bare interpreter;
- each fixture chart's warm render: through the child (what the review pays) and inside
  the child's SDK call alone;
- 50 HelmReleases of one chart: one reused child, two children, and a fresh child per
  render (what reusing saves), then the same 50 again through the cache;
- a pull request that bumps one in-repository chart of bench/run.py's synthetic monorepo
  used by 50 HelmReleases: their renders at base and at head (a cold renderer, its start
  included), against that pull request's check without rendering, in the same run;
- the hostile templates (an endless `range`, a 1 GB string, a 10^9-element list, a
  recursive `include`) under the default limits: time to a result, and the peak memory of
  the child and of the parent (each case in a fresh process, so peaks are its own).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.analysis.helmchart import ChartFiles, ChartListing, assemble_chart
from bot.analysis.rendering import CachingRenderer, Rendered, RenderRequest
from bot.analysis.tree import DictTree

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "helmcharts"
T = TypeVar("T")

HOSTILE = {
    "endless range": "{{ range 100000000000 }}{{ end }}\n",
    "1 GB string": '{{ repeat 1000000000 "x" }}\n',
    "10^9-element list": "{{ range until 1000000000 }}x{{ end }}\n",
    "recursive include": '{{- define "r" }}{{ include "r" . }}{{ end }}{{ include "r" . }}\n',
}


def _listing() -> ChartListing:
    root = FIXTURES / "repo"
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return ChartListing(DictTree(files))


def _median_ms(n: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def starts(n: int) -> None:
    from bot.helm.pool import ChildRenderer

    bare = _median_ms(n, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    times = []
    for _ in range(n):
        renderer = ChildRenderer()
        t, info = _timed(renderer.info)
        renderer.close()
        times.append(t)
    child = statistics.median(times) * 1000
    print(f"renderer: {info}")
    print(
        f"start a child: {child:.0f} ms (median of {n}); a bare interpreter {bare:.0f} ms "
        f"({child / bare:.1f}x)"
    )


def warm_renders(n: int) -> None:
    from bot.helm import sdk
    from bot.helm.pool import ChildRenderer

    listing = _listing()
    renderer = ChildRenderer()
    print(f"warm render per chart (median of {n}): through the child / the SDK call alone")
    for case in yaml.safe_load((FIXTURES / "cases.yaml").read_text()):
        chart = assemble_chart(listing, case["chart"])
        assert isinstance(chart, ChartFiles)
        request = RenderRequest(
            chart,
            case.get("values") or {},
            case["release"],
            case["namespace"],
            case["kubeVersion"],
            tuple(case.get("apiVersions") or ()),
        )
        renderer.render(request)
        through = _median_ms(n, functools.partial(renderer.render, request))
        options = {"name": case["release"], "namespace": case["namespace"]}
        alone = _median_ms(
            n,
            functools.partial(sdk.render, chart.files, request.values_json(), options, 1 << 30),
        )
        print(
            f"  {case['name']:<26} {len(chart.files):>3} files  {through:6.2f} ms  {alone:6.2f} ms"
        )
    renderer.close()


def fifty(n_releases: int) -> None:
    from bot.helm.pool import ChildRenderer

    chart = assemble_chart(_listing(), "charts/webapp")
    assert isinstance(chart, ChartFiles)
    requests = [
        RenderRequest(chart, {"owner": f"team-{i % 7}", "replicaCount": i}, f"web-{i}", f"ns-{i}")
        for i in range(n_releases)
    ]
    results: dict[str, float] = {}
    for label, workers, max_renders in (
        ("one reused child", 1, 1000),
        ("two children", 2, 1000),
        ("a fresh child per render", 1, 1),
    ):
        renderer = ChildRenderer(workers=workers, max_renders=max_renders)
        # Children started before the clock, but for the fresh-child case's.
        while max_renders > 1 and renderer.starts < workers:
            renderer.render_all(requests[: workers * 4])
        t, out = _timed(functools.partial(renderer.render_all, requests))
        assert all(isinstance(r, Rendered) for r in out)
        renderer.close()
        results[label] = t
    base = results["one reused child"]
    print(f"{n_releases} HelmReleases of one chart, distinct values (children already started):")
    for label, t in results.items():
        print(f"  {label:<26} {t * 1000:8.0f} ms  ({t / base:.2f}x)")
    cached = CachingRenderer(ChildRenderer(workers=2))
    cached.render_all(requests)
    t, _ = _timed(lambda: cached.render_all(requests))
    print(f"  again, from the cache      {t * 1000:8.1f} ms  ({t / base:.4f}x)")
    cached.close()


def pull_request_renders(apps: int, releases: int) -> None:
    from bench.generate import generate
    from bench.run import pull_request
    from bot.analysis import analyze
    from bot.helm.pool import ChildRenderer

    files = {p: t.encode() for p, t in generate(apps).items()}
    head_files = pull_request(files)
    bumped = next(p for p in sorted(files) if files[p] != head_files[p]).rsplit("/", 1)[0]
    base, head = DictTree(files), DictTree(head_files)
    t_check, _ = _timed(lambda: analyze(head, base))
    requests = []
    for tree in (base, head):
        chart = assemble_chart(ChartListing(tree), bumped)
        assert isinstance(chart, ChartFiles)
        requests += [
            RenderRequest(chart, {"replicaCount": i % 5 + 1}, f"app-{i}", f"team-{i % 7}")
            for i in range(releases)
        ]
    renderer = CachingRenderer(ChildRenderer(workers=2))
    t_render, out = _timed(lambda: renderer.render_all(requests))
    renderer.close()
    # The generator's chart includes a helper it does not define: every render fails
    # with Helm's error, which costs as much as a render.
    failed = sum(1 for r in out if not isinstance(r, Rendered))
    print(
        f"a PR bumping {bumped} ({apps} apps): its check without rendering "
        f"{t_check:.2f} s; {len(requests)} renders ({releases} HelmReleases at base and "
        f"head, two cold children; {failed} failed) {t_render:.2f} s "
        f"({t_render / t_check:.2f}x the check)"
    )


def hostile_case(name: str) -> dict[str, Any]:
    from bot.helm.pool import ChildRenderer

    def chart(template: str) -> ChartFiles:
        files = {
            "c/Chart.yaml": b"apiVersion: v2\nname: c\nversion: 0.1.0\n",
            "c/templates/t.yaml": template.encode(),
        }
        assembled = assemble_chart(ChartListing(DictTree(files)), "c")
        assert isinstance(assembled, ChartFiles)
        return assembled

    renderer = ChildRenderer()
    renderer.info()
    t, result = _timed(lambda: renderer.render(RenderRequest(chart(HOSTILE[name]), {}, "r", "n")))
    after, ok = _timed(lambda: renderer.render(RenderRequest(chart("ok: 1\n"), {}, "r", "n")))
    renderer.close()
    return {
        "seconds": t,
        "result": getattr(result, "message", "rendered"),
        "next_render_seconds": after,
        "next_render_ok": isinstance(ok, Rendered),
        "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def hostile() -> None:
    print("hostile templates, default limits (10 s, 1024 MiB), each in a fresh process:")
    for name in HOSTILE:
        proc = subprocess.run(
            [sys.executable, __file__, "--hostile-case", name],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        r = json.loads(proc.stdout)
        print(
            f"  {name:<20} {r['seconds']:6.2f} s  child peak {r['child_peak_mb']:5.0f} MB  "
            f"parent peak {r['parent_peak_mb']:4.0f} MB  next render "
            f"{'ok' if r['next_render_ok'] else 'FAILED'} in {r['next_render_seconds']:.2f} s"
            f"\n    {r['result']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--releases", type=int, default=50)
    parser.add_argument("--apps", type=int, default=1600)
    parser.add_argument("--hostile-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hostile_case:
        print(json.dumps(hostile_case(args.hostile_case)))
        return
    starts(5)
    warm_renders(args.repeat)
    fifty(args.releases)
    pull_request_renders(args.apps, args.releases)
    hostile()


if __name__ == "__main__":
    main()
