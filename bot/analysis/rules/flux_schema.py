"""A Flux object that the CRD schema of the cluster's Flux version rejects.

kustomize-controller applies what it builds with server-side apply, and the API server
types every applied object against its CRD schema first: a field the schema does not
declare fails the whole Kustomization with `failed to create typed patch object ...:
.spec.install.disableTakeOwnership: field not declared in schema`, and a wrong type, a
value outside an enum, a missing required field or a violated pattern or bound fails it
with `Invalid value`. So one typo in one HelmRelease stops every object of that
Kustomization from being updated.

Checked against the schemas of the Flux release the cluster runs (vendored for every Flux
minor release from v2.0; the check names the version and where it was read, see the
README): unknown fields (with the nearest field name, `dependson` -> `dependsOn`), fields
that only a newer Flux has ("added in Flux v2.5, but this cluster runs v2.4"), wrong types,
enums, required fields, patterns and bounds, and an `apiVersion` that release no longer
(or not yet) serves, such as `helm.toolkit.fluxcd.io/v2beta1` from Flux v2.7. Under
`x-kubernetes-preserve-unknown-fields` (HelmRelease `values`, for example) any field is
allowed. `metadata` is checked against the fields of ObjectMeta only.

When nothing says which Flux the cluster runs, an apiVersion that newer releases no
longer serve is a warning (set `flux_version`), unless an object applied beside it
uses an apiVersion that only those releases serve: then the cluster cannot be older.
Those warnings come one per kind and apiVersion, on its first object, with the count;
the other objects are its related locations (a repository written for an older Flux has
the same apiVersion on every object of a kind). A change that touches one of them
reports the group.

A value holding `${VAR}` matches any type: Flux's post-build substitution replaces it
before the API server sees it. A `{{ }}` value is left to helm-template-in-raw-manifest.
Files that Helm template syntax breaks, chart templates and files
a kustomization uses as a patch (partial objects: their required fields are not checked)
are not checked as whole objects. The CEL rules of the CRDs (`x-kubernetes-validations`)
are not evaluated: there is no maintained Python evaluator of Kubernetes' CEL dialect.
In a pull request only the objects the change may have changed are validated against
their schema.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import jsonschema_rs
import yaml
from yaml import nodes as ynodes

from bot.analysis import fluxschemas
from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.fluxversion import FluxVersion, cluster_version, flux_version
from bot.analysis.model import ReadKind
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.suppress import suppressed_lines

ID = "flux-schema"
SEVERITY = Severity.ERROR

GROUPS = frozenset(
    {
        "kustomize.toolkit.fluxcd.io",
        "helm.toolkit.fluxcd.io",
        "source.toolkit.fluxcd.io",
        "notification.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
    }
)
_PATCH_FIELDS = frozenset({"patches", "patchesStrategicMerge", "patchesJson6902"})
# ObjectMeta, as the API server types `metadata` of every object.
_METADATA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array"},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {},
        "deletionTimestamp": {},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array"},
        "selfLink": {"type": "string"},
    },
}
# YAML 1.1 booleans that go-yaml v3 (kustomize) reads as strings: their type is unsure.
_YAML11_BOOLS = frozenset(
    {
        "yes",
        "Yes",
        "YES",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "y",
        "Y",
        "n",
        "N",
    }
)


_SCALARS = yaml.SafeLoader("")


class _Any(str):
    """A value whose final type this check cannot know (`${VAR}`); it matches any schema."""

    __slots__ = ()


Path = tuple[str | int, ...]


class _Doc:
    """An object as the API server receives it, and where each field is written (JSON
    path -> the file and line of its key or item). The places are looked up only for an
    object with schema errors: recording them for every object was a fifth of the rule's
    cost on a whole tree, and of what a worker keeps of it."""

    __slots__ = ("_file", "_lines", "_node", "value")

    def __init__(self, value: Any, node: ynodes.Node, file: str) -> None:
        self.value = value
        self._node = node
        self._file = file
        self._lines: dict[Path, tuple[str, int]] | None = None

    @property
    def lines(self) -> dict[Path, tuple[str, int]]:
        if self._lines is None:
            lines: dict[Path, tuple[str, int]] = {}
            _convert(self._node, (), lines, self._file)
            self._lines = lines
        return self._lines


def _convert(
    node: ynodes.Node,
    path: Path,
    lines: dict[Path, tuple[str, int]] | None,
    file: str,
    depth: int = 0,
) -> Any:
    """A node as the API server receives it, with (in `lines`, when given) where each
    field is written: the file a patch or a substitution wrote it from, when not the
    object's own."""
    if depth > 200:
        return _Any("")
    if isinstance(node, ynodes.MappingNode):
        out: dict[str, Any] = {}
        for key, value in node.value:
            if not isinstance(key, ynodes.ScalarNode):
                continue
            if key.tag == "tag:yaml.org,2002:merge":
                merged = _convert(value, path, lines, file, depth + 1)
                if isinstance(merged, dict):
                    for k, v in merged.items():
                        out.setdefault(k, v)
                continue
            field = (*path, key.value) if lines is not None else path
            converted = _convert(value, field, lines, file, depth + 1)
            # The API server drops a null of a field that is not nullable before it
            # validates, and no Flux field is nullable.
            if converted is None:
                out.pop(key.value, None)
                continue
            out[key.value] = converted
            if lines is not None:
                where = yn.origin_of(key, file)
                lines[field] = (where[0], where[1])
        return out
    if isinstance(node, ynodes.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            field = path
            if lines is not None:
                field = (*path, index)
                where = yn.origin_of(item, file)
                lines[field] = (where[0], where[1])
            items.append(_convert(item, field, lines, file, depth + 1))
        return items
    assert isinstance(node, ynodes.ScalarNode)
    raw = node.value
    if "${" in raw or "{{" in raw:
        return _Any(raw)
    value = yn.to_value(node)
    if isinstance(value, yn.Unsure) or (
        isinstance(node.start_mark, yn.Origin)
        and node.start_mark.via
        and node.start_mark.via.startswith("not known")
    ):
        return _Any(raw)
    return value


def _close(schema: Any) -> Any:
    """The schema as the API server's typed apply reads it: an object with `properties`
    accepts no other field unless `x-kubernetes-preserve-unknown-fields` is set."""
    if isinstance(schema, list):
        return [_close(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _close(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _validator(schema_id: str) -> jsonschema.protocols.Validator:
    schema = _close(fluxschemas.load(schema_id))
    schema["properties"]["metadata"] = _METADATA
    schema["properties"].pop("status", None)
    # OpenAPI v3.0 schemas are JSON Schema draft 4 in what Kubernetes uses of them.
    validator: jsonschema.protocols.Validator = jsonschema.Draft4Validator(schema)
    return validator


@cache
def _fast_validator(schema_id: str) -> Any:
    """The same schema compiled by jsonschema-rs, or None when it cannot compile it.

    Walking an object with jsonschema costs a fresh validator per field it descends
    into: about a quarter of a whole-tree check of a 10,000-file repository, for objects
    that are nearly all valid. jsonschema-rs answers "valid?" for the same Draft 4 schema
    an order of magnitude faster; jsonschema still lists the errors of an object it
    refuses, so what a finding says does not depend on it. Formats are not checked by
    either (jsonschema checks none without a format checker)."""
    try:
        schema = _validator(schema_id).schema
        assert isinstance(schema, dict)
        return jsonschema_rs.Draft4Validator(schema, validate_formats=False)
    except Exception:  # a pattern its regex engine refuses: jsonschema alone judges
        return None


def _plain(value: Any) -> Any:
    """`value` with each `_Any` a plain str (jsonschema-rs takes no str subclass): the
    type jsonschema sees in it too."""
    kind = type(value)
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    if kind is list:
        return [_plain(v) for v in value]
    if kind is _Any:
        return str(value)
    return value


def _schema_errors(schema_id: str, value: dict[str, Any]) -> list[jsonschema.ValidationError]:
    """jsonschema's errors of `value`; none without asking it when jsonschema-rs accepts
    the object. jsonschema-rs is never more lenient on these schemas (tests compare them
    on mutated objects); where it is stricter (its `$` does not match before a final
    newline, as Go's does not) jsonschema still decides."""
    fast = _fast_validator(schema_id)
    if fast is not None:
        try:
            if fast.is_valid(_plain(value)):
                return []
        except Exception:  # a value type it does not take: jsonschema alone judges
            pass
    return list(_validator(schema_id).iter_errors(value))


def _subschema(schema: Any, path: Path) -> Any:
    """The schema of the field at `path`, or None when it does not declare it."""
    for part in path:
        if not isinstance(schema, dict):
            return None
        if isinstance(part, int):
            schema = schema.get("items")
        elif part in schema.get("properties", {}):
            schema = schema["properties"][part]
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            return {}
        else:
            return None
    return schema


def _dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the object"


def _field(path: Path) -> str:
    """A field in a message: in code when it has a name, else the object itself."""
    return f"`{_dotted(path)}`" if path else "the object"


def _pretty_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _newer_release_with(
    api: str, kind: str, path: Path, after: tuple[int, int]
) -> fluxschemas.FluxRelease | None:
    for release in fluxschemas.releases():
        if release.minor <= after:
            continue
        sid = release.kinds.get(api, {}).get(kind)
        if sid is not None and _subschema(fluxschemas.load(sid), path) is not None:
            return release
    return None


@dataclass
class _Target:
    path: str  # the file that defines the object
    doc: ys.Node  # the object as built (or as written, where no build applies it)
    api: str
    kind: str
    patch: bool
    # The cluster that applies it as built (None: as written)
    cluster: Any = None


def _patch_files(repo: Snapshot) -> set[str]:
    return {
        e.target
        for k in repo.kustomizations.values()
        for e in k.entries
        if e.target and e.field in _PATCH_FIELDS
    }


def _targets(repo: Snapshot) -> Iterator[_Target]:
    """The Flux objects to judge: each as every cluster applies it (after kustomize and
    Flux's patches and substitution); without clusters, as standalone builds make them
    and, in files no build reads, as written."""
    build = repo.build
    if build.has_clusters:
        seen: set[tuple[str, int, int]] = set()
        broken: dict[str, bool] = {}
        for cluster in build.clusters:
            for obj in cluster.objects():
                if obj.id.group not in GROUPS:
                    continue
                is_broken = broken.get(obj.path)
                if is_broken is None:
                    is_broken = broken[obj.path] = _broken(repo, obj.path)
                if is_broken:
                    continue
                key = (obj.path, obj.res.doc, id(obj.node))
                if key in seen:
                    continue
                seen.add(key)
                yield _Target(obj.path, obj.node, obj.res.api_version, obj.id.kind, False, cluster)
        return
    patches: set[str] | None = None
    for path in repo.paths:
        if not path.endswith((".yaml", ".yml", ".json")):
            continue
        role = repo.chart_role(path)
        if role is not None and role[1] == "templates":
            continue
        data = repo.data(path)
        if not data or b"toolkit.fluxcd.io" not in data:
            continue
        consumers = repo.consumers.get(path, ())
        if consumers and not any(c.how is ReadKind.RAW for c in consumers):
            continue
        if _broken(repo, path):
            continue
        if patches is None:
            patches = _patch_files(repo)
        for doc in repo.documents(path):
            api = ys.scalar(ys.get(doc, "apiVersion")) or ""
            kind = ys.scalar(ys.get(doc, "kind"))
            if api.partition("/")[0] in GROUPS and kind:
                yield _Target(path, doc, api, kind, path in patches)


def _broken(repo: Snapshot, path: str) -> bool:
    """Template syntax that breaks the file is reported, once, by
    helm-template-in-raw-manifest; a file nothing here applies that holds it is likely a
    template for another tool. `{{ }}` in a HelmRelease's values is fine."""
    data = repo.data(path) or b""
    return b"{{" in data and (not repo.consumers.get(path) or bool(repo.raw_template_actions(path)))


_PATCHING = re.compile(
    rb"^[ \t]*(?:patches|patchesStrategicMerge|patchesJson6902|components|replacements)[ \t]*:",
    re.M,
)


def may_be_patched(repo: Snapshot, path: str) -> bool:
    """Whether a kustomization or the Flux Kustomization on the way from this file to the
    cluster patches what it builds: a field missing here may be added there (home-ops
    repositories set every HelmRelease's `interval` from the Flux Kustomization)."""
    if not repo.consumers.get(path):
        return True  # applied from outside the repository, by who knows what
    seen = {path}
    stack = [path]
    while stack:
        current = stack.pop()
        for c in repo.consumers.get(current, ()):
            if c.source in seen:
                continue
            seen.add(c.source)
            if _PATCHING.search(repo.data(c.source) or b""):
                return True
            # A parent Flux Kustomization's patches apply to the Kustomization object,
            # not to what that one builds: stop at the first.
            if not c.reader.is_flux_root:
                stack.append(c.source)
    return False


@cache
def _known_kind(group: str, kind: str) -> bool:
    return any(
        kind in kinds
        for release in fluxschemas.releases()
        for api, kinds in release.kinds.items()
        if api.partition("/")[0] == group
    )


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes API version order: v2 > v2beta2 > v2beta1 > v1 > v1beta1 > v1alpha1."""
    m = _KUBE_VERSION.match(version)
    if m is None:
        return (0, 0, 0)
    stage = {"alpha": 0, "beta": 1, None: 2}[m[2]]
    return (int(m[1]), stage, int(m[3] or 0))


def _served_hint(target: _Target, version: FluxVersion) -> str:
    group = target.api.partition("/")[0]
    served = sorted(
        (
            api.partition("/")[2]
            for api, kinds in version.release.kinds.items()
            if api.partition("/")[0] == group and target.kind in kinds
        ),
        key=_version_priority,
    )
    return f"; use {group}/{served[-1]} (see `flux migrate`)" if served else ""


def _api_problem(target: _Target, version: FluxVersion) -> tuple[str, str] | None:
    """The message and detail of an apiVersion the release does not serve."""
    release = version.release
    if target.kind in release.kinds.get(target.api, {}):
        return None
    group = target.api.partition("/")[0]
    served = sorted(
        (
            api.partition("/")[2]
            for api, kinds in release.kinds.items()
            if api.partition("/")[0] == group and target.kind in kinds
        ),
        key=_version_priority,
    )
    history = [r for r in fluxschemas.releases() if target.kind in r.kinds.get(target.api, {})]
    if history and history[0].minor > release.minor:
        when = f"it was added in Flux {history[0].label}; this cluster runs {release.label}"
    elif history:
        removed = next((r for r in fluxschemas.releases() if r.minor > history[-1].minor), None)
        when = f"it was removed in Flux {removed.label}" if removed else "it is not served"
    else:
        when = "no Flux release serves it"
    hint = (
        _served_hint(target, version)
        if "removed" in when
        else (f"; use {group}/{served[-1]}" if served else "")
    )
    return (
        f"`{target.api}` {target.kind} is not served by Flux {release.label}: {when}{hint}.",
        f"Flux version: {version.describe()}. The API server has no CRD version for the "
        "object, so the Kustomization applying it fails.",
    )


def _error_findings(
    ctx: Context, target: _Target, version: FluxVersion, checked: _Validated
) -> Iterator[Finding]:
    converted, errors = checked.converted, checked.errors
    seen: set[tuple[str, int, str]] = set()
    where = f"{target.kind} in Flux {version.release.label}"
    detail = (
        f"Flux version: {version.describe()}. The API server validates the object against "
        "this CRD schema and refuses it, so the Kustomization applying it fails."
    )
    # A typo'd field is also a missing one: `intervall` is reported once, as the typo.
    meant: set[tuple[Path, str]] = set()
    for error in errors:
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = (
                list(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
            )
            for key in error.instance:
                guess = _guess(key, known) if key not in known else None
                if guess:
                    meant.add((tuple(error.absolute_path), guess))
    for error in errors:
        path: Path = tuple(error.absolute_path)
        if any(isinstance(p, str) and "${" in p for p in path):
            continue
        if isinstance(error.instance, _Any):
            continue
        if kind_enum_is_extended(target, path, error.validator):
            continue
        file, line = converted.lines.get(path, yn.origin_of(target.doc, target.path)[:2])
        kind = error.validator
        if kind == "additionalProperties":
            schema = error.schema if isinstance(error.schema, dict) else {}
            known = list(schema.get("properties", {}))
            instance = error.instance if isinstance(error.instance, dict) else {}
            for key in instance:
                if key in known or "${" in key or (target.patch and key.startswith("$")):
                    continue
                full = (*path, key)
                kfile, kline = converted.lines.get(full, (file, line))
                newer = _newer_release_with(target.api, target.kind, full, version.minor)
                if newer is not None:
                    message = (
                        f"{_field(full)} was added in Flux {newer.label}, but this cluster "
                        f"runs {version.release.label}: the API server refuses the object."
                    )
                else:
                    message = (
                        f"{_field(full)} is not a field of {where}: the API server refuses "
                        "the object."
                    )
                    guess = _guess(key, known)
                    if guess:
                        message += f" Did you mean `{guess}`?"
                if (kfile, kline, message) not in seen:
                    seen.add((kfile, kline, message))
                    yield ctx.finding(ID, SEVERITY, kfile, kline, message, detail=detail)
            continue
        if kind == "required":
            # As built, a missing field is missing; as written (no cluster shows what
            # applies the file) a parent may patch it in.
            if target.patch or (target.cluster is None and may_be_patched(ctx.repo, target.path)):
                continue
            missing = error.message.split("'")[1] if error.message.count("'") >= 2 else ""
            if (path, missing) in meant:
                continue
            message = (
                f"{_field(path)} lacks `{missing}`, required in {where}."
                if missing
                else f"{_field(path)} lacks a field required in {where}: {error.message}."
            )
        elif kind == "type":
            message = (
                f"{_field(path)} must be {error.validator_value}, not "
                f"{_pretty_type(error.instance)}, in {where}."
            )
        elif kind == "enum":
            allowed = ", ".join(str(v) for v in list(error.validator_value))  # type: ignore[arg-type]
            message = f"{_field(path)} is {error.instance!r}; {where} accepts: {allowed}."
        elif kind == "pattern":
            message = (
                f"{_field(path)} {error.instance!r} does not match the pattern "
                f"`{error.validator_value}` of {where}."
            )
        else:
            message = f"{_field(path)} fails the {kind} check of {where}: {error.message}."
        if (file, line, message) not in seen:
            seen.add((file, line, message))
            yield ctx.finding(ID, SEVERITY, file, line, message, detail=detail)


def kind_enum_is_extended(target: _Target, path: Path, validator: object) -> bool:
    """The enums of the kinds an Alert or Receiver may name are there to be extended:
    the Flux Operator adds FluxInstance and ResourceSet to the installed CRDs, and
    third-party controllers document a patch that adds theirs."""
    return (
        validator == "enum"
        and target.api.startswith("notification.toolkit.fluxcd.io/")
        and len(path) == 4
        and path[1] in ("eventSources", "resources")
        and path[3] == "kind"
    )


def _guess(key: str, known: list[str]) -> str | None:
    lowered = {k.lower(): k for k in known}
    if key.lower() in lowered:
        return lowered[key.lower()]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return close[0] if close else None


def _first_serving(target: _Target) -> fluxschemas.FluxRelease | None:
    for release in fluxschemas.releases():
        if target.kind in release.kinds.get(target.api, {}):
            return release
    return None


# What the loop over targets does with one: a finding about its apiVersion, or a
# validation against the schema of a Flux version.
_Step = tuple[str, int, str, str] | tuple[FluxVersion, str]


def _plan(
    repo: Snapshot,
    deprecated: dict[tuple[str, str], dict[tuple[str, int], None]],
) -> Iterator[tuple[_Target, _Step]]:
    """For each target, its apiVersion's finding (file, line, message, detail), or the
    version and schema to validate it against; the objects of apiVersions a newer Flux
    no longer serves, where nothing says which Flux runs, are added to `deprecated`."""
    targets = [t for t in _targets(repo) if _known_kind(t.api.partition("/")[0], t.kind)]

    # A working repository only uses apiVersions its clusters serve: when nothing says
    # which Flux a cluster runs, the newest release that first served an apiVersion used
    # beside this object (same file, or applied by the same Flux Kustomization, so on
    # the same cluster) is a floor for it.
    def scope(t: _Target) -> object:
        return id(t.cluster) if t.cluster is not None else t.path

    firsts = [(scope(t), _first_serving(t)) for t in targets if not t.patch]

    def floor_of(target: _Target) -> fluxschemas.FluxRelease | None:
        mine = scope(target)
        candidates = [r for group, r in firsts if r is not None and group == mine]
        return max(candidates, key=lambda r: r.minor, default=None)

    versions: dict[int, FluxVersion] = {}
    for target in targets:
        if target.cluster is not None:
            if id(target.cluster) not in versions:
                versions[id(target.cluster)] = cluster_version(
                    repo, target.cluster
                ) or flux_version(repo, None)
            version = versions[id(target.cluster)]
        else:
            version = flux_version(repo, target.path)
        api_problem = _api_problem(target, version)
        if api_problem is not None:
            node = ys.get(target.doc, "apiVersion")
            file, line = yn.origin_of(node if node is not None else target.doc, target.path)[:2]
            serving = [
                r for r in fluxschemas.releases() if target.kind in r.kinds.get(target.api, {})
            ]
            floor = floor_of(target) if serving and not version.detected else None
            removed_by_floor = floor is not None and floor.minor > serving[-1].minor
            message, detail = api_problem
            if version.detected or not serving:
                yield target, (file, line, message, detail)
                continue
            if removed_by_floor and floor is not None:
                yield (
                    target,
                    (
                        file,
                        line,
                        message.replace(
                            f"not served by Flux {version.release.label}",
                            f"not served by this cluster's Flux, at least {floor.label},",
                        ),
                        f"Nothing says which Flux the cluster runs, but it serves an apiVersion "
                        f"applied beside this object that Flux {floor.label} introduced.",
                    ),
                )
                continue
            # Nothing says which Flux the cluster runs, and an older one may well serve
            # this apiVersion: a warning, one per apiVersion and kind (a repository that
            # predates a Flux release has it on every object of that kind). The object is
            # checked against the newest release that serves its apiVersion.
            deprecated.setdefault((target.kind, target.api), {})[(file, line)] = None
            version = FluxVersion(
                serving[-1],
                serving[-1].release,
                f"the newest release that serves {target.api}",
                False,
            )
        yield target, (version, version.release.kinds[target.api][target.kind])


_Deprecated = dict[tuple[str, str], dict[tuple[str, int], None]]


def _planned(repo: Snapshot) -> tuple[list[tuple[_Target, _Step]], _Deprecated]:
    """Each snapshot's plan, made once: a pull request's two sides each read the other's."""

    def make(repo: Snapshot) -> tuple[list[tuple[_Target, _Step]], _Deprecated]:
        deprecated: _Deprecated = {}
        return list(_plan(repo, deprecated)), deprecated

    return repo.derived("flux-schema-plan", make)


def _judged_as(target: _Target, version: FluxVersion, schema_id: str) -> tuple[object, ...]:
    """What an object's schema findings are a function of: the very node (a built
    object is the same node at base and head when nothing it was built from changed,
    see `_validated`), the file it is named in, and how it is judged."""
    judged = (version.release.release, version.version, version.reason, version.detected)
    return (id(target.doc), target.path, target.api, target.kind, target.patch, schema_id, judged)


def _judged_alike(repo: Snapshot) -> set[tuple[object, ...]] | None:
    """How the other side of the change judges each of its objects, when only what the
    change introduces is reported (None otherwise). An object judged alike on both sides
    has the same findings at the same lines of files the change left as they were, so
    none is introduced: it is validated on neither side (kubernetes-schema does the
    same, see `kubeobjects.Unchanged`)."""
    peer = repo.peer
    if peer is None:
        return None
    alike: set[tuple[object, ...]] = set()
    for target, step in _planned(peer.other)[0]:
        if len(step) == 2:
            alike.add(_judged_as(target, step[0], step[1]))
    return alike


def check(ctx: Context) -> Iterator[Finding]:
    # A ResourceSet makes one object per input from the same lines: what is wrong with
    # those lines is said once (and a change adding an input does not introduce it).
    said: set[tuple[str, int, str, str]] = set()
    for finding in _check(ctx):
        key = (finding.path, finding.line, finding.message, finding.detail)
        if key not in said:
            said.add(key)
            yield finding


def _check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    alike = _judged_alike(repo)
    plan, deprecated = _planned(repo)
    for target, step in plan:
        if len(step) == 4:
            file, line, message, detail = step
            yield ctx.finding(ID, SEVERITY, file, line, message, detail=detail)
            continue
        version, schema_id = step
        if alike is not None and _judged_as(target, version, schema_id) in alike:
            continue
        checked = _validated(repo, target, schema_id)
        if checked is not None:
            yield from _error_findings(ctx, target, version, checked)
    for (kind, api), where in sorted(deprecated.items()):
        # The group stands for each object: one that its own line or the config silences
        # is left out of it, not the whole group with it (as it would be, first).
        kept = [(f, n) for f, n in sorted(where) if not _silenced(ctx, f, n)]
        if kept:
            yield _deprecation(ctx, kind, api, kept)


def _silenced(ctx: Context, path: str, line: int) -> bool:
    repo = ctx.repo
    if repo.config.is_ignored(path):
        return True
    if b"flux-review:" not in (repo.data(path) or b""):
        return False
    return ID in suppressed_lines(repo.text(path) or "", ctx.rule_ids).get(line, ())


def _deprecation(ctx: Context, kind: str, api: str, where: list[tuple[str, int]]) -> Finding:
    """One warning for every object of an apiVersion a newer Flux no longer serves, on
    the first of them, the others related."""
    serving = [r for r in fluxschemas.releases() if kind in r.kinds.get(api, {})]
    removed = next(r for r in fluxschemas.releases() if r.minor > serving[-1].minor)
    group = api.partition("/")[0]
    newest = fluxschemas.releases()[-1]
    served = sorted(
        (
            a.partition("/")[2]
            for a, kinds in newest.kinds.items()
            if a.startswith(group + "/") and kind in kinds
        ),
        key=_version_priority,
    )
    hint = f"; use {group}/{served[-1]}" if served else ""
    count = f"{len(where)} {kind} objects use it" if len(where) > 1 else "this object uses it"
    (file, line), others = where[0], where[1:]
    message = (
        f"`{api}` {kind} is served up to Flux {serving[-1].label} only, so Flux "
        f"{removed.label} and later cannot apply it{hint}; {count}."
    )
    detail = (
        "Nothing here says which Flux the clusters run (no gotk-components.yaml, FluxInstance "
        "or flux-instance HelmRelease); set `flux_version` in the flux-review config to check "
        "against it. `flux migrate` rewrites the objects."
    )
    if others:
        detail += "\nObjects of this apiVersion:\n" + "\n".join(f"- {f}:{n}" for f, n in where)
    return ctx.finding(
        ID,
        Severity.WARNING,
        file,
        line,
        message,
        related=[Location(f, n, message=f"also `{api}` {kind}") for f, n in others],
        key=("deprecated", kind, api),
        detail=detail,
    )


@dataclass(frozen=True)
class _Validated:
    """An object as the API server receives it, and its schema's errors."""

    doc: ynodes.Node  # what it was made from (kept: its id is part of the key)
    converted: _Doc
    errors: list[jsonschema.ValidationError]


def _validated(repo: Snapshot, target: _Target, schema_id: str) -> _Validated | None:
    """`target` converted and validated against `schema_id`; None when it is no object.
    Built objects the change did not reach are the same nodes at base and head (and in
    the worker's next review), so their validation is shared by node."""
    key = (ID, schema_id, target.path, id(target.doc))
    found = repo.shared.get(key)
    if isinstance(found, _Validated) and found.doc is target.doc:
        return found
    value = _convert(target.doc, (), None, target.path)
    if not isinstance(value, dict):
        return None
    value.pop("status", None)
    errors = _schema_errors(schema_id, value)
    checked = _Validated(target.doc, _Doc(value, target.doc, target.path), errors)
    repo.shared[key] = checked
    return checked
