"""kustomize's field specs: which fields of which kinds each builtin transformer touches.

The tables in `data/fieldspecs.json` are kustomize's own (`api/internal/konfig/
builtinpluginconsts/*.go` of sigs.k8s.io/kustomize/api v0.18.0, the one kustomize v5.5.0
builds with), transcribed as data; `data/mergekeys.json` holds the list merge keys of
kustomize's built-in OpenAPI schema (kyaml's Kubernetes v1.21.2 schema), which decide
how a strategic-merge patch merges a list. Both are Apache-2.0, The Kubernetes Authors
(see data/NOTICE). No Python library carries them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from yaml import nodes as ynodes

from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.ids import group_version


@dataclass(frozen=True, slots=True)
class FieldSpec:
    group: str
    version: str
    kind: str
    path: tuple[str, ...]
    create: bool

    def selects(self, api_version: str, kind: str) -> bool:
        """kustomize's Gvk.IsSelected: an empty part matches anything."""
        group, version = group_version(api_version)
        return (
            (not self.group or self.group == group)
            and (not self.version or self.version == version)
            and (not self.kind or self.kind == kind)
        )


@dataclass(frozen=True, slots=True)
class NameReference:
    """Objects of `kind` are referred to by name from the fields `specs`."""

    group: str
    version: str
    kind: str
    specs: tuple[FieldSpec, ...]

    def refers_to(self, api_version: str, kind: str) -> bool:
        group, version = group_version(api_version)
        return (
            (not self.group or self.group == group)
            and (not self.version or self.version == version)
            and self.kind == kind
        )


def _split(path: str) -> tuple[str, ...]:
    # `\/` is a `/` inside a field name (an annotation key).
    parts = path.replace("\\/", "\0").split("/")
    return tuple(p.replace("\0", "/") for p in parts)


def _spec(raw: dict[str, Any]) -> FieldSpec:
    return FieldSpec(
        raw["group"], raw["version"], raw["kind"], _split(raw["path"]), bool(raw["create"])
    )


@cache
def _data(name: str) -> Any:
    with resources.files("bot.analysis.snapshot.build").joinpath(f"data/{name}").open("rb") as f:
        return json.load(f)


@cache
def specs(table: str) -> tuple[FieldSpec, ...]:
    return tuple(_spec(raw) for raw in _data("fieldspecs.json")[table])


@cache
def name_references() -> tuple[NameReference, ...]:
    return tuple(
        NameReference(
            raw["group"], raw["version"], raw["kind"], tuple(_spec(s) for s in raw["fieldSpecs"])
        )
        for raw in _data("fieldspecs.json")["nameReference"]
    )


@dataclass
class Config:
    """Field specs a kustomization adds with `configurations:` files. They travel with
    the accumulated resources: a base's configurations also act on its overlay's
    transformers and on the final name references."""

    specs: dict[str, list[FieldSpec]]
    references: list[NameReference]

    @staticmethod
    def empty() -> Config:
        return Config({}, [])

    def merge(self, other: Config) -> None:
        for table, extra in other.specs.items():
            have = self.specs.setdefault(table, [])
            have.extend(s for s in extra if s not in have)
        self.references.extend(r for r in other.references if r not in self.references)

    def table(self, name: str) -> tuple[FieldSpec, ...]:
        extra = self.specs.get(name)
        return specs(name) + tuple(extra) if extra else specs(name)

    def name_references(self) -> tuple[NameReference, ...]:
        return name_references() + tuple(self.references)


_TABLES = (
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "templateLabels",
    "commonAnnotations",
    "images",
    "replicas",
    "varReference",
)


def _raw_spec(raw: Any) -> FieldSpec | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
        return None
    return FieldSpec(
        str(raw.get("group") or ""),
        str(raw.get("version") or ""),
        str(raw.get("kind") or ""),
        _split(raw["path"]),
        raw.get("create") is True,
    )


