"""HelmReleases of charts in this repository, rendered as helm-controller renders them, and
the objects Helm installs joining their cluster.

After the walk of a cluster, each HelmRelease it applies (as its parent built it) whose
chart is in this repository is turned into the render helm-controller would do:
- the chart: `spec.chart.spec.chart: ./path` from a GitRepository of this repository
  (through that source's ignore rules), a chart published from this repository to a
  registry it owns (a HelmRepository or, through `chartRef`, an OCIRepository whose
  version selects the chart as the commit has it), or an ExternalArtifact an
  ArtifactGenerator assembles from this repository; umbrella charts take their
  `file://` and `charts/` dependencies from the same files (`helmchart.py`);
- the values: `valuesFiles`, then `valuesFrom` ConfigMaps and Secrets that the same
  cluster applies from this repository, then `values` (`helmvalues.py`). A Secret
  encrypted with SOPS, or one the repository does not define, leaves the render not
  fully known: it is not guessed;
- the release name and namespace, and `.Capabilities`: the config's
  `kubernetes_version` for the cluster, else the newest the renderer knows, and the
  API versions of the CRDs the cluster applies from the repository.

The renderer (`rendering.Renderer`, given by the caller: the analysis never imports
Helm) returns manifests or a positioned failure. What Helm installs then goes through
helm-controller's post-renderers (`internal/postrender`: `postRenderers` kustomize
patches and images, `commonMetadata`, the origin labels `helm.toolkit.fluxcd.io/name`
and `/namespace`) and becomes `Applied` objects owned by the HelmRelease's Flux
Kustomization, marked `rendered_by` the HelmRelease, each node's origin a line of the
template that wrote it (matched by text: a rendered line is traced to the template line
it comes from where the text says so, else to the line before it).

In a pull request (a `ChangeScope` shared by base and head), only HelmReleases whose
render inputs differ between the two sides are rendered, on both sides; renders are
cached by the blob ids of their inputs (`rendering.CachingRenderer`).
"""

from __future__ import annotations

import bisect
import enum
import hashlib
import json
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import yaml
from yaml import nodes as ynodes

from bot.analysis import yamlscan as ys
from bot.analysis.helmchart import ChartFiles, ChartListing, ChartProblem, assemble_chart
from bot.analysis.helmvalues import (
    ABSENT,
    Found,
    Unknown,
    ValuesError,
    ValuesSource,
    ValuesUnknown,
    values_source_of,
)
from bot.analysis.model import registry_key, secure_join
from bot.analysis.rendering import (
    FailureKind,
    Position,
    PreparedRelease,
    Rendered,
    RendererUnavailable,
    RenderFailure,
    RenderResult,
    prepare_release,
)
from bot.analysis.semver import matches
from bot.analysis.snapshot.build import flux, kustfile
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import Applied, Cluster, ClusterBuilder
from bot.analysis.snapshot.build.kustomize import Accumulated
from bot.analysis.snapshot.build.problems import ProblemKind
from bot.analysis.snapshot.build.resource import Resource
from bot.analysis.snapshot.build.source import MappedView, RepoView, View

if TYPE_CHECKING:
    from bot.analysis.rendering import Renderer
    from bot.analysis.snapshot import Snapshot

__all__ = [
    "HELM_GROUP",
    "ChangeScope",
    "HelmOptions",
    "HelmReleases",
    "NotRendered",
    "ReleaseKey",
    "ReleaseRender",
    "Status",
]

HELM_GROUP = "helm.toolkit.fluxcd.io"
# (cluster name, HelmRelease namespace, HelmRelease name)
ReleaseKey = tuple[str, str, str]

_NOT_FETCHED = "charts from outside this repository are never fetched"
_HOOK = "helm.sh/hook"


class ChangeScope:
    """Shared by the base and the head of one change: a HelmRelease is rendered on both
    sides when what it renders from differs between them (a chart file, a values file, a
    valuesFrom source, the HelmRelease itself), on neither when nothing does."""

    def __init__(self) -> None:
        self._sides: dict[str, Snapshot] = {}

    def bind(self, side: str, snapshot: Snapshot) -> None:
        self._sides[side] = snapshot

    def clear(self) -> None:
        """Forgets both sides: each snapshot holds this scope, so until then the two are
        a reference cycle that only Python's cyclic collector would free."""
        self._sides.clear()

    def other(self, side: str) -> Snapshot | None:
        return self._sides.get("base" if side == "head" else "head")

    def wants(self, side: str, key: ReleaseKey, signature: Signature) -> bool:
        other = self.other(side)
        if other is None:
            return True
        return other.build.helm.signatures.get(key) != signature


@dataclass(frozen=True)
class HelmOptions:
    """How a snapshot renders its HelmReleases: with `renderer` (None: not at all, and
    nothing said), within `scope` when it is one side (`side`) of a change."""

    renderer: Renderer | RendererUnavailable | None = None
    scope: ChangeScope | None = None
    side: str = "head"


