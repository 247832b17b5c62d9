"""Kubernetes objects as the API server receives them, for the rules that judge them
against Kubernetes itself (kubernetes-schema, removed-api-version): which Kubernetes minor
each cluster runs and how we know, the objects each cluster applies as built, their
values with where each is written, and which of them a change leaves as they were.

The cluster's minor: the config's `kubernetes_version` (per cluster, or for all), else
what the repository says (a Talos, kubeadm, k3s or kind config, an upgrade plan, Cluster
API: `k8sschemas.clusterversion`), first in the files the cluster applies and then
anywhere in the repository, else the newest vendored minor, which a check says once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import yaml
from yaml import nodes as ynodes

from bot.analysis import k8sschemas
from bot.analysis.k8sschemas import KubeRelease, Minor, clusterversion
from bot.analysis.k8sschemas.crd import CrdSchemas
from bot.analysis.k8sschemas.validate import Unjudged
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import Applied, Cluster
from bot.analysis.snapshot.build.resource import Resource

if TYPE_CHECKING:
    from bot.analysis.snapshot import Snapshot

Path = tuple[str | int, ...]

# Bytes without which a file says nothing of a cluster's Kubernetes version: only the
# files holding one of them are parsed for it.
_VERSION_HINTS = (
    b"kubernetesVersion",
    b"k3s_release_version",
    b"k3s_version",
    b"kubelet",
    b"kube-apiserver",
    b"upgrade.cattle.io",
    b"tuppr",
    b"kindest/node",
    b"cluster.x-k8s.io",
    b"eksctl.io",
    b"k0s",
)


_HINTED = "kube-version-documents"
_UNSEEN = object()


def _hinted_documents(data: bytes | None) -> list[Any] | None:
    """A file's documents as plain values when it may say a Kubernetes version."""
    if not data or not any(h in data for h in _VERSION_HINTS):
        return None
    try:
        return list(yaml.safe_load_all(data))
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


@dataclass(frozen=True)
class KubeVersion:
    """The Kubernetes minor whose schemas and served apiVersions a cluster is judged by."""

    minor: Minor
    reason: str  # "from the config's kubernetes_version", "the newest vendored"
    detected: bool  # said by the config or the repository, not assumed

    @property
    def release(self) -> KubeRelease:
        return k8sschemas.release_for(self.minor)

    @property
    def label(self) -> str:
        return "{}.{}".format(*self.minor)

    def describe(self) -> str:
        schemas = self.release
        if schemas.minor == self.minor:
            return f"Kubernetes {self.label} ({self.reason})"
        # A minor that is not vendored is judged by the nearest older one, or by the
        # oldest for one older than all: a finding says which schemas it comes from.
        which = "oldest" if schemas.minor > self.minor else "nearest"
        return (
            f"Kubernetes {self.label} ({self.reason}; the schemas of {schemas.label}, "
            f"the {which} vendored)"
        )


class KubeVersions:
    """Each cluster's Kubernetes minor (`Snapshot.kubernetes`), found once per cluster;
    remembers for which clusters the newest vendored minor had to be assumed."""

    def __init__(self, repo: Snapshot) -> None:
        self._repo = repo
        self._by_cluster: dict[str | None, KubeVersion] = {}
        self.assumed: dict[str, None] = {}  # cluster names (or "" without clusters)

    @cached_property
    def _repository_hint(self) -> clusterversion.FoundVersion | None:
        return clusterversion.detect(self._hinted.items())

    @cached_property
    def _hinted(self) -> dict[str, list[Any]]:
        """Every file that may say a version, in path order, with its documents: one pass
        over the repository serves each cluster's files and the repository's."""
        return dict(self._parsed(self._repo.paths))

    def _parsed_of(self, paths: set[str]) -> Iterator[tuple[str, list[Any]]]:
        return ((p, docs) for p, docs in self._hinted.items() if p in paths)

    def _parsed(self, paths: Any) -> Iterator[tuple[str, list[Any]]]:
        repo = self._repo
        shared = repo.shared
        for path in sorted(paths):
            if not path.endswith((".yaml", ".yml")):
                continue
            # By blob id in the cache the analyses of a repository share: each snapshot
            # asks for every file of each cluster, and the answer is the content's.
            blob = repo.blob_id(path)
            key = (_HINTED, blob)
            docs = shared.get(key, _UNSEEN) if blob else _UNSEEN
            if docs is _UNSEEN:
                docs = _hinted_documents(repo.data(path))
                if blob:
                    shared[key] = docs
            if docs is not None:
                yield path, docs  # type: ignore[misc]

    def of(self, cluster: Cluster | None, use: bool = True) -> KubeVersion:
        """The minor `cluster` runs (None: whatever applies this repository from outside
        it). `use` False: only looked at, not used to judge (it is not said then)."""
        name = cluster.name if cluster is not None else None
        found = self._by_cluster.get(name)
        if found is None:
            found = self._find(cluster)
            self._by_cluster[name] = found
        if use and not found.detected:
            self.assumed.setdefault(name or "", None)
        return found

    def _find(self, cluster: Cluster | None) -> KubeVersion:
        config = self._repo.config
        configured = config.kubernetes_version(cluster.name if cluster is not None else None)
        if configured is not None:
            return KubeVersion(configured, "the config's kubernetes_version", True)
        hint = None
        if cluster is not None:
            hint = clusterversion.detect(self._parsed_of(cluster.files))
        if hint is None:
            hint = self._repository_hint
        if hint is not None:
            return KubeVersion(hint.minor, f"{hint.how} in {hint.path}", True)
        return KubeVersion(k8sschemas.newest().minor, "the newest vendored", False)

    def note(self) -> str | None:
        """What to say once: the minor that was assumed, where nothing said it."""
        if not self.assumed:
            return None
        newest = k8sschemas.newest()
        named = [n for n in self.assumed if n]
        which = (
            f" for {', '.join(f'cluster {n}' for n in named[:3])}"
            + (f" and {len(named) - 3} more" if len(named) > 3 else "")
            if named
            else ""
        )
        return (
            f"Kubernetes objects were checked against Kubernetes {newest.release} (the newest "
            f"vendored){which}: neither the config's `kubernetes_version` nor the repository "
            "(a Talos, kubeadm, k3s or kind config, an upgrade plan) says which Kubernetes "
            "runs there. Set `kubernetes_version` to check against yours."
        )


