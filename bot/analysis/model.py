"""The types a snapshot is made of: Flux objects, charts, kustomization files, typed
consumer edges, and the path and URL rules they follow."""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.analysis import yamlscan as ys
from bot.analysis.ignorefiles import HelmIgnore
from bot.analysis.lines import split_lines

# What the analysis is told of a repository's past: the versions a chart's Chart.yaml
# (given by its path) has had in earlier commits. The analysis reads commits, not
# histories; whoever has the history (the CLI has git) fills this in.
ChartHistory = Callable[[str], Collection[str]]

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
    # The Flux Kustomization for FLUX_ENTRY / FLUX_INDEX, in a message
    label: str | None = None
    # The Flux Kustomization (as built) whose build makes the read
    applier: Any = field(default=None, compare=False)

    @property
    def how(self) -> ReadKind:
        return self.reader.how

    @property
    def description(self) -> str:
        """The consumer in a message, e.g. "kustomize via apps/base/kustomization.yaml"."""
        r = self.reader
        if r in (Reader.FLUX_ENTRY, Reader.FLUX_INDEX) and self.label is not None:
            return self.label
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


def registry_key(url: str) -> str:
    """A chart registry as the own-registries knowledge keys it: no scheme, lower case."""
    return (
        url.strip()
        .rstrip("/")
        .lower()
        .removeprefix("oci://")
        .removeprefix("https://")
        .removeprefix("http://")
    )


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
