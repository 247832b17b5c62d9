"""Clusters: what each entry point makes Flux apply, Flux Kustomization by Flux
Kustomization, as each parent builds its children.

A cluster is one entry point:
- `flux bootstrap`'s `flux-system` Kustomization (gotk-sync.yaml), or a `flux-system`
  directory with gotk-components.yaml whose sync manifest is not in the repository;
- a Flux Operator `FluxInstance` `spec.sync`, or the same written as the values of a
  HelmRelease of the `flux-instance` chart (`values.instance.sync`): the operator
  creates a source and a Kustomization named after the instance's namespace
  (`sync.name` overrides), `prune: true`, `path` as written;
- an entry of the config's `clusters:` (a bootstrap outside the repository: cloud-init,
  Terraform, a script), with its own `postBuild.substitute`;
- an entry of the config's `raw_paths` (a directory an outside Kustomization applies raw).
When the repository has none of these, every Flux Kustomization that no build applies
is the root of a cluster, named after the directory that holds it.

From each root, every Flux Kustomization a build yields is followed with its content as
its parent built it (patched, substituted): its source (this repository through that
source's ignore rules, or an ExternalArtifact an ArtifactGenerator assembles from this
repository's files), then its own build. `ResourceSet`s with inline inputs are expanded
and what they create joins the cluster. What cannot be followed (another repository, an
OCI artifact, a source that is not applied) is listed as such, never guessed.
"""

from __future__ import annotations

import copy
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import yaml
from yaml import nodes as ynodes

from bot.analysis.cache import Carried, of_object
from bot.analysis.ignorefiles import SourceIgnore
from bot.analysis.lines import split_lines
from bot.analysis.model import BOOTSTRAP_NAME, Reader, normalize_git_url, secure_join
from bot.analysis.snapshot.build import flux, kustfile
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.ids import CLUSTER_SCOPED, ObjectId, group_version
from bot.analysis.snapshot.build.kustomize import (
    Asked,
    Built,
    Files,
    Kustomizer,
    Read,
    generated_index,
)
from bot.analysis.snapshot.build.problems import BuildProblem, ProblemKind, Related, Unknown
from bot.analysis.snapshot.build.resource import Resource
from bot.analysis.snapshot.build.source import MappedView, RepoView, View

FLUX_KS = "kustomize.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"
OPERATOR_GROUP = "fluxcd.controlplane.io"
EXTENSIONS_GROUP = "source.extensions.fluxcd.io"


class RepoFacts(Files, Protocol):
    """What the cluster builder needs of a snapshot."""

    @property
    def paths(self) -> list[str]: ...

    @property
    def path_set(self) -> set[str]: ...

    @property
    def dirs(self) -> set[str]: ...

    @property
    def children(self) -> Any: ...

    @property
    def self_urls(self) -> set[str]: ...

    def text(self, path: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """Where a cluster starts."""

    # "bootstrap", "FluxInstance", "flux-instance HelmRelease", "config", "raw_paths",
    # "root"
    kind: str
    name: str  # the cluster's name: its entry path
    path: str  # the file that defines it
    line: int
    # Said of it in the change summary when flux-review had to assume something.
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """One object a cluster receives: its id on the cluster, its content and where it
    comes from, and what applies it."""

    id: ObjectId
    res: Resource
    owner: FluxKustomization
    # The HelmRelease (as its parent built it) whose render this object is; None for an
    # object kustomize-controller applies. Its file and line are the template's.
    rendered_by: Applied | None = None

    @property
    def path(self) -> str:
        return self.res.path

    @property
    def line(self) -> int:
        return self.res.line

    @property
    def node(self) -> ynodes.MappingNode:
        return self.res.node

    @property
    def doc(self) -> int:
        return self.res.doc

    @property
    def generator(self) -> str | None:
        return self.res.generator

    def stable_key(self) -> tuple[str, str, str | None, str]:
        """The id, but for a generated ConfigMap or Secret the name without kustomize's
        hash suffix: a new content is the same object under a new name, which Flux
        replaces (and prunes the old one), not an object removed."""
        key = self.id.key()
        if self.res.hashed and self.res.generator is not None:
            group, kind, namespace, name = key
            return (group, kind, namespace, name.rsplit("-", 1)[0])
        return key


@dataclass(eq=False)
class FluxKustomization:
    """A Flux Kustomization of a cluster, as applied (or a ResourceSet, or a raw path)."""

    kind: str  # "Kustomization", "ResourceSet", "raw_paths entry", ...
    name: str
    namespace: str
    node: ynodes.MappingNode | None  # as its parent built it
    res: Resource | None  # in its parent's build; None for an entry point's own root
    parent: FluxKustomization | None
    entry: EntryPoint
    directory: str | None = None
    source_label: str = ""
    followed: bool = False
    prune: bool = False
    built: Built | None = None
    objects: list[Applied] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)
    undefined: list[flux.Undefined] = field(default_factory=list)
    # Values that depend on a variable whose value is not in the repository (a SOPS-
    # encrypted Secret's): (file, line, the text as written).
    opaque: list[tuple[str, int, str]] = field(default_factory=list)
    # Why it is not followed (another repository, an OCI artifact...): in words.
    unfollowed: str | None = None
    # False for a root whose definition nothing here applies (applied from outside the
    # repository, perhaps with patches of its own): what its spec says is not certain.
    spec_known: bool = True
    # How to name it when its name is not the one on the cluster (a config cluster's
    # entry, which the outside bootstrap names).
    title: str | None = None
    # Not followed, but its source may well be made from this repository (an OCI
    # artifact pushed by CI, a GitRepository defined on the cluster, another branch): its
    # path here is built so that its files are still judged, and its objects are not
    # counted as the cluster's.
    shadow: bool = False
    # Not followed, and what it applies may be any file of this repository (its path or
    # its source is named by a variable, an ExternalArtifact made elsewhere).
    reach_unknown: bool = False
    # What kustomize-controller fails on after the kustomize build (two objects that
    # substitution gives one id).
    flux_problems: list[BuildProblem] = field(default_factory=list)

    def may_read(self, path: str) -> bool:
        """Whether this Kustomization, which is not followed, may apply `path`."""
        if not self.unfollowed or self.unfollowed == "suspended":
            return False
        if self.shadow:
            return any(r.path == path for r in self.reads)
        return self.reach_unknown

    @property
    def label(self) -> str:
        if self.title is not None:
            return self.title
        if self.kind == "Kustomization":
            return (
                f"Flux Kustomization {self.namespace}/{self.name}"
                if self.namespace
                else f"Flux Kustomization {self.name}"
            )
        if self.kind == "raw_paths entry":
            return f"raw_paths entry {self.name}"
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    @property
    def path(self) -> str:
        return self.res.path if self.res is not None else self.entry.path

    @property
    def line(self) -> int:
        return self.res.line if self.res is not None else self.entry.line

    @property
    def known(self) -> bool:
        return self.followed and not self.unknown and (self.built is None or self.built.known)

    @property
    def reads(self) -> list[Read]:
        return self.built.reads if self.built is not None else []

    @property
    def problems(self) -> list[BuildProblem]:
        own = self.built.problems if self.built is not None else []
        return own + self.flux_problems if self.flux_problems else own

    @property
    def spec(self) -> ynodes.Node | None:
        return yn.get(self.node, "spec")

    @property
    def remote(self) -> str | None:
        """The other cluster it applies to, when `spec.kubeConfig` names one (the Secret
        or ConfigMap holding its kubeconfig, in the Kustomization's namespace): a hub
        applying to its spokes. None: the cluster its controller runs in."""
        ref = yn.get(self.spec, "kubeConfig")
        if ref is None or self.kind != "Kustomization":
            return None
        for field_name, what in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            name = yn.text(yn.get(ref, field_name, "name"))
            if name:
                return f"{what} {self.namespace}/{name}"
        return "a kubeconfig"


# `(kind, name, namespace)` of a Flux source -> its files as the cluster's controllers see
# them, or why they are not this repository's (the walk's own answer, kept for Helm).
SourceOf = Callable[[str, str, str], View | str]


@dataclass(eq=False)
class Cluster:
    entry: EntryPoint
    kustomizations: list[FluxKustomization] = field(default_factory=list)
    source_of: SourceOf | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def known(self) -> bool:
        return all(k.known for k in self.kustomizations if k.kind != "ResourceSet" or k.unknown)

    @property
    def unfollowed(self) -> list[str]:
        return [f"{k.label} ({k.unfollowed})" for k in self.kustomizations if k.unfollowed]

    def objects(self) -> Iterator[Applied]:
        for k in self.kustomizations:
            yield from k.objects

    @property
    def files(self) -> set[str]:
        found = {r.path for k in self.kustomizations for r in k.reads}
        found.update(k.path for k in self.kustomizations if k.res is not None)
        return found


