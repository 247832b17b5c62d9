"""The values a HelmRelease's chart is rendered with, composed as Flux composes them.

Order (later wins), as helm-controller and source-controller build them:

1. the chart's `values.yaml`, or, when `spec.chart.spec.valuesFiles` is set, the merge of
   those files *instead* (source-controller `internal/helm/chart/builder_local.go`
   `mergeFileValues` + `OverwriteChartDefaultValues`: for a Git or Bucket source the paths
   are relative to the artifact root and the chart's own `values.yaml` counts only if
   listed; `builder_remote.go` `mergeChartValues` for a chart from a Helm repository:
   paths inside the chart);
2. `spec.valuesFrom`, in order (fluxcd/pkg `chartutil/values.go`
   `ChartValuesFromReferences`, which helm-controller calls from
   `internal/controller/helmrelease_controller.go`);
3. `spec.values`, merged last by the same function;

then Helm coalesces 2-3 (the user values) over 1 (the chart's defaults) when it renders.

YAML here is read the way those controllers read it: `sigs.k8s.io/yaml` over go-yaml v2
(YAML 1.1: `yes`, `on`, `y` are booleans; `0755` is octal; timestamps stay strings; only
the first document of a values file counts), then through JSON (non-string keys become
strings, aliases become copies). PyYAML's resolvers are YAML 1.1 too but not go-yaml's
(no `y`/`n`, different integers), so the plain-scalar resolution is go-yaml v2's
`resolve.go`, ported.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import nodes as ynodes

from bot.analysis import strvals
from bot.analysis.model import secure_join

__all__ = [
    "ABSENT",
    "Found",
    "MergedValues",
    "Unknown",
    "ValuesProblem",
    "ValuesReference",
    "ValuesSource",
    "ValuesUnknown",
    "chart_values_from_references",
    "load_values",
    "load_values_documents",
    "merge_maps",
    "merge_values_files",
    "metadata_string",
    "values_source_of",
]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Nesting beyond this is refused here, not by Flux (Go's JSON decoder stops at 10,000):
# Python's JSON encoder recurses, and no chart's values come near it.
MAX_DEPTH = 256


class ValuesProblem(ValueError):
    """Values Flux cannot compose (`definite`: the HelmRelease fails on the cluster with
    this message), or that this reader refuses (`definite` False: not rendered)."""

    def __init__(self, message: str, definite: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.definite = definite


# go-yaml v2 resolve.go: the plain scalars it looks up in a table, by exact spelling.
_RESOLVE_MAP: dict[str, tuple[str, Any]] = {}
for _words, _tag, _value in (
    (("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), "bool", True),
    (("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), "bool", False),
    (("", "~", "null", "Null", "NULL"), "null", None),
    ((".nan", ".NaN", ".NAN"), "float", math.nan),
    ((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), "float", math.inf),
    (("-.inf", "-.Inf", "-.INF"), "float", -math.inf),
    (("<<",), "merge", "<<"),
):
    for _word in _words:
        _RESOLVE_MAP[_word] = (_tag, _value)

_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


def _go_parse_uint(body: str) -> int:
    prefix = body[:2].lower()
    if prefix == "0x":
        return int(body[2:], 16)
    if prefix == "0o":
        return int(body[2:], 8)
    if prefix == "0b":
        return int(body[2:], 2)
    if len(body) > 1 and body[0] == "0":
        return int(body[1:], 8)
    return int(body)


def _go_int(plain: str) -> int | None:
    """strconv.ParseInt(plain, 0, 64), then ParseUint(plain, 0, 64)."""
    m = _GO_INT.fullmatch(plain)
    if m is None:
        return None
    sign, body = m.groups()
    value = _go_parse_uint(body)
    if sign == "-":
        value = -value
        return value if value >= _INT64_MIN else None
    if value <= _INT64_MAX:
        return value
    # ParseUint takes no sign at all.
    return value if not sign and value <= _UINT64_MAX else None


def _resolve(text: str) -> tuple[str, Any]:
    """go-yaml v2 `resolve("", text)` for a plain scalar: (tag, value)."""
    if text == "<<":
        # A merge key, whatever its first character's hint (decode.go isMerge).
        return "merge", text
    # resolve.go's resolveTable: the first character says what the scalar may be.
    hint = text[0] if text else "N"
    if hint in "+-0123456789yYnNtTfFoO~.":
        known = _RESOLVE_MAP.get(text)
        if known is not None:
            return known
        if hint == "." and _DOT_FLOAT.fullmatch(text):
            return "float", float(text)
        if hint in "+-0123456789":
            # Timestamps would be tried first, but go-yaml v2 hands them to an untyped
            # target as the original string, which is what falling through gives.
            plain = text.replace("_", "")
            number = _go_int(plain)
            if number is not None:
                return "int", number
            if _YAML_STYLE_FLOAT.fullmatch(plain):
                value = float(plain)
                # ParseFloat reports overflow as an error: the scalar stays a string.
                if not math.isinf(value):
                    return "float", value
    return "str", text


_TAGS = {
    "bool": "tag:yaml.org,2002:bool",
    "null": "tag:yaml.org,2002:null",
    "int": "tag:yaml.org,2002:int",
    "float": "tag:yaml.org,2002:float",
    "merge": "tag:yaml.org,2002:merge",
    "str": "tag:yaml.org,2002:str",
}


class _GoYamlV2Loader(_Loader):  # type: ignore[misc]
    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ynodes.ScalarNode and implicit[0]:
            return _TAGS[_resolve(value)[0]]
        return super().resolve(kind, value, implicit)

    def construct_mapping(self, node: ynodes.MappingNode, deep: bool = False) -> dict[str, Any]:
        # Keys become JSON strings as they are read: `1` and `true` are two keys, not one
        # Python key.
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                text = _key(key)
            except TypeError as exc:
                raise ValuesProblem(f"unsupported map key: {key!r}") from exc
            mapping[text] = self.construct_object(value_node, deep=deep)
        return mapping


def _typed(wanted: str) -> Callable[[Any, ynodes.Node], Any]:
    def construct(loader: Any, node: ynodes.Node) -> Any:
        text = loader.construct_scalar(node)
        tag, value = _resolve(text)
        if tag == wanted or (wanted == "float" and tag == "int"):
            return float(value) if wanted == "float" else value
        if wanted == "str":
            return text
        raise ValuesProblem(f"cannot decode !!{tag} `{text}` as a !!{wanted}")

    return construct


def _binary(loader: Any, node: ynodes.Node) -> str:
    try:
        data = base64.b64decode(loader.construct_scalar(node))
    except (binascii.Error, ValueError) as exc:
        raise ValuesProblem("!!binary value contains invalid base64 data") from exc
    return data.decode("utf-8", errors="replace")


def _untagged(loader: Any, node: ynodes.Node) -> Any:
    # go-yaml v2 ignores tags it does not know: the node reads as if untagged.
    if isinstance(node, ynodes.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, ynodes.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)


for _tag_name in ("bool", "null", "int", "float", "str"):
    _GoYamlV2Loader.add_constructor(_TAGS[_tag_name], _typed(_tag_name))
_GoYamlV2Loader.add_constructor("tag:yaml.org,2002:timestamp", _typed("str"))
_GoYamlV2Loader.add_constructor("tag:yaml.org,2002:binary", _binary)
_GoYamlV2Loader.add_constructor(None, _untagged)


def _go_float32_key(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32): how sigs.k8s.io/yaml spells a float key
    (shortest float32 digits; an exponent below -4 or from 6 up, at least two digits)."""
    if math.isnan(value):
        return ".nan"
    try:
        f32 = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        f32 = math.copysign(math.inf, value)
    if math.isinf(f32):
        return ".inf" if f32 > 0 else "-.inf"
    sign = "-" if math.copysign(1.0, f32) < 0 else ""
    magnitude = abs(f32)
    if magnitude == 0:
        return sign + "0"
    text = f"{magnitude:.8e}"
    for precision in range(9):
        text = f"{magnitude:.{precision}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == magnitude:
            break
    mantissa, exp_text = text.split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    exponent = int(exp_text)
    if exponent < -4 or exponent >= 6:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + f"{magnitude:.{max(len(digits) - exponent - 1, 0)}f}"


