"""A chart asked for from a registry this repository publishes its own charts to, when no
chart in the repository has that name.

When the repository's HelmReleases or OCIRepositories deploy its own charts from a
registry (`oci://ghcr.io/<owner>/charts`, a private Harbor or ChartMuseum), that registry
serves what the repository's `Chart.yaml` files name. A HelmRelease (`spec.chart.spec.chart`
with a HelmRepository source), a Helm OCIRepository (the last segment of `spec.url`) or an
umbrella chart's dependency that asks the same registry for a chart no `Chart.yaml` of
the repository names asks for something that is never published: the HelmRelease fails
with `chart "..." not found` (or `...: not found` from the OCI registry). The common cause
is a renamed chart (its `name:` changed, or its directory was moved and renamed) while a
reference still uses the old name, so the message names the closest in-repository chart
names.

A registry counts as the repository's own only when some reference of the repository
deploys an in-repository chart from it (see `chart-version-mismatch` for how a chart of
the same name that is someone else's is told apart); a registry it only pulls upstream
charts from is never checked. Names filled in by Flux's post-build substitution
(`${CHART}`) are not checked, and neither is anything while some `Chart.yaml` of the
repository does not parse (its name is not known). When a change renames or removes the
only in-repository chart deployed from a registry, the base still shows that the
registry is the repository's own, and the reference left behind is reported too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.charts import ChartRequest, chart_requests, own_registries
from bot.analysis.findings import Finding, Location, Severity, Side
from bot.analysis.model import Chart
from bot.analysis.rules.base import ChangeContext, Context
from bot.analysis.snapshot import Snapshot

ID = "chart-not-found"
SEVERITY = Severity.WARNING


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    registries = own_registries(repo)
    for request, close, deployed in _missing(repo, registries):
        example_chart, example_ref = next(iter(sorted(deployed.items())))
        hint = (
            f" The closest in-repository charts: {', '.join(close)}."
            if close
            else f" In-repository charts deployed from it: {', '.join(sorted(deployed))}."
        )
        yield ctx.finding(
            ID,
            SEVERITY,
            request.path,
            request.line,
            f"{request.what} asks {request.registry} for chart {request.chart}, which no "
            "chart of this repository is, so Flux fails with `chart not found`.",
            detail=(
                f"This repository publishes its own charts to {request.registry}: "
                f"{example_ref} deploys {example_chart} from it. A chart of another name is "
                f"never published there, and a renamed chart keeps only its new name.{hint}"
            ),
            related=_renamed(repo, close),
            key=(request.path, request.what, request.chart),
        )


def check_change(ctx: ChangeContext) -> Iterator[Finding]:
    """The change takes away the last in-repository chart deployed from a registry (the
    one chart of the repository, renamed): the head alone no longer shows the registry is
    the repository's own, the base does."""
    head, base = ctx.head, ctx.base
    now = own_registries(head)
    before = {r: d for r, d in own_registries(base).items() if r not in now}
    for request, close, deployed in _missing(head, before):
        example_chart, example_ref = next(iter(sorted(deployed.items())))
        hint = f" The closest in-repository charts: {', '.join(close)}." if close else ""
        gone = [
            Location(c.path, line, Side.BASE, f"{c.label} was named {c.name} here")
            for c in base.charts
            if c.name == request.chart
            and c.path not in head.path_set
            and (line := _name_line(base, c)) is not None
        ]
        yield ctx.finding(
            ID,
            SEVERITY,
            request.path,
            request.line,
            f"{request.what} asks {request.registry} for chart {request.chart}, which this "
            "change leaves no chart of the repository named, so Flux fails with "
            "`chart not found`.",
            detail=(
                f"The repository publishes its own charts to {request.registry}: "
                f"{example_ref} deployed {example_chart} from it before this change. A "
                f"renamed chart keeps only its new name.{hint}"
            ),
            related=[*_renamed(head, close), *gone],
            key=(request.path, request.what, request.chart),
        )


def _missing(
    repo: Snapshot, registries: dict[str, dict[str, str]]
) -> Iterator[tuple[ChartRequest, list[str], dict[str, str]]]:
    """Requests to one of `registries` for a chart no in-repository chart is, with the
    closest in-repository names and what the registry is known to deploy."""
    if not registries or any(c.name is None for c in repo.charts):
        return
    names = sorted({c.name for c in repo.charts if c.name})
    for request in chart_requests(repo):
        deployed = registries.get(request.registry)
        if (
            deployed is None
            or request.chart in names
            or "${" in request.chart + request.registry
            or "{{" in request.chart
        ):
            continue
        yield request, difflib.get_close_matches(request.chart, names, n=3, cutoff=0.6), deployed


def _renamed(repo: Snapshot, close: list[str]) -> list[Location]:
    """The likely cause: the `name:` line of a chart that was renamed."""
    return [
        Location(chart.path, line, message=f"{chart.label} is named {chart.name} here")
        for chart in repo.charts
        if chart.name in close and (line := _name_line(repo, chart)) is not None
    ]


def _name_line(repo: Snapshot, chart: Chart) -> int | None:
    docs = repo.documents(chart.path)
    node = ys.get(docs[0], "name") if docs else None
    return ys.line_of(node) if node is not None else None