# --- reading sources ----------------------------------------------------------------


def _first(docs: Iterable[ynodes.Node], api_group: str, kind: str) -> Iterator[ynodes.MappingNode]:
    for doc in docs:
        if not isinstance(doc, ynodes.MappingNode):
            continue
        api = yn.text(yn.get(doc, "apiVersion")) or ""
        if api.partition("/")[0] == api_group and yn.text(yn.get(doc, "kind")) == kind:
            yield doc


def _pinned(ref: ynodes.Node) -> bool:
    """Whether a GitRepository's `spec.ref` names a tag, a semver range, a commit or a
    ref that is no branch: content fixed elsewhere, never the revision under review."""
    name = yn.text(yn.get(ref, "name"))
    return any(yn.get(ref, key) is not None for key in ("tag", "semver", "commit")) or (
        name is not None and not name.startswith("refs/heads/")
    )


def _branch(ref: ynodes.Node | None) -> str | None:
    name = yn.text(yn.get(ref, "name"))
    if name is not None and name.startswith("refs/heads/"):
        return name.removeprefix("refs/heads/")
    return yn.text(yn.get(ref, "branch"))


class ClusterBuilder:
    """Builds every cluster of one snapshot (`build()`), once."""

    def __init__(
        self,
        repo: RepoFacts,
        config: Any,
        flux_strict: Callable[[EntryPoint], bool | None] | None = None,
    ) -> None:
        self.repo = repo
        self.config = config
        self.flux_strict = flux_strict or (lambda _e: None)
        self._kustomizers: dict[Any, Kustomizer] = {}
        self._views: dict[Any, View] = {}
        self._crd_scopes: dict[tuple[str, str], bool] | None = None
        self._sourceignore_files: dict[str, str] | None = None
        # Tells this snapshot's builds from another's in the shared cache.
        self._token = object()
        self._docs_found: dict[tuple[bytes, bytes], list[tuple[str, int, ynodes.MappingNode]]] = {}

    # --- documents of the repository, as written ----------------------------------------

    def _docs_with(
        self, marker: bytes, kind: bytes
    ) -> Iterator[tuple[str, int, ynodes.MappingNode]]:
        # Asked once per Flux Kustomization (its source's ignore rules): the scan of every
        # file is kept, so that a cluster of N Kustomizations costs N lookups, not N scans.
        found = self._docs_found.get((marker, kind))
        if found is None:
            found = self._docs_found[(marker, kind)] = list(self._scan_docs(marker, kind))
        return iter(found)

    @cached_property
    def _yaml_data(self) -> list[tuple[str, bytes]]:
        # Read once for the handful of scans an entry point search makes (bootstrap
        # Kustomizations, sources, FluxInstances, CRDs), each of every YAML file.
        out = []
        for path in self.repo.paths:
            if path.endswith((".yaml", ".yml")):
                data = self.repo.data(path)
                if data:
                    out.append((path, data))
        return out

    def _scan_docs(
        self, marker: bytes, kind: bytes
    ) -> Iterator[tuple[str, int, ynodes.MappingNode]]:
        for path, data in self._yaml_data:
            if marker not in data or kind not in data:
                continue
            if self.repo.problem(path) is not None:
                continue
            for index, doc in enumerate(self.repo.documents(path)):
                if isinstance(doc, ynodes.MappingNode):
                    yield path, index, doc

    def crd_scopes(self) -> dict[tuple[str, str], bool]:
        """(group, kind) -> namespaced, for the CRDs the repository holds."""
        if self._crd_scopes is None:
            scopes: dict[tuple[str, str], bool] = {}
            for _path, _i, doc in self._docs_with(
                b"CustomResourceDefinition", b"CustomResourceDefinition"
            ):
                if yn.text(yn.get(doc, "kind")) != "CustomResourceDefinition":
                    continue
                spec = yn.get(doc, "spec")
                group = yn.text(yn.get(spec, "group"))
                kind = yn.text(yn.get(spec, "names", "kind"))
                scope = yn.text(yn.get(spec, "scope"))
                if group and kind and scope:
                    scopes[(group, kind)] = scope != "Cluster"
            self._crd_scopes = scopes
        return self._crd_scopes

    def object_id(self, res: Resource) -> ObjectId:
        group, version = group_version(res.api_version)
        ns = res.namespace or None
        if ns is not None and (
            (group, res.kind) in CLUSTER_SCOPED or self.crd_scopes().get((group, res.kind)) is False
        ):
            ns = None
        return ObjectId(group, version, res.kind, ns, res.name)

    # --- views ---------------------------------------------------------------------

    def sourceignore_files(self) -> dict[str, str]:
        if self._sourceignore_files is None:
            self._sourceignore_files = {
                posixpath.dirname(p): self.repo.text(p) or ""
                for p in self.repo.paths
                if p.endswith(".sourceignore") and posixpath.basename(p) == ".sourceignore"
            }
        return self._sourceignore_files

    def repo_view(self, ignore_text: str | None, label: str) -> View:
        key = ("repo", ignore_text or "")
        view = self._views.get(key)
        if view is None:
            # The rules and their answer for each path are those of the rules' text alone:
            # every snapshot with the same `.sourceignore` files and `spec.ignore` shares
            # them, instead of matching each of its paths again.
            files = self.sourceignore_files()
            shared = getattr(self.repo, "shared", None)
            rules_key = (_IGNORE_RULES, tuple(sorted(files.items())), ignore_text or "")
            rules = shared.get(rules_key) if shared is not None else None
            if not isinstance(rules, tuple):
                extra = split_lines(ignore_text) if ignore_text else None
                rules = (SourceIgnore(files, extra), {})
                if shared is not None:
                    shared[rules_key] = rules
            view = RepoView(self.repo, rules[0], label, rules[1])
            self._views[key] = view
        return view

    def kustomizer(self, view: View) -> Kustomizer:
        k = self._kustomizers.get(id(view))
        if k is None:
            k = Kustomizer(view, self.repo, getattr(self.repo, "shared", None), self._token)
            self._kustomizers[id(view)] = k
        return k

    # --- entry points ----------------------------------------------------------------

    @cached_property
    def own_urls(self) -> frozenset[str]:
        """This repository's URLs: those the caller knows, and those its entry points sync
        from (bootstrap's `flux-system` GitRepository, a FluxInstance's Git `sync.url`)."""
        urls = set(self.repo.self_urls)
        for _path, _i, doc in self._docs_with(b"source.toolkit.fluxcd.io", b"GitRepository"):
            if (
                yn.text(yn.get(doc, "kind")) == "GitRepository"
                and yn.text(yn.get(doc, "metadata", "name")) == BOOTSTRAP_NAME
            ):
                url = yn.text(yn.get(doc, "spec", "url"))
                if url:
                    urls.add(normalize_git_url(url))
        for _path, _i, doc in self._docs_with(b"fluxcd.controlplane.io", b"FluxInstance"):
            sync = yn.get(doc, "spec", "sync")
            if (yn.text(yn.get(sync, "kind")) or "GitRepository") == "GitRepository":
                url = yn.text(yn.get(sync, "url"))
                if url:
                    urls.add(normalize_git_url(url))
        return frozenset(urls)

    def _self_url(self, url: str | None) -> bool | None:
        """Whether a URL is this repository's: None when nothing says which URLs it has."""
        if not self.own_urls:
            return None
        return normalize_git_url(url or "") in self.own_urls

    def entry_points(self) -> list[tuple[EntryPoint, list[FluxKustomization]]]:
        found: list[tuple[EntryPoint, list[FluxKustomization]]] = []
        taken: set[str] = set()

        def add(entry: EntryPoint, roots: list[FluxKustomization]) -> None:
            key = entry.name
            if key in taken:
                return
            taken.add(key)
            found.append((entry, roots))

        for entry, roots in self._config_entries():
            add(entry, roots)
        for entry, root in self._bootstrap_entries():
            add(entry, [root])
        for entry, root in self._operator_entries():
            add(entry, [root])
        return found

    def _config_entries(self) -> Iterator[tuple[EntryPoint, list[FluxKustomization]]]:
        config_path = ".github/flux-review.yml"
        for item in getattr(self.config, "clusters", ()) or ():
            entry = EntryPoint("config", item.name, config_path, item.line)
            roots = []
            for directory in item.paths:
                # One Kustomization per directory, named apart so that each is followed.
                name = item.name if len(item.paths) == 1 else f"{item.name}:{directory or '.'}"
                node = yn.from_value(
                    {
                        "apiVersion": f"{FLUX_KS}/v1",
                        "kind": "Kustomization",
                        "metadata": {"name": name, "namespace": BOOTSTRAP_NAME},
                        "spec": {
                            "path": directory,
                            "prune": True,
                            "sourceRef": {"kind": "GitRepository", "name": BOOTSTRAP_NAME},
                            **(
                                {"postBuild": {"substitute": dict(item.substitute)}}
                                if item.substitute
                                else {}
                            ),
                        },
                    },
                    yn.Origin(config_path, item.line),
                )
                assert isinstance(node, ynodes.MappingNode)
                roots.append(
                    FluxKustomization(
                        "Kustomization",
                        name,
                        BOOTSTRAP_NAME,
                        node,
                        None,
                        None,
                        entry,
                        title=f"cluster {item.name}'s entry `{directory or '.'}` "
                        "(flux-review config)",
                    )
                )
            yield entry, roots
        for raw in getattr(self.config, "raw_paths", ()) or ():
            entry = EntryPoint("raw_paths", raw or ".", config_path, 1)
            yield (
                entry,
                [
                    FluxKustomization(
                        "raw_paths entry", raw or ".", "", None, None, None, entry, directory=raw
                    )
                ],
            )

    def _bootstrap_entries(self) -> Iterator[tuple[EntryPoint, FluxKustomization]]:
        seen_dirs: set[str] = set()
        copies: set[str] = set()
        for path, _i, doc in self._docs_with(b"kustomize.toolkit.fluxcd.io", b"Kustomization"):
            if not (yn.text(yn.get(doc, "apiVersion")) or "").startswith(FLUX_KS + "/"):
                continue
            if yn.text(yn.get(doc, "metadata", "name")) != BOOTSTRAP_NAME:
                continue
            ref = yn.get(doc, "spec", "sourceRef")
            if (yn.text(yn.get(ref, "kind")) or "GitRepository") != "GitRepository" or yn.text(
                yn.get(ref, "name")
            ) != BOOTSTRAP_NAME:
                continue
            directory = secure_join(yn.text(yn.get(doc, "spec", "path")) or "")
            # A bootstrap's files live in the directory it syncs: a copy elsewhere (an
            # archived cluster) no longer starts anything.
            if directory and not path.startswith(directory + "/"):
                copies.add(posixpath.dirname(posixpath.dirname(path)))
                continue
            if directory in seen_dirs:
                continue
            seen_dirs.add(directory)
            entry = EntryPoint("bootstrap", directory or ".", path, yn.origin_of(doc, path)[1])
            ns = yn.text(yn.get(doc, "metadata", "namespace")) or BOOTSTRAP_NAME
            yield (
                entry,
                FluxKustomization(
                    "Kustomization",
                    BOOTSTRAP_NAME,
                    ns,
                    doc,
                    Resource.of(doc, path, _i),
                    None,
                    entry,
                ),
            )
        # `flux bootstrap` writes <dir>/flux-system/gotk-components.yaml and gotk-sync.yaml;
        # a repository may keep the first and leave the second out (or hold a placeholder).
        for path in self.repo.paths:
            if not path.endswith(("/gotk-components.yaml", "/gotk-sync.yaml")):
                continue
            flux_dir = posixpath.dirname(path)
            if posixpath.basename(flux_dir) != BOOTSTRAP_NAME:
                continue
            directory = posixpath.dirname(flux_dir)
            if directory in seen_dirs or directory in copies:
                continue
            seen_dirs.add(directory)
            entry = EntryPoint("bootstrap", directory or ".", path, 1)
            node = _sync_kustomization(
                BOOTSTRAP_NAME, BOOTSTRAP_NAME, directory, "GitRepository", yn.Origin(path, 1)
            )
            yield (
                entry,
                FluxKustomization(
                    "Kustomization", BOOTSTRAP_NAME, BOOTSTRAP_NAME, node, None, None, entry
                ),
            )

    def _operator_entries(self) -> Iterator[tuple[EntryPoint, FluxKustomization]]:
        for path, _i, doc in self._docs_with(b"fluxcd.controlplane.io", b"FluxInstance"):
            if yn.text(yn.get(doc, "kind")) != "FluxInstance":
                continue
            namespace = yn.text(yn.get(doc, "metadata", "namespace")) or BOOTSTRAP_NAME
            made = self._sync_root(
                yn.get(doc, "spec", "sync"),
                namespace,
                path,
                "FluxInstance",
                f"FluxInstance {namespace}/{yn.text(yn.get(doc, 'metadata', 'name')) or 'flux'}",
            )
            if made is not None:
                yield made
        for path, _i, doc in self._docs_with(b"helm.toolkit.fluxcd.io", b"flux-instance"):
            if yn.text(yn.get(doc, "kind")) != "HelmRelease" or not self._is_flux_instance_chart(
                doc
            ):
                continue
            spec = yn.get(doc, "spec")
            namespace = (
                yn.text(yn.get(spec, "targetNamespace"))
                or yn.text(yn.get(doc, "metadata", "namespace"))
                or BOOTSTRAP_NAME
            )
            sync = yn.get(spec, "values", "instance", "sync")
            # The chart renders `sync` only when `instance.sync.url` is set.
            if not yn.text(yn.get(sync, "url")):
                continue
            name = yn.text(yn.get(doc, "metadata", "name")) or "flux-instance"
            made = self._sync_root(
                sync,
                namespace,
                path,
                "flux-instance HelmRelease",
                f"HelmRelease {namespace}/{name} of the flux-instance chart",
            )
            if made is not None:
                yield made

    @staticmethod
    def _is_flux_instance_chart(doc: ynodes.Node) -> bool:
        spec = yn.get(doc, "spec")
        if yn.text(yn.get(spec, "chart", "spec", "chart")) == "flux-instance":
            return True
        ref = yn.get(spec, "chartRef")
        if yn.text(yn.get(ref, "name")) == "flux-instance":
            return True
        name = yn.text(yn.get(doc, "metadata", "name")) or ""
        return name == "flux-instance" and yn.get(spec, "values", "instance") is not None

    def _sync_root(
        self, sync: ynodes.Node | None, namespace: str, path: str, kind: str, what: str
    ) -> tuple[EntryPoint, FluxKustomization] | None:
        raw_path = yn.text(yn.get(sync, "path"))
        if sync is None or raw_path is None:
            return None
        directory = secure_join(raw_path)
        source_kind = yn.text(yn.get(sync, "kind")) or "GitRepository"
        url = yn.text(yn.get(sync, "url"))
        name = yn.text(yn.get(sync, "name")) or namespace
        line = yn.origin_of(yn.get(sync, "path") or sync, path)[1]
        note = None
        own = self._self_url(url)
        if source_kind != "GitRepository":
            note = (
                f"its source is {source_kind} {url}; flux-review reads this repository's "
                "files at the path it names"
            )
        elif own is False:
            note = (
                f"its source {url} is not a URL of this repository; flux-review reads this "
                "repository's files at the path it names"
            )
        entry = EntryPoint(kind, directory or ".", path, line, note)
        node = _sync_kustomization(name, namespace, directory, source_kind, yn.Origin(path, line))
        return entry, FluxKustomization("Kustomization", name, namespace, node, None, None, entry)

    def _fallback_entries(self) -> list[tuple[EntryPoint, list[FluxKustomization]]]:
        """No entry point: every Flux Kustomization of this repository that no build
        applies starts a cluster, one per directory holding such roots."""
        candidates: list[tuple[str, int, ynodes.MappingNode]] = []
        for path, index, doc in self._docs_with(b"kustomize.toolkit.fluxcd.io", b"Kustomization"):
            if (
                (yn.text(yn.get(doc, "apiVersion")) or "").startswith(FLUX_KS + "/")
                and yn.text(yn.get(doc, "kind")) == "Kustomization"
                and (yn.text(yn.get(doc, "spec", "sourceRef", "kind")) or "GitRepository")
                == "GitRepository"
            ):
                candidates.append((path, index, doc))
        if not candidates:
            return []
        # Which of them does another one's build apply, and which apply themselves (the
        # shape of a bootstrap: the Kustomization is in the tree it syncs)?
        applied_by_other: set[int] = set()
        self_applying: set[int] = set()
        view = self.repo_view(None, "this repository")
        for path, _i, doc in candidates:
            directory = yn.text(yn.get(doc, "spec", "path"))
            if directory is None or "${" in directory:
                continue
            d = secure_join(directory)
            if not view.is_dir(d):
                continue
            built = self._build(view, d, doc, path)
            for res in built.resources:
                if res.doc < 0:
                    continue
                docs = self.repo.documents(res.path)
                if res.doc < len(docs):
                    target = id(docs[res.doc])
                    (self_applying if target == id(doc) else applied_by_other).add(target)
        # A Flux Kustomization inside the directory another one syncs is part of that tree
        # even when nothing lists it (an app left out of its kustomization).
        synced = {
            (secure_join(p), id(doc))
            for _path, _i, doc in candidates
            if (p := yn.text(yn.get(doc, "spec", "path"))) is not None and "${" not in p
        }

        def inside(path: str, own: int) -> bool:
            return any(o != own and (not d or path.startswith(d + "/")) for d, o in synced)

        unapplied = [c for c in candidates if id(c[2]) not in applied_by_other]
        roots = [c for c in unapplied if id(c[2]) in self_applying]
        if not roots:
            roots = [c for c in unapplied if not inside(c[0], id(c[2]))]
        by_dir: dict[str, list[tuple[str, int, ynodes.MappingNode]]] = {}
        for path, index, doc in roots:
            by_dir.setdefault(posixpath.dirname(path), []).append((path, index, doc))
        out = []
        for directory, roots in sorted(by_dir.items()):
            entry = EntryPoint(
                "root", directory or ".", roots[0][0], yn.origin_of(roots[0][2], roots[0][0])[1]
            )
            kss = [
                FluxKustomization(
                    "Kustomization",
                    yn.text(yn.get(doc, "metadata", "name")) or "",
                    yn.text(yn.get(doc, "metadata", "namespace")) or "",
                    doc,
                    Resource.of(doc, path, index),
                    None,
                    entry,
                )
                for path, index, doc in roots
            ]
            out.append((entry, kss))
        return out

    # --- building ----------------------------------------------------------------------

    def _build(
        self, view: View, directory: str, ks_node: ynodes.Node | None, ks_file: str
    ) -> Built:
        """One Flux Kustomization's build. The base and the head of a change share the
        builds whose inputs are the same on both: the Kustomization as written (with its
        places), and every answer its source's view and files gave (the blob ids of the
        files read, the listings and lookups of the directories visited)."""
        k = self.kustomizer(view)
        shared = getattr(self.repo, "shared", None)
        blob_id = getattr(self.repo, "blob_id", None)
        key: tuple[object, ...] | None = None
        if shared is not None and blob_id is not None and k.records:
            key = (_BUILT, type(view).__name__, view.label, directory, ks_file)
            entries = shared.get(key)
            for entry in entries if isinstance(entries, list) else ():
                if (
                    entry.owner is not self._token
                    and _same_nodes(entry, (ks_node,))
                    and entry.asked.holds(view, blob_id)
                ):
                    return entry.built  # type: ignore[no-any-return]
        with k.recording() as asked:
            built, reusable = self._build_once(k, directory, ks_node, ks_file)
        if shared is not None and key is not None and reusable:
            entries = shared.setdefault(key, [])
            assert isinstance(entries, list)
            # A few commits' builds of one Kustomization are enough (base, head, the
            # previous review's): older ones only cost memory.
            entries[:] = [*entries[-3:], _Shared(self._token, (ks_node,), built, asked)]
        return built

    def _build_once(
        self, k: Kustomizer, directory: str, ks_node: ynodes.Node | None, ks_file: str
    ) -> tuple[Built, bool]:
        """The build, and whether it is this Kustomization's own (not a directory build
        the kustomizer shares with other parents, and may yet add to)."""
        view = k.view
        spec = yn.get(ks_node, "spec")
        kpath = view.kustomization_in(directory)
        if kpath is not None:
            base = k.read_kustfile(kpath)
            if base is None:
                built = k.build(directory)
                real = view.real(kpath)
                if real is not None:
                    built.reads.insert(0, Read(real, Reader.FLUX_ENTRY, ks_file, 0))
                return built, False
        else:
            base = generated_index(view, directory)
        kf = flux.overlay(
            base,
            spec,
            ks_file,
            directory,
            lambda entry: (t := kustfile_join(entry)) is not None and view.is_dir(t),
        )
        if kpath is None and not kf.resources and not kf.components:
            return Built(directory, None, [], [], [], []), True
        built = k.build(directory, kf)
        if kpath is not None:
            real = view.real(kpath)
            if real is not None:
                built.reads.insert(0, Read(real, Reader.FLUX_ENTRY, ks_file, 0))
        if kpath is None:
            # Every file of Flux's generated index is read as a manifest.
            built.reads[:] = [
                Read(r.path, Reader.FLUX_INDEX if r.source == "" else r.reader, r.source, r.line)
                for r in built.reads
            ]
        return built, True

    def build(self) -> list[Cluster]:
        """Every cluster, walked; or, when a kept analysis walked this very tree with the
        same config, a copy of its walk (the base of a worker's next pull request is
        almost always a tree it analysed last: the one each review compares with)."""
        shared = getattr(self.repo, "shared", None)
        tree = getattr(self.repo, "tree", None)
        key = (_WALKED, id(tree))
        if shared is not None and tree is not None:
            kept = shared.get(key)
            if (
                isinstance(kept, _KeptWalk)
                and kept.tree is tree
                and kept.config == self.config
                and kept.self_urls == self.repo.self_urls
            ):
                return [self._revived(c) for c in kept.clusters]
        entries = self.entry_points()
        if not any(e.kind not in ("raw_paths",) for e, _ in entries):
            entries.extend(self._fallback_entries())
        clusters = []
        walks = []
        for entry, roots in entries:
            cluster = Cluster(entry)
            walk = _Walk(self, cluster, roots)
            walk.run()
            cluster.source_of = walk.source_view
            clusters.append(cluster)
            walks.append(walk)
        # Only a cache kept for later analyses (a worker's) can meet this tree again.
        if isinstance(shared, Carried) and tree is not None:
            frozen = [_frozen(w) for w in walks]
            if all(f is not None for f in frozen):
                shared[key] = _KeptWalk(
                    tree,
                    self.config,
                    frozenset(self.repo.self_urls),
                    [f for f in frozen if f is not None],
                )
        return clusters

    def _revived(self, kept: _KeptCluster) -> Cluster:
        """A kept cluster as this snapshot's own: new Kustomizations and applied objects
        (what Helm installs joins them later), a walk over them for the sources."""
        cluster = Cluster(kept.entry)
        made: list[FluxKustomization] = []
        for fields, parent, objects in kept.kustomizations:
            k = _copied(fields)
            k.parent = made[parent] if parent is not None else None
            k.objects = [Applied(oid, res, k) for oid, res in objects]
            made.append(k)
        cluster.kustomizations = made
        walk = _Walk(self, cluster, [made[i] for i in kept.roots])
        walk.restore()
        cluster.source_of = walk.source_view
        return cluster


