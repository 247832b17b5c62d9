"""kustomize's `replacements`: copy a field of one object into fields of others.

As kustomize v5.5 runs them (`api/filters/replacement`, the builtin
ReplacementTransformer; sigs.k8s.io/kustomize/api v0.18.0 with kyaml v0.18.1), last among
a kustomization's transformers, one replacement after the other on what the earlier ones
left:

- the source is the one object whose current or earlier id (kyaml's `MakeResIds`) has
  the selector's group, version, kind, name and namespace, each compared exactly when
  given (an empty or `default` namespace is one); none or several fail the build;
- its `fieldPath` (default `metadata.name`) is looked up with kyaml's PathGetter: field
  names, list indexes, `-` for the last item and `[key=value]` items compared exactly;
  no `*`; a missing, null or empty value fails the build. `options.delimiter` and
  `index` cut one part out of a scalar;
- each target selects objects by id like the source (and by label and annotation
  selectors), minus those a `reject` entry matches, and writes every `fieldPaths` entry
  through kyaml's PathMatcher: `*` is every item of a list, `[key=value]` every item
  whose value matches the regular expression (not anchored: `[name=app]` also matches
  `app-sidecar`); a path that leads nowhere fails the build unless `options.create`
  adds it. A scalar target keeps its type and takes only the text (so `replicas: 1`
  becomes `3` from the string "3", and a string stays a string), a created one is typed
  by its text, any other target is replaced by the source value itself;
- kustomize writes objects out through JSON, so a value a scalar's type cannot hold
  (the text `abc` in `replicas: 1`) fails the build there.

A replaced value's `Origin` names the replacement's file and line (its `fieldPaths`
entry) and, in `via`, the object and field it was copied from. Where kustomize fails the
build is a `BuildProblem`; where the outcome depends on something the build does not
know (part of it unknown, a pattern RE2 refuses, a value whose printed form a pattern
depends on), the build is "not fully known" instead; so it is where the replacements
would take the build more steps than it spends (kustomize has no limit, a review must).

Patterns are matched with RE2 (google-re2), whose syntax is Go's and whose time is linear
in the text. The ReplacementTransformer listed under `transformers:` is a plugin
configuration the build does not follow (`transformers` makes it not fully known).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import re2
from yaml import nodes as ynodes

from bot.analysis.model import _REMOTE, Reader
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build import transformers
from bot.analysis.snapshot.build.kustfile import KustFile, fields
from bot.analysis.snapshot.build.problems import BuildProblem, ProblemKind, Related, Unknown
from bot.analysis.snapshot.build.resource import ResMap, Resource

if TYPE_CHECKING:
    from bot.analysis.snapshot.build.kustomize import Accumulated, Kustomizer

DEFAULT_FIELD_PATH = "metadata.name"
# kustomize's error texts quote whole values; a message keeps this much of one.
_QUOTE = 40
# kustomize has no limits; a pull request's replacements must not make a review run
# unbounded: objects times targets, fields written and nodes copied each cost a step,
# and a field path longer than any object is deep is not followed.
_MAX_STEPS = 1_000_000
_MAX_PARTS = 100


# --- what a replacement says -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """kustomize's FieldOptions (`encoding` is not used by kustomize either)."""

    delimiter: str = ""
    index: int = 0
    create: bool = False


@dataclass(frozen=True, slots=True)
class Selector:
    """A ResId selector (every part compared exactly when given), with the label and
    annotation selectors a target's `select` and `reject` may add."""

    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    @property
    def empty_id(self) -> bool:
        return not (self.group or self.version or self.kind or self.name or self.namespace)

    def selects(self, res: Resource) -> bool:
        """kyaml's `ResId.IsSelectedBy` against any of the object's ids. kyaml builds
        these ids without the cluster-scope table, so an object without a namespace is
        in `default` here, whatever its kind."""
        for group, version, kind, name, namespace in _res_ids(res):
            if (
                (not self.name or self.name == name)
                and (not self.namespace or _eff(self.namespace) == _eff(namespace))
                and (not self.group or self.group == group)
                and (not self.version or self.version == version)
                and (not self.kind or self.kind == kind)
            ):
                return True
        return False

    def __str__(self) -> str:
        """kyaml's `ResId.String()`, as kustomize's errors print a selector."""
        gvk = ".".join(
            (self.kind or "[noKind]", self.version or "[noVer]", self.group or "[noGrp]")
        )
        return f"{gvk}/{self.name or '[noName]'}.{self.namespace or '[noNs]'}"

    def describe(self) -> str:
        """For a message: `ConfigMap flux-system/settings`, `any kind named web`."""
        kind = self.kind or "any kind"
        if self.name:
            where = f"{self.namespace}/" if self.namespace else ""
            return f"{kind} {where}{self.name}"
        return f"{kind} in {self.namespace}" if self.namespace else kind


