"""The one answer to "what does Flux apply from this commit, and who reads each file":
the clusters and their builds, the read edges those builds record, and the standalone
builds of kustomization directories no cluster reaches (so that what is wrong in them is
still seen, as a notice)."""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bot.analysis.model import KUSTOMIZATION_FILES, AnalysisCancelled, Consumer, Reader
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import (
    Applied,
    Cluster,
    ClusterBuilder,
    EntryPoint,
    FluxKustomization,
)
from bot.analysis.snapshot.build.helm import HelmReleases
from bot.analysis.snapshot.build.kustomize import Built, Read
from bot.analysis.snapshot.build.problems import BuildProblem, ProblemKind

if TYPE_CHECKING:
    from bot.analysis.snapshot import Snapshot

log = logging.getLogger(__name__)


class BuildModel:
    """Computed once per snapshot (`Snapshot.build`)."""

    def __init__(self, snapshot: Snapshot, flux_strict: Any = None) -> None:
        self._snap = snapshot
        self._builder = ClusterBuilder(snapshot, snapshot.config, flux_strict)

    @cached_property
    def _walked(self) -> list[Cluster]:
        return self._builder.build()

    def cut(self) -> None:
        """Drops the references that make each cluster a cycle (a Kustomization and the
        objects it owns, which name it; a cluster and the walk that built it), so that
        reference counting frees them: only for builds nothing keeps for a later
        analysis."""
        for cluster in self.__dict__.get("_walked", ()):
            cluster.source_of = None
            for k in cluster.kustomizations:
                k.objects = []

    @cached_property
    def helm(self) -> HelmReleases:
        """The HelmReleases of in-repository charts, rendered when a renderer is given."""
        return HelmReleases(self._snap, self._builder, self._walked, self._snap.helm_options)

    @cached_property
    def clusters(self) -> list[Cluster]:
        clusters = self._walked
        # What Helm installs joins each cluster as objects of the HelmRelease's owner.
        try:
            self.helm.join()
        except AnalysisCancelled:
            raise
        except Exception as exc:  # a bug in rendering must cost the renders, not the review
            log.exception("rendering HelmReleases failed")
            self.helm.error = f"rendering HelmReleases failed: {type(exc).__name__}: {exc}"
        return clusters

    @cached_property
    def has_clusters(self) -> bool:
        """Whether the repository shows what it applies: some entry point, a config
        entry or a root Flux Kustomization. Without one, every file counts as applied
        (by something outside the repository)."""
        return bool(self.clusters)

    def entry_points(self) -> list[EntryPoint]:
        return [c.entry for c in self.clusters]

    @cached_property
    def kustomizations(self) -> list[FluxKustomization]:
        return [k for c in self.clusters for k in c.kustomizations]

    @cached_property
    def _files(self) -> dict[str, list[FluxKustomization]]:
        by_path: dict[str, list[FluxKustomization]] = {}
        for k in self.kustomizations:
            seen: set[str] = set()
            for r in k.reads:
                if r.path not in seen:
                    seen.add(r.path)
                    by_path.setdefault(r.path, []).append(k)
        return by_path

    def applied(self, path: str) -> bool:
        """Whether some cluster's build reads the file; every file when the repository
        shows no cluster."""
        return not self.has_clusters or path in self._files

    def appliers(self, path: str) -> list[FluxKustomization]:
        """The Flux Kustomizations (of any cluster) whose build reads the file."""
        return self._files.get(path, [])

    def clusters_of(self, path: str) -> list[Cluster]:
        owners = {id(k) for k in self.appliers(path)}
        return [c for c in self.clusters if any(id(k) in owners for k in c.kustomizations)]

    @cached_property
    def _objects_by_path(self) -> dict[str, list[Applied]]:
        found: dict[str, list[Applied]] = {}
        for k in self.kustomizations:
            for obj in k.objects:
                found.setdefault(obj.path, []).append(obj)
        return found

    def objects_from(self, path: str) -> list[Applied]:
        """Every object a cluster receives from this file, as built there."""
        return self._objects_by_path.get(path, [])

    # --- standalone builds ------------------------------------------------------------

    @cached_property
    def standalone(self) -> list[Built]:
        """A build of every kustomization directory no cluster's build reads (nor Helm,
        for a chart's templates): what kustomize would make of it if something applied
        it. Components are not built alone."""
        snap = self._snap
        view = self._builder.repo_view(None, "this repository")
        k = self._builder.kustomizer(view)
        out = []
        for path in snap.paths:
            if (
                not path.endswith(KUSTOMIZATION_FILES)
                or posixpath.basename(path) not in KUSTOMIZATION_FILES
                or path in self._files
            ):
                continue
            role = snap.chart_role(path)
            if role is not None and role[1] == "templates":
                continue
            docs = snap.documents(path)
            if docs and yn.text(yn.get(docs[0], "kind")) == "Component":
                continue
            directory = posixpath.dirname(path)
            if view.kustomization_in(directory) != path:
                continue  # the second of several kustomization files
            out.append(k.build(directory))
        return out

    def builds(self) -> Iterator[Built]:
        """The builds whose problems count: every cluster's; where the repository shows
        no cluster, the standalone build of every kustomization directory (something
        outside may apply any of them)."""
        for k in self.kustomizations:
            if k.built is not None:
                yield k.built
        if not self.has_clusters:
            yield from self.standalone

    def problems(self, kind: ProblemKind) -> list[BuildProblem]:
        seen: dict[tuple[str, int, str], BuildProblem] = {}
        for built in self.builds():
            for p in built.problems:
                if p.kind is kind:
                    seen.setdefault((p.path, p.line, p.message), p)
        for k in self.kustomizations:
            for p in k.flux_problems:
                if p.kind is kind:
                    seen.setdefault((p.path, p.line, p.message), p)
        return list(seen.values())

    # --- readers ----------------------------------------------------------------------

    @cached_property
    def consumers(self) -> dict[str, list[Consumer]]:
        """For every file, who reads it and how: the builds' read edges (Flux, kustomize,
        generators) and Helm's (a chart's templates and crds)."""
        graph: dict[str, dict[tuple[Any, ...], Consumer]] = {}

        def add(path: str, consumer: Consumer) -> None:
            key = (consumer.reader, consumer.source, consumer.line, consumer.label)
            graph.setdefault(path, {}).setdefault(key, consumer)

        for k in self.kustomizations:
            for read in k.reads:
                add(read.path, _consumer(read, k))
        for built in self.standalone:
            for read in built.reads:
                add(read.path, _consumer(read, None))
            if built.kfile is not None:
                pass
        snap = self._snap
        for path in snap.paths:
            role = snap.chart_role(path)
            if role is None:
                continue
            chart, part = role
            if part == "templates":
                add(path, Consumer(Reader.HELM_TEMPLATE, chart.path, 1, chart=chart))
            elif path.endswith((".yaml", ".yml", ".json")):
                add(path, Consumer(Reader.HELM_CRDS, chart.path, 1, chart=chart))
        return {p: list(c.values()) for p, c in graph.items()}


def _consumer(read: Read, owner: FluxKustomization | None) -> Consumer:
    reader = read.reader
    if owner is not None and owner.kind == "raw_paths entry":
        reader = {
            Reader.FLUX_ENTRY: Reader.RAW_PATHS_ENTRY,
            Reader.FLUX_INDEX: Reader.RAW_PATHS_INDEX,
        }.get(reader, reader)
        return Consumer(
            reader, read.source or ".github/flux-review.yml", read.line, raw_path=owner.name
        )
    if reader in (Reader.FLUX_ENTRY, Reader.FLUX_INDEX) and owner is not None:
        return Consumer(
            reader, owner.path, owner.line, label=f"{owner.label} ({owner.path})", applier=owner
        )
    return Consumer(reader, read.source, read.line, applier=owner)