class Status(enum.StrEnum):
    RENDERED = "rendered"
    FAILED = "failed"  # Helm (or helm-controller before it) fails: `failure` says how
    UNKNOWN = "unknown"  # what it renders from is not fully known here: `why`
    SKIPPED = "skipped"  # nothing it renders from changed (a pull request)
    UNRENDERED = "unrendered"  # no renderer


@dataclass(frozen=True)
class _Located:
    """Where a HelmRelease's chart is: a directory of a source's files."""

    listing: ChartListing
    view: View
    directory: str  # in the source's files
    git: bool  # valuesFiles are relative to the source's root (Git, ExternalArtifact)
    source: str  # "GitRepository flux-system/flux-system"


@dataclass(eq=False)
class ReleaseRender:
    """One HelmRelease of one cluster whose chart is in this repository."""

    cluster: Cluster
    release: Applied  # the HelmRelease, as its parent built it
    key: ReleaseKey
    source: str
    chart_path: str  # the chart's directory in the repository
    chart: ChartFiles | None = None
    view: View | None = None
    prepared: PreparedRelease | None = None
    status: Status = Status.UNRENDERED
    failure: RenderFailure | None = None
    # Where the failure is (a template line, Chart.yaml's dependency, a valuesFrom entry)
    # and whether that line is the failing action's own (False: a stand-in).
    where: tuple[str, int] = ("", 1)
    why: tuple[str, ...] = ()  # why it is not fully known
    signature: str = ""
    objects: list[Applied] = field(default_factory=list)
    secret_values: bool = False  # its values come (partly) from a Secret

    @property
    def label(self) -> str:
        return f"HelmRelease {self.key[1]}/{self.key[2]}"

    @property
    def values_origin(self) -> tuple[str, ...]:
        """The files its values come from: its own, its values files, its valuesFrom."""
        found = [self.release.path]
        if self.prepared is not None:
            found += [*self.prepared.values_files, *self.prepared.values_from]
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class _Elsewhere:
    why: str
    outside: bool = True  # the chart is not this repository's at all (else: not as it is here)


_Resolved = _Located | _Elsewhere | None  # its chart here, why not, not a chart at all


@dataclass(frozen=True)
class NotRendered:
    """A HelmRelease whose chart is not this commit's chart of this repository."""

    cluster: Cluster
    release: Applied
    key: ReleaseKey
    why: str
    outside: bool
    signature: ElsewhereSignature

    @property
    def label(self) -> str:
        return f"HelmRelease {self.key[1]}/{self.key[2]}"


class ElsewhereSignature:
    """What decides whether a HelmRelease whose chart is not rendered here differs from
    the other side's: the HelmRelease as built. Compared by node first: a release that
    nothing it was built from changed is the very same node on both sides of a change,
    and a digest of each of a repository's thousands of such releases (home-ops
    repositories pin every app's chart to a registry) cost a cold review about a third
    of a second. Equal only to another such signature."""

    __slots__ = ("_digest", "node")

    def __init__(self, node: ynodes.Node) -> None:
        self.node = node
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = _digest(yn.to_value(self.node))
        return self._digest

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ElsewhereSignature):
            return NotImplemented
        return self.node is other.node or self.digest == other.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"elsewhere:{self.digest}"


# A release's signature: the render request's key (or why it is not known), or that of
# a release whose chart is elsewhere.
Signature = str | ElsewhereSignature


