"""An apiVersion that the cluster's Kubernetes no longer serves (error), or that the next
Kubernetes minor removes (warning).

Kubernetes removes deprecated apiVersions in a given minor (`policy/v1beta1`
PodSecurityPolicy in 1.25, `autoscaling/v2beta2` in 1.26, `flowcontrol.apiserver.k8s.io
/v1beta3` in 1.32): from then on the API server answers an object of it with `no matches
for kind "HorizontalPodAutoscaler" in version "autoscaling/v2beta2"` and the Flux
Kustomization (or the Helm upgrade) applying it fails, so every object it applies stays
as it was. Before a cluster upgrade, the warning says which manifests the next minor
breaks, as pluto and kubent do.

Checked: every object a cluster receives as built (after kustomize, Flux's patches and
substitution, and Helm's render of in-repository charts with the `helm` extra), and the
`apiVersion:` lines of the templates of in-repository charts, against the removals that
pluto's `versions.yaml` lists for Kubernetes itself (vendored; a removal that the
vendored Kubernetes OpenAPI description contradicts is not reported). One finding per
kind and apiVersion, on its first use, with every other use as a related location, and
the apiVersion to use instead. A chart template whose `apiVersion` is chosen by a
condition (`.Capabilities`, `if`) is left to the render.

The Kubernetes version: the config's `kubernetes_version` (per cluster, or for all),
else what the repository says (a Talos, kubeadm, k3s or kind config, a k3s
Ansible role's variables, a
system-upgrade-controller Plan, Cluster API), else the newest vendored minor, which the
check says once; against an assumed minor, a removal is a warning (the cluster may run an
older Kubernetes that still serves it; the repository worked when it was written), and an
error once the config or the repository says the cluster runs a minor without it. A
chart's templates are judged against the newest minor any cluster
runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.k8sschemas.removed import Removal, RemovalStatus, removal
from bot.analysis.kubeobjects import KubeVersion, locate, targets
from bot.analysis.lines import split_lines
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build.clusters import Cluster

ID = "removed-api-version"
SEVERITY = Severity.ERROR

_API_LINE = re.compile(r"""^apiVersion:[ \t]*["']?([A-Za-z0-9./-]+)["']?[ \t]*(?:#.*)?$""")
_KIND_LINE = re.compile(r"""^kind:[ \t]*["']?([A-Za-z0-9]+)["']?[ \t]*(?:#.*)?$""")
# A control action before the apiVersion: whether this document is rendered, or with
# which apiVersion, is decided by values or by the cluster's capabilities.
_CONDITION = re.compile(r"\{\{-?\s*(?:if|else|with|range|define)\b|\.Capabilities")


@dataclass
class _Use:
    status: RemovalStatus
    version: KubeVersion
    clusters: list[Cluster | None] = field(default_factory=list)
    where: list[tuple[str, int, str]] = field(default_factory=list)  # file, line, what


def _template_uses(repo: Snapshot) -> Iterator[tuple[str, int, str, str]]:
    """(file, line, apiVersion, kind) of each chart template document that always
    renders with the apiVersion it writes."""
    for path in repo.paths:
        role = repo.chart_role(path)
        if role is None or role[1] != "templates" or not path.endswith((".yaml", ".yml")):
            continue
        text = repo.text(path)
        if not text or "apiVersion" not in text:
            continue
        doc: list[tuple[int, str]] = []
        for number, line in enumerate([*split_lines(text), "---"], start=1):
            if line.startswith("---"):
                found = _document(doc)
                if found is not None:
                    yield (path, *found)
                doc = []
            else:
                doc.append((number, line))


def _document(doc: list[tuple[int, str]]) -> tuple[int, str, str] | None:
    apis = [(n, m[1]) for n, line in doc if (m := _API_LINE.match(line))]
    kinds = [m[1] for _, line in doc if (m := _KIND_LINE.match(line))]
    if len(apis) != 1 or len(kinds) != 1:
        return None
    line, api = apis[0]
    if any(_CONDITION.search(text) for n, text in doc if n <= line):
        return None
    if any(".Capabilities" in text for _, text in doc):
        return None
    return line, api, kinds[0]


def _newest(repo: Snapshot) -> tuple[KubeVersion, Cluster | None]:
    """The newest minor any cluster runs, and that cluster: a chart may go to any."""
    clusters: list[Cluster | None] = [*repo.build.clusters] or [None]
    found = [(repo.kube.versions.of(c, use=False), c) for c in clusters]
    return max(found, key=lambda f: f[0].minor)


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    versions = repo.kube.versions
    uses: dict[tuple[str, str, Removal, tuple[int, int]], _Use] = {}

    def add(
        api: str,
        kind: str,
        version: KubeVersion,
        file: str,
        line: int,
        what: str,
        cluster: Cluster | None,
    ) -> None:
        status = removal(api, kind, version.minor)
        if status is None:
            return
        use = uses.setdefault((api, kind, status.removal, version.minor), _Use(status, version, []))
        if all((f, n) != (file, line) for f, n, _ in use.where):
            use.where.append((file, line, what))
        use.clusters.append(cluster)

    for target in targets(repo):
        res = target.res
        if not res.api_version or not res.kind:
            continue
        version = versions.of(target.cluster, use=False)
        if removal(res.api_version, res.kind, version.minor) is None:
            continue
        file, line, _ = locate(target.node, ("apiVersion",), target.path)
        name = f"{res.kind} {res.namespace + '/' if res.namespace else ''}{res.name}"
        where = f" on cluster {target.cluster.name}" if target.cluster is not None else ""
        add(res.api_version, res.kind, version, file, line, f"{name}{where}", target.cluster)
    chart_version: tuple[KubeVersion, Cluster | None] | None = None
    for file, line, api, kind in _template_uses(repo):
        if chart_version is None:
            chart_version = _newest(repo)
        add(api, kind, chart_version[0], file, line, "a chart template", chart_version[1])

    for (api, kind, state, _), use in uses.items():
        for cluster in use.clusters:
            versions.of(cluster)  # said once, when assumed
        places = sorted(use.where)
        version = use.version
        file, line, what = places[0]
        severity = Severity.ERROR if state is Removal.REMOVED else Severity.WARNING
        message = use.status.message
        if state is Removal.REMOVED and not version.detected:
            # The newest vendored minor was assumed: a repository that says nothing of its
            # Kubernetes may run an older one that still serves this apiVersion (it worked
            # when it was written), so this is what an upgrade breaks, not a broken apply.
            severity = Severity.WARNING
            message = _assumed(use.status)
        more = len(places) - 1
        also = f" ({more} more use{'s' if more > 1 else ''} of it below)" if more else ""
        consequence = (
            ". The Flux Kustomization or Helm release applying it fails"
            if severity is Severity.ERROR
            else ". Upgrading the cluster breaks what applies it"
        )
        yield ctx.finding(
            ID,
            severity,
            file,
            line,
            f"{message}{consequence}{also}.",
            related=[Location(f, n, message=f"{kind} {api}: {w}") for f, n, w in places[1:]],
            key=(api, kind, state.value, use.version.label),
            detail=f"{what}. Checked against Kubernetes {version.label} ({version.reason}).",
        )


def _assumed(status: RemovalStatus) -> str:
    api = status.api
    removed = "{}.{}".format(*api.removed_in) if api.removed_in else "?"
    use = f"; use {api.replacement}" if api.replacement else ""
    return (
        f"{api.kind} {api.api_version} was removed in Kubernetes {removed}: a cluster on "
        f"{removed} or later refuses it{use}"
    )