def kustfile_join(entry: kustfile.Entry) -> str | None:
    joined = (
        posixpath.normpath(posixpath.join(entry.directory, entry.value))
        if entry.directory
        else posixpath.normpath(entry.value)
    )
    if joined == ".":
        return ""
    if joined.startswith("../") or joined == ".." or entry.value.startswith("/"):
        return None
    return joined


def _sync_kustomization(
    name: str, namespace: str, directory: str, source_kind: str, mark: yn.Origin
) -> ynodes.MappingNode:
    node = yn.from_value(
        {
            "apiVersion": f"{FLUX_KS}/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "interval": "10m0s",
                "path": directory or "./",
                "prune": True,
                "sourceRef": {"kind": source_kind, "name": name},
            },
        },
        mark,
    )
    assert isinstance(node, ynodes.MappingNode)
    return node


_GLOB = re.compile(r"[*?\[]")
_BUILT = "flux-kustomization-build"
_APPLIED = "flux-kustomization-applied"
_SOURCE_VALUES = "substitute-from-values"
_WALKED = "clusters-walked"
_SUBSTITUTED = "post-build-substituted"
_IGNORE_RULES = "source-ignore-rules"


def _same_nodes(entry: _Shared | _AfterBuild, theirs: tuple[ynodes.Node | None, ...]) -> bool:
    """Whether nodes are those an entry was made for, the same YAML at the same places: at
    once when they are the same objects (a file parsed once for both commits, a parent's
    build shared), else by their fingerprints (the entry's computed once)."""
    if all(a is b for a, b in zip(entry.nodes, theirs, strict=True)):
        return True
    try:
        prints = list(entry.prints)
        if len(prints) != len(entry.nodes):
            prints = [yn.fingerprint(a) for a in entry.nodes]
            entry.prints[:] = prints  # one assignment: reviews may run in threads
        return all(p == yn.fingerprint(b) for p, b in zip(prints, theirs, strict=True))
    except RecursionError:
        return False