class HelmReleases:
    """The HelmReleases of one snapshot's clusters whose charts are in this repository:
    prepared once (`signatures`), rendered and joined to their clusters once (`join`)."""

    def __init__(
        self,
        snapshot: Snapshot,
        builder: ClusterBuilder,
        clusters: list[Cluster],
        options: HelmOptions | None,
    ) -> None:
        self._snap = snapshot
        self._builder = builder
        self._clusters = clusters
        self.options = options or HelmOptions()
        self.notes: list[str] = []
        self.error: str | None = None  # rendering itself failed (a bug: logged)
        self._prepared: list[ReleaseRender] | None = None
        self._elsewhere: list[NotRendered] = []
        self._signatures: dict[ReleaseKey, Signature] | None = None
        self._joined = False
        self._listings: dict[int, ChartListing] = {}
        self._charts: dict[tuple[int, str], ChartFiles | ChartProblem] = {}
        self._sources: dict[int, dict[tuple[str, str, str], Applied]] = {}

    @property
    def active(self) -> bool:
        return self.options.renderer is not None

    @cached_property
    def _own_registries(self) -> dict[str, dict[str, str]]:
        from bot.analysis.charts import own_registries  # the charts index imports the build

        return own_registries(self._snap)

    def _source(self, cluster: Cluster, kind: str, namespace: str, name: str) -> Applied | None:
        """A Flux source the cluster applies from this repository."""
        index = self._sources.get(id(cluster))
        if index is None:
            index = {}
            for obj in cluster.objects():
                i = obj.id
                if obj.rendered_by is None and i.group == "source.toolkit.fluxcd.io":
                    index.setdefault((i.kind, i.namespace or "", i.name), obj)
            self._sources[id(cluster)] = index
        return index.get((kind, namespace, name))

    # --- preparing ------------------------------------------------------------------

    def _prepare(self) -> list[ReleaseRender]:
        if self._prepared is not None:
            return self._prepared
        self._prepared = []
        if not self.active:
            return self._prepared
        for cluster in self._clusters:
            raw = [a for a in cluster.objects() if a.rendered_by is None]
            sources = _ValuesSources(raw)
            crds = _crd_api_versions(raw)
            for obj in raw:
                if obj.id.group != HELM_GROUP or obj.id.kind != "HelmRelease":
                    continue
                key = (cluster.name, obj.id.namespace or "", obj.id.name)
                located = self._locate(cluster, obj)
                if located is None:
                    continue
                if isinstance(located, _Elsewhere):
                    self._elsewhere.append(
                        NotRendered(
                            cluster,
                            obj,
                            key,
                            located.why,
                            located.outside,
                            ElsewhereSignature(obj.node),
                        )
                    )
                    continue
                self._prepared.append(self._prepare_one(cluster, obj, key, located, sources, crds))
        return self._prepared

    @property
    def signatures(self) -> dict[ReleaseKey, Signature]:
        """What decides whether a HelmRelease's render differs from the other side's."""
        if self._signatures is None:
            found: dict[ReleaseKey, Signature] = {r.key: r.signature for r in self._prepare()}
            for other in self._elsewhere:
                found.setdefault(other.key, other.signature)
            self._signatures = found
        return self._signatures

    @property
    def elsewhere(self) -> list[NotRendered]:
        """HelmReleases whose chart is not rendered because it is not this commit's."""
        self._prepare()
        return list(self._elsewhere)

    def _listing(self, view: View) -> ChartListing:
        listing = self._listings.get(id(view))
        if listing is None:
            listing = ChartListing(_ViewTree(view, self._snap))
            self._listings[id(view)] = listing
        return listing

    def _chart(self, located: _Located) -> ChartFiles | ChartProblem:
        key = (id(located.view), located.directory)
        chart = self._charts.get(key)
        if chart is None:
            chart = assemble_chart(located.listing, located.directory)
            self._charts[key] = chart
        return chart

    def _locate(self, cluster: Cluster, obj: Applied) -> _Resolved:
        """Where the chart of a HelmRelease is, or why it is not in this repository."""
        spec = yn.get(obj.node, "spec")
        namespace = obj.id.namespace or ""
        if yn.to_value(yn.get(spec, "suspend")) is True:
            # helm-controller leaves it as it was: nothing is rendered or upgraded.
            return _Elsewhere("it is suspended", outside=False)
        ref = yn.get(spec, "chartRef")
        if ref is not None:
            kind = yn.text(yn.get(ref, "kind")) or ""
            name = yn.text(yn.get(ref, "name")) or ""
            ns = yn.text(yn.get(ref, "namespace")) or namespace
            if kind == "OCIRepository":
                return self._oci(cluster, name, ns)
            if kind == "ExternalArtifact":
                return self._artifact(cluster, name, ns)
            return _Elsewhere(f"its chart is {kind} {ns}/{name}")
        chart_spec = yn.get(spec, "chart", "spec")
        chart = yn.text(yn.get(chart_spec, "chart"))
        if chart_spec is None or not chart:
            return None
        source = yn.get(chart_spec, "sourceRef")
        kind = yn.text(yn.get(source, "kind")) or ""
        name = yn.text(yn.get(source, "name")) or ""
        ns = yn.text(yn.get(source, "namespace")) or namespace
        if "${" in chart + name + ns:
            return _Elsewhere("its chart is named by a variable", outside=False)
        if kind == "GitRepository":
            if cluster.source_of is None:
                return None
            view = cluster.source_of(kind, name, ns)
            if isinstance(view, str):
                return _Elsewhere(view)
            directory = secure_join(chart)
            return _Located(self._listing(view), view, directory, True, f"{kind} {ns}/{name}")
        if kind == "HelmRepository":
            found = self._source(cluster, kind, ns, name)
            url = yn.text(yn.get(found.node, "spec", "url")) if found is not None else None
            if url is None:
                return _Elsewhere(
                    f"its source {kind} {ns}/{name} is not applied from this repository"
                )
            version = yn.text(yn.get(chart_spec, "version")) or "*"
            return self._published(url, chart, lambda v: matches(version, v), kind, ns, name)
        return _Elsewhere(f"its chart comes from {kind} {ns}/{name}")

    def _oci(self, cluster: Cluster, name: str, namespace: str) -> _Resolved:
        found = self._source(cluster, "OCIRepository", namespace, name)
        if found is None:
            return _Elsewhere(
                f"its source OCIRepository {namespace}/{name} is not applied from this repository"
            )
        spec = yn.get(found.node, "spec")
        url = (yn.text(yn.get(spec, "url")) or "").strip().rstrip("/")
        registry, _, chart = url.rpartition("/")
        ref = yn.get(spec, "ref")
        if yn.text(yn.get(ref, "digest")):
            return _Elsewhere(
                f"OCIRepository {namespace}/{name} pins a digest, which only the registry knows",
                outside=False,
            )
        semver = yn.text(yn.get(ref, "semver"))
        tag = (yn.text(yn.get(ref, "tag")) or "latest").replace("_", "+")

        def selects(version: str) -> bool:
            if semver:
                return matches(semver, version)
            return tag in ("latest", version)

        return self._published(registry, chart, selects, "OCIRepository", namespace, name)

    def _published(
        self,
        url: str,
        chart: str,
        selects: Callable[[str], bool],
        kind: str,
        namespace: str,
        name: str,
    ) -> _Resolved:
        """A chart from a registry: this repository's own chart when the repository
        publishes its charts there and the version asked for is the commit's."""
        registry = registry_key(url)
        if registry not in self._own_registries:
            return _Elsewhere(f"its chart {chart} comes from {url}")
        same = [c for c in self._snap.charts if c.name == chart and c.version]
        if len(same) != 1:
            return _Elsewhere(
                f"{len(same) or 'no'} charts of this repository are named {chart}", outside=False
            )
        version = same[0].version or ""
        if not selects(version):
            return _Elsewhere(
                f"{kind} {namespace}/{name} selects a version of chart {chart} other than "
                f"this commit's {version}",
                outside=False,
            )
        view = self._builder.repo_view(None, "this repository")
        return _Located(
            self._listing(view), view, same[0].directory, False, f"{kind} {namespace}/{name}"
        )

    def _artifact(self, cluster: Cluster, name: str, namespace: str) -> _Resolved:
        if cluster.source_of is None:
            return None
        view = cluster.source_of("ExternalArtifact", name, namespace)
        if isinstance(view, str):
            return _Elsewhere(view)
        # helm-controller loads the artifact as a chart: its root, or the one directory
        # at its root (how a packaged chart is laid out).
        directory = ""
        if not view.is_file("Chart.yaml"):
            tops = view.subdirs("")
            if len(tops) != 1 or not view.is_file(f"{tops[0]}/Chart.yaml"):
                return _Elsewhere(
                    f"ExternalArtifact {namespace}/{name} holds no chart at its root", outside=False
                )
            directory = tops[0]
        return _Located(
            self._listing(view), view, directory, True, f"ExternalArtifact {namespace}/{name}"
        )

    def _prepare_one(
        self,
        cluster: Cluster,
        obj: Applied,
        key: ReleaseKey,
        located: _Located,
        sources: _ValuesSources,
        crds: tuple[str, ...],
    ) -> ReleaseRender:
        real_dir = _real_dir(located.view, located.directory)
        out = ReleaseRender(cluster, obj, key, located.source, real_dir, view=located.view)
        chart = self._chart(located)
        missing = _unread(located, chart)
        if missing:
            why = f"the chart's file {missing} is not in what was fetched of the commit"
            out.status, out.why, out.signature = Status.UNKNOWN, (why,), "unknown:" + why
            return out
        if isinstance(chart, ChartProblem):
            real = located.view.real(chart.path)
            # A chart directory that is not there: the HelmRelease's `chart:` line says so.
            where = (real, chart.line) if real is not None else _chart_line(obj)
            if not chart.definite:
                out.status, out.why = Status.UNKNOWN, (chart.message,)
                out.signature = "unknown:" + chart.message
                return out
            return _failed(out, RenderFailure(FailureKind.CHART, chart.message), where)
        out.chart = chart
        spec = yn.get(obj.node, "spec")
        if _substituted(obj, spec):
            why = "its values depend on a variable whose value is not in the repository"
            out.status, out.why = Status.UNKNOWN, (why,)
            out.signature = "unknown:" + why + _digest(yn.to_value(spec))
            return out
        version = self._snap.config.kubernetes_version(cluster.name)
        found_secret = [False]

        def lookup(kind: str, namespace: str, name: str) -> ValuesSource:
            source = sources.lookup(kind, namespace, name)
            if kind == "Secret" and isinstance(source, Found):
                found_secret[0] = True
            return source

        prepared = prepare_release(
            chart,
            obj.id.name,
            obj.id.namespace or "",
            yn.to_value(spec) or {},
            lookup,
            located.listing.read if located.git else None,
            kube_version=f"v{version[0]}.{version[1]}.0" if version else None,
            api_versions=crds,
        )
        out.secret_values = found_secret[0]
        if isinstance(prepared, ValuesUnknown):
            out.status, out.why = Status.UNKNOWN, prepared.reasons
            out.signature = "unknown:" + "\n".join(prepared.reasons) + _digest(yn.to_value(spec))
            return out
        if isinstance(prepared, ValuesError):
            if not prepared.definite:
                out.status, out.why = Status.UNKNOWN, (prepared.message,)
                out.signature = "unknown:" + prepared.message
                return out
            return _failed(
                out,
                RenderFailure(FailureKind.VALUES, prepared.message),
                _values_line(obj, prepared, located.view),
            )
        out.prepared = prepared
        out.signature = prepared.request.key
        return out

    # --- rendering ------------------------------------------------------------------

    @property
    def releases(self) -> list[ReleaseRender]:
        """Every HelmRelease of an in-repository chart, rendered (or why not)."""
        self.join()
        return list(self._prepare())

    @property
    def known_templates(self) -> frozenset[str]:
        """Template files whose every render in this snapshot is known: each HelmRelease
        of a chart that reads them rendered, and none installs another version of a
        chart of this repository. What such a template creates is among the clusters'
        objects, names and all."""
        releases = self.releases
        if any(not e.outside for e in self._elsewhere):
            return frozenset()
        known: set[str] = set()
        unknown: set[str] = set()
        for r in releases:
            sources = r.chart.sources if r.chart is not None else frozenset()
            if not sources and r.status is not Status.RENDERED:
                return frozenset()  # a chart that did not even load: its files are not known
            view = r.view
            real = {(view.real(p) or p) if view is not None else p for p in sources}
            (known if r.status is Status.RENDERED else unknown).update(real)
        return frozenset(known - unknown)

    def counterpart(self, key: ReleaseKey) -> ReleaseRender | None:
        """The same HelmRelease on the other side of the change being reviewed (rendered
        there too when it is rendered here); None outside a change or when it is new."""
        scope = self.options.scope
        other = scope.other(self.options.side) if scope is not None else None
        if other is None:
            return None
        return next((r for r in other.build.helm.releases if r.key == key), None)

    def join(self) -> None:
        """Render what is in scope, and add what Helm installs to the clusters."""
        if self._joined:
            return
        self._joined = True
        releases = self._prepare()
        renderer = self.options.renderer
        if renderer is None:
            return
        scope = self.options.scope
        todo: list[ReleaseRender] = []
        wanted: list[ReleaseRender] = []
        for r in releases:
            if scope is not None and not scope.wants(self.options.side, r.key, r.signature):
                r.status = Status.SKIPPED
                continue
            wanted.append(r)
            if r.prepared is not None:
                todo.append(r)
        self._elsewhere_notes(scope)
        if isinstance(renderer, RendererUnavailable):
            if wanted:
                self.notes.append(renderer.notice)
            for r in wanted:
                # What needs no rendering (a chart or values Flux refuses) says nothing
                # either: without the extra, nothing changes.
                r.status, r.failure, r.why = Status.UNRENDERED, None, ()
            return
        for r in wanted:
            if r.status is Status.UNKNOWN:
                self.notes.append(
                    f"{r.label} on cluster {r.cluster.name} is not rendered: {_why(r)}"
                )
        if not todo:
            return
        self._snap.checkpoint()
        results = renderer.render_all([r.prepared.request for r in todo if r.prepared])
        broken = False
        for r, result in zip(todo, results, strict=True):
            self._settle(r, result)
            if r.failure is not None and r.failure.kind is FailureKind.UNAVAILABLE:
                broken = True
        if broken:
            self.notes.append(
                "Some HelmReleases were not rendered: the Helm renderer could not run "
                f"({next(r.failure.message for r in todo if r.failure is not None)})."
            )

    def _elsewhere_notes(self, scope: ChangeScope | None) -> None:
        """Once: which HelmReleases are not rendered because their chart is not this
        commit's (in a pull request, those the change touches)."""
        if isinstance(self.options.renderer, RendererUnavailable):
            return
        shown = [
            e
            for e in self._elsewhere
            if scope is None or scope.wants(self.options.side, e.key, e.signature)
        ]
        outside = sorted({f"{e.key[1]}/{e.key[2]}" for e in shown if e.outside})
        if len(outside) > 3:
            self.notes.append(
                f"{len(outside)} HelmReleases whose chart is not in this repository are not "
                f"rendered, as {_NOT_FETCHED}: {', '.join(outside[:3])} and "
                f"{len(outside) - 3} more."
            )
        for e in sorted(shown, key=lambda e: e.label):
            if not e.outside or len(outside) <= 3:
                self.notes.append(f"{e.label} is not rendered: {e.why}.")

    def _settle(self, r: ReleaseRender, result: RenderResult) -> None:
        if isinstance(result, RenderFailure):
            if result.kind is FailureKind.UNAVAILABLE:
                r.status, r.failure, r.why = Status.UNKNOWN, result, (result.message,)
                r.where = (r.release.path, r.release.line)
                return
            if result.kind is FailureKind.LIMIT:
                # A template that loops or allocates without end (helm-controller would
                # time out or run out of memory too): which one is not known, so the
                # chart is, and every release of it is one finding.
                message = result.message.removeprefix("not rendered: ").replace(
                    "an earlier render of this chart", "the render"
                )
                chart_yaml = f"{r.chart_path}/Chart.yaml" if r.chart_path else "Chart.yaml"
                _failed(r, replace(result, message=message), (chart_yaml, 1))
                return
            _failed(r, result, self._position(r, result.position))
            return
        objects, failure = self._objects(r, result)
        if failure is not None:
            _failed(r, failure, self._position(r, failure.position))
            return
        r.status = Status.RENDERED
        r.objects = objects
        owner = r.release.owner
        owner.objects.extend(objects)

    def _position(self, r: ReleaseRender, position: Position | None) -> tuple[str, int]:
        if position is not None and r.chart is not None and r.view is not None:
            found = r.chart.repository_path(position.template)
            if found is not None:
                path = r.view.real(found[0]) or found[0]
                return path, position.line if found[1] else 1
        return r.release.path, r.release.line

    # --- what Helm installs ---------------------------------------------------------

    def _objects(
        self, r: ReleaseRender, rendered: Rendered
    ) -> tuple[list[Applied], RenderFailure | None]:
        assert r.chart is not None and r.prepared is not None and r.view is not None
        hr = r.release
        namespace = r.prepared.request.namespace
        via = f"rendered by Helm for {r.label}"
        resources: list[Resource] = []
        for template in sorted(rendered.manifests):
            text = rendered.manifests[template]
            where = r.chart.repository_path(template)
            path = (r.view.real(where[0]) or where[0]) if where is not None else hr.path
            lines = self._template_lines(path) if where is not None and where[1] else None
            mapped = lines.map(text) if lines is not None else None
            problem = ys.scan(text).problem
            if problem is not None:
                line = _at(mapped, problem.line)
                return [], RenderFailure(
                    FailureKind.TEMPLATE,
                    f"YAML parse error on {template}: {problem.message}",
                    (Position(template, line),) if where is not None and where[1] else (),
                )
            try:
                docs = ys.compose_all(text)
            except (yaml.YAMLError, RecursionError) as exc:
                return [], RenderFailure(
                    FailureKind.TEMPLATE, f"YAML parse error on {template}: {exc}"
                )
            for doc in docs:
                for node in _items_of(doc):
                    stamped = _stamp(node, path, mapped, via, r.secret_values)
                    assert isinstance(stamped, ynodes.MappingNode)
                    res = Resource.of(stamped, path, -1)
                    if not res.kind or not res.api_version or not res.name:
                        continue  # Helm's kube client refuses it, or there is nothing
                    if yn.get(stamped, "metadata", "annotations", _HOOK) is not None:
                        # A hook (`releaseutil.SortManifests`): run around an install or
                        # by `helm test`, not part of what the release keeps applied.
                        continue
                    resources.append(res)
        install_crds = yn.text(yn.get(hr.node, "spec", "install", "crds")) or "Create"
        if install_crds != "Skip":
            resources.extend(self._crds(r, rendered, via))
        resources, failure = self._post_render(r, resources)
        if failure is not None:
            return [], failure
        out = []
        for res in resources:
            ns = res.namespace or namespace
            oid = self._builder.object_id(replace(res, namespace=ns))
            out.append(Applied(oid, res, hr.owner, rendered_by=hr))
        return out, None

    def _crds(self, r: ReleaseRender, rendered: Rendered, via: str) -> Iterator[Resource]:
        assert r.chart is not None and r.view is not None
        for name in sorted(rendered.crds):
            where = r.chart.repository_path(name) if "/" in name else None
            path = (r.view.real(where[0]) or where[0]) if where is not None else r.chart_path
            text = rendered.crds[name]
            # Helm does not template crds/: the lines are the file's own.
            lines = list(range(1, text.count("\n") + 2)) if where is not None and where[1] else None
            try:
                docs = ys.compose_all(text)
            except (yaml.YAMLError, RecursionError):
                continue
            for doc in docs:
                if isinstance(doc, ynodes.MappingNode):
                    stamped = _stamp(doc, path, lines, via, False)
                    assert isinstance(stamped, ynodes.MappingNode)
                    res = Resource.of(stamped, path, -1)
                    if res.kind and res.name:
                        yield res

    def _post_render(
        self, r: ReleaseRender, resources: list[Resource]
    ) -> tuple[list[Resource], RenderFailure | None]:
        """helm-controller's post-renderers, in its order: `postRenderers` (kustomize
        patches and images), then `commonMetadata` and the origin labels. Each reads the
        manifests into a kustomize resource map, which refuses an object twice."""
        hr = r.release
        spec = yn.get(hr.node, "spec")
        acc = Accumulated()
        for res in resources:
            acc.resmap.append(res, acc.problems, f"the render of {r.label}")
        kf = kustfile.KustFile(hr.path, "", None)
        for item in _seq(yn.get(spec, "postRenderers")):
            kustomize = yn.get(item, "kustomize")
            for patch in _seq(yn.get(kustomize, "patches")):
                inline = yn.get(patch, "patch")
                if isinstance(inline, ynodes.ScalarNode) and yn.text(inline):
                    file, line, _ = yn.origin_of(patch, hr.path)
                    kf.patches.append(
                        kustfile.PatchEntry(
                            "patches", line, file, "", inline=inline, target=yn.get(patch, "target")
                        )
                    )
            for image in _seq(yn.get(kustomize, "images")):
                kf.images.append((image, yn.origin_of(image, hr.path)[0]))
        if kf.patches or kf.images:
            from bot.analysis.snapshot.build import transformers

            view = self._builder.repo_view(None, "this repository")
            transformers.run(self._builder.kustomizer(view), kf, acc)
        for problem in acc.problems:
            if problem.kind in (ProblemKind.DUPLICATE_ID, ProblemKind.PATCH_TARGET):
                message = problem.message.replace("kustomize fails", "helm-controller fails")
                return [], RenderFailure(FailureKind.TEMPLATE, message)
        mark = yn.Origin(hr.path, hr.line, "set by helm-controller")
        labels = {f"{HELM_GROUP}/name": hr.id.name, f"{HELM_GROUP}/namespace": r.key[1]}
        out = []
        for res in acc.resmap:
            res = flux.common_metadata(res, spec, hr.path)
            node: ynodes.Node = res.node
            for key, value in labels.items():
                node = yn.update(
                    node,
                    ("metadata", "labels", key),
                    _const(yn.scalar(value, mark, yn.STR, "'")),
                    mark=mark,
                )
            assert isinstance(node, ynodes.MappingNode)
            out.append(res.with_node(node, store=False) if node is not res.node else res)
        return out, None

    def _template_lines(self, path: str) -> _TemplateLines | None:
        text = self._snap.text(path)
        return _TemplateLines(text) if text is not None else None


