"""What kustomize-controller does around the kustomize build of a Flux Kustomization.

In order (fluxcd/kustomize-controller `internal/controller/kustomization_controller.go`
`reconcile` and `build`, v1.9.x; fluxcd/pkg `kustomize/kustomize_generator.go` and
`kustomize_varsub.go`):
1. the generator writes the Kustomization's `spec` into the kustomization file at
   `spec.path` (or into the one it generates there): `targetNamespace` replaces
   `namespace`, `namePrefix`/`nameSuffix` replace theirs, `patches` and `components` are
   appended, `images` merge into entries of the same name;
2. the kustomize build (`kustomize.py`);
3. per object, SOPS decryption, then post-build substitution (`postBuild`): the object
   is written out as YAML, `${VAR}`s are replaced in that text (keys included; `$$` is
   `$`), and the text is read back with YAML 1.1, so a substituted `${N}` becomes a
   number whatever its quotes were;
4. `commonMetadata` on every object's `metadata` (no selectors, no pod templates).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import nodes as ynodes

from bot.analysis.snapshot.build import kustfile
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.kustfile import KustFile, PatchEntry
from bot.analysis.snapshot.build.resource import Resource

FLUX_KS_GROUP = "kustomize.toolkit.fluxcd.io"
SUBSTITUTE_OPT_OUT = "kustomize.toolkit.fluxcd.io/substitute"


def _origin(node: ynodes.Node, default: str) -> tuple[str, int]:
    path, line, _ = yn.origin_of(node, default)
    return path, line


def overlay(
    kf: KustFile, spec: ynodes.Node | None, ks_file: str, view_dir: str, exists: Any
) -> KustFile:
    """The kustomization as Flux's generator rewrites it for a Flux Kustomization's
    `spec`. `exists(path)` says whether a component directory is in the artifact
    (`ignoreMissingComponents`)."""
    kf = kf.copy()
    target_ns = yn.get(spec, "targetNamespace")
    if yn.text(target_ns):
        path, line = _origin(target_ns, ks_file)  # type: ignore[arg-type]
        kf.namespace = (yn.text(target_ns) or "", line, path)
    for key, attr in (("namePrefix", "name_prefix"), ("nameSuffix", "name_suffix")):
        node = yn.get(spec, key)
        if yn.text(node):
            path, line = _origin(node, ks_file)  # type: ignore[arg-type]
            setattr(kf, attr, (yn.text(node) or "", line, path))
    patches = yn.get(spec, "patches")
    if isinstance(patches, ynodes.SequenceNode):
        for item in patches.value:
            patch = yn.get(item, "patch")
            if not isinstance(patch, ynodes.ScalarNode) or not yn.text(patch):
                continue
            path, line = _origin(item, ks_file)
            kf.patches.append(
                PatchEntry(
                    "patches", line, path, view_dir, inline=patch, target=yn.get(item, "target")
                )
            )
    images = yn.get(spec, "images")
    if isinstance(images, ynodes.SequenceNode):
        for item in images.value:
            name = yn.text(yn.get(item, "name"))
            path, _ = _origin(item, ks_file)
            for i, (existing, _file) in enumerate(kf.images):
                if yn.text(yn.get(existing, "name")) == name:
                    # kustomize-controller v1.9.4: merged into the entry of the same name
                    # (`newTag` and `digest` replaced together).
                    merged = existing
                    for key in ("newName",):
                        if yn.get(item, key) is not None:
                            merged = yn.with_key(merged, key, yn.get(item, key))  # type: ignore[arg-type]
                    if yn.get(item, "newTag") is not None or yn.get(item, "digest") is not None:
                        for key in ("newTag", "digest"):
                            merged = yn.with_key(merged, key, yn.get(item, key))  # type: ignore[arg-type]
                    kf.images[i] = (merged, path)
                    break
            else:
                kf.images.append((item, path))
    components = yn.get(spec, "components")
    ignore_missing = yn.to_value(yn.get(spec, "ignoreMissingComponents")) is True
    if isinstance(components, ynodes.SequenceNode):
        for item in components.value:
            value = yn.text(item)
            if value is None:
                continue
            path, line = _origin(item, ks_file)
            entry = kustfile.Entry(value, line, path, view_dir)
            if ignore_missing and not exists(entry):
                continue
            kf.components.append(entry)
    return kf


# --- post-build substitution -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Var:
    """A variable's value and where it comes from (None when it is not known: a Secret
    that is not in the repository, or a SOPS-encrypted value)."""

    value: str | None
    source: str  # "ConfigMap flux-system/cluster-settings (kubernetes/flux/vars/settings.yaml:7)"
    secret: bool = False


@dataclass
class Vars:
    values: dict[str, Var] = field(default_factory=dict)
    # False when a `substituteFrom` object is not in the repository: it may define
    # anything, so a variable missing here may well be defined on the cluster.
    complete: bool = True
    incomplete_because: list[str] = field(default_factory=list)

    def key(self) -> tuple[object, ...]:
        """The variables as a value: equal for equal variables from the same places."""
        return (tuple(self.values.items()), self.complete, tuple(self.incomplete_because))

    def runs(self, strategy: str | None) -> bool:
        """kustomize-controller substitutes only when some variable is defined, unless
        `substituteStrategy: Always` (v1.9.0)."""
        return bool(self.values) or not self.complete or strategy == "Always"


def source_values(res: Resource) -> dict[str, Var]:
    """The variables a ConfigMap or Secret of the build defines: its `data` (a Secret's
    decoded) and, for a Secret written with it, `stringData`; newlines are removed from
    every value (`kustomize_varsub.go`)."""
    out: dict[str, Var] = {}
    path = res.path
    sops = yn.get(res.node, "sops") is not None
    secret = res.kind == "Secret"
    label = f"{res.kind} {res.namespace + '/' if res.namespace else ''}{res.name}"
    for key, value_node in _pairs(yn.get(res.node, "data")):
        text = yn.text(value_node) or ""
        line = yn.origin_of(value_node, path)[1]
        where = f"{label} ({path}:{line})"
        if secret:
            decoded: str | None
            if sops or text.startswith("ENC["):
                decoded = None
            else:
                try:
                    decoded = base64.b64decode(text.replace("\n", ""), validate=True).decode()
                except (ValueError, UnicodeDecodeError):
                    decoded = None
            out[key] = Var(decoded.replace("\n", "") if decoded is not None else None, where, True)
        else:
            out[key] = Var(text.replace("\n", ""), where, False)
    if secret:
        for key, value_node in _pairs(yn.get(res.node, "stringData")):
            text = yn.text(value_node) or ""
            line = yn.origin_of(value_node, path)[1]
            opaque = sops or text.startswith("ENC[")
            out[key] = Var(
                None if opaque else text.replace("\n", ""), f"{label} ({path}:{line})", True
            )
    return out


def _pairs(node: ynodes.Node | None) -> list[tuple[str, ynodes.Node]]:
    if not isinstance(node, ynodes.MappingNode):
        return []
    return [(k.value, v) for k, v in node.value if isinstance(k, ynodes.ScalarNode)]


def opted_out(res: Resource) -> bool:
    meta = yn.get(res.node, "metadata")
    return any(
        yn.text(yn.get(meta, section, SUBSTITUTE_OPT_OUT)) == "disabled"
        for section in ("labels", "annotations")
    )


@dataclass(frozen=True, slots=True)
class Undefined:
    """A `${VAR}` that no source defines, where it is written."""

    name: str
    text: str  # the whole `${...}`
    path: str
    line: int
    value: str  # the scalar it is in
    field: tuple[str | int, ...] = ()  # where in the object
    obj: str = ""  # the object, in words


@dataclass
class Substitution:
    resources: list[Resource]
    undefined: list[Undefined] = field(default_factory=list)
    # Values that depend on a variable whose value is not known here.
    opaque: list[tuple[str, int, str]] = field(default_factory=list)


_NAME = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_DEFAULT_OPS = (":=", ":-", ":+", ":?", "=", "-", "+", "?")


class _Unknown(Exception):
    """A value substitution cannot know."""


def _find_close(text: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


class _Env:
    def __init__(
        self,
        vars: Vars,
        strict: bool,
        path: str,
        line: int,
        whole: str,
        field: tuple[str | int, ...] = (),
        obj: str = "",
    ) -> None:
        self.vars = vars
        self.strict = strict
        self.path = path
        self.line = line
        self.whole = whole
        self.field = field
        self.obj = obj
        self.undefined: list[Undefined] = []
        self.used: list[Var] = []
        self.unknown = False

    def lookup(self, name: str) -> str | None:
        var = self.vars.values.get(name)
        if var is None:
            return None
        self.used.append(var)
        if var.value is None:
            raise _Unknown(name)
        return var.value

    def expand(self, text: str) -> str:
        """fluxcd/pkg envsubst over `text`."""
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("$$", i):
                out.append("$")
                i += 2
                continue
            if text.startswith("${", i):
                end = _find_close(text, i)
                if end < 0:
                    raise _Unknown("an unterminated ${")
                out.append(self.expression(text[i + 2 : end], text[i : end + 1]))
                i = end + 1
                continue
            out.append(text[i])
            i += 1
        return "".join(out)

    def expression(self, body: str, whole: str) -> str:
        if body.startswith("#"):
            value = self.value(body[1:], whole, None)
            return str(len(value))
        m = _NAME.match(body)
        if m is None:
            raise _Unknown(whole)
        name, rest = m.group(0), body[m.end() :]
        for op in _DEFAULT_OPS:
            if rest.startswith(op):
                default = self.expand(rest[len(op) :])
                return self.value(name, whole, default)
        value = self.value(name, whole, None)
        if not rest:
            return value
        if rest in ("^", "^^", ",", ",,"):
            if rest == "^":
                return value[:1].upper() + value[1:]
            if rest == ",":
                return value[:1].lower() + value[1:]
            return value.upper() if rest == "^^" else value.lower()
        if rest.startswith(":"):
            parts = rest[1:].split(":")
            try:
                start = int(parts[0])
                length = int(parts[1]) if len(parts) > 1 else None
            except ValueError:
                raise _Unknown(whole) from None
            part = value[start:]
            return part[:length] if length is not None else part
        if rest.startswith("/"):
            spec = rest[1:]
            replace_all = spec.startswith("/")
            spec = spec[1:] if replace_all or spec[:1] in ("#", "%") else spec
            old, _, new = spec.partition("/")
            if rest[1:2] == "#":
                return new + value[len(old) :] if value.startswith(old) else value
            if rest[1:2] == "%":
                return value[: -len(old)] + new if old and value.endswith(old) else value
            return value.replace(old, new) if replace_all else value.replace(old, new, 1)
        for op in ("##", "#", "%%", "%"):
            if rest.startswith(op):
                pattern = rest[len(op) :]
                if "*" in pattern or "?" in pattern or "[" in pattern:
                    raise _Unknown(whole)
                if op.startswith("#"):
                    return value[len(pattern) :] if value.startswith(pattern) else value
                return value[: -len(pattern)] if pattern and value.endswith(pattern) else value
        raise _Unknown(whole)

    def value(self, name: str, whole: str, default: str | None) -> str:
        try:
            found = self.lookup(name)
        except _Unknown:
            if default is not None:
                # A default only applies to an unset or empty variable, and this one
                # has a value nobody can read here.
                self.unknown = True
                return default
            raise
        if found is None:
            if not self.vars.complete:
                # A source outside the repository may define it (and then the default
                # does not apply).
                raise _Unknown(name)
            if default is not None:
                return default
            self.undefined.append(
                Undefined(name, whole, self.path, self.line, self.whole, self.field, self.obj)
            )
            return ""
        if default is not None and found == "":
            return default
        return found


_RESOLVER = yaml.resolver.Resolver()
# A string go-yaml v2 writes with quotes (so that it reads back as the same string):
# it keeps its type whatever substitution writes into it.
_NEEDS_QUOTES = re.compile(r"^[\s\-?:,\[\]{}#&*!|>'\"%@`]|[:#]\s|\s$|\n")


def _retyped(text: str, original: str, mark: yn.Origin) -> ynodes.ScalarNode:
    """A substituted scalar as Flux reads it back: with YAML 1.1's types unless the
    text it was in is one go-yaml writes quoted."""
    if _NEEDS_QUOTES.search(original) or "\n" in text:
        return yn.scalar(text, mark, yn.STR, "'")
    tag = str(_RESOLVER.resolve(ynodes.ScalarNode, text, (True, False)))  # type: ignore[no-untyped-call]
    if tag not in (yn.STR, yn.INT, yn.FLOAT, yn.BOOL, yn.NULL):
        tag = yn.STR
    return yn.scalar(text, mark, tag, "'")


def substitute(
    res: Resource, vars: Vars, strict: bool, describe: str
) -> tuple[Resource, list[Undefined], list[tuple[str, int, str]]]:
    """One object after post-build substitution; the undefined variables it uses (a
    failure in strict mode, an empty string before), and where a value depends on a
    variable whose value is not known."""
    undefined: list[Undefined] = []
    opaque: list[tuple[str, int, str]] = []
    path = res.path

    def scalar(node: ynodes.ScalarNode, field: tuple[str | int, ...]) -> ynodes.Node:
        value = node.value
        if "$" not in value or ("${" not in value and "$$" not in value):
            return node
        file, line, _ = yn.origin_of(node, path)
        if node.style in ("|", ">"):
            line += 1
        env = _Env(vars, strict, file, line, value, field, str(res))
        try:
            new = env.expand(value)
        except _Unknown:
            opaque.append((file, line, value))
            return yn.scalar(
                value,
                yn.Origin(
                    file,
                    line,
                    f"not known: substituted by {describe} from a value that is not in the "
                    "repository",
                ),
                yn.STR,
                "'",
            )
        undefined.extend(env.undefined)
        if new == value and not env.used:
            return node
        sources = sorted({v.source for v in env.used})
        via = f"substituted by {describe}" + (f" from {', '.join(sources)}" if sources else "")
        secret = any(v.secret for v in env.used)
        mark = yn.Origin(file, line, via, secret)
        if env.unknown:
            opaque.append((file, line, value))
        return _retyped(new, value, mark)

    new = _substituted(res.node, None, 0, scalar)
    if new is res.node:
        return res, undefined, opaque
    assert isinstance(new, ynodes.MappingNode)
    return res.with_node(new), undefined, opaque


# Where the walk is, as a linked list of (parent, key): the field path of a value is
# only spelled out for the few scalars that hold `$`, not copied at every node.
_Trail = tuple[object, str | int] | None


def _fields(trail: _Trail) -> tuple[str | int, ...]:
    keys: list[str | int] = []
    while trail is not None:
        parent, key = trail
        keys.append(key)
        trail = parent  # type: ignore[assignment]
    return tuple(reversed(keys))


def _substituted(
    node: ynodes.Node,
    trail: _Trail,
    depth: int,
    scalar: Callable[[ynodes.ScalarNode, tuple[str | int, ...]], ynodes.Node],
) -> ynodes.Node:
    """`node` with `scalar` applied to each scalar that holds a `$` (no other can be
    substituted), copied only where one changed. A module function, not a closure of
    `substitute`: a closure that calls itself is a reference cycle, and the object and
    variables it holds would wait for the cyclic collector."""
    if depth > 200:
        return node
    if isinstance(node, ynodes.ScalarNode):
        return scalar(node, _fields(trail)) if "$" in node.value else node
    if isinstance(node, ynodes.SequenceNode):
        items: list[ynodes.Node] = []
        changed = False
        for i, item in enumerate(node.value):
            if isinstance(item, ynodes.ScalarNode) and "$" not in item.value:
                items.append(item)
                continue
            new = _substituted(item, (trail, i), depth + 1, scalar)
            changed = changed or new is not item
            items.append(new)
        if not changed:
            return node
        return ynodes.SequenceNode(node.tag, items, node.start_mark, node.end_mark, node.flow_style)
    if isinstance(node, ynodes.MappingNode):
        pairs = []
        changed = False
        for k, v in node.value:
            nk: ynodes.Node
            nv: ynodes.Node
            if isinstance(k, ynodes.ScalarNode):
                nk = scalar(k, _fields(trail)) if "$" in k.value else k
                key: str | int = k.value
            else:
                nk, key = k, "?"
            if isinstance(v, ynodes.ScalarNode) and "$" not in v.value:
                nv = v
            else:
                nv = _substituted(v, (trail, key), depth + 1, scalar)
            if nk is not k or nv is not v:
                changed = True
            pairs.append((nk, nv))
        if not changed:
            return node
        return ynodes.MappingNode(node.tag, pairs, node.start_mark, node.end_mark, node.flow_style)
    return node


def _const(node: ynodes.Node) -> Callable[[ynodes.Node | None], ynodes.Node]:
    return lambda _old: node


def common_metadata(res: Resource, spec: ynodes.Node | None, ks_file: str) -> Resource:
    """`spec.commonMetadata`: labels and annotations merged into every object's
    `metadata` after the build (`ssautil.SetCommonMetadata`)."""
    meta_spec = yn.get(spec, "commonMetadata")
    if meta_spec is None:
        return res
    node: ynodes.Node = res.node
    for section in ("labels", "annotations"):
        for key, value in _pairs(yn.get(meta_spec, section)):
            file, line, _ = yn.origin_of(value, ks_file)
            mark = yn.Origin(file, line, "set by commonMetadata")
            new_value = yn.scalar(yn.text(value) or "", mark, yn.STR, "'")
            node = yn.update(node, ("metadata", section, key), _const(new_value), mark=mark)
    if node is res.node:
        return res
    assert isinstance(node, ynodes.MappingNode)
    return res.with_node(node)