def metadata_string(value: Any) -> str:
    """A YAML scalar read into a Go string field by sigs.k8s.io/yaml (Chart.yaml's
    `version: 1.10` is the string "1.1")."""
    if value is None:
        return ""
    if isinstance(value, float):
        return _go_float32_key(value)
    return _key(value) if isinstance(value, (bool, int)) else str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int) and _INT64_MIN <= key <= _INT64_MAX:
        return str(key)
    if isinstance(key, float):
        return _go_float32_key(key)
    raise ValuesProblem(f"unsupported map key of type {type(key).__name__}: {key!r}")


def _jsonable(root: Any) -> Any:
    """YAML objects as sigs.k8s.io/yaml passes them through JSON: string keys, no shared
    sub-trees (an alias is a copy), no NaN or infinity (json.Marshal refuses them)."""

    def leaf(value: Any) -> Any:
        if value is None or isinstance(value, (str, bool, int)):
            return value
        if isinstance(value, float):
            if math.isnan(value):
                raise ValuesProblem(f"{_TO_JSON}json: unsupported value: NaN")
            if math.isinf(value):
                raise ValuesProblem(
                    f"{_TO_JSON}json: unsupported value: {value:+}".replace("inf", "Inf")
                )
            return value
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        raise ValuesProblem(f"unsupported value of type {type(value).__name__}")

    def container(value: Any) -> Any:
        if isinstance(value, dict):
            return {}
        if isinstance(value, (list, tuple)):
            return []
        return None

    out = container(root)
    if out is None:
        return leaf(root)
    stack: list[tuple[Any, Any]] = [(root, out)]
    while stack:
        source, target = stack.pop()
        items: Iterable[tuple[Any, Any]] = (
            ((_key(k), v) for k, v in source.items())
            if isinstance(source, dict)
            else enumerate(source)
        )
        for k, v in items:
            child = container(v)
            if isinstance(target, dict):
                target[k] = leaf(v) if child is None else child
            else:
                target.append(leaf(v) if child is None else child)
            if child is not None:
                stack.append((v, child))
    return out


