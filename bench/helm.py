"""The Helm renderer's costs, measured in one run (the machine is shared: read ratios).

    python bench/helm.py            # needs the helm extra: pip install -e '.[helm]'

Prints:
- what starting a renderer child costs (a Python interpreter that loads the SDK's
  library), against starting a bare interpreter;
- each fixture chart's warm render: through the child (what the review pays) and inside
  the child's SDK call alone;
- 50 HelmReleases of one chart: one reused child, two children, and a fresh child per
  render (what reusing saves), then the same 50 again through the cache;
- a pull request that bumps one in-repository chart used by 50 HelmReleases across three
  clusters (on top of bench/run.py's synthetic monorepo): its check with the extra (a
  cold renderer, its start included; then with the renders cached), against the same
  pull request's check without it, in the same run;
- the hostile templates (an endless `range`, a 1 GB string, a 10^9-element list, a
  recursive `include`) under the default limits: time to a completed review of a
  repository whose HelmReleases render them, its findings, and the peak memory of the
  child and of the parent (each case in a fresh process, so peaks are its own).
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


WEB_TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/version: {{ .Chart.Version | quote }}
spec:
  replicas: {{ .Values.replicaCount }}
  template:
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  ports:
    - port: {{ .Values.port }}
"""


def _fifty_releases(apps: int, releases: int, clusters: int = 3) -> dict[str, bytes]:
    """bench/run.py's synthetic monorepo, plus `clusters` clusters whose Flux
    Kustomizations apply `releases` HelmReleases of one chart of the repository (from the
    flux-system GitRepository), split between them."""
    from bench.generate import generate

    files = generate(apps)
    files["charts/web/Chart.yaml"] = "apiVersion: v2\nname: web\nversion: 1.0.0\n"
    files["charts/web/values.yaml"] = (
        "replicaCount: 1\nport: 80\nimage:\n  repository: ghcr.io/example/web\n  tag: '1.0'\n"
    )
    files["charts/web/templates/web.yaml"] = WEB_TEMPLATE
    for c in range(clusters):
        cluster = f"clusters/edge-{c}"
        files[f"{cluster}/flux-system/gotk-components.yaml"] = (
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"
        )
        files[f"{cluster}/web.yaml"] = (
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n"
            "  name: web\n  namespace: flux-system\nspec:\n  interval: 10m\n"
            f"  path: ./releases/edge-{c}\n  prune: true\n  sourceRef:\n"
            "    kind: GitRepository\n    name: flux-system\n"
        )
    for i in range(releases):
        c = i % clusters
        files[f"releases/edge-{c}/web-{i:02d}.yaml"] = (
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n"
            f"  name: web-{i:02d}\n  namespace: flux-system\nspec:\n  interval: 30m\n"
            f"  targetNamespace: team-{i % 7}\n  chart:\n    spec:\n      chart: ./charts/web\n"
            "      sourceRef:\n        kind: GitRepository\n        name: flux-system\n"
            f"  values:\n    replicaCount: {i % 5 + 1}\n"
        )
    return {p: t.encode() for p, t in files.items()}


def pull_request_renders(apps: int, releases: int) -> None:
    from bot.analysis import analyze
    from bot.helm.pool import ChildRenderer

    files = _fifty_releases(apps, releases)
    head_files = dict(files)
    head_files["charts/web/Chart.yaml"] = files["charts/web/Chart.yaml"].replace(b"1.0.0", b"1.1.0")
    head_files["charts/web/templates/web.yaml"] = files["charts/web/templates/web.yaml"].replace(
        b"    - port:", b"    - name: http\n      port:"
    )
    base, head = DictTree(files), DictTree(head_files)
    t_plain, plain = _timed(lambda: analyze(head, base))
    renderer = CachingRenderer(ChildRenderer(workers=2))
    t_cold, cold = _timed(lambda: analyze(head, base, renderer=renderer))
    t_warm, _ = _timed(lambda: analyze(head, base, renderer=renderer))
    renderer.close()
    assert not cold.errors, cold.errors
    changed = sum(
        len(k.changed) for c in cold.impact or [] for k in c.kustomizations if "web" in k.label
    )
    renders = 2 * releases
    per = (t_cold - t_plain) / renders
    print(
        f"a PR bumping charts/web ({apps} apps; {releases} HelmReleases of it across 3 "
        f"clusters): its check without the extra {t_plain:.2f} s; with it {t_cold:.2f} s "
        f"({t_cold / t_plain:.2f}x: {renders} renders, base and head, two cold children), "
        f"{changed} rendered objects changed; again with the renders cached {t_warm:.2f} s "
        f"({t_warm / t_plain:.2f}x); {per * 1000:.1f} ms per HelmRelease render "
        f"({len(plain.findings)} and {len(cold.findings)} findings)"
    )


def hostile_case(name: str) -> dict[str, Any]:
    """A whole-tree review of a repository whose one HelmRelease renders a chart with the
    hostile template (and a second HelmRelease of it), with the default limits."""
    from bot.analysis import analyze
    from bot.helm.pool import ChildRenderer

    release = (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n"
        "  name: {name}\n  namespace: flux-system\nspec:\n  interval: 1h\n  chart:\n"
        "    spec:\n      chart: ./charts/c\n      sourceRef:\n        kind: GitRepository\n"
        "        name: flux-system\n"
    )
    files = {
        "clusters/prod/flux-system/gotk-components.yaml": (
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n"
        ),
        "clusters/prod/a.yaml": release.format(name="a"),
        "clusters/prod/b.yaml": release.format(name="b"),
        "charts/c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n",
        "charts/c/templates/t.yaml": HOSTILE[name],
    }
    renderer = CachingRenderer(ChildRenderer())
    t, result = _timed(
        lambda: analyze(DictTree({p: d.encode() for p, d in files.items()}), renderer=renderer)
    )
    renderer.close()
    found = [f for f in result.findings if f.rule == "helm-render-error"]
    return {
        "seconds": t,
        "result": "; ".join(f"{f.severity.value} {f.path}:{f.line} {f.message}" for f in found),
        "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def hostile() -> None:
    print(
        "hostile templates, default limits (10 s, 1024 MiB): a whole-tree review of two "
        "HelmReleases of the chart, each case in a fresh process:"
    )
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
            f"  {name:<20} review completed in {r['seconds']:6.2f} s  child peak "
            f"{r['child_peak_mb']:5.0f} MB  parent peak {r['parent_peak_mb']:4.0f} MB"
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
    # Before the large pull request: a process forked from a large one starts with its
    # peak memory (Linux keeps the high-water mark across exec).
    hostile()
    pull_request_renders(args.apps, args.releases)


if __name__ == "__main__":
    main()
