"""The repository as the cluster sees it: Flux objects, charts, kustomizations, and for
every file, who reads it and how (the consumer graph)."""

from __future__ import annotations

import enum
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Protocol

import yaml

from bot.analysis import templating
from bot.analysis import yamlscan as ys
from bot.analysis.ignorefiles import HelmIgnore, SourceIgnore
from bot.analysis.lines import split_lines
from bot.analysis.options import Config
from bot.analysis.tree import Tree

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
FLUX_GROUPS = {
    "kustomize.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "source.toolkit.fluxcd.io",
}
SOURCE_KINDS = {"GitRepository", "OCIRepository", "HelmRepository", "HelmChart", "Bucket"}
# Created by `flux bootstrap` in the cluster; a repository may well not contain it.
BOOTSTRAP_NAME = "flux-system"

_REMOTE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)"
    r"|\?ref=|//",
    re.I,
)


_SCAFFOLD = re.compile(r"\{\{|\{%")
# Template syntax of scaffolding tools (Jinja, cookiecutter, copier, makejinja): a file
# holding it outside a Helm chart is a template for someone else, when nothing reads it.
SCAFFOLD_SYNTAX = re.compile(r"\{\{|\{%|#\{|#%")


def is_yaml_name(path: str) -> bool:
    """Exactly what Flux's generator takes: `.yaml`/`.yml`, lower case (not `.YAML`)."""
    return path.endswith((".yaml", ".yml"))


class ReadKind(enum.StrEnum):
    RAW = "raw"  # applied or parsed as plain YAML: kustomize, Flux, Helm crds/
    TEMPLATE = "template"  # rendered by Helm
    DATA = "data"  # read as an opaque payload (configMapGenerator files)


class Reader(enum.StrEnum):
    """How one controller comes to read a file: the typed edge of the consumer graph."""

    # The kustomization file at a Flux Kustomization's spec.path: Flux builds it.
    FLUX_ENTRY = "flux-entry"
    # A manifest (or a subdirectory's kustomization file) that Flux's generated index
    # takes for a spec.path without a kustomization file.
    FLUX_INDEX = "flux-index"
    # The same two for a `raw_paths` entry of the config (applied by a Kustomization that
    # lives outside this repository).
    RAW_PATHS_ENTRY = "raw-paths-entry"
    RAW_PATHS_INDEX = "raw-paths-index"
    # Listed by a kustomization file (`resources`, `components`, `patches`, ...).
    KUSTOMIZATION_ENTRY = "kustomization-entry"
    # A file a configMapGenerator / secretGenerator reads as data.
    GENERATOR_DATA = "generator-data"
    HELM_TEMPLATE = "helm-template"
    HELM_CRDS = "helm-crds"

    @property
    def how(self) -> ReadKind:
        if self is Reader.HELM_TEMPLATE:
            return ReadKind.TEMPLATE
        if self is Reader.GENERATOR_DATA:
            return ReadKind.DATA
        return ReadKind.RAW

    @property
    def is_flux_root(self) -> bool:
        """Read straight from a Flux Kustomization's (or raw_paths entry's) path, which
        Flux applies as Kubernetes objects."""
        return self in (
            Reader.FLUX_ENTRY,
            Reader.FLUX_INDEX,
            Reader.RAW_PATHS_ENTRY,
            Reader.RAW_PATHS_INDEX,
        )


@dataclass(frozen=True, slots=True)
class Consumer:
    reader: Reader
    source: str  # the file that makes the consumer read it
    line: int  # line of that file where it does
    # The Flux Kustomization for FLUX_ENTRY / FLUX_INDEX; the chart for Helm readers.
    owner: FluxObject | None = field(default=None, compare=False)
    chart: Chart | None = field(default=None, compare=False)
    raw_path: str | None = None  # the raw_paths entry, for RAW_PATHS_*

    @property
    def how(self) -> ReadKind:
        return self.reader.how

    @property
    def description(self) -> str:
        """The consumer in a message, e.g. "kustomize via apps/base/kustomization.yaml"."""
        r = self.reader
        if r in (Reader.FLUX_ENTRY, Reader.FLUX_INDEX) and self.owner is not None:
            return f"Flux Kustomization {self.owner.ref().split(' ', 1)[1]} ({self.owner.path})"
        if r in (Reader.RAW_PATHS_ENTRY, Reader.RAW_PATHS_INDEX):
            return f"raw_paths entry {self.raw_path or '.'} of the flux-review config"
        if r is Reader.HELM_TEMPLATE:
            label = self.chart.label if self.chart is not None else "a chart"
            return f"Helm, which renders it as a template of {label}"
        if r is Reader.HELM_CRDS:
            label = self.chart.label if self.chart is not None else "a chart"
            return f"Helm, which installs it unrendered from the crds/ of {label}"
        return f"kustomize via {self.source}"