# --- the objects ---------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """An object a cluster receives, to judge: as built, with what applies it."""

    res: Resource
    cluster: Cluster | None  # None: a standalone build (the repository shows no cluster)
    applied: Applied | None = None

    @property
    def node(self) -> ynodes.MappingNode:
        return self.res.node

    @property
    def path(self) -> str:
        return self.res.path

    @property
    def owner(self) -> str | None:
        return self.applied.owner.label if self.applied is not None else None

    @property
    def rendered(self) -> bool:
        return self.applied is not None and self.applied.rendered_by is not None

    def key(self) -> tuple[object, ...]:
        """What the object is called on the other side of a change."""
        if self.applied is not None:
            return (
                self.cluster.name if self.cluster is not None else None,
                self.applied.owner.label,
                self.applied.stable_key(),
            )
        return (None, self.res.path, self.res.kind, self.res.namespace, self.res.name)


def targets(repo: Snapshot) -> Iterator[Target]:
    """Every object each cluster applies as built (kustomize, Flux's patches and
    substitution, Helm's render); where the repository shows no cluster, the objects of
    the standalone build of each kustomization directory."""
    build = repo.build
    if build.has_clusters:
        for cluster in build.clusters:
            for obj in cluster.objects():
                yield Target(obj.res, cluster, obj)
        return
    for built in build.standalone:
        for res in built.resources:
            yield Target(res, None)


class Crds:
    """The custom resource kinds each cluster gets a CustomResourceDefinition for from
    this repository."""

    def __init__(self, repo: Snapshot) -> None:
        self._repo = repo
        self._by_cluster: dict[str | None, CrdSchemas] = {}
        self._digests: dict[tuple[str | None, str, str], str] = {}

    def of(self, cluster: Cluster | None) -> CrdSchemas:
        name = cluster.name if cluster is not None else None
        if name not in self._by_cluster:
            schemas = CrdSchemas()
            for t in targets(self._repo) if cluster is None else _of_cluster(cluster):
                if t.res.kind == "CustomResourceDefinition" and t.res.api_version.startswith(
                    "apiextensions.k8s.io/"
                ):
                    crd = yn.to_value(t.node)
                    if isinstance(crd, dict) and not _has_variable(crd):
                        for api, kind in schemas.add(crd):
                            self._digests[(name, api, kind)] = _digest(crd)
            self._by_cluster[name] = schemas
        return self._by_cluster[name]

    def digest(self, cluster: Cluster | None, api: str, kind: str) -> str:
        self.of(cluster)
        return self._digests.get((cluster.name if cluster is not None else None, api, kind), "")


def _of_cluster(cluster: Cluster) -> Iterator[Target]:
    for obj in cluster.objects():
        yield Target(obj.res, cluster, obj)


def _has_variable(value: Any) -> bool:
    return "${" in json.dumps(value, default=str)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# --- values as the API server receives them --------------------------------------------


def value_of(node: ynodes.Node | None) -> Any:
    """The JSON value of a built object's node, with `Unjudged` where the value is not
    known here: a value Flux substitutes from outside the repository or from a Secret, a
    plain scalar whose type YAML readers disagree on (`yes`), and a SOPS-encrypted value
    (`ENC[...]`: kustomize-controller decrypts it before it applies the object), and
    Helm template syntax in a file applied raw (helm-template-in-raw-manifest's)."""
    return yn.to_value(node, 0, _judged)