_TO_JSON = "error converting YAML to JSON: "


def _allowed_alias_ratio(decoded: int) -> float:
    # go-yaml v2 decode.go (since v2.2.8): what share of a document may come from aliases.
    low, high = 400_000, 4_000_000
    if decoded <= low:
        return 0.99
    if decoded >= high:
        return 0.10
    return 0.99 - 0.89 * (decoded - low) / (high - low)


def _check_aliasing(root: ynodes.Node) -> None:
    """Refuse what go-yaml v2 refuses: an anchor that contains itself, and "excessive
    aliasing" (a billion laughs), before anything expands it. Sizes are counted on the
    node graph, each shared node once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[ynodes.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ValuesProblem(f"{_TO_JSON}yaml: anchor value contains itself")
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ValuesProblem(f"{_TO_JSON}yaml: anchor value contains itself")
            if id(child) not in sizes:
                stack.append((child, False))
    decoded = aliased = 0
    visited: set[int] = set()
    walk = [root]
    while walk:
        node = walk.pop()
        if id(node) in visited:
            decoded += sizes[id(node)]
            aliased += sizes[id(node)]
            continue
        visited.add(id(node))
        decoded += 1
        walk.extend(reversed(_children(node)))
    if aliased > 100 and decoded > 1000 and aliased / decoded > _allowed_alias_ratio(decoded):
        raise ValuesProblem("document contains excessive aliasing")


def _children(node: ynodes.Node) -> list[ynodes.Node]:
    if isinstance(node, ynodes.SequenceNode):
        return list(node.value)
    if isinstance(node, ynodes.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _too_deep(text: str, documents: int | None) -> bool:
    """Nesting of the first `documents` documents (all when None), from libyaml's events:
    the composer recurses in C and must never see an unbounded document."""
    depth = 0
    seen = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.DocumentEndEvent):
            seen += 1
            if documents is not None and seen >= documents:
                return False
    return False


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValuesProblem(f"yaml: invalid leading UTF-8 octet at byte {exc.start}") from exc


def _documents(data: bytes | str, limit: int | None) -> list[Any]:
    text = _decode(data)
    try:
        if _too_deep(text, limit):
            raise ValuesProblem(f"values nested deeper than {MAX_DEPTH} levels", definite=False)
        loader = _GoYamlV2Loader(text)
        try:
            docs: list[Any] = []
            while loader.check_node() and (limit is None or len(docs) < limit):
                node = loader.get_node()
                _check_aliasing(node)
                docs.append(_jsonable(loader.construct_document(node)))
            return docs
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        message = _yaml_message(exc)
        # libyaml's own nesting limit: go-yaml would read on, so it says nothing of Flux.
        definite = "maximum nesting depth" not in message
        raise ValuesProblem(f"{_TO_JSON}yaml: {message}", definite) from exc
    except RecursionError as exc:
        raise ValuesProblem("values nested too deeply", definite=False) from exc


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def _as_map(doc: Any, target: str) -> dict[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        kind = "array" if isinstance(doc, list) else type(doc).__name__
        if isinstance(doc, str):
            kind = "string"
        elif isinstance(doc, bool):
            kind = "bool"
        elif isinstance(doc, (int, float)):
            kind = "number"
        raise ValuesProblem(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
            f"{kind} into Go value of type {target}"
        )
    return doc


def load_values(data: bytes | str, target: str = "common.Values") -> dict[str, Any]:
    """`common.ReadValues` (or `yaml.Unmarshal` into a Go `target` map): the first
    document only; an empty document is `{}`. Raises ValuesProblem."""
    docs = _documents(data, 1)
    return _as_map(docs[0] if docs else None, target)


def load_values_documents(data: bytes | str) -> dict[str, Any]:
    """Helm v4's `loader.LoadValues` (a chart's own `values.yaml`): every document,
    merged in order."""
    values: dict[str, Any] = {}
    for doc in _documents(data, None):
        values = merge_maps(values, _as_map(doc, "map[string]interface {}"))
    return values


def merge_maps(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """fluxcd/pkg `chartutil.MergeMaps` (Helm's `MergeMaps`): `b` over `a`, maps merged
    recursively, anything else replaced. Only the top level is copied: nested maps of
    `a` and `b` are shared with the result, as in Go."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict):
            current = out.get(k)
            if isinstance(current, dict):
                out[k] = merge_maps(current, v)
                continue
        out[k] = v
    return out


@dataclass(frozen=True)
class ValuesReference:
    """One `spec.valuesFrom` entry (fluxcd/pkg `meta.ValuesReference`)."""

    kind: str
    name: str
    values_key: str = "values.yaml"
    target_path: str = ""
    optional: bool = False
    literal: bool = False

    @classmethod
    def from_spec(cls, item: Mapping[str, Any]) -> ValuesReference:
        return cls(
            kind=str(item.get("kind") or ""),
            name=str(item.get("name") or ""),
            values_key=str(item.get("valuesKey") or "values.yaml"),
            target_path=str(item.get("targetPath") or ""),
            optional=item.get("optional") is True,
            literal=item.get("literal") is True,
        )


@dataclass(frozen=True)
class Found:
    """A ConfigMap's or Secret's data as the API server holds it (Secret values decoded)."""

    data: Mapping[str, bytes]
    origin: str = ""  # where it is defined, for messages: "apps/values.yaml"


@dataclass(frozen=True)
class Unknown:
    """Something that may exist on the cluster, with content this repository does not
    tell (a Secret another controller writes, an encrypted one)."""

    reason: str


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
"""Known not to exist on the cluster."""

ValuesSource = Found | Unknown | _Absent


def values_source_of(obj: Mapping[str, Any], origin: str = "") -> Found | Unknown:
    """The data helm-controller reads from a ConfigMap or Secret manifest.

    A ConfigMap's `data` (not `binaryData`: helm-controller reads `.Data` only); a
    Secret's `data` (base64) with `stringData` over it, as the API server stores them.
    A SOPS-encrypted Secret is decrypted by kustomize-controller on the cluster: its
    values are not known here.
    """
    kind = obj.get("kind")
    if "sops" in obj:
        return Unknown(f"{kind} {_name(obj)} is encrypted with SOPS")
    out: dict[str, bytes] = {}
    data = obj.get("data")
    if kind == "Secret":
        if isinstance(data, Mapping):
            for key, value in data.items():
                try:
                    out[str(key)] = base64.b64decode(str(value or ""), validate=True)
                except (binascii.Error, ValueError):
                    return Unknown(f"Secret {_name(obj)}: key {key} is not base64")
        string_data = obj.get("stringData")
        if isinstance(string_data, Mapping):
            for key, value in string_data.items():
                out[str(key)] = _scalar_text(value).encode()
    elif isinstance(data, Mapping):
        for key, value in data.items():
            out[str(key)] = _scalar_text(value).encode()
    return Found(out, origin)


def _scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}".lstrip("/")
    return ""


