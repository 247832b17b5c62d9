"""Secrets and ConfigMaps: who defines them in the repository, and who refers to them.

Most Secrets live outside git (SOPS-decrypted in the cluster, created by External Secrets
or by hand), so a reference to a Secret the repository does not define proves nothing.
What a diff does prove is a rename: a Secret defined in the repository at the base, gone
at the head, still referenced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from bot.analysis import yamlscan as ys
from bot.analysis.model import Repository

_PROVIDER_HINT = re.compile(rb"kind:\s*['\"]?(?:Secret|SealedSecret|ExternalSecret|"
                            rb"ClusterExternalSecret|ConfigMap)\b|secretGenerator|"
                            rb"configMapGenerator")
_REFERENCE_HINT = re.compile(rb"imagePullSecrets|secretRef|configMapRef|secretKeyRef|"
                             rb"configMapKeyRef|valuesFrom|substituteFrom|secretName|"
                             rb"configMap:")


@dataclass(frozen=True, slots=True)
class NamedRef:
    kind: str  # "Secret" or "ConfigMap"
    name: str
    path: str
    line: int
    field: str


def providers(repo: Repository) -> dict[str, dict[str, str]]:
    """kind -> name -> the file that defines it, for Secrets and ConfigMaps."""
    found: dict[str, dict[str, str]] = {"Secret": {}, "ConfigMap": {}}
    for path in repo.paths:
        if not path.endswith((".yaml", ".yml", "Kustomization")):
            continue
        data = repo.data(path)
        if not data or not _PROVIDER_HINT.search(data):
            continue
        for doc in repo.documents(path):
            kind = ys.scalar(ys.get(doc, "kind"))
            name = ys.scalar(ys.get(doc, "metadata", "name"))
            if kind in ("Secret", "ConfigMap") and name:
                found[kind].setdefault(name, path)
            elif kind == "SealedSecret":
                target = ys.scalar(ys.get(doc, "spec", "template", "metadata", "name"))
                for n in (name, target):
                    if n:
                        found["Secret"].setdefault(n, path)
            elif kind in ("ExternalSecret", "ClusterExternalSecret"):
                spec = ys.get(doc, "spec") if kind == "ExternalSecret" else \
                    ys.get(doc, "spec", "externalSecretSpec")
                n = ys.scalar(ys.get(spec, "target", "name")) or name
                if n:
                    found["Secret"].setdefault(n, path)
            for field, kind_made in (("secretGenerator", "Secret"),
                                     ("configMapGenerator", "ConfigMap")):
                for item in ys.items(ys.get(doc, field)):
                    n = ys.scalar(ys.get(item, "name"))
                    if n:
                        found[kind_made].setdefault(n, path)
    return found


def _name_ref(node: ys.Node | None, key: str = "name") -> ys.Node | None:
    value = ys.get(node, key)
    return value if ys.scalar(value) else None


def _optional(node: ys.Node | None) -> bool:
    return (ys.scalar(ys.get(node, "optional")) or "").lower() == "true"


def _walk(path: str, doc: ys.Node) -> Iterator[NamedRef]:
    seen: set[int] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
            continue
        if not isinstance(node, yaml.MappingNode):
            continue
        for key, _, value in ys.pairs(node):
            stack.append(value)
            hits: list[tuple[str, ys.Node | None, str]] = []
            if key == "imagePullSecrets":
                hits += [("Secret", _name_ref(item), key) for item in ys.items(value)]
            elif key in ("secretRef", "secretKeyRef") and not _optional(value):
                hits.append(("Secret", _name_ref(value), key))
            elif key in ("configMapRef", "configMapKeyRef") and not _optional(value):
                hits.append(("ConfigMap", _name_ref(value), key))
            elif key == "secret" and not _optional(value):
                hits.append(("Secret", _name_ref(value, "secretName"), "volumes.secret"))
            elif key == "configMap" and not _optional(value):
                hits.append(("ConfigMap", _name_ref(value), "volumes.configMap"))
            elif key in ("valuesFrom", "substituteFrom"):
                for item in ys.items(value):
                    kind = ys.scalar(ys.get(item, "kind"))
                    if kind in ("Secret", "ConfigMap") and not _optional(item):
                        hits.append((kind, _name_ref(item), key))
            for kind, name_node, field in hits:
                name = ys.scalar(name_node)
                if name_node is not None and name and "${" not in name and "{{" not in name:
                    yield NamedRef(kind, name, path, ys.line_of(name_node), field)


def references(repo: Repository) -> Iterator[NamedRef]:
    """Non-optional references to Secrets and ConfigMaps in files that a controller
    applies raw (chart templates are rendered: their names are not knowable)."""
    for path in repo.paths:
        if not repo.raw_consumers(path):
            continue
        data = repo.data(path)
        if not data or not _REFERENCE_HINT.search(data):
            continue
        for doc in repo.documents(path):
            yield from _walk(path, doc)
