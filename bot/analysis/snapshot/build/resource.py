"""One object inside a build, and the ordered set of them that kustomize accumulates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from yaml import nodes as ynodes

from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.fieldspecs import kustomize_cluster_scoped
from bot.analysis.snapshot.build.ids import group_version
from bot.analysis.snapshot.build.problems import BuildProblem, ProblemKind, Related

KustomizeKey = tuple[str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Resource:
    """An object with its content (a node tree that is never mutated: transformers make
    new `Resource`s) and where it comes from."""

    node: ynodes.MappingNode
    path: str  # the file that defines it; for a generated object, the kustomization file
    line: int  # the line of its `metadata.name` (of the generator's `name:`)
    doc: int = -1  # its document in `path`; -1 when generated or a `List` item
    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str | None = None
    generator: str | None = None  # "configMapGenerator" or "secretGenerator"
    # kustomize appends a hash of the content to the name once the build is done.
    hashed: bool = False
    # (name, namespace) before each rename, oldest first: references to an old name are
    # updated to the new one (kustomize's name back references).
    prev: tuple[tuple[str, str | None], ...] = ()

    @staticmethod
    def of(node: ynodes.MappingNode, path: str, doc: int = -1, **kw: object) -> Resource:
        meta = yn.get(node, "metadata")
        name_node = yn.get(meta, "name")
        line = (
            yn.origin_of(name_node, path)[1]
            if name_node is not None
            else yn.origin_of(node, path)[1]
        )
        return Resource(
            node,
            path,
            int(kw.pop("line", line)),  # type: ignore[call-overload]
            doc,
            yn.text(yn.get(node, "apiVersion")) or "",
            yn.text(yn.get(node, "kind")) or "",
            yn.text(name_node) or "",
            yn.text(yn.get(meta, "namespace")),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def group(self) -> str:
        return group_version(self.api_version)[0]

    @property
    def version(self) -> str:
        return group_version(self.api_version)[1]

    @property
    def cluster_scoped(self) -> bool:
        """As kustomize knows it: the exact apiVersion and kind in its Kubernetes 1.21
        table (`IsCertainlyClusterScoped`); newer APIs and custom kinds count as
        namespaced, and kustomize gives them a namespace."""
        return (self.api_version, self.kind) in kustomize_cluster_scoped()

    def key(self) -> KustomizeKey:
        """kustomize's ResId equality: group, version, kind, name and the effective
        namespace ("" and "default" are one; cluster-scoped kinds have none)."""
        ns = "~cluster" if self.cluster_scoped else (self.namespace or "default")
        group, version = group_version(self.api_version)
        return (group, version, self.kind, ns, self.name)

    def with_node(self, node: ynodes.MappingNode, store: bool = True) -> Resource:
        """The same object with new content; a new name or namespace is remembered
        (unless the caller stored the id already)."""
        meta = yn.get(node, "metadata")
        name = yn.text(yn.get(meta, "name")) or ""
        namespace = yn.text(yn.get(meta, "namespace"))
        prev = self.prev
        if store and (name, namespace) != (self.name, self.namespace):
            prev = (*prev, (self.name, self.namespace))
        return replace(
            self,
            node=node,
            api_version=yn.text(yn.get(node, "apiVersion")) or "",
            kind=yn.text(yn.get(node, "kind")) or "",
            name=name,
            namespace=namespace,
            prev=prev,
        )

    def stored(self) -> Resource:
        """kustomize's `StorePreviousId`: the current id joins the earlier ones even when
        nothing renames the object (the namespace transformer does it for every object,
        which is how a ServiceAccount subject follows its account's new namespace)."""
        return replace(self, prev=(*self.prev, (self.name, self.namespace)))

    def names(self) -> Iterator[str]:
        """Every name the object has had, the current one first."""
        yield self.name
        for name, _ in reversed(self.prev):
            yield name

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def _duplicate(res: Resource, other: Resource, where: str | None, first: bool) -> BuildProblem:
    via = f" (added through {where})" if where else ""
    relation = "is already in this build from" if first else "is added again from"
    gvk = f"{res.api_version}/{res.kind}" if "/" in res.api_version else f"v1/{res.kind}"
    return BuildProblem(
        ProblemKind.DUPLICATE_ID,
        res.path,
        res.line,
        f"{gvk} {res.name} {relation} {other.path}:{other.line}{via}: kustomize fails with "
        "`may not add resource with an already registered id`.",
        (Related(other.path, other.line, "the other definition"),),
    )


@dataclass
class ResMap:
    """kustomize's accumulated resources, in order, with their ids."""

    resources: list[Resource] = field(default_factory=list)
    _index: dict[KustomizeKey, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    def get(self, key: KustomizeKey) -> Resource | None:
        i = self._index.get(key)
        return self.resources[i] if i is not None else None

    def append(self, res: Resource, problems: list[BuildProblem], where: str | None = None) -> bool:
        """Add `res`; a duplicate id is a problem on both definitions, each naming the
        other (whichever the change added, its file gets the finding), and is dropped."""
        key = res.key()
        i = self._index.get(key)
        if i is not None:
            other = self.resources[i]
            problems.append(_duplicate(res, other, where, True))
            if (other.path, other.line) != (res.path, res.line):
                problems.append(_duplicate(other, res, where, False))
            return False
        self._index[key] = len(self.resources)
        self.resources.append(res)
        return True

    def replace_all(
        self, resources: list[Resource], problems: list[BuildProblem], where: str
    ) -> None:
        """Swap in transformed resources; ids that now collide are duplicates."""
        self.resources = []
        self._index = {}
        for res in resources:
            self.append(res, problems, where)

    def set(self, i: int, res: Resource) -> None:
        old = self.resources[i]
        del self._index[old.key()]
        self.resources[i] = res
        self._index[res.key()] = i

    def remove(self, res: Resource) -> None:
        self.resources = [r for r in self.resources if r is not res]
        self._index = {r.key(): i for i, r in enumerate(self.resources)}

    def copy(self) -> ResMap:
        return ResMap(list(self.resources), dict(self._index))