# --- values sources --------------------------------------------------------------------


class _ValuesSources:
    """The ConfigMaps and Secrets a cluster applies from this repository, as helm-controller
    reads them for `valuesFrom`."""

    def __init__(self, objects: Iterable[Applied]) -> None:
        self._index: dict[tuple[str, str, str], Applied] = {}
        for obj in objects:
            if obj.id.group == "" and obj.id.kind in ("ConfigMap", "Secret"):
                self._index.setdefault((obj.id.kind, obj.id.namespace or "", obj.id.name), obj)

    def lookup(self, kind: str, namespace: str, name: str) -> ValuesSource:
        found = self._index.get((kind, namespace, name))
        if found is None:
            # Not in the repository is not "not on the cluster": an ExternalSecret, a
            # SOPS file applied by hand, Terraform may make it.
            return Unknown(f"{kind} {namespace}/{name} is not applied from this repository")
        value = yn.to_value(found.node)
        if not isinstance(value, dict):
            return ABSENT
        source = values_source_of(value, found.path)
        if isinstance(source, Found) and _opaque(found):
            return Unknown(f"{kind} {namespace}/{name} holds a value substituted from elsewhere")
        return source


def _opaque(obj: Applied) -> bool:
    """Whether a value of the object came from a variable the repository does not hold (a
    SOPS-encrypted Secret's): its Kustomization substitutes, and left `${VAR}` there."""
    data = yn.get(obj.node, "data")
    if data is None or obj.owner.node is None or yn.get(obj.owner.spec, "postBuild") is None:
        return False
    return any(isinstance(v, ynodes.ScalarNode) and "${" in v.value for _, v in yn.walk(data))