@dataclass(frozen=True)
class MergedValues:
    """The user-supplied values: `valuesFrom` then `values`, merged."""

    values: dict[str, Any]
    origins: tuple[str, ...] = ()  # where the valuesFrom content came from


@dataclass(frozen=True)
class ValuesUnknown:
    """A `valuesFrom` source whose content is not known: the render would be a guess."""

    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ValuesError:
    """helm-controller fails the HelmRelease with this message (`definite`), or the
    values could not be read here (not `definite`)."""

    message: str
    definite: bool = True
    reference: int | None = None  # index in spec.valuesFrom
    origin: str = ""


ValuesOutcome = MergedValues | ValuesUnknown | ValuesError

# fluxcd/pkg chartutil/values.go reasons.
_KEY_NOT_FOUND = "key not found"
_UNSUPPORTED = "unsupported values reference kind"


def _reference_error(
    ref: ValuesReference, namespace: str, reason: str, index: int, origin: str = ""
) -> ValuesError:
    # ErrValuesReference.Error()
    text = "could not resolve"
    if ref.optional:
        text += " optional"
    if ref.kind:
        text += " " + ref.kind
    text += f" chart values reference '{namespace}/{ref.name}'"
    if ref.values_key:
        text += f" with key '{ref.values_key}'"
    return ValuesError(f"{text}: {reason}", reference=index, origin=origin)