@dataclass(frozen=True, slots=True)
class Source:
    selector: Selector
    field_path: str  # "" when not written (kustomize then reads metadata.name)
    options: Options
    line: int  # of `source:`
    path_line: int  # of `fieldPath:` (of `source:` without one)

    def __str__(self) -> str:
        """kustomize's `SourceSelector.String()`."""
        out = [str(self.selector)]
        if self.field_path:
            out.append(self.field_path)
        o = self.options
        if o.delimiter or o.create:
            out.append(f"{o.delimiter}({o.index}), create={'true' if o.create else 'false'}")
        return ":".join(out)


@dataclass(frozen=True, slots=True)
class Target:
    select: Selector | None
    reject: tuple[Selector, ...]
    field_paths: tuple[tuple[str, int], ...]  # (path, line); empty: metadata.name
    options: Options
    line: int


@dataclass(frozen=True, slots=True)
class Replacement:
    file: str  # where it is written: the kustomization file or a replacement file
    line: int
    source: Source | None
    targets: tuple[Target, ...] | None  # None (or empty): kustomize refuses it

    @property
    def where(self) -> str:
        return f"the replacement at {self.file}:{self.line}"


class _Unreadable(Exception):
    """A replacement the build cannot read the way kustomize does."""


class Fails(Exception):
    """kustomize fails the build: `message` says why (quoting what kustomize prints), on
    `line` of the replacement's file. `certain` when nothing the build does not know
    can change it (the replacement is malformed, or its source matches several)."""

    def __init__(
        self,
        message: str,
        line: int,
        related: tuple[Related, ...] = (),
        certain: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.related = related
        self.certain = certain


class NotKnown(Exception):
    """What kustomize does depends on something the build does not know."""


class _Budget:
    def __init__(self) -> None:
        self.left = _MAX_STEPS

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise NotKnown("takes more steps than the build spends on replacements")


def _line(node: ynodes.Node | None, default: int) -> int:
    return yn.origin_of(node, "")[1] if node is not None else default


def _string(node: ynodes.Node | None) -> str:
    """A string field: kustomize decodes the kustomization strictly (a number where a
    string goes fails it, which kustomize-invalid-kustomization reports) and a
    replacement file loosely (`123` becomes "123", YAML 1.1's `yes` "true"): only text
    both read as a string is followed."""
    if node is None or (isinstance(node, ynodes.ScalarNode) and yn.text(node) is None):
        return ""
    if not isinstance(node, ynodes.ScalarNode):
        raise _Unreadable("holds a list or mapping where kustomize reads a string")
    value = yn.to_value(node)
    if type(value) is not str or (not node.style and node.tag != yn.STR):
        raise _Unreadable(f"holds `{node.value}`, which kustomize does not read as a string")
    return value


def _options(node: ynodes.Node | None) -> Options:
    if node is None or (isinstance(node, ynodes.ScalarNode) and yn.text(node) is None):
        return Options()
    if not isinstance(node, ynodes.MappingNode):
        raise _Unreadable("has `options` that are not a mapping")
    f = fields(node)
    index = yn.to_value(f.get("index")) if f.get("index") is not None else 0
    create = yn.to_value(f.get("create")) if f.get("create") is not None else False
    if index is None:
        index = 0
    if create is None:
        create = False
    if type(index) is not int or type(create) is not bool:
        raise _Unreadable("has `options` kustomize does not read as a number and a boolean")
    return Options(_string(f.get("delimiter")), index, create)


def _selector(node: ynodes.Node | None, labels: bool) -> Selector:
    if not isinstance(node, ynodes.MappingNode):
        raise _Unreadable("has a selector that is not a mapping")
    f = fields(node)
    parts = [_string(f.get(k)) for k in ("group", "version", "kind", "name", "namespace")]
    if labels:
        parts += [_string(f.get("labelselector")), _string(f.get("annotationselector"))]
    return Selector(*parts)


def _is_null(node: ynodes.Node | None) -> bool:
    return node is None or (isinstance(node, ynodes.ScalarNode) and yn.text(node) is None)


def _replacement(node: ynodes.Node, file: str) -> Replacement:
    """One replacement (without `path`), decoded as kustomize's types decode it: field
    names without case, the last of a name winning, fields it does not know ignored."""
    line = _line(node, 1)
    if not isinstance(node, ynodes.MappingNode):
        raise _Unreadable("is not a mapping")
    f = fields(node)
    source = None
    source_node = f.get("source")
    if not _is_null(source_node):
        assert source_node is not None
        sf = fields(source_node)
        path_node = sf.get("fieldpath")
        source = Source(
            _selector(source_node, labels=False),
            _string(path_node),
            _options(sf.get("options")),
            _line(source_node, line),
            _line(path_node, _line(source_node, line)),
        )
    targets: tuple[Target, ...] | None = None
    targets_node = f.get("targets")
    if isinstance(targets_node, ynodes.SequenceNode) and targets_node.value:
        found = []
        for item in targets_node.value:
            if not isinstance(item, ynodes.MappingNode):
                raise _Unreadable("has a target that is not a mapping")
            tf = fields(item)
            select_node = tf.get("select")
            select = None if _is_null(select_node) else _selector(select_node, labels=True)
            reject_node = tf.get("reject")
            rejects: list[Selector] = []
            if not _is_null(reject_node):
                if not isinstance(reject_node, ynodes.SequenceNode):
                    raise _Unreadable("has a `reject` that is not a list")
                rejects = [_selector(r, labels=True) for r in reject_node.value]
            paths_node = tf.get("fieldpaths")
            paths: list[tuple[str, int]] = []
            if not _is_null(paths_node):
                if not isinstance(paths_node, ynodes.SequenceNode):
                    raise _Unreadable("has `fieldPaths` that are not a list")
                paths = [(_string(p), _line(p, line)) for p in paths_node.value]
            found.append(
                Target(
                    select,
                    tuple(rejects),
                    tuple(paths),
                    _options(tf.get("options")),
                    _line(item, line),
                )
            )
        targets = tuple(found)
    elif not _is_null(targets_node) and not isinstance(targets_node, ynodes.SequenceNode):
        raise _Unreadable("has `targets` that are not a list")
    return Replacement(file, line, source, targets)


def _load(k: Kustomizer, kf: KustFile, acc: Accumulated) -> list[Replacement] | None:
    """The replacements of `kf`, those of `path:` files in place; None when kustomize
    refuses them (a problem is recorded) or the build cannot read them (unknown)."""
    from bot.analysis.snapshot.build.kustomize import Read, _join

    out: list[Replacement] = []
    for item in kf.replacements:
        line = _line(item, 1)
        where = f"the replacement at {kf.path}:{line}"
        try:
            if not isinstance(item, ynodes.MappingNode):
                raise _Unreadable("is not a mapping")
            f = fields(item)
            path = _string(f.get("path"))
            if not path:
                out.append(_replacement(item, kf.path))
                continue
            targets = f.get("targets")
            inline = not _is_null(f.get("source")) or (
                isinstance(targets, ynodes.SequenceNode) and bool(targets.value)
            )
        except _Unreadable as exc:
            acc.unknown.append(Unknown(where, str(exc), (kf.path,)))
            return None
        if inline:
            _refuse(
                acc,
                kf.path,
                line,
                "This replacement has both a `path` and a `source` or `targets`: kustomize "
                "fails with `cannot specify both path and inline replacement`.",
            )
            return None
        where = f"replacement file `{path}` in {kf.path}"
        target = _join(kf.directory, path) if not _REMOTE.search(path) else None
        real = k.view.real(target) if target is not None else None
        if real is None:
            why = "is remote" if _REMOTE.search(path) else "does not exist"
            acc.unknown.append(Unknown(where, why, (kf.path,) + ((target,) if target else ())))
            return None
        acc.reads.append(Read(real, Reader.KUSTOMIZATION_ENTRY, kf.path, line))
        if k.files.problem(real) is not None:
            acc.unknown.append(Unknown(real, "does not parse", (real,)))
            return None
        docs = [yn.stamp(d, real) for d in k.files.documents(real)]
        # sigs.k8s.io/yaml reads the first document only.
        doc = docs[0] if docs else None
        try:
            if isinstance(doc, ynodes.SequenceNode):
                out.extend(_replacement(d, real) for d in doc.value)
            elif isinstance(doc, ynodes.MappingNode):
                out.append(_replacement(doc, real))
            else:
                # What Go's reflection calls the value sigs.k8s.io/yaml decoded.
                go_kind = "invalid" if _is_null(doc) else "string"
                if isinstance(doc, ynodes.ScalarNode) and not doc.style:
                    go_kind = {bool: "bool", int: "float64", float: "float64"}.get(
                        type(yn.to_value(doc)), go_kind
                    )
                _refuse(
                    acc,
                    kf.path,
                    line,
                    f"{path} holds no replacement: kustomize fails with `unsupported "
                    f"replacement type encountered within replacement path: {go_kind}`.",
                )
                return None
        except _Unreadable as exc:
            acc.unknown.append(Unknown(f"a replacement in {real}", str(exc), (real,)))
            return None
    return out


def _refuse(
    acc: Accumulated, file: str, line: int, message: str, related: tuple[Related, ...] = ()
) -> None:
    acc.problems.append(BuildProblem(ProblemKind.REPLACEMENT, file, line, message, related))


# --- ids and selection ---------------------------------------------------------------------


def _eff(namespace: str | None) -> str:
    return namespace if namespace and namespace != "default" else "default"


def _group_version(api_version: str) -> tuple[str, str]:
    # kyaml's ParseGroupVersion splits at the first slash.
    group, sep, version = api_version.partition("/")
    return (group, version) if sep else ("", api_version)


def _res_ids(res: Resource) -> Iterator[tuple[str, str, str, str, str]]:
    group, version = _group_version(res.api_version)
    yield group, version, res.kind, res.name, res.namespace or ""
    for name, namespace in res.prev:
        yield group, version, res.kind, name, namespace or ""


def _labels_match(res: Resource, sel: Selector) -> bool:
    """kustomize's MatchesLabelSelector and MatchesAnnotationSelector (an empty selector
    matches everything)."""
    meta = yn.get(res.node, "metadata")
    for selector, key in ((sel.annotation_selector, "annotations"), (sel.label_selector, "labels")):
        if not selector:
            continue
        matched = transformers.selector_matches(selector, _string_map(yn.get(meta, key)))
        if matched is None:
            raise NotKnown(f"has a selector `{selector}` the build cannot read")
        if not matched:
            return False
    return True


def _string_map(node: ynodes.Node | None) -> dict[str, str]:
    """kyaml's GetLabels / GetAnnotations: each key with its node's text."""
    if not isinstance(node, ynodes.MappingNode):
        return {}
    return {k.value: _raw_value(v) for k, v in node.value if isinstance(k, ynodes.ScalarNode)}


def _is_target(res: Resource, target: Target) -> bool:
    """`applyReplacement`'s choice: the label and annotation selectors of `select` match
    and those of no `reject`; an id matches `select` and the id part of no `reject`."""
    assert target.select is not None
    if not _labels_match(res, target.select):
        return False
    for reject in target.reject:
        if (reject.annotation_selector or reject.label_selector) and _labels_match(res, reject):
            return False
    if not target.select.selects(res):
        return False
    return not any(not r.empty_id and r.selects(res) for r in target.reject)


# --- paths ---------------------------------------------------------------------------------


def split_path(path: str) -> list[str]:
    """kyaml's `SmarterPathSplitter(path, ".")`: `\\.` escapes a dot, a leading dot is
    dropped, and a bracketed part with dots stays whole (`[name=a.b]`) or, without `=`,
    loses its brackets (`[app.kubernetes.io/name]`)."""
    parts = path.split(".")
    if len(parts) > 1 and parts[0] == "":
        parts = parts[1:]
    split = [parts[0]]
    for part in parts[1:]:
        if split[-1].endswith("\\"):
            split[-1] = split[-1][:-1] + "." + part
        else:
            split.append(part)
    out: list[str] = []
    i = 0
    while i < len(split):
        elem = split[i]
        if elem.startswith("[") and not elem.endswith("]"):
            bracketed = [elem]
            while i < len(split) - 1:
                i += 1
                bracketed.append(split[i])
                if split[i].endswith("]"):
                    break
            joined = ".".join(bracketed)
            out.append(joined if "=" in joined else joined.strip("[]"))
        else:
            out.append(elem)
        i += 1
    return out


_ATOI = re.compile(r"^[+-]?[0-9]{1,18}$")


def _atoi(part: str) -> int | None:
    """Go's `strconv.Atoi` (for the lengths a path holds)."""
    return int(part) if _ATOI.match(part) else None


def _null(node: ynodes.Node | None) -> bool:
    """kyaml's IsMissingOrNull: a scalar tagged null (`~`, `null` or nothing)."""
    return node is None or (
        isinstance(node, ynodes.ScalarNode) and node.tag != "" and yn.text(node) is None
    )


def _kind_name(node: ynodes.Node) -> str:
    if isinstance(node, ynodes.MappingNode):
        return "MappingNode"
    if isinstance(node, ynodes.SequenceNode):
        return "SequenceNode"
    return "ScalarNode"


def _wrong_kind(expected: str, node: ynodes.Node) -> str:
    return f"wrong node kind: expected {expected} but got {_kind_name(node)}"


class _PathError(Exception):
    """An error of kyaml's path walk (its text)."""


def _split_item(part: str) -> tuple[str, str]:
    body = part[1:-1]
    if "=" not in body:
        raise _PathError("list path element must contain fieldName=fieldValue for element to match")
    name, _, value = body.partition("=")
    return name, value


def lookup(node: ynodes.Node, path: str) -> ynodes.Node | None:
    """kyaml's `Lookup` (PathGetter, without creating): the node at `path`, None when
    it is not there."""
    current: ynodes.Node | None = node
    for part in (p.strip() for p in split_path(path)):
        if not part:
            continue
        index = _atoi(part)
        # kyaml picks the filter for a part (and fails on one it refuses) before it
        # looks at the node.
        if index is not None and index < 0:
            raise _PathError(f"array index {index} cannot be negative")
        if part == "*":
            raise _PathError("wildcard is not supported in PathGetter")
        if part.startswith("[") and part.endswith("]"):
            _split_item(part)
        if _null(current):
            return None
        assert current is not None
        if index is not None or part == "-":
            if not isinstance(current, ynodes.SequenceNode):
                raise _PathError(_wrong_kind("SequenceNode", current))
            if index is None:
                # `-` is the last item (kyaml panics on an empty list: nothing to read).
                current = current.value[-1] if current.value else None
            else:
                current = current.value[index] if index < len(current.value) else None
        elif part.startswith("[") and part.endswith("]"):
            key, value = _split_item(part)
            if not isinstance(current, ynodes.SequenceNode):
                raise _PathError(_wrong_kind("SequenceNode", current))
            found: ynodes.Node | None = None
            for item in current.value:
                if not key:
                    if isinstance(item, ynodes.ScalarNode) and item.value == value:
                        found = item
                        break
                elif isinstance(item, ynodes.MappingNode):
                    field_node = yn.get(item, key)
                    if field_node is not None and _raw_value(field_node) == value:
                        found = item
                        break
            current = found
        else:
            if not isinstance(current, ynodes.MappingNode):
                raise _PathError(_wrong_kind("MappingNode", current))
            current = yn.get(current, part)
        if current is None:
            return None
    return current


def _raw_value(node: ynodes.Node) -> str:
    """A go-yaml node's `Value`: a scalar's text, "" for a list or mapping."""
    return str(node.value) if isinstance(node, ynodes.ScalarNode) else ""


def _empty_value(node: ynodes.Node) -> bool:
    """kyaml's `IsNilOrEmpty`: null, an empty mapping or an empty list."""
    if isinstance(node, ynodes.MappingNode | ynodes.SequenceNode):
        return not node.value
    return _null(node)


# --- values ---------------------------------------------------------------------------------

_TAGLESS = ""  # a scalar kyaml created without a tag: its text decides its type


def _go_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


_A = {
    "null": "null",
    "bool": "a boolean",
    "int": "an integer",
    "float": "a number",
    "str": "a string",
}
_TAGS = {"null": yn.NULL, "bool": yn.BOOL, "int": yn.INT, "float": yn.FLOAT}


def _typed_by_text(text: str, mark: Any) -> ynodes.ScalarNode:
    """A scalar typed by its text alone, as go-yaml v3 reads an untagged plain one."""
    return ynodes.ScalarNode(yn._implicit_tag(text), text, mark, mark, None)


def _retext(node: ynodes.ScalarNode, text: str, mark: Any) -> ynodes.ScalarNode:
    """`node` with its text replaced and its type kept, as kyaml sets a scalar's
    `Value`; raises `_Decode` where kustomize's JSON output cannot hold the text as that
    type (it fails with `cannot decode !!str `abc` as a !!int`)."""
    if node.tag == _TAGLESS:
        return _typed_by_text(text, mark)
    was = _go_type(yn.to_value(node))
    if was == "str":
        # go-yaml quotes a string that would read as another type.
        quoted = node.style in ('"', "'") or type(yn.resolve_plain(text)) is not str
        return ynodes.ScalarNode(yn.STR, text, mark, mark, '"' if quoted else None)
    now = _go_type(yn.resolve_plain(text))
    if now != was and not (was == "float" and now == "int"):
        raise _Decode(now, text, was)
    return ynodes.ScalarNode(_TAGS[was], text, mark, mark, None)


class _Decode(Exception):
    def __init__(self, now: str, text: str, was: str) -> None:
        super().__init__(f"cannot decode !!{now} `{text}` as a !!{was}")
        self.now, self.text, self.was = now, text, was


def _marked(node: ynodes.Node, mark: Any, budget: _Budget) -> ynodes.Node:
    """A copy of `node` whose every node carries `mark`."""
    return yn.remarked(
        node,
        lambda _n: mark,
        limit=300,
        too_deep=lambda: NotKnown("copies a value nested too deep to follow"),
        step=budget.spend,
    )


@dataclass
class _Value:
    """The value a replacement writes: the source node, and its text when
    `options.delimiter` cut a part out of it."""

    node: ynodes.Node
    text: str | None = None

    @property
    def raw(self) -> str:
        return self.text if self.text is not None else _raw_value(self.node)

    def as_node(self, mark: Any, budget: _Budget) -> ynodes.Node:
        if self.text is None or not isinstance(self.node, ynodes.ScalarNode):
            return _marked(self.node, mark, budget)
        return _retext(self.node, self.text, mark)


def _refined(value: ynodes.Node, options: Options) -> _Value:
    """kustomize's `getRefinedValue`: one part of the source's text."""
    if not options.delimiter:
        return _Value(value)
    if not isinstance(value, ynodes.ScalarNode):
        raise _PathError("delimiter option can only be used with scalar nodes")
    parts = value.value.split(options.delimiter)
    if not 0 <= options.index < len(parts):
        raise _PathError(
            f"options.index {options.index} is out of bounds for value {_cut(value.value)}"
        )
    return _Value(value, parts[options.index])


def _cut(text: str) -> str:
    return text if len(text) <= _QUOTE else text[: _QUOTE - 3] + "..."


# --- writing: kyaml's PathMatcher -----------------------------------------------------------


# Text go-yaml prints plain, as it is: no indicator, no document marker, no `: ` or ` #`.
_PLAIN_SAFE = re.compile(
    r"(?!---|\.\.\.|-$|- )[A-Za-z0-9_./-](?:[A-Za-z0-9_./ -]*[A-Za-z0-9_./-])?"
)
_QUOTABLE = re.compile(r"[ -!#-\[\]-~]*")  # printable ASCII without `"` and `\`


def _go_string(node: ynodes.Node, pattern: str) -> str:
    """The text kyaml matches a `[key=regex]` pattern against: the node printed as YAML
    by go-yaml (`RNode.String()`), trimmed: a quoted scalar keeps its quotes, a string
    that would read as another type is quoted. Where the printed form is not certain,
    only a pattern without anchors or quotes is matched (against the text)."""
    if isinstance(node, ynodes.ScalarNode):
        text = str(node.value)
        if node.style == '"' and _QUOTABLE.fullmatch(text):
            return f'"{text}"'
        if node.style == "'" and "\n" not in text:
            return "'" + text.replace("'", "''") + "'"
        if not node.style and len(text) < 60:
            if isinstance(yn.to_value(node), str) and not isinstance(yn.resolve_plain(text), str):
                if _QUOTABLE.fullmatch(text):
                    return f'"{text}"'
            elif _PLAIN_SAFE.fullmatch(text) and ": " not in text and " #" not in text:
                return text
        if not re.search(r"[\^$\"']", pattern):
            return text.strip()
    raise NotKnown(f"matches `{pattern}` against a value whose printed form it depends on")


_RE2 = re2.Options()
_RE2.log_errors = False


def _pattern(text: str) -> Callable[[str], bool]:
    """kyaml's `regexp.Compile(value).MatchString`: found anywhere in the text."""
    try:
        compiled = re2.compile(text, _RE2)
    except re2.error:
        # RE2 and Go's regexp read the same syntax; where their limits differ (the size
        # of a pattern), what kustomize does is not certain.
        raise NotKnown(f"has a pattern `{text}` the build cannot read") from None

    def search(value: str) -> bool:
        return compiled.search(value) is not None

    return search


@dataclass
class _Writer:
    """Writes one fieldPaths entry into one object, as kyaml's PathMatcher finds the
    fields (creating them when `create`) and `setFieldValue` sets each."""

    create: str | None  # the node kind to create at the end ("scalar", "map", "seq")
    leaf: Callable[[ynodes.Node], ynodes.Node]
    mark: Any
    budget: _Budget
    count: int = 0

    def new(self, next_part: str) -> ynodes.Node:
        """kyaml's `getPathPartKind`: what a missing part is created as."""
        if (next_part.startswith("[") and next_part.endswith("]")) or (
            (i := _atoi(next_part)) is not None and i >= 0
        ):
            return yn.sequence([], self.mark)
        if next_part == "":
            if self.create == "map":
                return yn.mapping([], self.mark)
            if self.create == "seq":
                return yn.sequence([], self.mark)
            return ynodes.ScalarNode(_TAGLESS, "", self.mark, self.mark, None)
        return yn.mapping([], self.mark)

    def walk(self, node: ynodes.Node, parts: list[str]) -> tuple[ynodes.Node, bool]:
        """`node` with the fields below it written, and whether any was found."""
        self.budget.spend()
        if not parts:
            self.count += 1
            return self.leaf(node), True
        part = parts[0]
        index = _atoi(part)
        if index is not None and index >= 0:
            return self._index(node, parts, index)
        if part.startswith("[") and part.endswith("]"):
            return self._items(node, parts, 0)
        if part == "*":
            return self._every(node, parts)
        return self._field(node, parts)

    def _elements(self, node: ynodes.Node) -> list[ynodes.Node]:
        if _null(node):
            return []
        if not isinstance(node, ynodes.SequenceNode):
            raise _PathError(_wrong_kind("SequenceNode", node))
        return list(node.value)

    def _lost(
        self, node: ynodes.Node, child: ynodes.Node, rest: list[str]
    ) -> tuple[ynodes.Node, bool]:
        # kyaml adds what it creates below a null to the null's own node, which nothing
        # reads: the fields are found (no error) and the object does not change.
        _, found = self.walk(child, rest)
        return node, found

    def _field(self, node: ynodes.Node, parts: list[str]) -> tuple[ynodes.Node, bool]:
        if _null(node):
            if self.create is None:
                return node, False
            return self._lost(node, self.new(parts[1] if len(parts) > 1 else ""), parts[1:])
        if not isinstance(node, ynodes.MappingNode):
            raise _PathError(_wrong_kind("MappingNode", node))
        child = yn.get(node, parts[0])
        if child is None:
            if self.create is None:
                return node, False
            child = self.new(parts[1] if len(parts) > 1 else "")
        new, found = self.walk(child, parts[1:])
        if new is child:
            return node, found
        return yn.with_key(node, parts[0], new, self.mark), found

    def _index(self, node: ynodes.Node, parts: list[str], index: int) -> tuple[ynodes.Node, bool]:
        items = self._elements(node)
        if len(items) == index and self.create is not None:
            item = self.new(parts[1] if len(parts) > 1 else "")
            if _null(node):
                return self._lost(node, item, parts[1:])
            items.append(item)
        if len(items) < index + 1:
            raise _PathError(f"index {index} specified but only {len(items)} elements found")
        new, found = self.walk(items[index], parts[1:])
        if not found:
            return node, False
        items[index] = new
        assert isinstance(node, ynodes.SequenceNode)
        return ynodes.SequenceNode(
            node.tag, items, node.start_mark, node.end_mark, node.flow_style
        ), True

    def _every(self, node: ynodes.Node, parts: list[str]) -> tuple[ynodes.Node, bool]:
        items = self._elements(node)
        any_found = False
        for i, item in enumerate(items):
            new, found = self.walk(item, parts[1:])
            if found:
                any_found = True
                items[i] = new
        if not any_found:
            return node, False
        assert isinstance(node, ynodes.SequenceNode)
        return ynodes.SequenceNode(
            node.tag, items, node.start_mark, node.end_mark, node.flow_style
        ), True

    def _items(self, node: ynodes.Node, parts: list[str], depth: int) -> tuple[ynodes.Node, bool]:
        key, regex = _split_item(parts[0])
        items = self._elements(node)
        pattern = _pattern(regex) if items else None
        any_found = False
        for i, item in enumerate(items):
            assert pattern is not None
            if not key:
                # A list of scalars: the item itself is the field, whatever follows.
                if not pattern(_go_string(item, regex)):
                    continue
                self.count += 1
                items[i] = self.leaf(item)
                any_found = True
                continue
            if not isinstance(item, ynodes.MappingNode):
                continue
            value = yn.get(item, key)
            if value is None or not pattern(_go_string(value, regex)):
                continue
            new, found = self.walk(item, parts[1:])
            if found:
                any_found = True
                items[i] = new
        if any_found:
            assert isinstance(node, ynodes.SequenceNode)
            return ynodes.SequenceNode(
                node.tag, items, node.start_mark, node.end_mark, node.flow_style
            ), True
        if self.create is None:
            return node, False
        if depth:
            # kyaml searches again for the item it added; a pattern that does not match
            # its own text never finds it (kustomize recurses until it crashes).
            raise NotKnown(f"creates an item `{parts[0]}` its own pattern does not match")
        created: ynodes.Node = _typed_by_text(regex, self.mark)
        if key:
            created = yn.mapping([(yn.scalar(key, self.mark), created)], self.mark)
        seq = yn.sequence([*items, created], self.mark)
        if _null(node):
            self._items(seq, parts, depth + 1)
            return node, True
        assert isinstance(node, ynodes.SequenceNode)
        seq = ynodes.SequenceNode(
            node.tag, [*items, created], node.start_mark, node.end_mark, node.flow_style
        )
        return self._items(seq, parts, depth + 1)


def _kind_of(node: ynodes.Node) -> str:
    if isinstance(node, ynodes.MappingNode):
        return "map"
    if isinstance(node, ynodes.SequenceNode):
        return "seq"
    return "scalar"


# --- running them ---------------------------------------------------------------------------


def run(k: Kustomizer, kf: KustFile, acc: Accumulated) -> None:
    specs = _load(k, kf, acc)
    if specs is None:
        return
    budget = _Budget()
    for spec in specs:
        try:
            _apply(spec, acc, budget)
        except Fails as exc:
            if acc.unknown and not exc.certain:
                # What is not known might be what the replacement looks for.
                acc.unknown.append(
                    Unknown(
                        spec.where,
                        "may read or write objects the build does not know",
                        (spec.file,),
                    )
                )
            else:
                _refuse(acc, spec.file, exc.line, exc.message, exc.related)
            return
        except NotKnown as exc:
            acc.unknown.append(Unknown(spec.where, str(exc), (spec.file,)))
            return


def _apply(spec: Replacement, acc: Accumulated, budget: _Budget) -> None:
    """kustomize's replacement `Filter` for one replacement; raises `Fails` where
    kustomize fails the build."""
    if spec.source is None or not spec.targets:
        raise Fails(
            "This replacement has no source or no targets: kustomize fails with "
            "`replacements must specify a source and at least one target`.",
            spec.line,
            certain=True,
        )
    source = spec.source
    matches = [r for r in acc.resmap if source.selector.selects(r)]
    if not matches:
        raise Fails(
            f"This replacement's source {source.selector.describe()} is not in this build: "
            f"kustomize fails with `nothing selected by {source}`.",
            source.line,
        )
    if len(matches) > 1:
        names = ", ".join(str(r) for r in matches[:3]) + (", ..." if len(matches) > 3 else "")
        raise Fails(
            f"This replacement's source selects {len(matches)} objects ({names}): kustomize "
            f"fails with `multiple matches for selector {source}`.",
            source.line,
            related=tuple(Related(r.path, r.line, f"{r} is selected") for r in matches[:5]),
            certain=True,
        )
    [src] = matches
    field_path = source.field_path or DEFAULT_FIELD_PATH
    try:
        found = lookup(src.node, field_path)
        if found is None or _empty_value(found):
            raise Fails(
                f"This replacement reads `{field_path}` of {src}, which is not set there: "
                "kustomize fails with `fieldPath ... is missing for replacement source`.",
                source.path_line,
                related=(Related(src.path, src.line, f"{src}"),),
            )
        value = _refined(found, source.options)
    except _PathError as exc:
        raise Fails(
            f"This replacement cannot read `{field_path}` of {src}: kustomize fails with `{exc}`.",
            source.path_line,
            related=(Related(src.path, src.line, f"{src}"),),
        ) from None
    src_file, src_line, _ = yn.origin_of(found, src.path)
    secret = (src.kind == "Secret" and field_path.split(".")[0] in ("data", "stringData")) or (
        isinstance(found.start_mark, yn.Origin) and found.start_mark.secret
    )
    via = f"replaced from {src} `{field_path}` ({src_file}:{src_line})"
    out: list[Resource] = []
    changed = False
    for res in acc.resmap:
        new = res
        for target in spec.targets:
            if target.select is None:
                raise Fails(
                    "This replacement has a target without `select`: kustomize fails with "
                    "`target must specify resources to select`.",
                    target.line,
                    certain=True,
                )
            budget.spend()
            if _is_target(new, target):
                new = _write(new, target, value, spec, via, secret, budget)
        if new is not res:
            changed = True
            if not new.kind or not new.name:
                raise Fails(
                    f"This replacement leaves {res} without a kind or a name: kustomize fails "
                    "with `missing metadata.name in object`.",
                    spec.line,
                    related=(Related(res.path, res.line, f"{res}"),),
                )
        out.append(new)
    if changed:
        # kustomize rebuilds its list of objects from the filtered nodes without checking
        # their ids (`ApplyFilter`): a parent that adds two alike fails, this level not.
        acc.resmap = ResMap(out, {r.key(): i for i, r in reversed(list(enumerate(out)))})


def _write(
    res: Resource,
    target: Target,
    value: _Value,
    spec: Replacement,
    via: str,
    secret: bool,
    budget: _Budget,
) -> Resource:
    """kustomize's `copyValueToTarget`: every field path of the target in `res`."""
    node: ynodes.Node = res.node
    paths = target.field_paths or ((DEFAULT_FIELD_PATH, target.line),)
    options = target.options
    for path, line in paths:
        mark = yn.Origin(spec.file, line, via, secret)
        create = _kind_of(value.node) if options.create else None

        def leaf(field_node: ynodes.Node, mark: Any = mark, path: str = path) -> ynodes.Node:
            return _set(field_node, value, options, mark, res, path, budget)

        parts = split_path(path)
        if len(parts) > _MAX_PARTS:
            raise NotKnown(f"writes `{_cut(path)}`, a field path too long to follow")
        writer = _Writer(create, leaf, mark, budget)
        try:
            node, _ = writer.walk(node, parts)
        except _PathError as exc:
            raise Fails(
                f"This replacement cannot write `{path}` of {res}: kustomize fails with "
                f"`{_retrieval(options.create)} ...: {exc}`.",
                line,
                related=(Related(res.path, res.line, f"{res}"),),
            ) from None
        if writer.count == 0:
            hint = "" if options.create else "; `options.create: true` would add it"
            raise Fails(
                f"{res} has no `{path}` for this replacement to write: kustomize fails with "
                f"`{_retrieval(options.create)}`{hint}.",
                line,
                related=(Related(res.path, res.line, f"{res}"),),
            )
    if node is res.node:
        return res
    assert isinstance(node, ynodes.MappingNode)
    # kustomize does not remember the id a replacement changes: references to the old
    # name are not followed to the new one.
    return res.with_node(node, store=False)


def _retrieval(create: bool) -> str:
    # kustomize's text goes on with the field path in quotes: "... field "a.b" in
    # replacement target".
    return "unable to find or create field" if create else "unable to find field"


def _set(
    target: ynodes.Node,
    value: _Value,
    options: Options,
    mark: Any,
    res: Resource,
    path: str,
    budget: _Budget,
) -> ynodes.Node:
    """kustomize's `setFieldValue`."""
    if options.delimiter:
        if not isinstance(target, ynodes.ScalarNode):
            raise Fails(
                f"This replacement splits `{path}` of {res} at `{options.delimiter}`, but it is "
                "not a scalar: kustomize fails with `delimiter option can only be used with "
                "scalar nodes`.",
                mark.line + 1,
                related=(Related(res.path, res.line, f"{res}"),),
            )
        parts = str(target.value).split(options.delimiter)
        text = "" if _null(value.node) else value.raw
        if options.index < 0:
            parts = [text, *parts]
        elif options.index >= len(parts):
            parts = [*parts, text]
        else:
            parts[options.index] = text
        value = _Value(value.node, options.delimiter.join(parts))
    try:
        if isinstance(target, ynodes.ScalarNode):
            # Only the text: the target keeps its type.
            return _retext(target, value.raw, mark)
        return value.as_node(mark, budget)
    except _Decode as exc:
        raise Fails(
            f"This replacement writes `{_cut(exc.text)}` into `{path}` of {res}, which "
            f"holds {_A[exc.was]}: kustomize fails with `cannot decode !!{exc.now} ... as a "
            f"!!{exc.was}`.",
            mark.line + 1,
            related=(Related(res.path, res.line, f"{res}"),),
        ) from None


__all__ = ["Replacement", "lookup", "run", "split_path"]