def parse_config(value: Any) -> Config:
    """A `configurations:` file (kustomize's TransformerConfig), as plain data."""
    config = Config.empty()
    if not isinstance(value, dict):
        return config
    for table in _TABLES:
        found = [s for raw in value.get(table) or [] if (s := _raw_spec(raw)) is not None]
        if found:
            config.specs[table] = found
    for raw in value.get("nameReference") or []:
        if not isinstance(raw, dict) or not raw.get("kind"):
            continue
        referrers = tuple(s for r in raw.get("fieldSpecs") or [] if (s := _raw_spec(r)) is not None)
        config.references.append(
            NameReference(
                str(raw.get("group") or ""),
                str(raw.get("version") or ""),
                str(raw["kind"]),
                referrers,
            )
        )
    return config


def apply(
    root: ynodes.Node,
    spec: FieldSpec,
    fn: Callable[[ynodes.Node | None, tuple[str | int, ...]], ynodes.Node | None],
    mark: Any = None,
) -> ynodes.Node:
    """`root` with `fn(old, path)` written at every field `spec` names (a list on the way
    is entered element by element; `[]` marks a list field, which is never created).
    Missing fields are created only when the spec says so."""

    def go(node: ynodes.Node | None, i: int, path: tuple[str | int, ...]) -> ynodes.Node | None:
        if isinstance(node, ynodes.SequenceNode):
            items = list(node.value)
            changed = False
            for n, item in enumerate(items):
                new = go(item, i, (*path, n))
                if new is not item and new is not None:
                    items[n] = new
                    changed = True
            if not changed:
                return node
            return ynodes.SequenceNode(
                node.tag, items, node.start_mark, node.end_mark, node.flow_style
            )
        if i == len(spec.path):
            return fn(node, path)
        part = spec.path[i]
        is_list = part.endswith("[]")
        name = part[:-2] if is_list else part
        if node is None or (isinstance(node, ynodes.ScalarNode) and yn.text(node) is None):
            if not spec.create or is_list:
                return node
            node = yn.mapping([], mark)
        if not isinstance(node, ynodes.MappingNode):
            return node
        child = yn.get(node, name)
        if child is None and (not spec.create or is_list):
            return node
        new = go(child, i + 1, (*path, name))
        if new is child or new is None:
            return node
        return yn.with_key(node, name, new, mark)

    result = go(root, 0, ())
    return result if result is not None else root


@cache
def _merge_tables() -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    data = _data("mergekeys.json")
    return data["roots"], data["definitions"]


@cache
def kustomize_cluster_scoped() -> frozenset[tuple[str, str]]:
    """(apiVersion, kind) that kustomize knows to be cluster-scoped (kyaml's
    precomputed table from the Kubernetes 1.21 schema)."""
    out = set()
    for entry in _data("mergekeys.json")["clusterScoped"]:
        api_version, _, kind = entry.rpartition("/")
        out.add((api_version, kind))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class ListKind:
    """How a strategic-merge patch merges one list: by `keys` (an associative list), by
    value (`keys` empty, a list of primitives with the merge strategy), or replaced
    (None)."""

    keys: tuple[str, ...] | None
    retain_keys: bool = False


class Schema:
    """kustomize's built-in schema of one kind, walked field by field: only the exact
    apiVersion/kind pairs of kyaml's Kubernetes 1.21 schema have one; any other kind's
    lists are replaced by a patch."""

    __slots__ = ("_definition", "_map_values")

    def __init__(self, definition: str | None, map_values: str | None = None) -> None:
        self._definition = definition
        self._map_values = map_values

    @staticmethod
    def of(api_version: str, kind: str) -> Schema:
        roots, _ = _merge_tables()
        return Schema(roots.get(f"{api_version}/{kind}"))

    def field(self, name: str) -> tuple[Schema, ListKind | None]:
        """The schema of a field, and how a list there merges."""
        if self._map_values is not None:
            return Schema(self._map_values), None
        if self._definition is None:
            return _NONE, None
        _, definitions = _merge_tables()
        spec = definitions.get(self._definition, {}).get(name)
        if spec is None:
            return _NONE, None
        if "merge" in spec:
            kind = ListKind(tuple(spec["merge"]), "retainKeys" in spec.get("strategy", ""))
            return Schema(spec.get("items")), kind
        if "mapValues" in spec:
            return Schema(None, spec["mapValues"]), None
        return Schema(spec.get("ref") or spec.get("items")), None

    @property
    def known(self) -> bool:
        return self._definition is not None or self._map_values is not None


_NONE = Schema(None)