def _crd_api_versions(objects: Iterable[Applied]) -> tuple[str, ...]:
    """`.Capabilities.APIVersions` beyond the built-in ones: the versions the CRDs a cluster
    applies from this repository serve (`group/version` and `group/version/Kind`)."""
    found: set[str] = set()
    for obj in objects:
        if obj.id.kind != "CustomResourceDefinition" or obj.id.group != "apiextensions.k8s.io":
            continue
        spec = yn.get(obj.node, "spec")
        group = yn.text(yn.get(spec, "group"))
        kind = yn.text(yn.get(spec, "names", "kind"))
        if not group or not kind:
            continue
        for version in _seq(yn.get(spec, "versions")):
            name = yn.text(yn.get(version, "name"))
            if name and yn.to_value(yn.get(version, "served")) is not False:
                found.update((f"{group}/{name}", f"{group}/{name}/{kind}"))
    return tuple(sorted(found))


# --- locating charts ------------------------------------------------------------------


class _ViewTree:
    """A source's files as a `Tree` (artifact paths), read from the repository."""

    def __init__(self, view: View, snap: Snapshot) -> None:
        self.view = view
        self.snap = snap
        # Files the commit lists without their content (the App's file-by-file download
        # of what the analysis reads, `reads.is_read`): a chart that has one is not known.
        self.unreadable: set[str] = set()

    def paths(self) -> Iterable[str]:
        if isinstance(self.view, MappedView):
            return list(self.view.mapping)
        if isinstance(self.view, RepoView):
            return [p for p in self.snap.paths if self.view.real(p) is not None]
        return []

    def read(self, path: str) -> bytes | None:
        real = self.view.real(path)
        data = self.snap.data(real) if real is not None else None
        if data is None and real is not None:
            self.unreadable.add(path)
        return data

    def blob_id(self, path: str) -> str | None:
        real = self.view.real(path)
        return self.snap.tree.blob_id(real) if real is not None else None


