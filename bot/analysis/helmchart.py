"""A chart of this repository as source-controller packages it for helm-controller.

source-controller builds a HelmChart from a Git or Bucket source with its local builder
(`internal/helm/chart/builder_local.go`): it loads the chart directory minus
`.helmignore` (Helm's loader: the chart's own `.helmignore` only, plus the default
`templates/.?*`), keeps what `charts/` vendors (directories and `.tgz` archives), adds the
dependencies of `Chart.yaml` that are missing (`dependency_manager.go`): a `file://` one
(or one without a repository) from the same artifact, a remote one downloaded from its
repository. Nothing is downloaded here: a chart that needs a remote dependency not
vendored in `charts/` is not rendered, and says why.

The result is a set of files in memory, each with its git blob id (the render cache's
key), and the way back from a rendered template's name (`app/charts/redis/templates/x.yaml`,
named after charts' `Chart.yaml` names and aliases) to the repository file it came from.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import hashlib
import io
import json
import posixpath
import re
import tarfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from bot.analysis.helmvalues import (
    ValuesError,
    ValuesFiles,
    ValuesProblem,
    load_values,
    load_values_documents,
    merge_maps,
    metadata_string,
)
from bot.analysis.ignorefiles import HelmIgnore
from bot.analysis.model import secure_join
from bot.analysis.semver import Constraint, Version
from bot.analysis.tree import Tree, git_blob_id

__all__ = [
    "MAX_CHART_SIZE",
    "MAX_FILE_SIZE",
    "ChartFiles",
    "ChartListing",
    "ChartOrigin",
    "ChartProblem",
    "assemble_chart",
    "chart_values_files",
]

# Helm's loader (pkg/chart/loader/archive): what helm-controller loads from the artifact.
MAX_FILE_SIZE = 5 * 1024 * 1024
MAX_CHART_SIZE = 100 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"
_CHART = "Chart.yaml"


@dataclass(frozen=True)
class ChartProblem:
    """Why a chart is not rendered: Flux fails to build it too (`definite`), or it needs
    what is not in this repository (a remote dependency: never fetched)."""

    message: str
    path: str  # the repository file to point at
    line: int = 1
    definite: bool = True


@dataclass(frozen=True)
class ChartOrigin:
    """Rendered names starting with `prefix` come from the repository `path`: a chart
    directory, or a vendored `.tgz` (whose inner lines have no repository line)."""

    prefix: str
    path: str
    archive: bool = False


@dataclass(frozen=True)
class ChartFiles:
    """The files Helm loads for one chart, with its subcharts under `charts/`."""

    name: str  # Chart.yaml `name`: the first component of every rendered template's name
    directory: str  # the chart's directory in the repository
    files: Mapping[str, bytes]  # path inside the chart -> content
    blob_ids: Mapping[str, str]  # path inside the chart -> git blob id of that content
    origins: tuple[ChartOrigin, ...]  # longest prefix first
    kube_version: str = ""  # Chart.yaml `kubeVersion`: the clusters it accepts
    sources: frozenset[str] = field(default=frozenset())  # repository paths read
    # The chart's directory and its file:// dependencies': a change that adds, removes or
    # edits a file below one of them may change the chart (its render is keyed anyway).
    directories: frozenset[str] = field(default=frozenset())

    @property
    def key(self) -> str:
        """Changes exactly when a file's content or name does."""
        digest = hashlib.sha256()
        for path in sorted(self.blob_ids):
            digest.update(path.encode() + b"\0" + self.blob_ids[path].encode() + b"\n")
        return digest.hexdigest()

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())

    def repository_path(self, template: str) -> tuple[str, bool] | None:
        """The repository file a rendered template name (`app/templates/x.yaml`) comes
        from, and whether its lines are that file's (False inside a vendored archive)."""
        for origin in self.origins:
            if template.startswith(origin.prefix):
                if origin.archive:
                    return origin.path, False
                rest = template[len(origin.prefix) :]
                return (f"{origin.path}/{rest}" if origin.path else rest), True
        return None

    def with_default_values(self, values: Mapping[str, Any]) -> ChartFiles | ValuesError:
        """`OverwriteChartDefaultValues`: the chart's `values.yaml` replaced by `values`
        (what `valuesFiles` does). A chart without one fails the HelmChart."""
        if "values.yaml" not in self.files:
            return ValuesError("failed to locate values file: values.yaml")
        data = json.dumps(values, separators=(",", ":")).encode() if values else b""
        return self._with("values.yaml", data)

    def without_schemas(self) -> ChartFiles:
        """Every `values.schema.json` of the chart and its subchart directories dropped:
        `spec.install.disableSchemaValidation` (archives inside `charts/` keep theirs)."""
        kept = {
            p: d
            for p, d in self.files.items()
            if not (p == "values.schema.json" or _is_subchart_schema(p))
        }
        return replace(
            self, files=kept, blob_ids={p: b for p, b in self.blob_ids.items() if p in kept}
        )

    def _with(self, path: str, data: bytes) -> ChartFiles:
        files = dict(self.files)
        files[path] = data
        ids = dict(self.blob_ids)
        ids[path] = git_blob_id(data)
        return replace(self, files=files, blob_ids=ids)


