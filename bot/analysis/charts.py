"""Which references deploy an in-repository chart by version."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.analysis import yamlscan as ys
from bot.analysis.model import (
    BOOTSTRAP_NAME,
    Chart,
    FluxObject,
    normalize_git_url,
    registry_key,
    secure_join,
)
from bot.analysis.snapshot import Snapshot

HELM_CHART_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass(frozen=True)
class VersionRef:
    """A place that selects a version of an in-repository chart."""

    path: str
    line: int  # the version line, or the reference's line when no version is written
    constraint: str  # as written; "*" when absent
    charts: tuple[Chart, ...]  # the in-repository charts it may mean
    what: str  # "HelmRelease apps/podinfo", "dependency podinfo of chart umbrella"...
    exact_tag: bool = False  # an OCIRepository tag: compared as a string, not a range
    has_version_line: bool = True
    written: str = ""  # the value as written, when it differs from `constraint`

    @property
    def shown(self) -> str:
        return self.written or self.constraint


def _by_name(repo: Snapshot) -> dict[str, list[Chart]]:
    """In-repository charts that a reference by name (not by path) may mean.

    A wrapper chart that depends on the upstream chart of the same name (a local
    `cert-manager` around jetstack's) shares its name with a chart that is not in the
    repository: a name alone cannot tell which one a reference means, so it is left out.
    """
    names: dict[str, list[Chart]] = {}
    for chart in repo.charts:
        if (
            chart.name
            and chart.version
            and not any(d.name == chart.name for d in chart.dependencies)
        ):
            names.setdefault(chart.name, []).append(chart)
    return names


def _source(repo: Snapshot, obj: FluxObject, ref: ys.Node | None) -> FluxObject | None:
    name = ys.scalar(ys.get(ref, "name"))
    kind = ys.scalar(ys.get(ref, "kind"))
    for cand in repo.objects_of(kind or ""):
        if cand.name == name:
            return cand
    return None


def _substituted(value: str | None) -> bool:
    """Whether Flux's post-build substitution fills the value in: not knowable here."""
    return value is not None and "${" in value


@dataclass(frozen=True)
class _Candidate:
    obj: FluxObject
    chart_name: str
    registry: str | None  # the source's URL without its scheme; None when not defined here
    constraint: str | None
    node: ys.Node | None  # the version (or tag/semver) node
    line_node: ys.Node | None
    exact: bool  # an OCI tag, compared as a string


def _candidates(repo: Snapshot, names: dict[str, list[Chart]]) -> Iterator[_Candidate]:
    """HelmReleases (HelmRepository source) and Helm OCIRepositories that name an
    in-repository chart."""
    chartref_targets = {
        ys.scalar(ys.get(hr.node, "spec", "chartRef", "name")) or ""
        for hr in repo.objects_of("HelmRelease")
    }
    for hr in repo.objects_of("HelmRelease"):
        spec = ys.get(hr.node, "spec", "chart", "spec")
        chart_name = ys.scalar(ys.get(spec, "chart"))
        if spec is None or not chart_name or chart_name not in names:
            continue
        # Flux ignores `version` for charts from GitRepository and Bucket sources.
        if ys.scalar(ys.get(spec, "sourceRef", "kind")) != "HelmRepository":
            continue
        source = _source(repo, hr, ys.get(spec, "sourceRef"))
        key = registry_key(_url(source)) if source is not None and _url(source) else None
        vnode = ys.get(spec, "version")
        yield _Candidate(
            hr,
            chart_name,
            key,
            ys.scalar(vnode),
            vnode,
            vnode if vnode is not None else ys.get(spec, "chart"),
            False,
        )
    for oci in repo.objects_of("OCIRepository"):
        url = _url(oci).rstrip("/")
        registry, _, name = url.rpartition("/")
        if name not in names:
            continue
        media = ys.scalar(ys.get(oci.node, "spec", "layerSelector", "mediaType"))
        if oci.name not in chartref_targets and media != HELM_CHART_MEDIA_TYPE:
            continue
        ref = ys.get(oci.node, "spec", "ref")
        if ys.get(ref, "digest") is not None:
            continue
        key = registry_key(registry)
        semver_node = ys.get(ref, "semver")
        tag_node = ys.get(ref, "tag")
        if semver_node is not None and ys.scalar(semver_node):
            yield _Candidate(
                oci, name, key, ys.scalar(semver_node), semver_node, semver_node, False
            )
        elif tag_node is not None and ys.scalar(tag_node):
            # Helm chart tags in OCI registries spell `+` as `_`.
            tag = (ys.scalar(tag_node) or "").replace("_", "+")
            if tag != "latest":
                yield _Candidate(oci, name, key, tag, tag_node, tag_node, True)


# Chart registries that host many owners' charts: the first path segment names the owner
# (`ghcr.io/<owner>/...`, `registry-1.docker.io/bitnamicharts/...`).
_HOSTING = frozenset(
    {
        "ghcr.io",
        "quay.io",
        "docker.io",
        "registry-1.docker.io",
        "index.docker.io",
        "public.ecr.aws",
        "registry.gitlab.com",
        "raw.githubusercontent.com",
        "github.com",
        "gitlab.com",
        "codeberg.org",
    }
)
# Pages sites, where the subdomain names the owner (`grafana.github.io/helm-charts`).
_PAGES = (".github.io", ".gitlab.io", ".codeberg.page")
# Chart repositories of projects that publish their own charts: never this repository's.
_VENDOR_HOSTS = frozenset(
    {
        "charts.bitnami.com",
        "charts.jetstack.io",
        "helm.cilium.io",
        "charts.longhorn.io",
        "helm.traefik.io",
        "charts.external-secrets.io",
        "helm.releases.hashicorp.com",
        "charts.crossplane.io",
        "helm.elastic.co",
        "helm.nginx.com",
        "charts.konghq.com",
        "helm.goharbor.io",
        "charts.rook.io",
        "helm.linkerd.io",
        "istio-release.storage.googleapis.com",
        "charts.min.io",
        "operator.min.io",
        "helm.vector.dev",
        "charts.gitlab.io",
        "helm.datadoghq.com",
        "helm.influxdata.com",
        "charts.appscode.com",
        "helm.mariadb.com",
        "charts.dexidp.io",
        "charts.loft.sh",
        "kubernetes-charts.banzaicloud.com",
        "helm.sh",
        "charts.helm.sh",
    }
)
# Directories where a repository keeps copies of other people's charts.
_VENDOR_DIRS = frozenset(
    {
        "vendor",
        "vendored",
        "third_party",
        "third-party",
        "thirdparty",
        "upstream",
        "external",
    }
)


# Git hosting services whose first path segment is the owner that also names the owner's
# chart space (`github.com/<owner>/...` publishes to `ghcr.io/<owner>`, `<owner>.github.io`).
_GIT_HOSTS = frozenset(
    {
        "github.com",
        "www.github.com",
        "gitlab.com",
        "www.gitlab.com",
        "codeberg.org",
        "bitbucket.org",
    }
)


def owner_of(url: str) -> str | None:
    """The owner a normalised clone URL names (`example` for `github.com/example/app`).

    Unknown for a local path (a clone of a mirror on disk, `/srv/mirrors/acme/app`) and
    for a host that is not a known hosting service (`git.example.com/team/app`): its
    first path segment is a directory, or whatever that server's layout makes it."""
    host, _, path = url.partition("/")
    owner = path.split("/", 1)[0]
    if host not in _GIT_HOSTS or not owner or "/" not in path:
        return None
    return owner


def _owners(repo: Snapshot) -> set[str]:
    """Who owns this repository (`example` for `github.com/example/platform-gitops`), from
    its clone URLs and the `flux-system` GitRepository; empty when no URL tells."""
    return {owner for u in repo.own_urls if (owner := owner_of(u)) is not None}


def _foreign(registry: str, owners: set[str]) -> bool:
    """Whether a chart registry (`host/path`, lower case) is known to serve someone else's
    charts: a vendor's chart repository, or another owner's space on a hosting service.
    A private registry (`charts.example.com`, Harbor, ECR) is taken to serve this
    repository's own charts."""
    host, _, path = registry.partition("/")
    host = host.split(":", 1)[0]
    if host in _VENDOR_HOSTS:
        return True
    owner: str | None = None
    for suffix in _PAGES:
        if host.endswith(suffix):
            owner = host.removesuffix(suffix)
    if host in _HOSTING:
        owner = path.split("/", 1)[0] or None
    # Without knowing who owns this repository, a hosting service says nothing.
    return owner is not None and bool(owners) and owner not in owners


def _vendored(chart: Chart) -> bool:
    return any(part.lower() in _VENDOR_DIRS for part in chart.directory.split("/"))


def _deployed(repo: Snapshot) -> list[tuple[_Candidate, tuple[Chart, ...]]]:
    """References that deploy an in-repository chart, with the charts they may mean;
    found once per snapshot: the registries rules, the renderer and the version rules
    all ask, on both sides of a change."""
    return repo.derived("deployed-charts", lambda repo: list(_find_deployed(repo, _by_name(repo))))


def _find_deployed(
    repo: Snapshot, names: dict[str, list[Chart]]
) -> Iterator[tuple[_Candidate, tuple[Chart, ...]]]:
    owners = _owners(repo)
    for cand in _candidates(repo, names):
        if cand.registry is not None and _foreign(cand.registry, owners):
            continue
        charts = tuple(c for c in names[cand.chart_name] if not _vendored(c))
        if charts:
            yield cand, charts


def own_registries(repo: Snapshot) -> dict[str, dict[str, str]]:
    """Registries this repository publishes its own charts to (`host/path`, lower case,
    no scheme): those from which a HelmRelease or OCIRepository of the repository deploys
    an in-repository chart -> chart name -> the reference that does."""
    registries: dict[str, dict[str, str]] = {}
    for cand, _ in _deployed(repo):
        if cand.registry is not None:
            registries.setdefault(cand.registry, {}).setdefault(
                cand.chart_name, f"{cand.obj.kind} {cand.obj.name} ({cand.obj.path})"
            )
    return registries


@dataclass(frozen=True)
class ChartRequest:
    """A reference that asks a chart registry for a chart by name."""

    path: str
    line: int
    chart: str
    registry: str  # `host/path`, lower case, no scheme
    what: str  # "HelmRelease podinfo", "dependency podinfo of chart umbrella (charts/x)"


def chart_requests(repo: Snapshot) -> Iterator[ChartRequest]:
    """HelmReleases with a HelmRepository source, OCIRepositories that serve a Helm chart
    and umbrella dependencies with a registry URL: the chart each asks a registry for."""
    chartref_targets = {
        ys.scalar(ys.get(hr.node, "spec", "chartRef", "name")) or ""
        for hr in repo.objects_of("HelmRelease")
    }
    for hr in repo.objects_of("HelmRelease"):
        spec = ys.get(hr.node, "spec", "chart", "spec")
        chart_node = ys.get(spec, "chart")
        name = ys.scalar(chart_node)
        if not name or ys.scalar(ys.get(spec, "sourceRef", "kind")) != "HelmRepository":
            continue
        source = _source(repo, hr, ys.get(spec, "sourceRef"))
        if source is not None and _url(source):
            yield ChartRequest(
                hr.path,
                ys.line_of(chart_node),  # type: ignore[arg-type]
                name,
                registry_key(_url(source)),
                f"HelmRelease {hr.name}",
            )
    for oci in repo.objects_of("OCIRepository"):
        url_node = ys.get(oci.node, "spec", "url")
        registry, _, name = _url(oci).strip().rstrip("/").rpartition("/")
        media = ys.scalar(ys.get(oci.node, "spec", "layerSelector", "mediaType"))
        if name and registry and (oci.name in chartref_targets or media == HELM_CHART_MEDIA_TYPE):
            yield ChartRequest(
                oci.path,
                ys.line_of(url_node),  # type: ignore[arg-type]
                name,
                registry_key(registry),
                f"OCIRepository {oci.name}",
            )
    for chart in repo.charts:
        for dep in chart.dependencies:
            repository = dep.repository or ""
            if repository.startswith(("http://", "https://", "oci://")):
                yield ChartRequest(
                    chart.path,
                    dep.line,
                    dep.name,
                    registry_key(repository),
                    f"dependency {dep.name} of {chart.label}",
                )


def version_refs(repo: Snapshot) -> list[VersionRef]:
    """References that select a version of an in-repository chart.

    A HelmRelease or OCIRepository that names a chart of the repository is taken to deploy
    it, unless its registry is known to serve someone else's charts (a vendor's chart
    repository, another owner on ghcr.io or GitHub Pages) or the chart is a copy kept
    under `vendor/`, `third_party/` or `upstream/`: a copy of grafana's chart is not the
    chart that `grafana.github.io/helm-charts` serves, whatever its version."""
    names = _by_name(repo)
    refs: list[VersionRef] = []
    # Registries this repository publishes its charts to: those its own references
    # deploy an in-repository chart from.
    registries: set[str] = set()
    for cand, charts in _deployed(repo):
        if cand.registry is not None:
            registries.add(cand.registry)
        if _substituted(cand.constraint):
            continue
        refs.append(
            VersionRef(
                cand.obj.path,
                ys.line_of(cand.line_node),  # type: ignore[arg-type]
                cand.constraint or ("" if cand.exact else "*"),
                charts,
                f"{cand.obj.kind} {cand.obj.name}",
                exact_tag=cand.exact,
                has_version_line=cand.node is not None,
                written=(ys.scalar(cand.node) or "") if cand.exact else "",
            )
        )
    for chart in repo.charts:
        for dep in chart.dependencies:
            repository = dep.repository or ""
            if repository.startswith("file://"):
                target = secure_join(posixpath.join(chart.directory, repository[7:]))
                matched = [c for c in repo.charts if c.directory == target and c.version]
            elif repository.startswith(("http://", "https://", "oci://")) and (
                registry_key(repository) not in registries
            ):
                # A chart of the same name from a registry this repository is not known to
                # publish to (bitnami's `common` beside a local library chart `common`).
                matched = []
            else:
                matched = [c for c in names.get(dep.name, []) if c is not chart]
            if (
                not matched
                or not dep.version
                or dep.version_line is None
                or _substituted(dep.version)
            ):
                continue
            refs.append(
                VersionRef(
                    chart.path,
                    dep.version_line,
                    dep.version,
                    tuple(matched),
                    f"dependency {dep.name} of {chart.label}",
                )
            )
    return refs


def _foreign_git_source(repo: Snapshot, hr: FluxObject, ref: ys.Node | None) -> bool:
    """Whether a HelmRelease's GitRepository source is known to be another repository:
    it is defined here with a URL that is neither this repository's (as the CLI or the
    App knows it) nor the URL of the `flux-system` GitRepository, or it follows another
    branch, a tag or a commit. Unknown means no."""
    name = ys.scalar(ys.get(ref, "name"))
    if ys.scalar(ys.get(ref, "kind")) != "GitRepository" or name == BOOTSTRAP_NAME:
        return False
    own = repo.own_urls
    named = [s for s in repo.objects_of("GitRepository") if s.name == name]
    urls = [_url(s) for s in named]
    if not own or not urls or not all(urls):
        return False
    # Another repository, or another branch, tag or commit of this one.
    return all(normalize_git_url(_url(s)) not in own or not repo.same_revision(s) for s in named)


def _url(source: FluxObject) -> str:
    return ys.scalar(ys.get(source.node, "spec", "url")) or ""


def git_deployed_charts(repo: Snapshot) -> dict[str, str]:
    """Chart directories that a HelmRelease builds from a Git/Bucket source with the
    default `ChartVersion` strategy -> the HelmRelease that does."""
    result: dict[str, str] = {}
    for hr in repo.objects_of("HelmRelease"):
        spec = ys.get(hr.node, "spec", "chart", "spec")
        chart_path = ys.scalar(ys.get(spec, "chart"))
        kind = ys.scalar(ys.get(spec, "sourceRef", "kind"))
        strategy = ys.scalar(ys.get(spec, "reconcileStrategy")) or "ChartVersion"
        if not chart_path or kind not in ("GitRepository", "Bucket"):
            continue
        if strategy != "ChartVersion":
            continue
        if _foreign_git_source(repo, hr, ys.get(spec, "sourceRef")):
            # `./charts/podinfo` of another repository, not this one's.
            continue
        result[secure_join(chart_path)] = f"HelmRelease {hr.name}"
    return result


def rewrite_version_line(line_text: str, new_version: str) -> str | None:
    """The version line with its value replaced, keeping indentation and quoting."""
    m = re.match(
        r"^(\s*(?:-\s+)?[\w.-]+:\s*)(['\"]?)([^'\"#]*?)\2(\s*(?:#.*)?)$", line_text.rstrip("\r\n")
    )
    if not m:
        return None
    return f"{m.group(1)}{m.group(2)}{new_version}{m.group(2)}{m.group(4)}"