def _unread(located: _Located, chart: ChartFiles | ChartProblem) -> str | None:
    """A file of the chart (or of its `file://` dependencies) that the tree lists but did
    not give: what Helm would load is not known."""
    tree = located.listing.tree
    if not isinstance(tree, _ViewTree) or not tree.unreadable:
        return None
    dirs = chart.directories if isinstance(chart, ChartFiles) else frozenset({located.directory})
    for path in sorted(tree.unreadable):
        if any(not d or path == d or path.startswith(d + "/") for d in dirs):
            return path
    return None


def _real_dir(view: View, directory: str) -> str:
    if isinstance(view, MappedView):
        chart_yaml = f"{directory}/Chart.yaml" if directory else "Chart.yaml"
        real = view.real(chart_yaml)
        if real is not None:
            return posixpath.dirname(real)
    return directory


def _substituted(obj: Applied, spec: ynodes.Node | None) -> bool:
    """Whether the HelmRelease's values still hold a `${VAR}` that its Kustomization's
    post-build substitution fills in from what the repository does not hold."""
    owner_spec = obj.owner.spec if obj.owner.node is not None else None
    if yn.get(owner_spec, "postBuild") is None:
        return False
    for part in ("values", "valuesFrom", "chart"):
        node = yn.get(spec, part)
        if node is not None and any(
            isinstance(n, ynodes.ScalarNode) and "${" in n.value for _, n in yn.walk(node)
        ):
            return True
    return False