@dataclass(frozen=True, slots=True)
class _Substituted:
    """One object after postBuild substitution with some variables, and what it found."""

    res: Resource
    values: tuple[object, ...]
    new: Resource
    undefined: list[flux.Undefined]
    opaque: list[tuple[str, int, str]]


@dataclass(frozen=True, slots=True)
class _KeptCluster:
    """One cluster's walk without its reference cycles: each Kustomization's fields
    (with no parent and no objects), the index of its parent and its objects' ids and
    content, in the walk's order; and which of them are the roots."""

    entry: EntryPoint
    kustomizations: list[tuple[FluxKustomization, int | None, list[tuple[ObjectId, Resource]]]]
    roots: list[int]


@dataclass(frozen=True, slots=True)
class _KeptWalk:
    """Every cluster of one tree, walked with one config and set of own URLs."""

    tree: object
    config: object
    self_urls: frozenset[str]
    clusters: list[_KeptCluster]


def _copied(k: FluxKustomization) -> FluxKustomization:
    """A Kustomization with lists of its own for what a later step of an analysis adds to
    (findings of the walk, of post-build, of Helm): a kept walk must not see them."""
    out = copy.copy(k)
    out.unknown = list(k.unknown)
    out.undefined = list(k.undefined)
    out.opaque = list(k.opaque)
    out.flux_problems = list(k.flux_problems)
    return out