@dataclass(slots=True)
class FluxObject:
    kind: str
    group: str
    version: str
    name: str
    namespace: str | None  # metadata.namespace as written
    path: str
    line: int  # line of metadata.name
    node: ys.Node

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def ref(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


@dataclass(slots=True)
class ChartDependency:
    name: str
    version: str | None
    version_line: int | None
    repository: str | None
    line: int
    alias: str | None


@dataclass(slots=True)
class Chart:
    directory: str  # "" for a chart at the repository root
    path: str  # the Chart.yaml path
    name: str | None
    version: str | None
    version_line: int | None
    dependencies: list[ChartDependency]
    helmignore: HelmIgnore

    def rel(self, path: str) -> str:
        return path[len(self.directory) + 1 :] if self.directory else path

    def contains(self, path: str) -> bool:
        return not self.directory or path.startswith(self.directory + "/")

    @property
    def label(self) -> str:
        return f"chart {self.name or '?'} ({self.directory or '.'})"


@dataclass(slots=True)
class KustomizeEntry:
    field: str  # resources, components, patches, ...
    value: str
    line: int
    target: str | None  # normalised repository path, None when remote or escaping
    remote: bool = False
    escapes: bool = False


@dataclass(slots=True)
class KustomizationFile:
    path: str
    directory: str
    entries: list[KustomizeEntry]
    namespace: str | None
    is_component: bool
    renames: bool = False  # namePrefix or nameSuffix: the names it builds are not as written


def _join(directory: str, rel: str) -> tuple[str | None, bool]:
    """Normalise `rel` against `directory`; (None, True) when it leaves the repository."""
    if rel.startswith("/"):
        return None, True
    joined = (
        posixpath.normpath(posixpath.join(directory, rel)) if directory else posixpath.normpath(rel)
    )
    if joined == ".":
        return "", False
    if joined == ".." or joined.startswith("../"):
        return None, True
    return joined, False


def normalize_git_url(url: str) -> str:
    """`https://github.com/Org/Repo.git`, `ssh://git@github.com/org/repo` and
    `git@github.com:org/repo` all name one repository: `github.com/org/repo`."""
    url = url.strip().lower()
    url = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url)
    url = re.sub(r"^[^@/]*@", "", url)
    url = re.sub(r"^([^/:]+):(?!\d+/)", r"\1/", url)  # scp-like `host:path`
    url = re.sub(r":\d+/", "/", url, count=1)  # an explicit port
    return url.removesuffix("/").removesuffix(".git")


def _branch(ref: ys.Node | None) -> str | None:
    """The branch a GitRepository `spec.ref` follows (`branch`, or `name: refs/heads/x`,
    which takes precedence)."""
    name = ys.scalar(ys.get(ref, "name"))
    if name is not None and name.startswith("refs/heads/"):
        return name.removeprefix("refs/heads/")
    return ys.scalar(ys.get(ref, "branch"))


def secure_join(path: str) -> str:
    """Flux resolves spec.path with securejoin: `..` stops at the root instead of escaping."""
    parts: list[str] = []
    for part in path.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


# What sigs.k8s.io/yaml (go-yaml v2, YAML 1.1) reads as `true` for a boolean field.
_YAML_TRUE = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"})


def gitmodules_paths(text: str) -> list[str]:
    """`submodule.<name>.path` values of a `.gitmodules` file, read with git-config syntax:
    `[submodule "name"]` sections (or the old `[submodule.name]`), case-insensitive keys,
    `#` and `;` comments, quoted values and backslash escapes."""
    found = []
    in_submodule = False
    for raw in split_lines(text):
        line = raw.strip()
        if line.startswith("["):
            header = line[1 : line.find("]")] if "]" in line else line[1:]
            section = header.split('"', 1)[0].strip().split(".", 1)[0]
            in_submodule = section.lower() == "submodule"
            continue
        key, sep, value = line.partition("=")
        if in_submodule and sep and key.strip().lower() == "path":
            found.append(_git_config_value(value))
    return found


def _git_config_value(value: str) -> str:
    out: list[str] = []
    quoted = False
    escapes = {"n": "\n", "t": "\t", "b": "\b", "\\": "\\", '"': '"'}
    i = 0
    pending_space = ""
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out.append(pending_space + escapes.get(value[i + 1], value[i + 1]))
            pending_space = ""
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "#;":
            break
        elif not quoted and ch in " \t":
            # Whitespace outside quotes counts only between words.
            pending_space += ch if out else ""
        else:
            out.append(pending_space + ch)
            pending_space = ""
        i += 1
    return "".join(out)


