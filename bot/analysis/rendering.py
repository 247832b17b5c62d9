"""Rendering a chart as helm-controller does: the interface the analysis sees.

A `Renderer` takes a chart's files (`helmchart.ChartFiles`), the user-supplied values
(`helmvalues`), the release's name and namespace and the cluster's Kubernetes version,
and returns the manifests per template, or where and why rendering failed. The analysis
never renders itself: the optional `flux-review[helm]` extra provides a renderer
(`bot.helm.renderer()`), which renders in a separate, limited process; without it the
caller says once that HelmReleases were not rendered.

Nothing in this module imports the Helm SDK.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import cachetools

from bot.analysis.helmchart import ChartFiles, chart_values_files
from bot.analysis.helmvalues import (
    MergedValues,
    ValuesError,
    ValuesReference,
    ValuesSource,
    ValuesUnknown,
    chart_values_from_references,
    merge_values_files,
)
from bot.analysis.semver import Constraint, Version

__all__ = [
    "NOT_INSTALLED_NOTICE",
    "CachingRenderer",
    "FailureKind",
    "Position",
    "PreparedRelease",
    "RenderCache",
    "RenderFailure",
    "RenderRequest",
    "RenderResult",
    "Rendered",
    "Renderer",
    "RendererUnavailable",
    "check_kube_version",
    "error_positions",
    "failure_from_helm",
    "kube_version",
    "prepare_release",
    "release_name",
    "release_namespace",
    "storage_namespace",
]

NOT_INSTALLED_NOTICE = (
    "HelmReleases of charts in this repository were not rendered: install flux-review[helm]"
)

# helm-controller `internal/release/name.go` ShortenName: Helm refuses longer names.
_MAX_RELEASE_NAME = 53


def release_name(name: str, spec: Mapping[str, Any]) -> str:
    """`HelmRelease.GetReleaseName`, shortened as helm-controller shortens it:
    `spec.releaseName`, else `<targetNamespace>-<name>`, else the HelmRelease's name."""
    chosen = str(spec.get("releaseName") or "")
    if not chosen:
        target = str(spec.get("targetNamespace") or "")
        chosen = f"{target}-{name}" if target else name
    if len(chosen) <= _MAX_RELEASE_NAME:
        return chosen
    digest = hashlib.sha256(chosen.encode()).hexdigest()
    return chosen[: _MAX_RELEASE_NAME - 13] + "-" + digest[:12]


def release_namespace(namespace: str, spec: Mapping[str, Any]) -> str:
    """`.Release.Namespace`: `spec.targetNamespace`, else the HelmRelease's namespace."""
    return str(spec.get("targetNamespace") or namespace)


def storage_namespace(namespace: str, spec: Mapping[str, Any]) -> str:
    """Where Helm stores the release (it does not change what is rendered)."""
    return str(spec.get("storageNamespace") or namespace)


_KUBE_VERSION = re.compile(r"v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?([-+][0-9A-Za-z.+-]*)?")


def kube_version(text: str) -> str:
    """A configured Kubernetes version (`1.31`, `v1.31.4`) as a cluster reports it
    (`v1.31.0`, `v1.31.4`): what `.Capabilities.KubeVersion.Version` holds under
    helm-controller, which asks the API server. Raises ValueError."""
    m = _KUBE_VERSION.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a Kubernetes version: {text!r}")
    major, minor, patch, rest = m.groups()
    return f"v{int(major)}.{int(minor)}.{int(patch or 0)}{rest or ''}"


class FailureKind(enum.StrEnum):
    TEMPLATE = "template"  # a template fails (`required`, a nil map, a typo in `include`)
    VALUES = "values"  # values Helm refuses (`values.schema.json`)
    CHART = "chart"  # a chart Helm cannot load or that refuses the cluster's version
    LIMIT = "limit"  # the render exceeded its time, memory or output limit
    UNAVAILABLE = "unavailable"  # the renderer itself could not run

    @property
    def definite(self) -> bool:
        """Whether Helm fails the same way on the cluster."""
        return self in (FailureKind.TEMPLATE, FailureKind.VALUES, FailureKind.CHART)


@dataclass(frozen=True)
class Position:
    template: str  # a rendered template's name: `app/templates/deployment.yaml`
    line: int
    column: int | None = None


@dataclass(frozen=True)
class RenderFailure:
    kind: FailureKind
    message: str  # one line: the innermost reason
    positions: tuple[Position, ...] = ()  # outermost (the template rendered) first
    detail: str = ""  # Helm's whole message (bounded)

    @property
    def position(self) -> Position | None:
        """Where the failing action is: the innermost position in a chart file (a
        helper's line when an `include`d helper fails)."""
        return self.positions[-1] if self.positions else None