def _frozen(walk: _Walk) -> _KeptCluster | None:
    at: dict[int, int] = {}
    kustomizations: list[tuple[FluxKustomization, int | None, list[tuple[ObjectId, Resource]]]] = []
    for k in walk.cluster.kustomizations:
        parent = at.get(id(k.parent)) if k.parent is not None else None
        if (k.parent is not None and parent is None) or any(o.rendered_by for o in k.objects):
            return None
        fields = _copied(k)
        fields.parent = None
        fields.objects = []
        at[id(k)] = len(kustomizations)
        kustomizations.append((fields, parent, [(o.id, o.res) for o in k.objects]))
    roots = [at.get(id(r)) for r in walk.roots]
    if any(i is None for i in roots):
        return None
    return _KeptCluster(walk.cluster.entry, kustomizations, [i for i in roots if i is not None])


@dataclass(frozen=True, slots=True)
class _Shared:
    """A Kustomization's build, with the Kustomization it was built for and what it read."""

    owner: object
    nodes: tuple[ynodes.Node | None, ...]
    built: Built
    asked: Asked
    prints: list[object] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _AfterBuild:
    """A Kustomization's objects after Flux's post-build steps, and what those steps
    found, for the other side of a change to take as they are."""

    owner: object
    nodes: tuple[ynodes.Node | None, ...]
    built: Built
    resources: list[Resource]
    undefined: list[flux.Undefined]
    opaque: list[tuple[str, int, str]]
    unknown: list[Unknown]
    problems: list[BuildProblem]
    prints: list[object] = field(default_factory=list)


def _walk_key(ks: FluxKustomization) -> tuple[str, str]:
    return (
        (ks.namespace, ks.name)
        if ks.kind == "Kustomization"
        else (ks.kind + ":" + ks.namespace, ks.name)
    )