def _values_line(obj: Applied, error: ValuesError, view: View) -> tuple[str, int]:
    spec = yn.get(obj.node, "spec")
    if error.reference is not None:
        items = _seq(yn.get(spec, "valuesFrom"))
        if error.reference < len(items):
            file, line, _ = yn.origin_of(items[error.reference], obj.path)
            return file, line
    if error.origin:
        real = view.real(error.origin)
        if real is not None:
            return real, 1
    files = yn.get(spec, "chart", "spec", "valuesFiles")
    if files is not None:
        file, line, _ = yn.origin_of(files, obj.path)
        return file, line
    return obj.path, obj.line


def _chart_line(obj: Applied) -> tuple[str, int]:
    node = yn.get(obj.node, "spec", "chart", "spec", "chart")
    if node is None:
        return obj.path, obj.line
    file, line, _ = yn.origin_of(node, obj.path)
    return file, line


def _failed(r: ReleaseRender, failure: RenderFailure, where: tuple[str, int]) -> ReleaseRender:
    r.status, r.failure, r.where = Status.FAILED, failure, where
    if not r.signature:
        r.signature = f"failed:{failure.kind}:{failure.message}"
    return r


def _const(node: ynodes.Node) -> Callable[[ynodes.Node | None], ynodes.Node]:
    return lambda _old: node


