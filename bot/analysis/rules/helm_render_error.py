"""A HelmRelease of an in-repository chart whose render fails (with the `helm` extra).

With `pip install 'flux-review[helm]'`, every HelmRelease whose chart is in this
repository is rendered as helm-controller renders it: the chart that a GitRepository of
this repository (`spec.chart.spec.chart: ./charts/app`), a registry this repository
publishes its charts to, or an ExternalArtifact of this repository's files serves, with
its `file://` and vendored dependencies; the values composed as helm-controller composes
them (the chart's `values.yaml` or `valuesFiles`, then `valuesFrom`, then `values`); the
release name and namespace and the cluster's Kubernetes version (`kubernetes_version`).
When Helm fails, the HelmRelease never installs or upgrades: helm-controller reports
the same error and the release stays as it was. Reported, on the line of the template
action that fails (a `required` value nobody sets, a typo in an `include`, a field of a
nil map), or on the `Chart.yaml` dependency, the `valuesFrom` entry or the values file
Flux cannot use:

- a template error (`execution error`, `parse error`), or rendered output that is not
  YAML or holds the same object twice (helm-controller's post-renderer refuses both);
- values the chart's `values.schema.json` refuses, a `valuesFrom` ConfigMap that the
  cluster does not get from this repository when it is in the repository elsewhere, a
  key it lacks, a `valuesFiles` entry that does not exist;
- a chart Helm cannot load, a `file://` dependency that is missing (one whose version
  the umbrella's constraint refuses is `chart-version-mismatch`'s), a `kubeVersion` the
  cluster does not satisfy;
- a warning when the render ran out of its limits (10 seconds, 1 GiB): a template that
  loops or allocates without end stops helm-controller too.

One finding per failing line and error, naming each HelmRelease and cluster that hits
it and where its values come from. In a pull request, a HelmRelease that rendered at
the base and fails after the change is reported as the change's doing.

Not reported: HelmReleases of charts from other repositories and registries (never
fetched), renders whose values are not fully known (a Secret encrypted with SOPS, a
ConfigMap or Secret the repository does not define, a variable Flux substitutes from
outside), and anything at all without the extra (a notice says so once). In a pull
request, only HelmReleases whose chart, values or values sources the change touches are
rendered.

Fix: set the value the template needs in the HelmRelease's `values` (or its
`valuesFrom` source), or correct the template; render locally with `helm template` and
the same values to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.rendering import FailureKind
from bot.analysis.rules.base import ChangeContext, Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build.helm import ReleaseRender, Status

ID = "helm-render-error"
SEVERITY = Severity.ERROR

_MAX_REASON = 120


@dataclass
class _Group:
    path: str
    line: int
    kind: FailureKind
    reason: str
    releases: list[ReleaseRender] = field(default_factory=list)


def _groups(repo: Snapshot, changed: bool | None) -> list[_Group]:
    """Failures by line and error. `changed` True: only HelmReleases that rendered on
    the other side of the change; False: only the others; None: all."""
    helm = repo.build.helm
    groups: dict[tuple[str, int, str], _Group] = {}
    for r in helm.releases:
        if r.status is not Status.FAILED or r.failure is None or _owned_elsewhere(r):
            continue
        if changed is not None:
            before = helm.counterpart(r.key)
            passed = before is not None and before.status is Status.RENDERED
            if passed != changed:
                continue
        path, line = r.where
        reason = r.failure.message
        group = groups.setdefault((path, line, reason), _Group(path, line, r.failure.kind, reason))
        group.releases.append(r)
    return sorted(groups.values(), key=lambda g: (g.path, g.line, g.reason))


def _owned_elsewhere(r: ReleaseRender) -> bool:
    """A `file://` dependency whose version the umbrella's constraint refuses: one cause,
    reported once, by chart-version-mismatch on the constraint's line."""
    failure = r.failure
    return (
        failure is not None
        and failure.kind is FailureKind.CHART
        and "can't get a valid version for constraint" in failure.message
    )


def _short(text: str) -> str:
    text = " ".join(text.split()).rstrip(".")
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _who(group: _Group) -> tuple[str, str]:
    """The HelmReleases and the clusters a group names, shortened for a message."""
    labels = list(dict.fromkeys(r.label for r in group.releases))
    clusters = list(dict.fromkeys(r.cluster.name for r in group.releases))
    who = labels[0] if len(labels) == 1 else f"{labels[0]} and {len(labels) - 1} more"
    where = (
        f"cluster {clusters[0]}"
        if len(clusters) == 1
        else f"clusters {clusters[0]} and {len(clusters) - 1} more"
    )
    return who, where


def _what(kind: FailureKind) -> str:
    if kind is FailureKind.VALUES:
        return "values Helm refuses"
    if kind is FailureKind.CHART:
        return "a chart Flux cannot build"
    if kind is FailureKind.LIMIT:
        return "a render that never finishes"
    return "a template that fails"


def _message(group: _Group, changed: bool) -> str:
    who, where = _who(group)
    reason = _short(group.reason)
    several = len({r.label for r in group.releases}) > 1
    if group.kind is FailureKind.LIMIT:
        return (
            f"{who} {'do' if several else 'does'} not render on {where} within "
            f"flux-review's limits: {reason}; helm-controller would hang or run out of "
            "memory on it too."
        )
    if changed:
        return f"This change makes {who} fail to render on {where}: {reason}."
    return f"{who} {'fail' if several else 'fails'} to render on {where}: {reason}."


def _detail(group: _Group) -> str:
    lines = [f"Helm stops at {_what(group.kind)}."]
    for r in group.releases:
        origin = ", ".join(r.values_origin)
        lines.append(
            f"{r.label} on cluster {r.cluster.name}: chart {r.chart_path or '.'} from "
            f"{r.source}, values from {origin}."
        )
    failure = group.releases[0].failure
    if failure is not None and failure.detail and failure.detail != failure.message:
        text = failure.detail if len(failure.detail) <= 2000 else failure.detail[:2000] + "…"
        lines.append(f"Helm says: {text}")
    return "\n".join(lines)


def _related(group: _Group) -> list[Location]:
    out: list[Location] = []
    for r in group.releases:
        hr = r.release
        if (hr.path, hr.line) != (group.path, group.line):
            out.append(Location(hr.path, hr.line, message=f"{r.label} is defined here"))
    return list(dict.fromkeys(out))


def _findings(
    make: ChangeContext | Context, repo: Snapshot, changed: bool | None
) -> Iterator[Finding]:
    for group in _groups(repo, changed):
        severity = Severity.WARNING if group.kind is FailureKind.LIMIT else SEVERITY
        yield make.finding(
            ID,
            severity,
            group.path,
            group.line,
            _message(group, bool(changed)),
            related=_related(group),
            key=(group.path, group.reason, *sorted({r.label for r in group.releases})),
            detail=_detail(group),
        )


def check(ctx: Context) -> Iterator[Finding]:
    # Alone, every failure; one side of a change: those the change is not the cause of
    # (the other side failed too, or the HelmRelease is new): check_change has the rest.
    scope = ctx.repo.helm_options.scope if ctx.repo.helm_options is not None else None
    yield from _findings(ctx, ctx.repo, None if scope is None else False)


def check_change(ctx: ChangeContext) -> Iterator[Finding]:
    """A HelmRelease that rendered at the base and fails after the change."""
    yield from _findings(ctx, ctx.head, True)