class _Walk:
    """Follows one cluster from its roots."""

    def __init__(
        self, builder: ClusterBuilder, cluster: Cluster, roots: list[FluxKustomization]
    ) -> None:
        self.b = builder
        self.cluster = cluster
        self.roots = roots
        self.index: dict[tuple[str, str, str | None, str], Applied] = {}
        self.by_name: dict[tuple[str, str], FluxKustomization] = {}
        self.strict = builder.flux_strict(cluster.entry)
        self._source_views: dict[tuple[str, str, str], View | str] = {}

    def _lookup(self, group: str, kind: str, namespace: str | None, name: str) -> Applied | None:
        return self.index.get((group, kind, namespace, name))

    def _settle_root(self, root: FluxKustomization) -> None:
        """A bootstrap's `flux-system` Kustomization applies itself: what the cluster runs
        is the Kustomization as its own build makes it (patched by
        `flux-system/kustomization.yaml`, say). A root nothing here applies was applied
        from outside, and may have been changed there."""
        if root.kind != "Kustomization" or root.entry.kind not in ("bootstrap", "root"):
            return
        root.spec_known = False
        spec = root.spec
        path_text = yn.text(yn.get(spec, "path")) or ""
        if "${" in path_text:
            return
        view = self.b.repo_view(self._entry_ignore(), "this repository")
        directory = secure_join(path_text)
        if directory and not view.is_dir(directory):
            return
        built = self.b._build(view, directory, root.node, root.path)
        for res in built.resources:
            if (
                res.group == FLUX_KS
                and res.kind == "Kustomization"
                and res.name == root.name
                and (res.namespace or root.namespace) == root.namespace
            ):
                root.node, root.res, root.spec_known = res.node, res, True
                return

    def restore(self) -> None:
        """The walk's indexes, from the Kustomizations of a kept walk (in their order,
        the order in which `run` processed them)."""
        for ks in self.cluster.kustomizations:
            self.by_name[_walk_key(ks)] = ks
            for obj in ks.objects:
                key = (obj.id.group, obj.id.kind, obj.id.namespace, obj.id.name)
                self.index.setdefault(key, obj)

    def run(self) -> None:
        for root in self.roots:
            self._settle_root(root)
        queue = list(self.roots)
        waiting: list[FluxKustomization] = []
        final = False
        guard = 0
        while queue or (waiting and not final):
            guard += 1
            if guard > 20000:
                break
            if not queue:
                final = True
                queue, waiting = waiting, []
            ks = queue.pop(0)
            key = _walk_key(ks)
            if ks.kind == "Kustomization" and key in self.by_name and self.by_name[key] is not ks:
                continue  # applied twice: object-applied-twice's, followed once
            before = len(self.index)
            done = self._process(ks, final)
            if not done:
                waiting.append(ks)
                continue
            self.by_name[key] = ks
            self.cluster.kustomizations.append(ks)
            for obj in ks.objects:
                child = self._child(obj, ks)
                if child is not None:
                    queue.append(child)
                elif obj.id.kind == "ResourceSet" and obj.id.group == OPERATOR_GROUP:
                    queue.append(_resource_set(obj, ks))
            if len(self.index) != before and waiting:
                queue.extend(waiting)
                waiting = []

    def _child(self, obj: Applied, parent: FluxKustomization) -> FluxKustomization | None:
        if obj.id.group != FLUX_KS or obj.id.kind != "Kustomization":
            return None
        return FluxKustomization(
            "Kustomization",
            obj.id.name,
            obj.res.namespace or "",
            obj.node,
            obj.res,
            parent,
            self.cluster.entry,
        )

    # --- one Flux Kustomization -----------------------------------------------------------

    def _process(self, ks: FluxKustomization, final: bool) -> bool:
        if ks.kind == "raw_paths entry":
            view = self.b.repo_view(None, "this repository")
            d = ks.directory or ""
            ks.followed = True
            ks.source_label = "this repository"
            if d and not view.is_dir(d):
                ks.unknown.append(Unknown(d, "does not exist", ()))
                return True
            ks.built = self.b._build(view, d, None, ks.entry.path)
            self._add_objects(ks, ks.built.resources)
            return True
        if ks.kind == "ResourceSet":
            return self._resource_set(ks, final)
        spec = ks.spec
        ks.prune = yn.to_value(yn.get(spec, "prune")) is True
        if yn.to_value(yn.get(spec, "suspend")) is True:
            ks.followed = False
            ks.unfollowed = "suspended"
            return True
        source = self._source(ks, final)
        if source is None:
            if ks.shadow:
                self._shadow_build(ks)
            return ks.unfollowed is not None or final
        path_text = yn.text(yn.get(spec, "path")) or ""
        if "${" in path_text:
            ks.unfollowed = "its spec.path is substituted"
            ks.reach_unknown = True
            return True
        directory = secure_join(path_text)
        ks.directory = directory
        ks.followed = True
        if directory and not source.is_dir(directory):
            ks.unknown.append(
                Unknown(
                    f"spec.path `{path_text}` of {ks.label}",
                    "does not exist",
                    (ks.path,),
                    fails=True,
                )
            )
            return True
        post = yn.get(spec, "postBuild")
        if post is not None and not final:
            for item in _items(yn.get(post, "substituteFrom")):
                kind = yn.text(yn.get(item, "kind"))
                name = yn.text(yn.get(item, "name"))
                if kind and name and self._source_object(kind, ks.namespace, name) is None:
                    return False  # perhaps applied by a Kustomization not built yet
        ks.built = self.b._build(source, directory, ks.node, ks.path)
        self._add_objects(ks, self._after_build(ks, post, spec, ks.built))
        return True

    def _after_build(
        self,
        ks: FluxKustomization,
        post: ynodes.Node | None,
        spec: ynodes.Node | None,
        built: Built,
    ) -> list[Resource]:
        """Flux's steps after kustomize's build: postBuild substitution, commonMetadata.
        Shared, like the build, with the other side of a change when the build is the
        same one, and so are the variables, the strictness and the Kustomization's own
        `postBuild` and `commonMetadata`."""
        vars = self._vars(ks, post) if post is not None else None
        shared = getattr(self.b.repo, "shared", None)
        nodes = (post, yn.get(spec, "commonMetadata"))
        key = (
            _APPLIED,
            id(built),
            ks.label,
            ks.path,
            bool(self.strict),
            None if vars is None else vars.key(),
        )
        found = shared.get(key) if shared is not None else None
        if (
            isinstance(found, _AfterBuild)
            and found.built is built
            and found.owner is not self.b._token
            and _same_nodes(found, nodes)
        ):
            ks.undefined.extend(found.undefined)
            ks.opaque.extend(found.opaque)
            ks.unknown.extend(found.unknown)
            ks.flux_problems.extend(found.problems)
            return found.resources
        marks = (len(ks.undefined), len(ks.opaque), len(ks.unknown), len(ks.flux_problems))
        resources = built.resources
        if post is not None and vars is not None:
            resources = self._post_build(ks, post, vars, resources)
        resources = [flux.common_metadata(r, spec, ks.path) for r in resources]
        if shared is not None:
            shared[key] = _AfterBuild(
                self.b._token,
                nodes,
                built,
                resources,
                ks.undefined[marks[0] :],
                ks.opaque[marks[1] :],
                ks.unknown[marks[2] :],
                ks.flux_problems[marks[3] :],
            )
        return resources

    def _shadow_build(self, ks: FluxKustomization) -> None:
        path_text = yn.text(yn.get(ks.spec, "path")) or ""
        if "${" in path_text:
            return
        view = self.b.repo_view(self._entry_ignore(), "this repository")
        directory = secure_join(path_text)
        # The root of another artifact (`./`) says nothing about this repository's files.
        if not directory or not view.is_dir(directory):
            ks.shadow = False
            return
        ks.directory = directory
        ks.built = self.b._build(view, directory, ks.node, ks.path)

    def _source_object(self, kind: str, namespace: str, name: str) -> Applied | None:
        """A ConfigMap or Secret a `substituteFrom` names: in the Kustomization's
        namespace, or applied without one (whatever namespace the apply gives it)."""
        if kind not in ("ConfigMap", "Secret"):
            return None
        return self._lookup("", kind, namespace or None, name) or self._lookup("", kind, None, name)

    def _add_objects(self, ks: FluxKustomization, resources: list[Resource]) -> None:
        for res in resources:
            applied = Applied(self.b.object_id(res), res, ks)
            ks.objects.append(applied)
            key = (applied.id.group, applied.id.kind, applied.id.namespace, applied.id.name)
            self.index.setdefault(key, applied)

    def _vars(self, ks: FluxKustomization, post: ynodes.Node) -> flux.Vars:
        """The variables of `postBuild`: its `substituteFrom` sources, then `substitute`."""
        vars = flux.Vars()
        for item in _items(yn.get(post, "substituteFrom")):
            kind = yn.text(yn.get(item, "kind")) or ""
            name = yn.text(yn.get(item, "name")) or ""
            found = self._source_object(kind, ks.namespace, name)
            if found is None:
                # Not in the repository is not "not on the cluster": an optional source
                # is optional because it is made elsewhere (SOPS by hand, Terraform).
                vars.complete = False
                vars.incomplete_because.append(
                    f"{kind} {ks.namespace}/{name} is not in the repository"
                )
                continue
            vars.values.update(self._source_values(found.res))
        for key, value in (
            (k.value, v)
            for k, v in getattr(yn.get(post, "substitute"), "value", [])
            if isinstance(k, ynodes.ScalarNode)
        ):
            file, line, _ = yn.origin_of(value, ks.path)
            vars.values[key] = flux.Var(
                (yn.text(value) or "").replace("\n", ""),
                f"its postBuild.substitute ({file}:{line})",
            )
        return vars

    def _source_values(self, res: Resource) -> dict[str, flux.Var]:
        """A substituteFrom source's variables, read once per object: home-ops clusters
        give every Kustomization the same `cluster-settings`, and a build shared with
        the other side of a change (or a kept analysis) hands over the same object."""
        shared = getattr(self.b.repo, "shared", None)
        return of_object(shared, _SOURCE_VALUES, res, flux.source_values)

    def _post_build(
        self, ks: FluxKustomization, post: ynodes.Node, vars: flux.Vars, resources: list[Resource]
    ) -> list[Resource]:
        if not vars.runs(yn.text(yn.get(post, "substituteStrategy"))):
            return resources
        out = []
        # A Kustomization whose build changed (cluster-apps, when one app's ks.yaml did)
        # still yields, for what the change left alone, the nodes of the kept build:
        # each is substituted once per variables, not walked again.
        shared = getattr(self.b.repo, "shared", None)
        strict = bool(self.strict)
        values = vars.key()
        values_hash = hash(values)
        for res in resources:
            if flux.opted_out(res):
                out.append(res)
                continue
            key = (_SUBSTITUTED, id(res.node), ks.label, strict, values_hash)
            found = shared.get(key) if shared is not None else None
            if (
                isinstance(found, _Substituted)
                and found.res.node is res.node
                and found.res == res
                and found.values == values
            ):
                # Unchanged by substitution: this very object, as `substitute` gives it.
                new = res if found.new is found.res else found.new
                undefined, opaque = found.undefined, found.opaque
            else:
                new, undefined, opaque = flux.substitute(res, vars, strict, ks.label)
                if shared is not None:
                    shared[key] = _Substituted(res, values, new, undefined, opaque)
            ks.undefined.extend(undefined)
            ks.opaque.extend(opaque)
            if "${" in new.name or "${" in (new.namespace or ""):
                # Only what names an object makes the build itself not fully known.
                ks.unknown.append(
                    Unknown(
                        f"the name of {new}",
                        "depends on a variable whose value is not in the repository",
                        (new.path,),
                    )
                )
            out.append(new)
        self._collisions(ks, resources, out)
        return out

    def _collisions(
        self, ks: FluxKustomization, before: list[Resource], after: list[Resource]
    ) -> None:
        """kustomize-controller substitutes each object in place in kustomize's resource
        map and then `Replace`s it by its current id (`kustomization_controller.go`
        `build`): once two objects have the same id, that lookup matches both and the
        build fails (`in Replace: id matched 2 resources`), so nothing is applied."""
        first: dict[tuple[str, str, str, str, str], tuple[Resource, Resource]] = {}
        for old, new in zip(before, after, strict=True):
            key = new.key()
            if key not in first:
                first[key] = (old, new)
                continue
            other_old, other = first[key]
            if other_old.key() == old.key():
                continue  # one id before substitution already: kustomize's own failure
            ks.flux_problems.append(
                BuildProblem(
                    ProblemKind.DUPLICATE_ID,
                    new.path,
                    new.line,
                    f"After postBuild substitution {new} has the same id as the object "
                    f"from {other.path}:{other.line}: kustomize-controller fails the build of "
                    f"{ks.label} with `id matched 2 resources` and applies nothing.",
                    (Related(other.path, other.line, f"the other {new}"),),
                )
            )
            return

    # --- sources -----------------------------------------------------------------------

    def source_view(self, kind: str, name: str, namespace: str) -> View | str:
        """The files of the source `kind namespace/name` (a HelmRelease's chart source),
        once the walk is done, or why they are not this repository's."""
        known = self._source_views.get((kind, name, namespace))
        if known is not None:
            return known
        probe = FluxKustomization(
            "Kustomization",
            "",
            namespace,
            yn.from_value(  # type: ignore[arg-type]
                {"spec": {"sourceRef": {"kind": kind, "name": name, "namespace": namespace}}}
            ),
            None,
            None,
            self.cluster.entry,
        )
        view = self._source(probe, True)
        found = view if view is not None else (probe.unfollowed or "it is not followed")
        self._source_views[(kind, name, namespace)] = found
        return found

    def _source(self, ks: FluxKustomization, final: bool) -> View | None:
        ref = yn.get(ks.spec, "sourceRef")
        kind = yn.text(yn.get(ref, "kind")) or "GitRepository"
        name = yn.text(yn.get(ref, "name")) or ""
        namespace = yn.text(yn.get(ref, "namespace")) or ks.namespace
        ks.source_label = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
        if "${" in name or "${" in (namespace or ""):
            ks.unfollowed = f"its source {ks.source_label} is named by a variable"
            ks.reach_unknown = True
            return None
        if kind == "ExternalArtifact":
            return self._external_artifact(ks, name, namespace or "", final)
        if kind != "GitRepository":
            if self._is_entry_source(kind, name, namespace):
                return self.b.repo_view(self._entry_ignore(), "this repository")
            ks.unfollowed = f"its source is {ks.source_label}"
            ks.shadow = kind in ("OCIRepository", "Bucket")
            return None
        if self._is_entry_source(kind, name, namespace):
            elsewhere = self._root_elsewhere(ks, name, namespace or "")
            if elsewhere is not None:
                ks.unfollowed = elsewhere
                return None
            # The source the entry point syncs from is this repository by definition.
            return self.b.repo_view(self._entry_ignore(), "this repository")
        found = self._lookup(SOURCE_GROUP, "GitRepository", namespace or None, name)
        if found is None:
            if not final:
                return None  # perhaps applied by a Kustomization not built yet
            ks.unfollowed = f"its source {ks.source_label} is not applied from this repository"
            ks.shadow = True
            return None
        spec = yn.get(found.node, "spec")
        url = yn.text(yn.get(spec, "url"))
        if self.b._self_url(url) is False:
            ks.unfollowed = f"its source {ks.source_label} is another repository ({url})"
            return None
        if not self._same_revision(spec):
            ks.unfollowed = (
                f"its source {ks.source_label} follows another revision of "
                f"{url or 'this repository'}"
            )
            ks.shadow = True
            return None
        if yn.get(spec, "include") is not None:
            ks.unknown.append(
                Unknown(
                    ks.source_label,
                    "includes another repository's artifact (`spec.include`)",
                    (found.path,),
                )
            )
        return self.b.repo_view(yn.text(yn.get(spec, "ignore")), ks.source_label)

    def _is_entry_source(self, kind: str, name: str, namespace: str | None) -> bool:
        """Whether a source reference names the source the cluster's entry point syncs
        from (bootstrap's and the operator's `flux-system`, a config entry's, a root's)."""
        if self.cluster.entry.kind == "root" and kind == "GitRepository" and name == BOOTSTRAP_NAME:
            return True
        for root in self.roots:
            if root.kind != "Kustomization":
                continue
            ref = yn.get(root.spec, "sourceRef")
            if (
                (yn.text(yn.get(ref, "kind")) or "GitRepository") == kind
                and yn.text(yn.get(ref, "name")) == name
                and (namespace or root.namespace)
                == (yn.text(yn.get(ref, "namespace")) or root.namespace)
            ):
                return True
        return False

    def _entry_ignore(self) -> str | None:
        """`spec.ignore` of the GitRepository the entry point syncs from, when the
        repository holds it (gotk-sync.yaml, or beside a root)."""
        root = self.roots[0] if self.roots else None
        if root is None or root.kind != "Kustomization":
            return None
        ref = yn.get(root.spec, "sourceRef")
        name = yn.text(yn.get(ref, "name")) or ""
        namespace = yn.text(yn.get(ref, "namespace")) or root.namespace
        found = self._root_source(name, namespace, root.path)
        return yn.text(yn.get(found, "spec", "ignore")) if found is not None else None

    def _root_source(self, name: str, namespace: str, near: str) -> ynodes.Node | None:
        """The GitRepository a root names, as the cluster applies it or, applied by
        nothing here, as the repository holds it."""
        found = self._lookup(SOURCE_GROUP, "GitRepository", namespace or None, name)
        if found is not None:
            return found.node
        # Clusters bootstrapped from their own directories often name their sources
        # alike (`home-kubernetes` in kubernetes/main and kubernetes/storage, each
        # shipping its own directory): the one nearest the root is this cluster's.
        best: tuple[int, ynodes.Node] | None = None
        for path, _i, doc in self.b._docs_with(b"source.toolkit.fluxcd.io", b"GitRepository"):
            if (
                yn.text(yn.get(doc, "kind")) == "GitRepository"
                and yn.text(yn.get(doc, "metadata", "name")) == name
                and (yn.text(yn.get(doc, "metadata", "namespace")) or namespace) == namespace
            ):
                shared = len(posixpath.commonpath([path, near])) if path != near else len(near) + 1
                if best is None or shared > best[0]:
                    best = (shared, doc)
        return best[1] if best is not None else None

    def _root_elsewhere(self, ks: FluxKustomization, name: str, namespace: str) -> str | None:
        """Why a root found without an entry point (no bootstrap, no FluxInstance) does not
        sync the revision under review: its GitRepository, when the repository holds it,
        pins a tag, a semver range or a commit, or follows a branch other than the one
        the change goes to, when the caller says which (a tenant's `sync.yaml` of its own
        branch). Only a guess made the root this repository's. Its URL is left alone (a
        renamed repository or a mirror name this one too), and so is its branch when the
        branch under review is not known (a default branch may be called anything)."""
        if self.cluster.entry.kind != "root" or name == BOOTSTRAP_NAME:
            return None
        spec = yn.get(self._root_source(name, namespace, ks.path), "spec")
        ref = yn.get(spec, "ref")
        if ref is None:
            return None
        url = yn.text(yn.get(spec, "url")) or "this repository"
        if _pinned(ref):
            return f"its source {ks.source_label} follows another revision of {url}"
        branch, reviewed = _branch(ref), getattr(self.b.config, "branch", None)
        if branch is not None and reviewed is not None and branch != reviewed:
            return (
                f"its source {ks.source_label} follows branch {branch} of {url}, "
                f"not {reviewed}, which the change goes to"
            )
        return None

    def _same_revision(self, spec: ynodes.Node | None) -> bool:
        """A GitRepository of this repository's URL that follows another branch, a tag, a
        semver range or a commit holds other content."""
        ref = yn.get(spec, "ref")
        if ref is None:
            return True
        if _pinned(ref):
            return False
        branch = _branch(ref)
        return branch is None or branch in ("main", "master")

    def _external_artifact(
        self, ks: FluxKustomization, name: str, namespace: str, final: bool
    ) -> View | None:
        for obj in list(self.index.values()):
            if obj.id.group != EXTENSIONS_GROUP or obj.id.kind != "ArtifactGenerator":
                continue
            if (obj.id.namespace or "") != namespace:
                continue
            for artifact in _items(yn.get(obj.node, "spec", "artifacts")):
                if yn.text(yn.get(artifact, "name")) == name:
                    view = self._artifact_view(obj, artifact, ks)
                    return view
        if not final:
            return None
        ks.unfollowed = (
            f"its source {ks.source_label} is made by no ArtifactGenerator applied from this "
            "repository"
        )
        ks.reach_unknown = True
        return None

    def _artifact_view(
        self, generator: Applied, artifact: ynodes.Node, ks: FluxKustomization
    ) -> View | None:
        """The files of an ExternalArtifact, mapped back to this repository's
        (source-watcher `internal/builder`: each copy in order, later files over earlier
        ones; the default ignore list applied to the result)."""
        sources: dict[str, View] = {}
        for src in _items(yn.get(generator.node, "spec", "sources")):
            alias = yn.text(yn.get(src, "alias")) or ""
            kind = yn.text(yn.get(src, "kind")) or ""
            name = yn.text(yn.get(src, "name")) or ""
            ns = yn.text(yn.get(src, "namespace")) or generator.id.namespace or ""
            if kind != "GitRepository":
                ks.unfollowed = f"its source {ks.source_label} copies from {kind} {ns}/{name}"
                return None
            probe = FluxKustomization(
                "Kustomization",
                "",
                ns,
                _sync_kustomization(
                    name, ns, "", "GitRepository", yn.Origin(generator.path, generator.line)
                ),
                None,
                None,
                ks.entry,
            )
            view = self._source(probe, True)
            if view is None:
                ks.unfollowed = f"its source {ks.source_label} copies from {probe.unfollowed}"
                return None
            sources[alias] = view
        mapping: dict[str, str] = {}
        for op in _items(yn.get(artifact, "copy")):
            src_text = yn.text(yn.get(op, "from")) or ""
            to_text = yn.text(yn.get(op, "to")) or ""
            strategy = yn.text(yn.get(op, "strategy")) or "Overwrite"
            if (
                not src_text.startswith("@")
                or not to_text.startswith("@artifact/")
                or strategy != "Overwrite"
            ):
                ks.unknown.append(
                    Unknown(
                        f"a copy of {ks.source_label}",
                        f"(`{src_text}` to `{to_text}`, {strategy}) is not followed",
                        (generator.path,),
                    )
                )
                continue
            alias, _, pattern = src_text[1:].partition("/")
            view = sources.get(alias)
            if view is None:
                ks.unknown.append(
                    Unknown(
                        f"`{src_text}` of {ks.source_label}", "names no source", (generator.path,)
                    )
                )
                continue
            excludes = [yn.text(e) or "" for e in _items(yn.get(op, "exclude"))]
            for dest, real in _copy(
                view, pattern, to_text[len("@artifact/") :], to_text.endswith("/")
            ):
                if excludes and any(_doublestar(e, dest) for e in excludes):
                    continue
                mapping[dest] = real
        # The artifact is archived with source-controller's default exclusions.
        defaults = SourceIgnore({}, None)
        mapping = {k: v for k, v in mapping.items() if not defaults.ignored(k)}
        return MappedView(mapping, ks.source_label)

    # --- ResourceSets ---------------------------------------------------------------------

    def _resource_set(self, ks: FluxKustomization, final: bool) -> bool:
        del final
        node = ks.node
        spec = yn.get(node, "spec")
        ks.followed = True
        if yn.get(spec, "inputsFrom") is not None and _items(yn.get(spec, "inputsFrom")):
            ks.unknown.append(
                Unknown(
                    ks.label, "takes inputs from providers, which live on the cluster", (ks.path,)
                )
            )
        if yn.text(yn.get(spec, "resourcesTemplate")) or _items(yn.get(spec, "steps")):
            ks.unknown.append(
                Unknown(
                    ks.label,
                    "uses `resourcesTemplate` or `steps`, which are not expanded",
                    (ks.path,),
                )
            )
        inputs = [yn.to_value(i) for i in _items(yn.get(spec, "inputs"))]
        strategy = yn.text(yn.get(spec, "inputStrategy", "name")) or "Flatten"
        if strategy == "Permute" and inputs:
            key = _normalize(ks.name)
            inputs = [{key: i} for i in inputs]
        sets: list[dict[str, Any] | None] = (
            list(inputs) if inputs or yn.get(spec, "inputsFrom") is not None else [None]
        )
        seen: set[tuple[str, str, str | None, str]] = set()
        resources: list[Resource] = []
        for template in _items(yn.get(spec, "resources")):
            for i, values in enumerate(sets):
                rendered = _render(
                    template, values, ks.path, f"expanded by {ks.label} for input {i + 1}"
                )
                if rendered is None:
                    ks.unknown.append(
                        Unknown(
                            f"a resource of {ks.label}",
                            "uses a template flux-review cannot expand",
                            (ks.path,),
                        )
                    )
                    continue
                if not isinstance(rendered, ynodes.MappingNode):
                    continue
                res = Resource.of(rendered, ks.path, -1)
                if not res.kind or not res.name:
                    continue
                if (
                    yn.text(
                        yn.get(
                            rendered, "metadata", "annotations", "fluxcd.controlplane.io/reconcile"
                        )
                    )
                    == "disabled"
                ):
                    continue
                oid = self.b.object_id(res)
                if oid.key() in seen:
                    continue
                seen.add(oid.key())
                resources.append(res)
        self._add_objects(ks, resources)
        return True


