"""Secrets and ConfigMaps: who defines them in the repository, and who refers to them.

Most Secrets live outside git (SOPS-decrypted in the cluster, created by External Secrets
or by hand), so a reference to a Secret the repository does not define proves nothing.
What a diff does prove is a rename: a Secret defined in the repository at the base, gone
at the head, still referenced.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import yaml

from bot.analysis import yamlscan as ys
from bot.analysis.lines import split_lines
from bot.analysis.snapshot import Snapshot

_PROVIDER_HINT = re.compile(
    rb"kind:\s*['\"]?(?:Secret|SealedSecret|ExternalSecret|"
    rb"ClusterExternalSecret|ConfigMap)\b|secretGenerator|"
    rb"configMapGenerator"
)
_REFERENCE_HINT = re.compile(
    rb"imagePullSecrets|secretRef|configMapRef|secretKeyRef|"
    rb"configMapKeyRef|valuesFrom|substituteFrom|secretName|"
    rb"configMap:"
)


@dataclass(frozen=True, slots=True)
class NamedRef:
    kind: str  # "Secret" or "ConfigMap"
    name: str
    path: str
    line: int
    field: str


def providers(repo: Snapshot, paths: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """kind -> name -> the file that defines it, for Secrets and ConfigMaps (in `paths`
    only, when given)."""
    found: dict[str, dict[str, str]] = {"Secret": {}, "ConfigMap": {}}
    for path in repo.paths if paths is None else sorted(set(paths) & repo.path_set):
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
                spec = (
                    ys.get(doc, "spec")
                    if kind == "ExternalSecret"
                    else ys.get(doc, "spec", "externalSecretSpec")
                )
                n = ys.scalar(ys.get(spec, "target", "name")) or name
                if n:
                    found["Secret"].setdefault(n, path)
            for field, kind_made in (
                ("secretGenerator", "Secret"),
                ("configMapGenerator", "ConfigMap"),
            ):
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


def references(repo: Snapshot) -> Iterator[NamedRef]:
    """Non-optional references to Secrets and ConfigMaps with a literal name: in files
    that a controller applies raw, in a chart's `values.yaml`, and in the lines of chart
    templates that hold no template action (a literal `imagePullSecrets` entry)."""
    for path in repo.paths:
        role = None
        if not repo.raw_consumers(path):
            role = repo.chart_role(path)
            if not (role is not None and role[1] == "templates") and not _chart_values(repo, path):
                continue
        data = repo.data(path)
        if not data or not _REFERENCE_HINT.search(data):
            continue
        if role is not None:
            yield from _template_refs(path, repo.text(path) or "")
            continue
        for doc in repo.documents(path):
            yield from _walk(path, doc)


def _chart_values(repo: Snapshot, path: str) -> bool:
    if posixpath.basename(path) != "values.yaml":
        return False
    chart = repo.chart_of(path)
    return chart is not None and chart.directory == posixpath.dirname(path)


_LITERAL = r"""['"]?([a-z0-9][a-z0-9.-]*)['"]?[ \t]*(?:#.*)?$"""
_PULL_SECRETS = re.compile(r"^([ \t]*)imagePullSecrets:[ \t]*(?:#.*)?$")
_PULL_ENTRY = re.compile(r"^([ \t]*)-[ \t]+name:[ \t]*" + _LITERAL)
_SECRET_NAME = re.compile(r"^([ \t]*)secretName:[ \t]*" + _LITERAL)


def references_in_template(path: str, text: str) -> Iterator[NamedRef]:
    """Literal pull secrets and secret volumes of one chart template."""
    return _template_refs(path, text)


def _template_refs(path: str, text: str) -> Iterator[NamedRef]:
    """Literal pull secrets and secret volumes in a chart template, read as text: the
    template is not YAML until Helm renders it, but a line without `{{` renders as is."""
    lines = split_lines(text)
    pull_indent: int | None = None
    for number, line in enumerate(lines, start=1):
        if "{{" in line:
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if pull_indent is not None:
            entry = _PULL_ENTRY.match(line)
            if entry is not None and indent >= pull_indent:
                yield NamedRef("Secret", entry.group(2), path, number, "imagePullSecrets")
                continue
            if indent <= pull_indent and not stripped.startswith("-"):
                pull_indent = None
        found = _PULL_SECRETS.match(line)
        if found is not None:
            pull_indent = len(found.group(1))
            continue
        secret = _SECRET_NAME.match(line)
        if secret is not None and not _optional_sibling(lines, number, len(secret.group(1))):
            yield NamedRef("Secret", secret.group(2), path, number, "volumes.secret")


def _optional_sibling(lines: list[str], number: int, indent: int) -> bool:
    """Whether the mapping of line `number` (1-based) has `optional: true`."""
    for step in (-1, 1):
        i = number - 1 + step
        while 0 <= i < len(lines):
            line = lines[i]
            current = len(line) - len(line.lstrip())
            if line.strip() and current < indent:
                break
            if current == indent and re.match(r"\s*optional:\s*true\b", line):
                return True
            i += step
    return False


def still_defined(repo: Snapshot, path: str, name: str) -> bool:
    """Whether `path` still exists and still names `name` although it no longer parses
    (a Helm template action added to it, a syntax error): then it was not removed."""
    if path not in repo.path_set or repo.documents(path):
        return False
    return (
        re.search(rf"name:\s*['\"]?{re.escape(name)}['\"]?\s*$", repo.text(path) or "", re.M)
        is not None
    )