def chart_values_from_references(
    namespace: str,
    values: Mapping[str, Any] | None,
    refs: Sequence[ValuesReference],
    lookup: Callable[[str, str, str], ValuesSource],
) -> ValuesOutcome:
    """fluxcd/pkg `chartutil.ChartValuesFromReferences`, with `lookup(kind, namespace,
    name)` in place of the API server.

    A `targetPath` entry first merges `values` into the result and then sets its path in
    place, through maps and lists it may share with `values`: whether `values` later
    overrides that path depends on that sharing, exactly as in Go, hence the deep copy
    of `values` here and the faithful `merge_maps`.
    """
    try:
        spec_values: dict[str, Any] = _jsonable(dict(values or {}))
    except ValuesProblem as exc:
        return ValuesError(f"spec.values: {exc.message}", definite=False)
    result: dict[str, Any] = {}
    unknown: list[str] = []
    origins: list[str] = []
    for index, ref in enumerate(refs):
        if ref.kind not in ("ConfigMap", "Secret"):
            return _reference_error(ref, namespace, _UNSUPPORTED, index)
        source = lookup(ref.kind, namespace, ref.name)
        if isinstance(source, Unknown):
            unknown.append(f"{ref.kind} {namespace}/{ref.name}: {source.reason}")
            continue
        if not isinstance(source, Found):
            if ref.optional:
                continue
            # The reason is the API server's NotFound error.
            resource = "secrets" if ref.kind == "Secret" else "configmaps"
            return _reference_error(ref, namespace, f'{resource} "{ref.name}" not found', index)
        data = source.data.get(ref.values_key)
        if data is None:
            if ref.optional:
                continue
            return _reference_error(ref, namespace, _KEY_NOT_FOUND, index, source.origin)
        if source.origin:
            origins.append(source.origin)
        if ref.target_path:
            result = merge_maps(result, spec_values)
            try:
                text = data.decode("utf-8", errors="replace")
                if ref.literal:
                    _replace_path_literal_value(result, ref.target_path, text)
                else:
                    _replace_path_value(result, ref.target_path, text)
            except strvals.StrvalsError as exc:
                return _reference_error(ref, namespace, str(exc), index, source.origin)
            continue
        try:
            read = load_values(data)
        except ValuesProblem as exc:
            err = _reference_error(ref, namespace, exc.message, index, source.origin)
            return ValuesError(err.message, exc.definite, index, source.origin)
        result = merge_maps(result, read)
    if unknown:
        return ValuesUnknown(tuple(unknown))
    return MergedValues(merge_maps(result, spec_values), tuple(origins))