def _is_subchart_schema(path: str) -> bool:
    parts = path.split("/")
    # charts/<name>/values.schema.json, charts/<name>/charts/<name>/values.schema.json...
    return (
        len(parts) >= 3
        and len(parts) % 2 == 1
        and parts[-1] == "values.schema.json"
        and all(parts[i] == "charts" for i in range(0, len(parts) - 1, 2))
    )


class ChartListing:
    """The files of a tree that a chart may read, indexed by directory once.

    `include` is the artifact's filter (`.sourceignore`, `spec.ignore`): a file the
    GitRepository leaves out is not in the chart either.
    """

    def __init__(self, tree: Tree, include: Callable[[str], bool] | None = None) -> None:
        self.tree = tree
        self._paths = sorted(p for p in tree.paths() if include is None or include(p))
        self._set = frozenset(self._paths)

    def under(self, directory: str) -> Iterator[str]:
        """Every file below `directory` ("" is the root)."""
        if not directory:
            yield from self._paths
            return
        prefix = directory + "/"
        i = bisect.bisect_left(self._paths, prefix)
        while i < len(self._paths) and self._paths[i].startswith(prefix):
            yield self._paths[i]
            i += 1

    def exists(self, path: str) -> bool:
        return path in self._set

    def is_dir(self, path: str) -> bool:
        return next(self.under(path), None) is not None if path else bool(self._paths)

    def read(self, path: str) -> bytes | None:
        return self.tree.read(path) if path in self._set else None

    def blob_id(self, path: str) -> str | None:
        return self.tree.blob_id(path) if path in self._set else None


