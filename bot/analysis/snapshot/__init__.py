"""A `Snapshot`: one commit as the cluster sees it. It composes small indexes, each built
lazily from the ones it needs (files, charts, kustomization files, Flux objects as
written, sources), the build of every cluster (`build`: what Flux applies, object by
object, and who reads each file) and the facts several rules share (`facts`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from bot.analysis import templating
from bot.analysis import yamlscan as ys
from bot.analysis.ignorefiles import SourceIgnore
from bot.analysis.model import (
    Chart,
    ChartHistory,
    Consumer,
    FluxObject,
    KustomizationFile,
    ReadKind,
    StopSignal,
)
from bot.analysis.options import Config
from bot.analysis.snapshot.build.helm import HelmOptions
from bot.analysis.snapshot.build.model import BuildModel
from bot.analysis.snapshot.charts import ChartsIndex
from bot.analysis.snapshot.facts import Facts
from bot.analysis.snapshot.files import FilesIndex
from bot.analysis.snapshot.flux import FluxIndex
from bot.analysis.snapshot.kustomize import KustomizeIndex
from bot.analysis.snapshot.sources import SourcesIndex
from bot.analysis.tree import Tree

if TYPE_CHECKING:
    from bot.analysis.kubeobjects import KubeObjects, Peer


# What a snapshot is made of, as opposed to what it derives.
_KEPT_ON_RELEASE = frozenset({"files", "helm_options", "chart_history"})

T = TypeVar("T")


class Snapshot:
    """Everything the rules need to know about one commit, computed lazily."""

    def __init__(
        self,
        tree: Tree,
        config: Config | None = None,
        cache: dict[object, object] | None = None,
        self_urls: Iterable[str] = (),
        cancel: StopSignal | None = None,
        helm: HelmOptions | None = None,
    ) -> None:
        self.files = FilesIndex(tree, config, cache, self_urls, cancel)
        # How HelmReleases of in-repository charts are rendered (not at all without).
        self.helm_options = helm
        # The versions each Chart.yaml (by path) had before this commit, when the caller
        # knows them: what the repository has published of its charts.
        self.chart_history: ChartHistory | None = None

        # The other side of the change this snapshot is one side of, when only what the
        # change may have changed is to be judged object by object.
        self.peer: Peer | None = None
        # The other side of the change, whatever is reported: a rule whose finding depends
        # on what the other side applied reads it here, so that reporting everything
        # (`--all`) and reporting what the change introduces agree.
        self.other: Snapshot | None = None

    def release(self) -> None:
        """Drops what this snapshot derived (its indexes, build, per-rule state) and its
        peer; they are computed again if asked for. What an analysis derives is held in
        reference cycles (an index and its snapshot, the two sides of a change through
        their peers and their Helm scope, a Kustomization and the objects it owns):
        left to Python's cyclic collector, millions of nodes are walked once more
        before they are freed, which took a quarter of a whole-tree check; in a worker,
        whose kept analysis is frozen out of the collector's passes (cache.settle_heap),
        they were not freed for 16 reviews. Released, they are freed as soon as nothing
        else holds them. What a worker keeps for later analyses never holds a
        snapshot's own clusters (their kept form is a copy), so cutting them is safe
        with a kept cache too."""
        if "build" in self.__dict__:
            self.build.cut()
        for name in list(self.__dict__):
            if name not in _KEPT_ON_RELEASE:
                del self.__dict__[name]
        self.peer = None
        self.other = None
        if self.helm_options is not None and self.helm_options.scope is not None:
            self.helm_options.scope.clear()

    @cached_property
    def _derived(self) -> dict[str, object]:
        return {}

    def derived(self, name: str, make: Callable[[Snapshot], T]) -> T:
        """`make(self)`, once per snapshot: state a rule or a helper derives from the
        whole commit and asks for again (on both sides of a change). Held by the
        snapshot, not in a table keyed by it: such state refers back to the snapshot
        (its clusters, its builder), so a module-level `WeakKeyDictionary` never let go
        of a key its own value held, and a worker kept every snapshot it ever analysed
        (30 MiB a review on a 10,000-file repository). Dropped by `release`."""
        memo = self._derived
        if name in memo:
            return memo[name]  # type: ignore[return-value]
        found = memo[name] = make(self)
        return found

    def published_versions(self, chart_path: str) -> frozenset[str]:
        """The versions of the chart at `chart_path` that this repository had before
        this commit (none when nothing says)."""
        if self.chart_history is None:
            return frozenset()
        return frozenset(self.chart_history(chart_path))

    # --- the indexes -----------------------------------------------------------------

    @cached_property
    def chart_index(self) -> ChartsIndex:
        return ChartsIndex(self.files)

    @cached_property
    def kustomize_index(self) -> KustomizeIndex:
        return KustomizeIndex(self.files)

    @cached_property
    def flux(self) -> FluxIndex:
        return FluxIndex(self.files, self.chart_index, self.kustomize_index)

    @cached_property
    def sources(self) -> SourcesIndex:
        return SourcesIndex(self.files, self.flux)

    @cached_property
    def build(self) -> BuildModel:
        from bot.analysis.fluxversion import strict_substitution

        return BuildModel(self, lambda entry: strict_substitution(self, entry))

    @cached_property
    def kube(self) -> KubeObjects:
        from bot.analysis.kubeobjects import KubeObjects

        return KubeObjects(self)

    @cached_property
    def facts(self) -> Facts:
        return Facts(self)

    # --- files -----------------------------------------------------------------------

    @property
    def tree(self) -> Tree:
        return self.files.tree

    @property
    def config(self) -> Config:
        return self.files.config

    @property
    def self_urls(self) -> set[str]:
        return self.files.self_urls

    @property
    def paths(self) -> list[str]:
        return self.files.paths

    @property
    def path_set(self) -> set[str]:
        return self.files.path_set

    @property
    def dirs(self) -> set[str]:
        return self.files.dirs

    @property
    def children(self) -> Mapping[str, list[str]]:
        return self.files.children

    @property
    def extensions(self) -> set[str]:
        return self.files.extensions

    def data(self, path: str) -> bytes | None:
        return self.files.data(path)

    def blob_id(self, path: str) -> str | None:
        return self.tree.blob_id(path)

    @property
    def shared(self) -> dict[object, object]:
        """What the snapshots of one analysis (and a worker's reviews) share, by content."""
        return self.files._cache

    def text(self, path: str) -> str | None:
        return self.files.text(path)

    def yaml_info(self, path: str) -> ys.YamlInfo:
        return self.files.yaml_info(path)

    def problem(self, path: str) -> ys.YamlProblem | None:
        return self.files.problem(path)

    def documents(self, path: str) -> list[ys.Node]:
        return self.files.documents(path)

    def helm_documents(self, path: str) -> list[ys.Node]:
        return self.files.helm_documents(path)

    def is_dir(self, path: str) -> bool:
        return self.files.is_dir(path)

    def kustomization_in(self, directory: str) -> str | None:
        return self.files.kustomization_in(directory)

    def checkpoint(self) -> None:
        self.files.checkpoint()

    def warm_yaml(self, workers: int) -> None:
        self.files.warm_yaml(workers)

    # --- charts, kustomization files, Flux objects as written, sources -----------------

    @property
    def charts(self) -> list[Chart]:
        return self.chart_index.charts

    def chart_of(self, path: str) -> Chart | None:
        return self.chart_index.chart_of(path)

    def chart_role(self, path: str) -> tuple[Chart, str] | None:
        return self.chart_index.chart_role(path)

    @property
    def kustomizations(self) -> dict[str, KustomizationFile]:
        return self.kustomize_index.kustomizations

    @property
    def flux_objects(self) -> list[FluxObject]:
        return self.flux.flux_objects

    def objects_of(self, kind: str) -> list[FluxObject]:
        return self.flux.objects_of(kind)

    @property
    def templated_kinds(self) -> set[str]:
        return self.flux.templated_kinds

    @property
    def generated_objects(self) -> tuple[set[tuple[str, str]], set[str]]:
        return self.flux.generated_objects

    def is_self_source(self, obj: FluxObject) -> bool:
        return self.sources.is_self_source(obj)

    def same_revision(self, source: FluxObject) -> bool:
        return self.sources.same_revision(source)

    @property
    def source_ignore(self) -> SourceIgnore:
        return self.sources.source_ignore

    @property
    def git_ignore(self) -> SourceIgnore:
        return self.sources.git_ignore

    @property
    def own_urls(self) -> frozenset[str]:
        return self.sources.own_urls

    @property
    def fetches_submodules(self) -> bool | None:
        return self.sources.fetches_submodules

    def submodule_of(self, path: str) -> str | None:
        return self.sources.submodule_of(path)

    # --- who reads each file (the builds' read edges, and Helm's) ------------------------

    @property
    def consumers(self) -> dict[str, list[Consumer]]:
        return self.build.consumers

    def raw_consumers(self, path: str) -> list[Consumer]:
        return [c for c in self.consumers.get(path, ()) if c.how is ReadKind.RAW]

    def template_consumers(self, path: str) -> list[Consumer]:
        return [c for c in self.consumers.get(path, ()) if c.how is ReadKind.TEMPLATE]

    def flux_kustomizations_reaching(self, path: str) -> list[str]:
        """The Flux Kustomizations (and raw_paths entries) whose build reads `path`, named
        for messages."""
        return list(dict.fromkeys(f"{k.label} ({k.path})" for k in self.build.appliers(path)))

    def describe(self, consumers: Iterable[Consumer]) -> str:
        return "; ".join(dict.fromkeys(c.description for c in consumers))

    def raw_template_actions(self, path: str) -> list[templating.Action]:
        return self.facts.raw_template_actions(path)

    def raw_template_lines(self, path: str) -> frozenset[int]:
        return frozenset(a.line for a in self.raw_template_actions(path))


__all__ = ["Snapshot"]