@dataclass(frozen=True)
class Rendered:
    manifests: Mapping[str, str]  # template name -> rendered text (NOTES.txt, blank left out)
    crds: Mapping[str, str] = field(default_factory=dict)  # crds/ files Helm would apply

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.manifests.values()) + sum(
            len(t) for t in self.crds.values()
        )


RenderResult = Rendered | RenderFailure


@dataclass(frozen=True)
class RenderRequest:
    chart: ChartFiles
    values: Mapping[str, Any]  # user-supplied: valuesFrom then values, merged
    release_name: str
    namespace: str
    kube_version: str | None = None  # `v1.31.0`; None: the newest the renderer knows
    api_versions: tuple[str, ...] = ()  # added to `.Capabilities.APIVersions` (CRDs)
    skip_schema_validation: bool = False  # `spec.install.disableSchemaValidation`

    def files(self) -> Mapping[str, bytes]:
        chart = self.chart.without_schemas() if self.skip_schema_validation else self.chart
        return chart.files

    def values_json(self) -> str:
        """The values as JSON, the way helm-controller's values reach Helm: numbers
        become float64 (Helm prints a million as `1e+06`, as on the cluster). One
        difference: an integer a `targetPath` sets stays an int64 in helm-controller
        (printed `1000000`); through JSON it is a float64 here too."""
        return json.dumps(self.values, separators=(",", ":"), allow_nan=False)

    @cached_property
    def key(self) -> str:
        """Equal for two requests that render the same: blob ids, values, options."""
        digest = hashlib.sha256()
        digest.update(self.chart.key.encode())
        for part in (
            json.dumps(self.values, sort_keys=True, separators=(",", ":"), allow_nan=False),
            self.release_name,
            self.namespace,
            self.kube_version or "",
            "\0".join(self.api_versions),
            "skip-schema" if self.skip_schema_validation else "",
        ):
            digest.update(b"\0" + part.encode())
        return digest.hexdigest()