def _judged(node: ynodes.Node, depth: int) -> Any:
    if depth > 300:
        return Unjudged(None)
    mark = node.start_mark
    if isinstance(mark, yn.Origin) and (mark.secret or (mark.via or "").startswith("not known")):
        return Unjudged(node.value if isinstance(node, ynodes.ScalarNode) else None)
    if not isinstance(node, ynodes.ScalarNode):
        return yn.WALK
    value = yn.to_value(node)
    if isinstance(value, yn.Unsure):
        return Unjudged(str(value))
    if isinstance(value, str) and (
        (value.startswith("ENC[") and value.endswith("]")) or "{{" in value
    ):
        return Unjudged(value)
    return value


def _steps(node: ynodes.Node, path: Path) -> list[tuple[ynodes.Node | None, ynodes.Node]]:
    """The (key, value) nodes on the way to the field at `path`, as far as it exists."""
    steps: list[tuple[ynodes.Node | None, ynodes.Node]] = []
    current = node
    for part in path:
        if isinstance(part, int):
            if not isinstance(current, ynodes.SequenceNode) or not 0 <= part < len(current.value):
                break
            current = current.value[part]
            steps.append((None, current))
            continue
        if not isinstance(current, ynodes.MappingNode):
            break
        found = None
        for k, v in current.value:
            if isinstance(k, ynodes.ScalarNode) and k.value == part:
                found = (k, v)
        if found is None:
            break
        steps.append(found)
        current = found[1]
    return steps


def locate(
    node: ynodes.Node, path: Path, default: str, key: bool = False
) -> tuple[str, int, str | None]:
    """(file, 1-based line, how it got there) of the field at `path` of a built object:
    a scalar's value (where a patch or a substitution wrote it), else the field's key
    (`key`: always the key, for an unknown field); for a field that is missing, the
    deepest field on the way to it that exists."""
    steps = _steps(node, path)
    if not steps:
        return yn.origin_of(node, default)
    k, v = steps[-1]
    reached = len(steps) == len(path)
    if reached and not key and isinstance(v, ynodes.ScalarNode):
        return yn.origin_of(v, default)
    return yn.origin_of(k if k is not None else v, default)


# --- what a change leaves as it was ------------------------------------------------------


@dataclass
class Peer:
    """The other side of the change a snapshot is one side of, and the paths the change
    touches on either side: rules that judge objects one by one judge only those the
    change may have changed (see `Unchanged`)."""

    other: Snapshot
    changed: frozenset[str]


@dataclass
class Unchanged:
    """Which objects of a snapshot are the same, judged the same way, on the other side
    of its change. Such an object has the same findings at the same lines on both sides,
    none of which the change touches, so none is introduced: a rule may leave it out on
    both sides and still report what a full analysis reports as introduced."""

    repo: Snapshot
    _index: dict[tuple[object, ...], Target] | None = None

    def _other(self) -> dict[tuple[object, ...], Target]:
        if self._index is None:
            peer = self.repo.peer
            self._index = {}
            if peer is not None:
                for t in targets(peer.other):
                    self._index.setdefault(t.key(), t)
        return self._index

    def __call__(self, target: Target, context: str, other_context: Any) -> bool:
        """Whether `target` is unchanged: the other side has it under the same key, with
        the same values written at the same lines of files the change does not touch,
        and judged in the same context (`other_context(other target)` gives the other
        side's, to compare with `context`)."""
        peer = self.repo.peer
        if peer is None:
            return False
        other = self._other().get(target.key())
        if other is None or other_context(other) != context:
            return False
        if other.path != target.path:
            return False
        return _same(target.node, other.node, target.path, peer.changed, 0)


def _same(a: ynodes.Node, b: ynodes.Node, path: str, changed: frozenset[str], depth: int) -> bool:
    """Whether two built nodes hold the same values written at the same lines of files
    the change does not touch. A node both sides share is the parse of one blob (the
    build copies only what it changes), so it is the same without a look inside."""
    if a is b:
        return path not in changed or isinstance(a.start_mark, yn.Origin)
    if depth > 200 or type(a) is not type(b) or a.tag != b.tag:
        return False
    where = yn.origin_of(a, path)
    if where != yn.origin_of(b, path) or where[0] in changed:
        return False
    if isinstance(a, ynodes.ScalarNode) and isinstance(b, ynodes.ScalarNode):
        return bool(a.value == b.value and a.style == b.style)
    if len(a.value) != len(b.value):
        return False
    if isinstance(a, ynodes.SequenceNode):
        pairs = zip(a.value, b.value, strict=True)
        return all(_same(x, y, path, changed, depth + 1) for x, y in pairs)
    return all(
        _same(ka, kb, path, changed, depth + 1) and _same(va, vb, path, changed, depth + 1)
        for (ka, va), (kb, vb) in zip(a.value, b.value, strict=True)
    )


class KubeObjects:
    """What a snapshot knows of its objects as Kubernetes judges them
    (`Snapshot.kube`): each cluster's minor, its CRDs, and what its change left as it
    was."""

    def __init__(self, repo: Snapshot) -> None:
        self.versions = KubeVersions(repo)
        self.crds = Crds(repo)
        self.unchanged = Unchanged(repo)