def _resource_set(obj: Applied, parent: FluxKustomization) -> FluxKustomization:
    return FluxKustomization(
        "ResourceSet", obj.id.name, obj.id.namespace or "", obj.node, obj.res, parent, parent.entry
    )


def _items(node: ynodes.Node | None) -> list[ynodes.Node]:
    return list(node.value) if isinstance(node, ynodes.SequenceNode) else []


def _normalize(name: str) -> str:
    """flux-operator `NormalizeKeyForTemplate`."""
    out = re.sub(r"[^a-z0-9_]+", "_", name.lower())
    return re.sub(r"_+", "_", out).strip("_")


_EXPR = re.compile(r"<<-?\s*(.*?)\s*-?>>", re.S)
_SIMPLE = re.compile(r"^inputs((?:\.[A-Za-z_][A-Za-z0-9_]*)*)$")


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\']|\'\')*\'')


def _render(
    template: ynodes.Node, values: dict[str, Any] | None, path: str, via: str
) -> ynodes.Node | None:
    """A ResourceSet template with `<< inputs.x >>` expressions replaced (and the simple
    pipes `| quote`, `| lower`, `| upper`, `| default "x"`); None when it uses more of Go's
    templates than that."""
    failed = False

    def value_of(expr: str) -> str | None:
        parts = [p.strip() for p in expr.split("|")]
        m = _SIMPLE.match(parts[0])
        if m is None:
            return None
        current: Any = values
        for key in [k for k in m.group(1).split(".") if k]:
            if not isinstance(current, dict) or key not in current:
                current = None
                break
            current = current[key]
        for pipe in parts[1:]:
            if pipe == "quote":
                current = f'"{current}"'
            elif pipe == "lower" and isinstance(current, str):
                current = current.lower()
            elif pipe == "upper" and isinstance(current, str):
                current = current.upper()
            elif pipe.startswith("default "):
                if current in (None, ""):
                    current = pipe[len("default ") :].strip().strip('"')
            elif pipe == "int":
                try:
                    current = int(current)
                except (TypeError, ValueError):
                    return None
            else:
                return None
        if current is None:
            return None
        if isinstance(current, bool):
            return "true" if current else "false"
        return str(current)

    def scalar(node: ynodes.ScalarNode) -> ynodes.Node:
        nonlocal failed
        if "<<" not in node.value:
            return node
        out = []
        pos = 0
        for m in _EXPR.finditer(node.value):
            value = value_of(m.group(1))
            if value is None:
                failed = True
                return node
            out.append(node.value[pos : m.start()])
            out.append(value)
            pos = m.end()
        out.append(node.value[pos:])
        text = "".join(out)
        file, line, _ = yn.origin_of(node, path)
        mark = yn.Origin(file, line, via)
        # flux-operator renders the resource as YAML text and reads it back: quotes the
        # template wrote (`| quote`) delimit a string there, they are not part of it.
        if _QUOTED.fullmatch(text):
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError:
                loaded = None
            if isinstance(loaded, str):
                return yn.scalar(loaded, mark, yn.STR, '"')
        return flux._retyped(text, "x", mark)

    def walk(node: ynodes.Node, depth: int) -> ynodes.Node:
        if depth > 100:
            return node
        if isinstance(node, ynodes.ScalarNode):
            return scalar(node)
        if isinstance(node, ynodes.SequenceNode):
            items = [walk(i, depth + 1) for i in node.value]
            return ynodes.SequenceNode(
                node.tag, items, node.start_mark, node.end_mark, node.flow_style
            )
        if isinstance(node, ynodes.MappingNode):
            pairs = [
                (scalar(k) if isinstance(k, ynodes.ScalarNode) else k, walk(v, depth + 1))
                for k, v in node.value
            ]
            return ynodes.MappingNode(
                node.tag, pairs, node.start_mark, node.end_mark, node.flow_style
            )
        return node

    result = walk(template, 0)
    return None if failed else result