def _why(r: ReleaseRender) -> str:
    return "; ".join(r.why) if r.why else "its values are not fully known"


def _digest(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _seq(node: ynodes.Node | None) -> list[ynodes.Node]:
    return list(node.value) if isinstance(node, ynodes.SequenceNode) else []


def _items_of(doc: ynodes.Node) -> Iterator[ynodes.MappingNode]:
    """A manifest's objects: a `List`'s items one by one, as kustomize reads them."""
    if not isinstance(doc, ynodes.MappingNode):
        return
    kind = yn.text(yn.get(doc, "kind")) or ""
    items = yn.get(doc, "items")
    if kind.endswith("List") and isinstance(items, ynodes.SequenceNode):
        for item in items.value:
            if isinstance(item, ynodes.MappingNode):
                yield item
        return
    yield doc


# --- lines: from the rendered text back to the template ---------------------------------

_KEY = re.compile(r"^(?:-\s+)*([^\s:#{][^:#{]*?):(?:\s|$)")


def _key(line: str) -> str:
    m = _KEY.match(line)
    return m.group(1) if m else ""


class _TemplateLines:
    """Each rendered line traced to the template line it most likely comes from: a line
    of the same text, else one that sets the same key with a template action, the
    nearest after the previous match (a `range` starts over from the top)."""

    def __init__(self, source: str) -> None:
        self.exact: dict[str, list[int]] = {}
        self.keyed: dict[str, list[int]] = {}
        for number, line in enumerate(source.splitlines(), start=1):
            text = line.strip()
            if not text:
                continue
            if "{{" in text:
                key = _key(text[: text.index("{{")])
                if key:
                    self.keyed.setdefault(key, []).append(number)
            else:
                self.exact.setdefault(text, []).append(number)

    def map(self, rendered: str) -> list[int]:
        out: list[int] = []
        pointer = 1
        for line in rendered.splitlines():
            text = line.strip()
            candidates = self.exact.get(text) if text else None
            if candidates is None and text:
                candidates = self.keyed.get(_key(text))
            if candidates:
                i = bisect.bisect_left(candidates, pointer)
                pointer = candidates[i] if i < len(candidates) else candidates[0]
            out.append(pointer)
        return out


def _at(mapped: list[int] | None, line: int) -> int:
    """The template line of a 1-based rendered line."""
    if not mapped:
        return line
    return mapped[min(max(line, 1), len(mapped)) - 1]


def _stamp(
    node: ynodes.Node, path: str, mapped: list[int] | None, via: str, secret: bool
) -> ynodes.Node:
    """A copy of a rendered node whose every node says which template line wrote it."""

    def mark(n: ynodes.Node) -> yn.Origin:
        line = n.start_mark.line + 1 if n.start_mark is not None else 1
        return yn.Origin(path, _at(mapped, line) if mapped is not None else 1, via, secret)

    return yn.remarked(node, mark)