def _replace_path_value(values: dict[str, Any], path: str, value: str) -> None:
    # chartutil.ReplacePathValue: a quoted value is set as a string, quotes trimmed.
    single = value.startswith("'") and value.endswith("'")
    double = value.startswith('"') and value.endswith('"')
    if single or double:
        strvals.parse_into_string(path + "=" + value.strip("'\""), values)
        return
    strvals.parse_into(path + "=" + value, values)


_LITERAL_ESCAPES = str.maketrans(
    {"\\": "\\\\", ",": "\\,", "[": "\\[", "]": "\\]", "{": "\\{", "}": "\\}"}
)


def _replace_path_literal_value(values: dict[str, Any], path: str, value: str) -> None:
    # chartutil.ReplacePathLiteralValue: the value verbatim, `\.` still escapes the path.
    strvals.parse_into_string(path + "=" + value.translate(_LITERAL_ESCAPES), values)


@dataclass(frozen=True)
class ValuesFiles:
    """`spec.chart.spec.valuesFiles` merged: the chart's new default values."""

    values: dict[str, Any]
    files: tuple[str, ...] = field(default=())  # repository paths that contributed


def merge_values_files(
    read: Callable[[str], bytes | None],
    paths: Sequence[str],
    ignore_missing: bool = False,
) -> ValuesFiles | ValuesError:
    """source-controller `mergeFileValues` for a chart from a Git or Bucket source: each
    path relative to the artifact root (securejoin: `..` stops there); a missing file
    fails the HelmChart unless `ignoreMissingValuesFiles`. `read(path)` returns a file
    of the artifact or None."""
    merged: dict[str, Any] = {}
    used: list[str] = []
    for path in paths:
        clean = secure_join(path)
        data = read(clean) if clean else None
        if data is None:
            if ignore_missing:
                continue
            return ValuesError(f"no values file found at path '/{clean}' (reference '{path}')")
        try:
            values = load_values(data, "map[string]interface {}")
        except ValuesProblem as exc:
            return ValuesError(
                f"unmarshaling values from '{path}' failed: {exc.message}",
                exc.definite,
                origin=clean,
            )
        merged = merge_maps(merged, values)
        used.append(clean)
    return ValuesFiles(merged, tuple(used))