# --- ArtifactGenerator copies -----------------------------------------------------------


def _doublestar(pattern: str, path: str) -> bool:
    regex = (
        re.escape(pattern)
        .replace(r"\*\*/", "(?:.*/)?")
        .replace(r"\*\*", ".*")
        .replace(r"\*", "[^/]*")
        .replace(r"\?", "[^/]")
    )
    if "/" not in pattern:
        return re.fullmatch(regex, posixpath.basename(path)) is not None
    return re.fullmatch(regex, path) is not None


def _walk_files(view: View, directory: str) -> Iterator[str]:
    stack = [directory]
    while stack:
        d = stack.pop()
        yield from view.files_in(d)
        stack.extend(view.subdirs(d))


def _copy(view: View, pattern: str, to: str, to_dir: bool) -> Iterator[tuple[str, str]]:
    """(artifact path, repository path) for one copy operation (source-watcher
    `applyCopyOperation`: Go's `fs.Glob`, so `**` is `*` except as a trailing `/**`)."""
    to = to.rstrip("/")

    def dest(rel: str) -> str:
        return f"{to}/{rel}" if to else rel

    pattern = pattern.strip("/") if pattern != "/" else ""
    if pattern.endswith("/**"):
        base = pattern[:-3]
        for path in _walk_files(view, base):
            real = view.real(path)
            if real is not None:
                yield dest(path[len(base) + 1 :] if base else path), real
        return
    if not _GLOB.search(pattern):
        if pattern == "":
            for path in _walk_files(view, ""):
                real = view.real(path)
                if real is not None:
                    yield dest(path), real
            return
        if view.is_file(pattern):
            real = view.real(pattern)
            assert real is not None
            yield (dest(posixpath.basename(pattern)) if to_dir or not to else to), real
            return
        if view.is_dir(pattern):
            name = posixpath.basename(pattern)
            for path in _walk_files(view, pattern):
                real = view.real(path)
                if real is not None:
                    yield dest(f"{name}/{path[len(pattern) + 1 :]}"), real
        return
    regex = (
        re.escape(pattern).replace(r"\*\*", "[^/]*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
    )
    for path in _walk_files(view, ""):
        parts = path.split("/")
        for n in range(1, len(parts) + 1):
            prefix = "/".join(parts[:n])
            if re.fullmatch(regex, prefix):
                real = view.real(path)
                if real is not None:
                    yield dest(path), real
                break