class _Fail(Exception):
    def __init__(self, problem: ChartProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class _Loaded:
    """One chart directory as Helm's directory loader reads it."""

    directory: str
    files: dict[str, bytes]
    ids: dict[str, str]
    metadata: dict[str, Any]


def _load_dir(listing: ChartListing, directory: str, budget: list[int]) -> _Loaded:
    """secureloader's directory loader: `.helmignore` of this directory and Helm's
    default rule, regular files up to MAX_FILE_SIZE, a UTF-8 BOM dropped."""
    chart_yaml = f"{directory}/{_CHART}" if directory else _CHART
    if not listing.exists(chart_yaml):
        raise _Fail(ChartProblem(f"no {_CHART} in '{directory or '/'}'", directory or chart_yaml))
    ignore_path = f"{directory}/.helmignore" if directory else ".helmignore"
    ignore_data = listing.read(ignore_path)
    rules = HelmIgnore(ignore_data.decode("utf-8", "replace") if ignore_data else "")
    if rules.errors:
        raise _Fail(
            ChartProblem(
                "double-star (**) syntax is not supported" + f" ({rules.errors[0]!r})",
                ignore_path,
                _line_of(ignore_data or b"", rules.errors[0]),
            )
        )
    files: dict[str, bytes] = {}
    ids: dict[str, str] = {}
    cut = len(directory) + 1 if directory else 0
    for path in listing.under(directory):
        rel = path[cut:]
        if rules.ignored(rel):
            continue
        data = listing.read(path)
        if data is None:
            continue
        if len(data) > MAX_FILE_SIZE:
            raise _Fail(
                ChartProblem(
                    f'chart file "{posixpath.basename(rel)}" is larger than the maximum '
                    f"file size {MAX_FILE_SIZE}",
                    path,
                )
            )
        budget[0] -= len(data)
        if budget[0] < 0:
            raise _Fail(
                ChartProblem(
                    f"chart '{directory}' is larger than the maximum size {MAX_CHART_SIZE}",
                    chart_yaml,
                )
            )
        if data.startswith(_BOM):
            data = data[len(_BOM) :]
            ids[rel] = git_blob_id(data)
        else:
            ids[rel] = listing.blob_id(path) or git_blob_id(data)
        files[rel] = data
    metadata = _metadata(files, chart_yaml)
    return _Loaded(directory, files, ids, metadata)


def _line_of(data: bytes, needle: str) -> int:
    index = data.find(needle.encode())
    return data.count(b"\n", 0, index) + 1 if index >= 0 else 1


def _dependency_line(data: bytes, name: str) -> int:
    """The line of `- name: <name>` under `dependencies:`, else 1."""
    start = data.find(b"dependencies")
    pattern = re.compile(rb"name:[ \t]*[\"']?" + re.escape(name.encode()) + rb"[\"']?[ \t]*$", re.M)
    m = pattern.search(data, max(start, 0))
    return data.count(b"\n", 0, m.start()) + 1 if m else 1


def _metadata(files: Mapping[str, bytes], chart_yaml: str) -> dict[str, Any]:
    """Chart.yaml as Helm's loader reads it, `requirements.yaml` over it (any
    apiVersion), and the lock (`Chart.lock`, or `requirements.lock` read after it)."""
    try:
        metadata = load_values(files.get(_CHART, b""), "chart.Metadata")
    except ValuesProblem as exc:
        raise _Fail(ChartProblem(f"cannot load Chart.yaml: {exc.message}", chart_yaml)) from exc
    base = chart_yaml[: -len(_CHART)]
    metadata["__dependencies_file__"] = _CHART
    if "requirements.yaml" in files:
        try:
            metadata = merge_maps(
                metadata, load_values(files["requirements.yaml"], "chart.Metadata")
            )
        except ValuesProblem as exc:
            raise _Fail(
                ChartProblem(
                    f"cannot load requirements.yaml: {exc.message}", base + "requirements.yaml"
                )
            ) from exc
        metadata["__dependencies_file__"] = "requirements.yaml"
    for name in ("Chart.lock", "requirements.lock"):
        if name in files:
            try:
                metadata["__lock__"] = load_values(files[name], "chart.Lock")
            except ValuesProblem as exc:
                raise _Fail(
                    ChartProblem(f"cannot load {name}: {exc.message}", base + name)
                ) from exc
    return metadata


@dataclass(frozen=True)
class _Dependency:
    name: str
    version: str
    repository: str
    alias: str

    @property
    def key(self) -> str:
        return self.alias or self.name


def _dependencies(entries: Any) -> list[_Dependency]:
    out = []
    for item in entries if isinstance(entries, list) else []:
        if isinstance(item, Mapping):
            out.append(
                _Dependency(
                    metadata_string(item.get("name")),
                    metadata_string(item.get("version")),
                    metadata_string(item.get("repository")),
                    metadata_string(item.get("alias")),
                )
            )
    return out


def _subcharts(files: Mapping[str, bytes]) -> dict[str, list[str]]:
    """Helm's loader: each first-level entry of `charts/` is a subchart (a directory or
    a `.tgz`), except names starting with `_` or `.`; `.prov` files are plain files."""
    groups: dict[str, list[str]] = {}
    for path in files:
        if not path.startswith("charts/") or path.endswith(".prov"):
            continue
        name = path[len("charts/") :].split("/", 1)[0]
        if name[:1] in ("_", "."):
            continue
        groups.setdefault(name, []).append(path)
    return groups


class _BoundedReader(io.RawIOBase):
    """Decompressed bytes of an archive, at most `limit` of them."""

    def __init__(self, inner: io.BufferedIOBase, limit: int) -> None:
        self.inner = inner
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(min(len(buffer), self.left + 1))
        self.left -= len(data)
        if self.left < 0:
            raise ValueError(f"decompressed chart is larger than the maximum size {MAX_CHART_SIZE}")
        n = len(data)
        buffer[:n] = data
        return n


_ARCHIVE_ERRORS = (ValueError, OSError, tarfile.TarError, EOFError, ValuesProblem)


@functools.lru_cache(maxsize=16)
def _archive_chart(data: bytes) -> tuple[str, str] | None:
    """(name, version) of a chart archive, or None when Helm could not load it; read
    once per archive however often an assembly asks."""
    try:
        meta = _archive_metadata(data)
    except _ARCHIVE_ERRORS:
        return None
    return metadata_string(meta.get("name")), metadata_string(meta.get("version"))


def _archive_metadata(data: bytes) -> dict[str, Any]:
    """Chart.yaml of a `.tgz` read in memory, within Helm's archive bounds: a gzip or tar
    bomb stops at MAX_CHART_SIZE decompressed bytes."""
    with (
        gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped,
        tarfile.open(
            fileobj=io.BufferedReader(_BoundedReader(unzipped, MAX_CHART_SIZE)),
            mode="r|",
        ) as archive,
    ):
        for member in archive:
            parts = member.name.lstrip("./").split("/")
            if len(parts) == 2 and parts[1] == _CHART and member.isfile():
                if member.size > MAX_FILE_SIZE:
                    raise ValueError(f'decompressed chart file "{_CHART}" is too large')
                handle = archive.extractfile(member)
                if handle is None:
                    break
                return load_values(handle.read(), "chart.Metadata")
    raise ValueError("Chart.yaml file is missing")


def _origins(
    files: Mapping[str, bytes], metadata: Mapping[str, Any], prefix: str, repo_dir: str
) -> Iterator[ChartOrigin]:
    """Where rendered names under `prefix` come from: this chart, and each vendored
    subchart under its `Chart.yaml` name and the aliases its parent gives it."""
    yield ChartOrigin(prefix, repo_dir)
    aliases: dict[str, list[str]] = {}
    for dep in _dependencies(metadata.get("dependencies")):
        if dep.alias:
            aliases.setdefault(dep.name, []).append(dep.alias)
    for entry, paths in _subcharts(files).items():
        sub_path = f"{repo_dir}/charts/{entry}" if repo_dir else f"charts/{entry}"
        if entry.endswith(".tgz"):
            found = _archive_chart(files[f"charts/{entry}"])
            if found is None:
                continue
            name = found[0]
            for shown in [name, *aliases.get(name, [])]:
                yield ChartOrigin(f"{prefix}charts/{shown}/", sub_path, archive=True)
            continue
        cut = len(f"charts/{entry}/")
        sub_files = {p[cut:]: files[p] for p in paths if len(p) > cut}
        try:
            sub_meta = load_values(sub_files.get(_CHART, b""), "chart.Metadata")
        except ValuesProblem:
            continue
        name = metadata_string(sub_meta.get("name"))
        for shown in [name, *aliases.get(name, [])]:
            yield from _origins(sub_files, sub_meta, f"{prefix}charts/{shown}/", sub_path)


def _present_names(loaded: _Loaded) -> list[str]:
    names = []
    for entry in _subcharts(loaded.files):
        # One Helm cannot load counts, nameless: the render fails with Helm's message.
        if entry.endswith(".tgz"):
            found = _archive_chart(loaded.files[f"charts/{entry}"])
            names.append(found[0] if found else "")
            continue
        try:
            meta = load_values(loaded.files.get(f"charts/{entry}/{_CHART}", b""))
        except ValuesProblem:
            names.append("")
            continue
        names.append(metadata_string(meta.get("name")))
    return names


def _missing(loaded: _Loaded) -> list[_Dependency]:
    """dependency_manager.go `collectMissing`: the lock's entries when there is a lock
    (they carry no alias), else Chart.yaml's; nothing is missing when the counts match,
    whatever the names."""
    lock = loaded.metadata.get("__lock__")
    reqs = _dependencies(
        lock.get("dependencies")
        if isinstance(lock, Mapping)
        else loaded.metadata.get("dependencies")
    )
    if isinstance(lock, Mapping):
        reqs = [replace(d, alias="") for d in reqs]
    present = _present_names(loaded)
    if len(present) == len(reqs):
        return []
    missing: dict[str, _Dependency] = {}
    for dep in reqs:
        if dep.key not in present:
            missing[dep.key] = dep
    return [missing[k] for k in sorted(missing)]


def _local_path(chart_dir: str, dep: _Dependency) -> str:
    """secureLocalChartPath: `charts/<name>` without a repository, else the `file://`
    URL's host and path joined to the chart's directory, kept inside the artifact."""
    if not dep.repository:
        return secure_join(f"{chart_dir}/charts/{dep.name}")
    url = urllib.parse.urlsplit(dep.repository)
    return secure_join("/".join(p for p in (chart_dir, url.netloc, url.path) if p))


def _rename(chart_yaml: bytes, name: str) -> bytes:
    """The alias written as the chart's name, as source-controller does before packaging
    a `file://` dependency; only the `name` scalar changes."""
    text = chart_yaml.decode("utf-8", "replace")
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "name":
                start, end = value.start_mark.index, value.end_mark.index
                return (text[:start] + json.dumps(name) + text[end:]).encode()
    return (text.rstrip("\n") + f"\nname: {json.dumps(name)}\n").encode()


def assemble_chart(listing: ChartListing, chart_dir: str) -> ChartFiles | ChartProblem:
    """The chart at `chart_dir` with every dependency it can have without a download,
    or why it cannot be rendered."""
    chart_dir = secure_join(chart_dir)
    chart_yaml = f"{chart_dir}/{_CHART}" if chart_dir else _CHART
    budget = [MAX_CHART_SIZE]
    try:
        top = _load_dir(listing, chart_dir, budget)
        files = dict(top.files)
        ids = dict(top.ids)
        sources = {f"{chart_dir}/{p}" if chart_dir else p for p in top.files}
        name = metadata_string(top.metadata.get("name"))
        prefix = f"{name}/"
        origins = list(_origins(top.files, top.metadata, prefix, chart_dir))
        used = set(_subcharts(files))
        directories = {chart_dir}
        for dep in _missing(top):
            if not dep.repository or dep.repository.startswith("file://"):
                directories.add(_local_path(chart_dir, dep))
            origins.extend(
                _add_local(
                    listing,
                    chart_yaml,
                    chart_dir,
                    dep,
                    files,
                    ids,
                    used,
                    prefix,
                    budget,
                    top.metadata,
                )
            )
            sources.update(_local_sources(listing, chart_dir, dep))
    except _Fail as exc:
        return exc.problem
    origins.sort(key=lambda o: len(o.prefix), reverse=True)
    return ChartFiles(
        name=name,
        directory=chart_dir,
        files=files,
        blob_ids=ids,
        origins=tuple(origins),
        kube_version=metadata_string(top.metadata.get("kubeVersion")),
        sources=frozenset(sources),
        directories=frozenset(directories),
    )


def _local_sources(listing: ChartListing, chart_dir: str, dep: _Dependency) -> set[str]:
    if dep.repository and not dep.repository.startswith("file://"):
        return set()
    path = _local_path(chart_dir, dep)
    return set(listing.under(path)) | ({path} if listing.exists(path) else set())


def _add_local(
    listing: ChartListing,
    chart_yaml: str,
    chart_dir: str,
    dep: _Dependency,
    files: dict[str, bytes],
    ids: dict[str, str],
    used: set[str],
    prefix: str,
    budget: list[int],
    top_meta: Mapping[str, Any],
) -> list[ChartOrigin]:
    """dependency_manager.go `addLocalDependency` (or a remote one: not rendered)."""
    declared_in = str(top_meta.get("__dependencies_file__", _CHART))
    chart_yaml = chart_yaml[: -len(_CHART)] + declared_in
    line = _dependency_line(files.get(declared_in, b""), dep.name)
    if dep.repository and not dep.repository.startswith("file://"):
        raise _Fail(
            ChartProblem(
                f"dependency '{dep.name}' comes from {dep.repository} and is not vendored "
                "in charts/: it is not fetched, so the chart is not rendered",
                chart_yaml,
                line,
                definite=False,
            )
        )
    failed = f"failed to add local dependency '{dep.key}'"
    path = _local_path(chart_dir, dep)
    if not (listing.is_dir(path) or listing.exists(path)):
        raise _Fail(
            ChartProblem(
                f"{failed}: no chart found at '/{path}' (reference '{dep.repository}')",
                chart_yaml,
                line,
            )
        )
    try:
        constraint = Constraint.parse(dep.version)
    except ValueError as exc:
        raise _Fail(
            ChartProblem(
                f"{failed}: invalid version/constraint format '{dep.version}': {exc}",
                chart_yaml,
                line,
            )
        ) from exc
    if listing.is_dir(path):
        loaded = _load_dir(listing, path, budget)
        version_text = metadata_string(loaded.metadata.get("version"))
    else:
        data = listing.read(path) or b""
        if len(data) > MAX_FILE_SIZE:
            raise _Fail(ChartProblem(f"{failed}: '{path}' is too large", chart_yaml, line))
        try:
            meta = _archive_metadata(data)
        except _ARCHIVE_ERRORS as exc:
            raise _Fail(
                ChartProblem(
                    f"{failed}: failed to load chart from '{path}': {exc}", chart_yaml, line
                )
            ) from exc
        loaded = _Loaded(path, {}, {}, meta)
        version_text = metadata_string(meta.get("version"))
    try:
        version = Version.parse(version_text)
    except ValueError as exc:
        raise _Fail(ChartProblem(f"{failed}: {exc}", chart_yaml, line)) from exc
    if not constraint.check(version):
        raise _Fail(
            ChartProblem(
                f"{failed}: can't get a valid version for constraint '{dep.version}'",
                chart_yaml,
                line,
            )
        )
    entry = dep.key
    suffix = 0
    while entry in used or f"{entry}.tgz" in used:
        # A vendored directory already has this name: another one, Helm reads the name
        # from Chart.yaml, not from the directory.
        suffix += 1
        entry = f"{dep.key}-{suffix}"
    used.add(entry)
    if not loaded.files:
        archive_name = f"charts/{entry}.tgz"
        data = listing.read(path) or b""
        files[archive_name] = data
        ids[archive_name] = listing.blob_id(path) or git_blob_id(data)
        return [ChartOrigin(f"{prefix}charts/{dep.key}/", path, archive=True)]
    sub_files = dict(loaded.files)
    sub_ids = dict(loaded.ids)
    if dep.alias:
        sub_files[_CHART] = _rename(sub_files[_CHART], dep.alias)
        sub_ids[_CHART] = git_blob_id(sub_files[_CHART])
    for rel, data in sub_files.items():
        files[f"charts/{entry}/{rel}"] = data
        ids[f"charts/{entry}/{rel}"] = sub_ids[rel]
    return list(_origins(sub_files, loaded.metadata, f"{prefix}charts/{dep.key}/", path))


def chart_values_files(
    chart: ChartFiles, paths: list[str], ignore_missing: bool = False
) -> ValuesFiles | ValuesError:
    """source-controller `mergeChartValues`, for a chart from a Helm repository (one this
    repository publishes): `valuesFiles` are paths inside the chart, `values.yaml` its
    default values."""
    merged: dict[str, Any] = {}
    used: list[str] = []
    for path in paths:
        clean = posixpath.normpath(path) if path else "."
        if clean == "values.yaml":
            try:
                merged = merge_maps(merged, load_values_documents(chart.files.get(clean, b"")))
            except ValuesProblem as exc:
                return ValuesError(f"cannot load values.yaml: {exc.message}", exc.definite)
            used.append(clean)
            continue
        data = chart.files.get(clean)
        if data is None or clean.startswith(("templates/", "charts/")) or clean == _CHART:
            if ignore_missing:
                continue
            return ValuesError(f"no values file found at path '{path}'")
        try:
            merged = merge_maps(merged, load_values(data, "map[string]interface {}"))
        except ValuesProblem as exc:
            return ValuesError(
                f"unmarshaling values from '{path}' failed: {exc.message}", exc.definite
            )
        used.append(clean)
    return ValuesFiles(merged, tuple(used))