class StopSignal(Protocol):
    """Set when the caller no longer wants the result (a `threading.Event`)."""

    def is_set(self) -> bool: ...


class AnalysisCancelled(Exception):
    """The caller stopped the analysis (a review that timed out or is shutting down)."""


class Repository:
    """Everything the rules need to know about one commit, computed lazily."""

    def __init__(
        self,
        tree: Tree,
        config: Config | None = None,
        cache: dict[object, object] | None = None,
        self_urls: Iterable[str] = (),
        cancel: StopSignal | None = None,
    ) -> None:
        self.tree = tree
        self.cancel = cancel
        self.config = config or Config()
        self.self_urls = {normalize_git_url(u) for u in self_urls if u}
        self._cache: dict[object, object] = cache if cache is not None else {}
        # Files under a directory named after a template variable (cookiecutter's
        # `{{cookiecutter.app}}/`) are the input of a scaffolding tool, never applied.
        self.paths: list[str] = sorted(
            p for p in tree.paths() if "{" not in p or not _SCAFFOLD.search(p)
        )
        self.path_set = set(self.paths)
        self.dirs: set[str] = {""}
        self.children: dict[str, list[str]] = defaultdict(list)
        for p in self.paths:
            d = posixpath.dirname(p)
            self.children[d].append(p)
            while d and d not in self.dirs:
                self.dirs.add(d)
                d = posixpath.dirname(d)

    @cached_property
    def extensions(self) -> set[str]:
        return {posixpath.splitext(p)[1] for p in self.paths}

    # --- file access -------------------------------------------------------------

    def data(self, path: str) -> bytes | None:
        self.checkpoint()
        return self.tree.read(path)

    def text(self, path: str) -> str | None:
        key = ("text", path, self.tree.blob_id(path))
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        data = self.data(path)
        text = ys.decode(data) if data is not None else None
        self._cache[key] = text
        return text

    def yaml_info(self, path: str) -> ys.YamlInfo:
        """The YAML check and document summary of a file, cached by content."""
        blob = self.tree.blob_id(path)
        key = ("yaml", blob) if blob else ("yaml-path", path, id(self))
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        data = self.data(path)
        result = ys.scan(data) if data is not None else ys.YamlInfo(None, [])
        self._cache[key] = result
        return result

    def checkpoint(self) -> None:
        """Stop here if the caller has given up: Python cannot kill the thread that runs
        the analysis, so the analysis looks at the signal between files and rules."""
        if self.cancel is not None and self.cancel.is_set():
            raise AnalysisCancelled("the analysis was stopped")

    def warm_yaml(self, workers: int) -> None:
        """Check every YAML file up front, on several processes (see parallel.py)."""
        from bot.analysis.parallel import scan_all

        todo = [
            p
            for p in self.paths
            if p.endswith((".yaml", ".yml")) and ("yaml", self.tree.blob_id(p)) not in self._cache
        ]
        for path, info in scan_all(self.tree, todo, workers).items():
            blob = self.tree.blob_id(path)
            self._cache[("yaml", blob) if blob else ("yaml-path", path, id(self))] = info

    def problem(self, path: str) -> ys.YamlProblem | None:
        """Why a Kubernetes YAML decoder refuses this file."""
        return self.yaml_info(path).problem

    def documents(self, path: str) -> list[ys.Node]:
        """Parsed documents of a valid YAML file; [] when it does not parse."""
        blob = self.tree.blob_id(path)
        key = ("docs", blob) if blob else ("docs-path", path, id(self))
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]
        docs: list[ys.Node] = []
        data = self.data(path)
        if data is not None and self.problem(path) is None:
            try:
                docs = ys.compose_all(data)
            except (yaml.YAMLError, RecursionError):
                docs = []
        self._cache[key] = docs
        return docs

    def _helm_documents(self, path: str) -> list[ys.Node]:
        """Documents of a file that only duplicate keys keep from parsing, as Helm reads a
        Chart.yaml: the last value wins (as `ys.get` picks it)."""
        problem = self.problem(path)
        data = self.data(path)
        if problem is None or problem.duplicate_of is None or data is None:
            return []
        if ys.scan(data, duplicate_keys_allowed=True).problem is not None:
            return []
        try:
            return ys.compose_all(data)
        except (yaml.YAMLError, RecursionError):
            return []

    def is_dir(self, path: str) -> bool:
        return path in self.dirs

    def kustomization_in(self, directory: str) -> str | None:
        for name in KUSTOMIZATION_FILES:
            candidate = f"{directory}/{name}" if directory else name
            if candidate in self.path_set:
                return candidate
        return None

    # --- charts ------------------------------------------------------------------

    @cached_property
    def charts(self) -> list[Chart]:
        charts = []
        for path in self.paths:
            if posixpath.basename(path) != "Chart.yaml":
                continue
            directory = posixpath.dirname(path)
            ignore_path = f"{directory}/.helmignore" if directory else ".helmignore"
            ignore_text = self.text(ignore_path) if ignore_path in self.path_set else None
            chart = Chart(directory, path, None, None, None, [], HelmIgnore(ignore_text or ""))
            docs = self.documents(path) or self._helm_documents(path)
            if docs:
                root = docs[0]
                chart.name = ys.scalar(ys.get(root, "name"))
                version = ys.get(root, "version")
                chart.version = ys.scalar(version)
                chart.version_line = ys.line_of(version) if version is not None else None
                for dep in ys.items(ys.get(root, "dependencies")):
                    name = ys.scalar(ys.get(dep, "name"))
                    if not name:
                        continue
                    vnode = ys.get(dep, "version")
                    chart.dependencies.append(
                        ChartDependency(
                            name=name,
                            version=ys.scalar(vnode),
                            version_line=ys.line_of(vnode) if vnode is not None else None,
                            repository=ys.scalar(ys.get(dep, "repository")),
                            line=ys.line_of(dep),
                            alias=ys.scalar(ys.get(dep, "alias")),
                        )
                    )
            charts.append(chart)
        # Deepest first, so that a subchart's files belong to the subchart.
        charts.sort(key=lambda c: -c.directory.count("/") - (1 if c.directory else 0))
        return charts

    @cached_property
    def _chart_dirs(self) -> dict[str, Chart]:
        return {c.directory: c for c in self.charts}

    def chart_of(self, path: str) -> Chart | None:
        """The innermost chart a file belongs to (a subchart's files are its own)."""
        charts = self._chart_dirs
        if not charts:
            return None
        directory = posixpath.dirname(path)
        while True:
            chart = charts.get(directory)
            if chart is not None:
                return chart
            if not directory:
                return None
            directory = posixpath.dirname(directory)

    def chart_role(self, path: str) -> tuple[Chart, str] | None:
        """(chart, "templates"|"crds") when Helm reads this file as part of a chart."""
        if not self.charts:
            return None
        roles = self._chart_roles
        if path not in roles:
            roles[path] = self._chart_role(path)
        return roles[path]

    @cached_property
    def _chart_roles(self) -> dict[str, tuple[Chart, str] | None]:
        return {}

    def _chart_role(self, path: str) -> tuple[Chart, str] | None:
        chart = self.chart_of(path)
        if chart is None:
            return None
        rel = chart.rel(path)
        top = rel.split("/", 1)[0]
        if top not in ("templates", "crds") or "/" not in rel:
            return None
        if chart.helmignore.ignored(rel):
            return None
        return chart, top

    # --- kustomizations ----------------------------------------------------------

    @cached_property
    def kustomizations(self) -> dict[str, KustomizationFile]:
        result = {}
        for path in self.paths:
            if posixpath.basename(path) in KUSTOMIZATION_FILES:
                result[path] = self._read_kustomization(path)
        return result

    def _read_kustomization(self, path: str) -> KustomizationFile:
        directory = posixpath.dirname(path)
        docs = self.documents(path)
        root = docs[0] if docs else None
        entries: list[KustomizeEntry] = []

        def add(fieldname: str, node: ys.Node | None) -> None:
            value = ys.scalar(node)
            if node is None or value is None:
                return
            if _REMOTE.search(value):
                entries.append(
                    KustomizeEntry(fieldname, value, ys.line_of(node), None, remote=True)
                )
                return
            target, escapes = _join(directory, value)
            entries.append(
                KustomizeEntry(fieldname, value, ys.line_of(node), target, escapes=escapes)
            )

        for fieldname in (
            "resources",
            "bases",
            "components",
            "crds",
            "configurations",
            "transformers",
            "generators",
            "validators",
        ):
            for item in ys.items(ys.get(root, fieldname)):
                if isinstance(item, yaml.ScalarNode):
                    value = item.value
                    # generators/transformers may hold inline YAML instead of a path
                    if "\n" not in value and not value.lstrip().startswith(("apiVersion", "{")):
                        add(fieldname, item)
        for item in ys.items(ys.get(root, "patchesStrategicMerge")):
            if (
                isinstance(item, yaml.ScalarNode)
                and "\n" not in item.value
                and ": " not in item.value
            ):
                add("patchesStrategicMerge", item)
        for fieldname in ("patches", "patchesJson6902", "replacements"):
            for item in ys.items(ys.get(root, fieldname)):
                add(fieldname, ys.get(item, "path"))
        for fieldname in ("configMapGenerator", "secretGenerator"):
            for item in ys.items(ys.get(root, fieldname)):
                for f in ys.items(ys.get(item, "files")):
                    value = ys.scalar(f)
                    if value is None:
                        continue
                    # `key=path`: only the part after the first `=` is a file
                    if "=" in value:
                        f = yaml.ScalarNode(
                            f.tag, value.split("=", 1)[1].strip(), f.start_mark, f.end_mark
                        )
                    add(fieldname + ".files", f)
                for e in ys.items(ys.get(item, "envs")):
                    add(fieldname + ".envs", e)
                add(fieldname + ".env", ys.get(item, "env"))
        kind = ys.scalar(ys.get(root, "kind"))
        return KustomizationFile(
            path=path,
            directory=directory,
            entries=entries,
            namespace=ys.scalar(ys.get(root, "namespace")),
            is_component=kind == "Component",
            renames=self._renames(path, root),
        )

    def _renames(self, path: str, root: ys.Node | None) -> bool:
        data = self.data(path) or b""
        if b"namePrefix" not in data and b"nameSuffix" not in data:
            return False
        return bool(ys.scalar(ys.get(root, "namePrefix")) or ys.scalar(ys.get(root, "nameSuffix")))

    # --- Flux objects ------------------------------------------------------------

    @cached_property
    def _listed_json(self) -> frozenset[str]:
        """JSON files that a kustomization lists as resources: kustomize reads them like
        YAML, while Flux's generated kustomization.yaml never picks up a `.json` file."""
        return frozenset(
            e.target
            for k in self.kustomizations.values()
            for e in k.entries
            if e.target and e.field == "resources" and e.target.endswith(".json")
        )

    def _may_hold_objects(self, path: str) -> bool:
        if not (path.endswith((".yaml", ".yml", ".YAML", ".YML"))) and (
            path not in self._listed_json
        ):
            return False
        role = self.chart_role(path)
        return role is None or role[1] != "templates"

    @cached_property
    def flux_objects(self) -> list[FluxObject]:
        objects = []
        for path in self.paths:
            if not self._may_hold_objects(path):
                continue
            data = self.data(path)
            if not data or b"toolkit.fluxcd.io" not in data:
                continue
            for doc in self.documents(path):
                api = ys.scalar(ys.get(doc, "apiVersion")) or ""
                group, _, version = api.partition("/")
                if group not in FLUX_GROUPS:
                    continue
                kind = ys.scalar(ys.get(doc, "kind"))
                name_node = ys.get(doc, "metadata", "name")
                name = ys.scalar(name_node)
                if not kind or not name or name_node is None:
                    continue
                objects.append(
                    FluxObject(
                        kind=kind,
                        group=group,
                        version=version,
                        name=name,
                        namespace=ys.scalar(ys.get(doc, "metadata", "namespace")),
                        path=path,
                        line=ys.line_of(name_node),
                        node=doc,
                    )
                )
        return objects

    def objects_of(self, kind: str) -> list[FluxObject]:
        return self._objects_by_kind.get(kind, [])

    @cached_property
    def _objects_by_kind(self) -> dict[str, list[FluxObject]]:
        by_kind: dict[str, list[FluxObject]] = {}
        for obj in self.flux_objects:
            by_kind.setdefault(obj.kind, []).append(obj)
        return by_kind

    @cached_property
    def templated_kinds(self) -> set[str]:
        """Flux kinds that some chart template creates: their names are not knowable."""
        kinds: set[str] = set()
        for path in self.paths:
            role = self.chart_role(path)
            if role is None or role[1] != "templates":
                continue
            data = self.data(path)
            if not data or b"toolkit.fluxcd.io" not in data:
                continue
            text = ys.decode(data) or ""
            for m in re.finditer(r"^\s*kind:\s*['\"]?(\w+)", text, re.M):
                kinds.add(m.group(1))
        return kinds

    @cached_property
    def generated_objects(self) -> tuple[set[tuple[str, str]], set[str]]:
        """Objects that a Flux Operator `ResourceSet` creates in the cluster: (kind, name)
        of those with a literal name, and the kinds of those whose name is a template
        (`<< inputs.name >>`) or that come from `resourcesTemplate`."""
        named: set[tuple[str, str]] = set()
        templated: set[str] = set()
        for path in self.paths:
            if not path.endswith((".yaml", ".yml")):
                continue
            data = self.data(path)
            if not data or b"ResourceSet" not in data:
                continue
            for doc in self.documents(path):
                if ys.scalar(ys.get(doc, "kind")) != "ResourceSet":
                    continue
                for item in ys.items(ys.get(doc, "spec", "resources")):
                    kind = ys.scalar(ys.get(item, "kind"))
                    name = ys.scalar(ys.get(item, "metadata", "name"))
                    if not kind:
                        continue
                    if name and "<<" not in name:
                        named.add((kind, name))
                    else:
                        templated.add(kind)
                template = ys.scalar(ys.get(doc, "spec", "resourcesTemplate")) or ""
                templated.update(re.findall(r"^\s*kind:\s*['\"]?(\w+)", template, re.M))
        return named, templated

    # --- which Flux sources are this repository ------------------------------------

    def is_self_source(self, obj: FluxObject) -> bool:
        """Whether a Kustomization's sourceRef is (very likely) this repository."""
        ref = ys.get(obj.node, "spec", "sourceRef")
        kind = ys.scalar(ys.get(ref, "kind")) or "GitRepository"
        name = ys.scalar(ys.get(ref, "name"))
        if kind != "GitRepository":
            return False
        if name == BOOTSTRAP_NAME:
            return True
        if not self.self_urls:
            return False
        namespace = ys.scalar(ys.get(ref, "namespace")) or obj.namespace
        for source in self.objects_of("GitRepository"):
            if source.name == name and (
                not namespace or not source.namespace or source.namespace == namespace
            ):
                url = ys.scalar(ys.get(source.node, "spec", "url")) or ""
                if normalize_git_url(url) in self.self_urls and self.same_revision(source):
                    return True
        return False

    @cached_property
    def submodules(self) -> tuple[str, ...]:
        """Paths of the git submodules that `.gitmodules` declares."""
        paths = (secure_join(p) for p in gitmodules_paths(self.text(".gitmodules") or ""))
        return tuple(p for p in paths if p)

    def submodule_of(self, path: str) -> str | None:
        """The submodule that holds `path`, or that `path` holds (a directory of
        submodules exists only through them)."""
        for sub in self.submodules:
            if path == sub or path.startswith(sub + "/") or sub.startswith(path + "/"):
                return sub
        return None

    @cached_property
    def own_urls(self) -> frozenset[str]:
        """This repository's URLs, normalised: the clone URLs the caller knows and those
        of the `flux-system` GitRepositories."""
        return frozenset(self.self_urls) | {
            normalize_git_url(url)
            for s in self.objects_of("GitRepository")
            if s.name == BOOTSTRAP_NAME and (url := ys.scalar(ys.get(s.node, "spec", "url")))
        }

    @cached_property
    def fetches_submodules(self) -> bool | None:
        """Whether source-controller checks out this repository's submodules: only with
        `spec.recurseSubmodules: true` on its GitRepository. None when no GitRepository
        here is known to be this repository."""
        own = [
            s for s in self.objects_of("GitRepository")
            if s.name == BOOTSTRAP_NAME or (
                normalize_git_url(ys.scalar(ys.get(s.node, "spec", "url")) or "")
                in self.own_urls
                and self.same_revision(s)
            )
        ]
        if not own:
            return None
        return any(
            ys.scalar(ys.get(s.node, "spec", "recurseSubmodules")) in _YAML_TRUE
            for s in own
        )

    @cached_property
    def _bootstrap_branches(self) -> set[str]:
        """Branches that the `flux-system` GitRepositories of the repository follow."""
        branches = set()
        for source in self.objects_of("GitRepository"):
            if source.name == BOOTSTRAP_NAME:
                branch = _branch(ys.get(source.node, "spec", "ref"))
                if branch:
                    branches.add(branch)
        return branches

    def same_revision(self, source: FluxObject) -> bool:
        """Whether a GitRepository with this repository's URL follows the revision being
        checked. Another branch (multi-tenancy repositories keep each tenant on its own
        branch of one repository), a tag, a semver range or a commit is other content."""
        ref = ys.get(source.node, "spec", "ref")
        if ref is None:
            return True
        name = ys.scalar(ys.get(ref, "name"))
        if any(ys.get(ref, key) is not None for key in ("tag", "semver", "commit")) or (
            name is not None and not name.startswith("refs/heads/")
        ):
            return False
        branch = _branch(ref)
        if branch is None:
            return True
        return branch in (self._bootstrap_branches or {"main", "master"})

    @cached_property
    def source_ignore(self) -> SourceIgnore:
        files = {}
        for path in self.paths:
            if posixpath.basename(path) == ".sourceignore":
                files[posixpath.dirname(path)] = self.text(path) or ""
        extra: list[str] = []
        own: set[str] = set()
        for obj in self.objects_of("GitRepository"):
            ignore = ys.scalar(ys.get(obj.node, "spec", "ignore"))
            if obj.name == BOOTSTRAP_NAME:
                if ignore:
                    extra.extend(split_lines(ignore))
            elif self.self_urls and self.same_revision(obj):
                url = normalize_git_url(ys.scalar(ys.get(obj.node, "spec", "url")) or "")
                if url in self.self_urls:
                    own.add(ignore or "")
        if not extra and len(own) == 1:
            # No flux-system source: the one GitRepository that builds this repository
            # (`home-kubernetes`), when all that do agree on what they ignore.
            extra = split_lines(own.pop())
        return SourceIgnore(files, extra)

    @cached_property
    def git_ignore(self) -> SourceIgnore:
        """The repository's `.gitignore` files: what is kept out of git on purpose."""
        files = {
            posixpath.dirname(path): self.text(path) or ""
            for path in self.paths
            if posixpath.basename(path) == ".gitignore"
        }
        return SourceIgnore(files)

    # --- the consumer graph ----------------------------------------------------------

    def flux_raw_walk(self, root: str) -> tuple[list[str], list[str]]:
        """What Flux's generator applies for a spec.path with no kustomization file:
        (plain manifests, kustomization files of subdirectories taken as a whole)."""
        manifests: list[str] = []
        kfiles: list[str] = []
        ignore = self.source_ignore
        stack = [root]
        while stack:
            directory = stack.pop()
            for path in self.children.get(directory, ()):
                if is_yaml_name(path) and not ignore.ignored(path):
                    manifests.append(path)
            for sub in self._subdirs(directory):
                if ignore.ignored(sub + "/") or ignore.ignored(sub + "/x"):
                    continue
                kfile = self.kustomization_in(sub)
                if kfile is not None:
                    kfiles.append(kfile)
                else:
                    stack.append(sub)
        return sorted(manifests), sorted(kfiles)

    @cached_property
    def _subdir_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = defaultdict(list)
        for d in self.dirs:
            if d:
                index[posixpath.dirname(d)].append(d)
        return index

    def _subdirs(self, directory: str) -> list[str]:
        return sorted(self._subdir_index.get(directory, ()))

    @cached_property
    def flux_roots(self) -> list[tuple[str, Consumer]]:
        """(directory, consumer) for each Flux Kustomization of this repository, and for
        each `raw_paths` entry of the config. The consumer's reader is the entry kind;
        `consumers` turns it into the index kind where Flux generates the index."""
        roots = []
        for obj in self.objects_of("Kustomization"):
            if obj.group != "kustomize.toolkit.fluxcd.io" or not self.is_self_source(obj):
                continue
            path_node = ys.get(obj.node, "spec", "path")
            directory = secure_join(ys.scalar(path_node) or "")
            line = ys.line_of(path_node) if path_node is not None else obj.line
            roots.append((directory, Consumer(Reader.FLUX_ENTRY, obj.path, line, owner=obj)))
        for raw in self.config.raw_paths:
            roots.append(
                (
                    raw,
                    Consumer(Reader.RAW_PATHS_ENTRY, ".github/flux-review.yml", 1, raw_path=raw),
                )
            )
        return roots

    @cached_property
    def consumers(self) -> dict[str, list[Consumer]]:
        graph: dict[str, list[Consumer]] = defaultdict(list)
        for directory, consumer in self.flux_roots:
            if directory and not self.is_dir(directory):
                continue
            entry_point = self.kustomization_in(directory)
            if entry_point is not None:
                graph[entry_point].append(consumer)
                continue
            index = replace(
                consumer,
                reader=Reader.FLUX_INDEX
                if consumer.reader is Reader.FLUX_ENTRY
                else Reader.RAW_PATHS_INDEX,
            )
            manifests, kfiles = self.flux_raw_walk(directory)
            for path in manifests + kfiles:
                graph[path].append(index)
        for kfile in self.kustomizations.values():
            # When Flux sees this kustomization but not what it lists, the build fails
            # (kustomize-missing-resource): the target is never read.
            in_artifact = not self.source_ignore.ignored(kfile.path)
            for entry in kfile.entries:
                if entry.target is None:
                    continue
                reader = (
                    Reader.GENERATOR_DATA
                    if "Generator" in entry.field
                    else Reader.KUSTOMIZATION_ENTRY
                )
                target = entry.target
                if target in self.path_set:
                    if in_artifact and self.source_ignore.ignored(target):
                        continue
                    graph[target].append(Consumer(reader, kfile.path, entry.line))
                elif self.is_dir(target):
                    sub = self.kustomization_in(target)
                    if sub is not None and sub != kfile.path:
                        if in_artifact and self.source_ignore.ignored(sub):
                            continue
                        graph[sub].append(Consumer(reader, kfile.path, entry.line))
        for path in self.paths:
            role = self.chart_role(path)
            if role is None:
                continue
            chart, part = role
            if part == "templates":
                graph[path].append(Consumer(Reader.HELM_TEMPLATE, chart.path, 1, chart=chart))
            elif path.endswith((".yaml", ".yml", ".json")):
                graph[path].append(Consumer(Reader.HELM_CRDS, chart.path, 1, chart=chart))
        return dict(graph)

    def raw_consumers(self, path: str) -> list[Consumer]:
        return [c for c in self.consumers.get(path, ()) if c.how is ReadKind.RAW]

    def template_consumers(self, path: str) -> list[Consumer]:
        return [c for c in self.consumers.get(path, ()) if c.how is ReadKind.TEMPLATE]

    def flux_consumers_reaching(self, path: str) -> list[Consumer]:
        """The Flux Kustomizations (and raw_paths entries) whose build includes `path`,
        through any chain of kustomization files: their root consumer edges."""
        seen: set[str] = set()
        found: dict[Consumer, None] = {}
        stack = [path]
        while stack:
            current = stack.pop()
            for c in self.consumers.get(current, ()):
                if c.reader.is_flux_root:
                    found.setdefault(c, None)
                elif (
                    c.reader is Reader.KUSTOMIZATION_ENTRY
                    and c.source not in seen
                    and posixpath.basename(c.source) in KUSTOMIZATION_FILES
                ):
                    seen.add(c.source)
                    stack.append(c.source)
        return list(found)

    def flux_kustomizations_applying(self, path: str) -> list[FluxObject]:
        """The Flux Kustomization objects whose build includes `path`."""
        owners: dict[int, FluxObject] = {}
        for c in self.flux_consumers_reaching(path):
            if c.owner is not None:
                owners.setdefault(id(c.owner), c.owner)
        return list(owners.values())

    def flux_kustomizations_reaching(self, path: str) -> list[str]:
        """Names of the Flux Kustomizations whose build includes `path`, for messages."""
        return list(
            dict.fromkeys(
                c.description for c in self.flux_consumers_reaching(path) if c.owner is not None
            )
        )

    # --- facts several rules share ----------------------------------------------------

    def raw_template_actions(self, path: str) -> list[templating.Action]:
        """The template actions that break a file read raw (at most one per line): a
        `{{` where YAML expects structure in a file that does not parse, or a Helm
        expression in a value that reaches the API server as text. The root cause of
        whatever else goes wrong on those lines, so every rule reads it from here."""
        # Per snapshot, not per blob: whether a file is read raw depends on the tree.
        cached = self._raw_actions.get(path)
        if cached is not None:
            return cached
        found: list[templating.Action] = []
        if self.raw_consumers(path):
            data = self.data(path)
            text = self.text(path) if data and templating.may_break(data) else None
            if text is not None:
                problem = self.problem(path)
                lines: set[int] = set()
                for action in templating.scan(text):
                    if action.line in lines:
                        continue
                    # A `{{` where YAML expects structure breaks parsing, unless the YAML
                    # is valid after all: then it is a quoted key or a multi-line string,
                    # and only its content matters.
                    if not (action.structural and problem is not None) and (
                        not action.helm_specific
                        or templating.is_payload(action.kind, action.api_version)
                        or templating.PAYLOAD_KEYS.intersection(action.key_path)
                    ):
                        continue
                    lines.add(action.line)
                    found.append(action)
        self._raw_actions[path] = found
        return found

    @cached_property
    def _raw_actions(self) -> dict[str, list[templating.Action]]:
        return {}

    def raw_template_lines(self, path: str) -> frozenset[int]:
        return frozenset(a.line for a in self.raw_template_actions(path))

    def describe(self, consumers: Iterable[Consumer]) -> str:
        return "; ".join(dict.fromkeys(c.description for c in consumers))