class Renderer(Protocol):
    def render(self, request: RenderRequest) -> RenderResult: ...

    def render_all(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        """Several renders, in parallel where the renderer can; results in order."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RendererUnavailable:
    """No renderer: `reason` for logs; `notice` the one line a review says once."""

    reason: str
    notice: str = NOT_INSTALLED_NOTICE


def check_kube_version(chart: ChartFiles, version: str) -> RenderFailure | None:
    """Helm's install (`pkg/action/action.go renderResources`): a chart whose
    `kubeVersion` the cluster does not satisfy is refused before anything renders (an
    unparsable constraint never matches)."""
    if not chart.kube_version:
        return None
    try:
        ok = Constraint.parse(chart.kube_version).check(Version.parse(version))
    except ValueError:
        ok = False
    if ok:
        return None
    return RenderFailure(
        FailureKind.CHART,
        f"chart requires kubeVersion: {chart.kube_version} which is incompatible with "
        f"Kubernetes {version}",
    )


# A template's name always has a directory (`<chart>/templates/...`); `tpl`'s inline
# templates are named `gotpl` and have none.
_POSITION = re.compile(r"(?:^|[\s(])((?:[^\s():\"<>]+/)+[^\s():\"<>]+):(\d+)(?::(\d+))?")
_HELM_STYLE = re.compile(r"^(?:execution|parse) error at \([^)]*\): (.*)$", re.S)
_MAX_MESSAGE = 1000


def _summary(message: str) -> str:
    m = _HELM_STYLE.match(message.strip())
    if m is not None:
        text = m.group(1)
    else:
        # Go's text/template: `<where> executing "<name>" at <<action>>: <reason>`,
        # nested once per `include`: the reason of the innermost action.
        cut = message.rfind(">:")
        text = message[cut + 2 :] if cut >= 0 else message
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def error_positions(message: str) -> tuple[Position, ...]:
    """Every `<template>:<line>[:<column>]` of a Helm error, outermost first."""
    out: list[Position] = []
    for m in _POSITION.finditer(message):
        position = Position(m.group(1), int(m.group(2)), int(m.group(3)) if m.group(3) else None)
        if not out or out[-1] != position:
            out.append(position)
    return tuple(out)


_KINDS = {
    "HelmRenderError": FailureKind.TEMPLATE,
    "HelmValuesError": FailureKind.VALUES,
}


def failure_from_helm(error_type: str, message: str) -> RenderFailure:
    """A failure from the Helm SDK's exception class name and message."""
    kind = _KINDS.get(error_type, FailureKind.CHART)
    return RenderFailure(kind, _summary(message), error_positions(message), message)


class RenderCache:
    """Results by request key (the blob ids of the inputs), least recently used first
    out, bounded by the size of what they hold."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._cache: cachetools.LRUCache[str, RenderResult] = cachetools.LRUCache(
            maxsize=max_bytes, getsizeof=_size
        )
        self._lock = threading.Lock()

    def get(self, key: str) -> RenderResult | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: str, result: RenderResult) -> None:
        if isinstance(result, RenderFailure) and result.kind is FailureKind.UNAVAILABLE:
            return
        with self._lock, contextlib.suppress(ValueError):  # larger than the whole cache
            self._cache[key] = result

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)


def _size(result: RenderResult) -> int:
    base = 512
    if isinstance(result, Rendered):
        return base + result.size
    return base + len(result.message) + len(result.detail)


class CachingRenderer:
    """A renderer that renders each distinct request once: base and head share what
    did not change, as do HelmReleases that render a chart with the same values."""

    def __init__(self, inner: Renderer, cache: RenderCache | None = None) -> None:
        self.inner = inner
        self.cache = cache if cache is not None else RenderCache()

    def render(self, request: RenderRequest) -> RenderResult:
        return self.render_all([request])[0]

    def render_all(self, requests: Sequence[RenderRequest]) -> list[RenderResult]:
        results: dict[str, RenderResult] = {}
        todo: dict[str, RenderRequest] = {}
        for request in requests:
            key = request.key
            if key in results or key in todo:
                continue
            cached = self.cache.get(key)
            if cached is not None:
                results[key] = cached
            else:
                todo[key] = request
        if todo:
            for (key, _), result in zip(
                todo.items(), self.inner.render_all(list(todo.values())), strict=True
            ):
                self.cache.put(key, result)
                results[key] = result
        return [results[r.key] for r in requests]

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class PreparedRelease:
    """A HelmRelease ready to render, and where its values came from."""

    request: RenderRequest
    values_files: tuple[str, ...] = ()  # repository paths (Git) or chart paths
    values_from: tuple[str, ...] = ()  # where the valuesFrom content is defined


def prepare_release(
    chart: ChartFiles,
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
    lookup: Callable[[str, str, str], ValuesSource],
    read_artifact: Callable[[str], bytes | None] | None = None,
    kube_version: str | None = None,
    api_versions: tuple[str, ...] = (),
) -> PreparedRelease | ValuesError | ValuesUnknown:
    """The render helm-controller would do for HelmRelease `namespace/name` (its built
    `spec`), with `chart` assembled from the repository.

    `read_artifact` reads the source artifact's files for a chart from a Git or Bucket
    source (`valuesFiles` relative to its root); None for a chart from a Helm repository
    (`valuesFiles` inside the chart). `lookup(kind, namespace, name)` finds the ConfigMaps
    and Secrets of `valuesFrom` on the cluster as the repository defines them.
    """
    chart_spec = _mapping(_mapping(spec.get("chart")).get("spec"))
    files = [str(f) for f in chart_spec.get("valuesFiles") or [] if isinstance(f, str)]
    ignore_missing = chart_spec.get("ignoreMissingValuesFiles") is True
    used: tuple[str, ...] = ()
    if files:
        merged = (
            merge_values_files(read_artifact, files, ignore_missing)
            if read_artifact is not None
            else chart_values_files(chart, files, ignore_missing)
        )
        if isinstance(merged, ValuesError):
            return merged
        replaced = chart.with_default_values(merged.values)
        if isinstance(replaced, ValuesError):
            return replaced
        chart, used = replaced, merged.files
    refs = [
        ValuesReference.from_spec(item)
        for item in spec.get("valuesFrom") or []
        if isinstance(item, Mapping)
    ]
    values = spec.get("values")
    composed = chart_values_from_references(
        namespace, values if isinstance(values, Mapping) else None, refs, lookup
    )
    if not isinstance(composed, MergedValues):
        return composed
    install = _mapping(spec.get("install"))
    request = RenderRequest(
        chart,
        composed.values,
        release_name(name, spec),
        release_namespace(namespace, spec),
        kube_version=kube_version,
        api_versions=api_versions,
        skip_schema_validation=install.get("disableSchemaValidation") is True,
    )
    return PreparedRelease(request, used, composed.origins)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
