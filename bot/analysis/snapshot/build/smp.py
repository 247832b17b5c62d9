"""Strategic-merge patches on node trees, exactly as kustomize v5.5 applies them.

kustomize does not merge with apimachinery's strategicpatch but with kyaml's `merge2`
(sigs.k8s.io/kustomize/kyaml v0.18.1: `yaml/merge2`, `yaml/walk`, the filters of
`yaml/fns.go`), which walks the target and the patch together, patch elements first
(`MergeOptionsListPrepend`). What it does differs from the documented strategic merge in
ways a build shows, so this is a port of that code, step by step, rather than of the
specification:
- mappings merge field by field (fields the patch adds go after the target's, in name
  order); a `null` deletes a field; `$patch: delete|replace|merge` act on a mapping, except
  that a `replace` of the whole object changes nothing; a target field written `~` or
  `null` is kept, an empty one (`key:`) is dropped wherever the walk goes; `<<` merge keys
  are written out first, as kustomize does when it reads a file;
- a list merges element by element only where kustomize's built-in schema gives it the
  `merge` strategy (`fieldspecs.Schema`, Kubernetes 1.21 kinds only; an object nested in
  an unknown one that has a known `apiVersion` and `kind` gets that kind's schema); any
  other list, and every list of a custom resource, is replaced, with a `{$patch: ...}`
  item kept literally;
- an associative list is rebuilt from the patch's element keys then the target's: the
  merge keys of a multi-key list (`containerPort` + `protocol`) are reconciled row by row
  (`mergeValues`, `validateKeys`), elements are found and replaced with kyaml's
  `ElementSetter`, and `appendListNode` adds the target's elements after the patch's. A
  patch element with no merge key deletes every target element that has one, a target
  element without one drops what came before it, a patch element whose keys only half
  meet the target's is lost, and the last of duplicate target elements wins;
- a scalar the patch sets keeps the target's quoting, so a number that replaces a quoted
  string is written, and read back, as a string;
- a patch whose node kind differs from the target's fails the build:
  `wrong node kind: expected ScalarNode but got MappingNode`.

kyaml edits both trees in place, and which node objects end up shared decides some of its
results. The port runs on a private mutable mirror (`_M`) of both trees, with the same
sharing, and freezes the result back into libyaml nodes: an input node is never mutated,
an unchanged subtree is the input's own node, and a value from the patch keeps its marks
(its `Origin`). Most of a patch only sets fields of mappings, where the walk amounts to a
recursive merge: that is built straight from the nodes (`_fast`), and only the fields
that need more are mirrored and walked.

Not reproduced: the schema kyaml reads from `# {"$openapi": ...}` comments (comments are
not parsed), and kyaml keeps a field's own schema where `data/mergekeys.json`, which only
lists fields that lead to a merge list, has none: an object with an `apiVersion` and a
`kind` inside such a field of a built-in kind (a ControllerRevision's `data`) is merged
with its own kind's schema here.
"""

from __future__ import annotations

from yaml import Mark
from yaml import nodes as ynodes

from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.fieldspecs import ListKind, Schema

_DIRECTIVE = "$patch"
_DELETE, _REPLACE, _MERGE, _UNKNOWN = "delete", "replace", "merge", "unknown"

# Nesting a walk follows (a few Python frames each) and nodes a merge may copy: kustomize
# has neither limit, but a patch is hostile input and the build must stay bounded.
_MAX_DEPTH = 200
_MAX_NODES = 1_000_000

_SCALAR, _SEQ, _MAP = 0, 1, 2
_KIND_NAMES = ("ScalarNode", "SequenceNode", "MappingNode")
# A scalar written in one of these styles is a string whatever its tag (go-yaml drops a
# tag the value resolves to and keeps the quotes).
_STRING_STYLES = frozenset({'"', "'", "|", ">"})

Path = tuple[str | int, ...]
# kyaml's ResourceSchema at one node: None where kyaml has none; an object's schema; or a
# list's, with how it merges and its elements' schema.
_Sch = tuple[Schema, ListKind | None] | None


class MergeFailed(Exception):
    """kustomize fails the build; the message is what it prints."""

    def __init__(self, message: str, path: Path, node: ynodes.Node | None) -> None:
        super().__init__(message)
        self.path = path
        self.node = node  # the patch's node at fault, for its line


class _M:
    """A mutable stand-in for a go-yaml `yaml.Node`: `content` is go-yaml's (a mapping's
    keys and values alternate), `node` the libyaml node it mirrors (reused when nothing
    changed), `keep` kyaml's `ShouldKeep` (a target's explicit null)."""

    __slots__ = ("content", "end", "keep", "kind", "mark", "node", "style", "tag", "value")

    def __init__(
        self,
        kind: int,
        tag: str,
        value: str,
        style: str | None,
        content: list[_M],
        node: ynodes.Node | None,
        mark: Mark | None,
        end: Mark | None,
    ) -> None:
        self.kind = kind
        self.tag = tag
        self.value = value
        self.style = style
        self.content = content
        self.node = node
        self.mark = mark
        self.end = end
        self.keep = False

    def become(self, other: _M) -> None:
        """go-yaml's `*node = *other` (kyaml's `SetYNode`)."""
        for slot in ("kind", "tag", "value", "style", "content", "node", "mark", "end"):
            setattr(self, slot, getattr(other, slot))


def merge(patch: ynodes.Node, target: ynodes.Node, schema: Schema) -> ynodes.Node | None:
    """`target` with `patch` merged in; None when the patch deletes the whole object.
    `schema` is the target's kind's (`Schema.of`); when it is not a built-in kind, the
    patch's own `apiVersion` and `kind` are looked up, as kyaml does."""
    if type(target) is ynodes.MappingNode and type(patch) is ynodes.MappingNode:
        try:
            _scan(patch, 0, _scan(target, 0, _MAX_NODES))
            return _fast(target, patch, (schema, None) if schema.known else None, ())
        except (_Fallback, _Failed):
            pass
    return _walked(patch, target, schema)


def _walked(patch: ynodes.Node, target: ynodes.Node, schema: Schema) -> ynodes.Node | None:
    budget = [_MAX_NODES]
    dest = _mirror(target, budget, 0)
    origin = _mirror(patch, budget, 0)
    result = _walk(dest, origin, (schema, None) if schema.known else None, ())
    if result is None or result.tag == yn.NULL:
        return None
    # kustomize keeps the object the merge edited in place (`Resource.ApplyFilter` only
    # looks at whether the result is empty): a `$patch: replace` on the whole object is
    # walked, and can fail, but changes nothing.
    return _freeze(dest, 0)


# --- the common case: mappings merged field by field --------------------------------------
#
# Most of a patch only sets fields of mappings: no directive, no list the schema merges.
# There kyaml's walk amounts to a recursive merge of mappings, and what `_freeze` gives back
# can be built straight from the input nodes, without mirroring the trees. A field that
# needs more (`_Fallback`) is mirrored and walked alone; where a walk fails, or where the
# whole object needs more (a `<<` anywhere, a directive at its top), the whole merge is
# walked, so errors are the walk's: inputs are never changed, nothing is left half done.


class _Fallback(Exception):
    """What `_fast` does not cover: the field is walked."""


class _Failed(Exception):
    """The walk of a field failed: the whole merge is walked."""


_GONE = ynodes.ScalarNode(yn.NULL, "")  # a field the patch deletes


def _scan(node: ynodes.Node, depth: int, left: int) -> int:
    """What is left of the mirror's budget `left` once `node` is mirrored at `depth`
    (counted as `_mirror` counts); `_Fallback` where mirroring would de-anchor a `<<`, or
    where the mirror, the walk or the freeze would be near their nesting limit."""
    if depth >= _MAX_DEPTH:
        raise _Fallback
    value = node.value
    left -= 1 + len(value)
    if left < 0:
        raise _Fallback
    if type(node) is ynodes.MappingNode:
        for k, v in value:
            if type(k) is ynodes.ScalarNode:
                if k.value == "<<":
                    raise _Fallback
            else:
                left = _scan(k, depth + 1, left)
            if type(v) is not ynodes.ScalarNode:
                left = _scan(v, depth + 1, left)
    elif type(node) is ynodes.SequenceNode:
        for v in value:
            if type(v) is not ynodes.ScalarNode:
                left = _scan(v, depth + 1, left)
    else:
        raise _Fallback
    return left


def _fields(m: ynodes.Node, patch: bool) -> dict[str, ynodes.Node]:
    """A walked mapping's fields by name; `_Fallback` for what makes `_field`'s first match
    or the directives matter."""
    if m.tag == yn.NULL:
        raise _Fallback
    out: dict[str, ynodes.Node] = {}
    for k, v in m.value:
        if type(k) is not ynodes.ScalarNode:
            raise _Fallback
        name = k.value
        if name in out or (patch and name == _DIRECTIVE):
            raise _Fallback
        out[name] = v
    return out


def _node_schema(fields: dict[str, ynodes.Node]) -> _Sch:
    """`_schema_of` for one mapping without an inherited schema."""
    kind = fields.get("kind")
    if kind is None:
        return None
    api = fields.get("apiVersion")
    if (
        type(api) is ynodes.ScalarNode
        and type(kind) is ynodes.ScalarNode
        and api.tag != yn.NULL
        and kind.tag != yn.NULL
        and api.value
        and kind.value
    ):
        found = Schema.of(api.value, kind.value)
        if found.known:
            return (found, None)
    return None


def _fast(d: ynodes.MappingNode, o: ynodes.MappingNode, schema: _Sch, path: Path) -> ynodes.Node:
    """`_walk_map` of a target's mapping and the patch's, frozen. Each field is walked on
    its own (only `_set_field` on this mapping joins them), so a field this path does not
    cover is walked, alone, by `_walk_field`."""
    dfields = _fields(d, False)
    ofields = _fields(o, True)
    if schema is None:
        schema = _node_schema(dfields) or _node_schema(ofields)
    changed: dict[str, ynodes.Node] = {}
    added: list[tuple[ynodes.Node, ynodes.Node]] = []
    for name in sorted(dfields.keys() | ofields.keys()):
        dv, ov = dfields.get(name), ofields.get(name)
        sub = None if schema is None else _field_schema(schema, name)
        merged: ynodes.Node | None
        try:
            if ov is None:
                assert dv is not None
                _inert(dv, sub, False)
                continue
            if ov.tag == yn.NULL:
                if type(ov) is not ynodes.ScalarNode:
                    raise _Fallback
                # Whatever the target's value, the walk sets a plain null, and
                # `_set_field` clears the field.
                if dv is not None:
                    changed[name] = _GONE
                continue
            if dv is None:
                _inert(ov, sub, True)
                added.append((_key(o, name), ov))
                continue
            kind = type(ov)
            if dv.tag == yn.NULL or type(dv) is not kind:
                raise _Fallback
            if kind is ynodes.ScalarNode:
                merged = _replaced(dv, ov)  # type: ignore[arg-type]
            elif kind is ynodes.SequenceNode:
                if sub is not None and sub[1] is not None:
                    raise _Fallback  # a list the schema merges
                merged = ov
            else:
                merged = _fast(dv, ov, sub, (*path, name))  # type: ignore[arg-type]
        except _Fallback:
            merged = _walk_field(dv, ov, sub, (*path, name))
            if dv is None:
                if merged is not None:
                    added.append((_key(o, name), merged))
                continue
            if merged is None:
                merged = _GONE
        if merged is not dv:  # `_freeze` keeps the node a mirror froze back to itself
            changed[name] = merged
    if not changed and not added:
        return d
    pairs = [(k, changed.get(k.value, v)) for k, v in d.value]
    if _GONE in changed.values():
        pairs = [(k, v) for k, v in pairs if v is not _GONE]
    pairs += added
    return ynodes.MappingNode(d.tag, pairs, d.start_mark, d.end_mark, d.flow_style)


def _walk_field(
    dv: ynodes.Node | None, ov: ynodes.Node | None, schema: _Sch, path: Path
) -> ynodes.Node | None:
    """One field of a mapping walked as `_walk_map` walks it, then set as `_set_field`
    sets it, frozen: None where the field ends up missing. A failure makes the whole
    merge be walked again, so that the first failure the walk meets is the one reported."""
    budget = [_MAX_NODES]  # `_scan` counted the whole merge
    depth = len(path)
    dm = None if dv is None else _mirror(dv, budget, depth)
    om = None if ov is None else _mirror(ov, budget, depth)
    try:
        val = _walk(dm, om, schema, path)
    except MergeFailed:
        raise _Failed from None
    if val is None or (val.tag == yn.NULL and not val.keep):
        return None
    if dm is None:
        return _freeze(val, depth)
    if val is not dm:
        val.style = dm.style
        if val.kind == _SCALAR and val.style in _STRING_STYLES and val.tag != yn.STR:
            val.tag = yn.STR
        dm.become(val)
    return _freeze(dm, depth)


def _key(m: ynodes.Node, name: str) -> ynodes.Node:
    key: ynodes.Node = next(k for k, _ in m.value if k.value == name)
    return key


def _inert(m: ynodes.Node, schema: _Sch, patch: bool) -> None:
    """`_Fallback` unless walking `m` alone (the target's, `patch` False) or against
    itself (the patch's, where the target has nothing) leaves it as it is."""
    if m.tag == yn.NULL:
        raise _Fallback
    kind = type(m)
    if kind is ynodes.ScalarNode:
        return
    if kind is ynodes.SequenceNode:
        if schema is not None and schema[1] is not None:
            raise _Fallback  # a list the schema merges
        return
    fields = _fields(m, patch)
    if schema is None:
        schema = _node_schema(fields)
    for name, v in fields.items():
        if type(v) is ynodes.ScalarNode:
            if v.tag == yn.NULL:
                raise _Fallback
            continue
        _inert(v, None if schema is None else _field_schema(schema, name), patch)


def _replaced(dv: ynodes.ScalarNode, ov: ynodes.ScalarNode) -> ynodes.Node:
    """The patch's scalar set over the target's: `_set_field`'s style, then `_freeze`."""
    style = dv.style
    tag = ov.tag
    if style in _STRING_STYLES and tag != yn.STR:
        tag = yn.STR
    if ov.style == style and ov.tag == tag:
        return ov
    return ynodes.ScalarNode(tag, ov.value, ov.start_mark, ov.end_mark, style)


# --- mirroring ------------------------------------------------------------------------


def _mirror(node: ynodes.Node, budget: list[int], depth: int) -> _M:
    # An aliased node becomes one copy per use, as kustomize de-anchors what it reads.
    budget[0] -= 1 + (len(node.value) if isinstance(node.value, list) else 0)
    if budget[0] < 0:
        raise MergeFailed("the object is too large to merge", (), None)
    if depth > _MAX_DEPTH:
        raise MergeFailed("nesting too deep", (), node)
    if isinstance(node, ynodes.MappingNode):
        content: list[_M] = []
        merged: list[ynodes.Node] = []
        for k, v in node.value:
            if _is_merge_key(k):
                merged.append(v)
                continue
            content.append(
                _scalar(k) if type(k) is ynodes.ScalarNode else _mirror(k, budget, depth + 1)
            )
            content.append(
                _scalar(v) if type(v) is ynodes.ScalarNode else _mirror(v, budget, depth + 1)
            )
        if merged:
            content = _merge_keys(content, merged, budget, depth)
        return _M(_MAP, node.tag, "", None, content, node, node.start_mark, node.end_mark)
    if isinstance(node, ynodes.SequenceNode):
        items = [
            _scalar(v) if type(v) is ynodes.ScalarNode else _mirror(v, budget, depth + 1)
            for v in node.value
        ]
        return _M(_SEQ, node.tag, "", None, items, node, node.start_mark, node.end_mark)
    assert isinstance(node, ynodes.ScalarNode)
    return _scalar(node)


def _scalar(node: ynodes.ScalarNode) -> _M:
    return _M(_SCALAR, node.tag, node.value, node.style, [], node, node.start_mark, node.end_mark)


def _is_merge_key(key: ynodes.Node) -> bool:
    return (
        isinstance(key, ynodes.ScalarNode)
        and key.value == "<<"
        and not key.style  # plain: None from PyYAML's parser, "" from libyaml's
        and key.tag == "tag:yaml.org,2002:merge"
    )


def _merge_keys(
    own: list[_M], merged: list[ynodes.Node], budget: list[int], depth: int
) -> list[_M]:
    """kyaml's `DeAnchor` (kustomize reads every file with it) writes the fields of `<<`
    mappings into the mapping: the mapping's own fields win, then the first source."""
    sources: list[ynodes.Node] = []
    for node in merged:
        if isinstance(node, ynodes.SequenceNode):
            sources.extend(v for v in node.value if isinstance(v, ynodes.MappingNode))
        elif isinstance(node, ynodes.MappingNode):
            sources.append(node)
    content = list(own)
    for source in [*reversed(sources), None]:
        fields = own if source is None else _mirror(source, budget, depth + 1).content
        firsts: dict[str, tuple[_M, _M]] = {}
        for i in range(0, len(fields) - 1, 2):
            firsts.setdefault(fields[i].value, (fields[i], fields[i + 1]))
        for key, value in firsts.values():
            at = next(
                (j for j in range(0, len(content) - 1, 2) if content[j].value == key.value), None
            )
            if at is None:
                content += [key, value]
            else:
                content[at : at + 2] = [key, value]
    return content


def _freeze(m: _M, depth: int) -> ynodes.Node:
    if depth > _MAX_DEPTH:
        raise MergeFailed("nesting too deep", (), m.node)
    orig = m.node
    if m.kind == _SCALAR:
        if (
            isinstance(orig, ynodes.ScalarNode)
            and orig.tag == m.tag
            and orig.value == m.value
            and orig.style == m.style
        ):
            return orig
        return ynodes.ScalarNode(m.tag, m.value, m.mark, m.end, m.style)
    children = [_freeze(c, depth + 1) for c in m.content]
    if m.kind == _SEQ:
        if isinstance(orig, ynodes.SequenceNode) and _same(orig.value, children):
            return orig
        flow = orig.flow_style if isinstance(orig, ynodes.SequenceNode) else None
        tag = orig.tag if isinstance(orig, ynodes.SequenceNode) else yn.SEQ
        return ynodes.SequenceNode(tag, children, m.mark, m.end, flow)
    pairs = list(zip(children[::2], children[1::2], strict=True))
    if (
        isinstance(orig, ynodes.MappingNode)
        and len(orig.value) == len(pairs)
        and all(a is c and b is d for (a, b), (c, d) in zip(orig.value, pairs, strict=True))
    ):
        return orig
    flow = orig.flow_style if isinstance(orig, ynodes.MappingNode) else None
    tag = orig.tag if isinstance(orig, ynodes.MappingNode) else yn.MAP
    return ynodes.MappingNode(tag, pairs, m.mark, m.end, flow)


def _same(a: list[ynodes.Node], b: list[ynodes.Node]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _plain(value: str, like: _M) -> _M:
    """kyaml's `NewScalarRNode(value)`: an untagged plain scalar, which go-yaml writes as
    whatever type the text reads as (a YAML 1.1 boolean word quoted, as a string)."""
    resolved = yn.resolve_plain(value)
    style: str | None = None
    if resolved is None:
        tag = yn.NULL
    elif isinstance(resolved, bool):
        tag = yn.BOOL
    elif isinstance(resolved, int):
        tag = yn.INT
    elif isinstance(resolved, float):
        tag = yn.FLOAT
    else:
        tag = yn.STR
        if isinstance(resolved, yn.Unsure):
            style = '"'
    return _M(_SCALAR, tag, value, style, [], None, like.mark, like.end)


# --- kyaml's node predicates and filters (yaml/rnode.go, yaml/fns.go) ------------------


def _null(m: _M | None) -> bool:
    """IsMissingOrNull."""
    return m is None or m.tag == yn.NULL


def _empty_map(m: _M | None) -> bool:
    """IsEmptyMap (a missing or null node counts)."""
    return m is None or m.tag == yn.NULL or (m.kind == _MAP and not m.content)


def _nil_or_empty(m: _M | None) -> bool:
    """IsYNodeNilOrEmpty."""
    return m is None or m.tag == yn.NULL or (m.kind != _SCALAR and not m.content)


def _kind_error(expected: int, m: _M, path: Path) -> MergeFailed:
    return MergeFailed(
        f"wrong node kind: expected {_KIND_NAMES[expected]} but got {_KIND_NAMES[m.kind]}",
        path,
        m.node,
    )


def _check(m: _M | None, kind: int, path: Path) -> None:
    """ErrorIfInvalid: a missing or null node passes."""
    if m is not None and m.kind != kind and m.tag != yn.NULL:
        raise _kind_error(kind, m, path)


def _field(m: _M | None, name: str) -> _M | None:
    """`RNode.Field(name).Value`: the first field of that name of a mapping."""
    if m is None or m.kind != _MAP:
        return None
    c = m.content
    for i in range(0, len(c) - 1, 2):
        if c[i].value == name:
            return c[i + 1]
    return None


def _match_field(m: _M | None, name: str, value: str | None, path: Path) -> _M | None:
    """FieldMatcher: the first field `name` of a mapping, when its text is `value` (any
    text when None); with no name, the scalar itself when its text is `value`."""
    if m is None or m.tag == yn.NULL:
        return None
    if name == "":
        _check(m, _SCALAR, path)
        return m if m.value == (value or "") else None
    _check(m, _MAP, path)
    c = m.content
    for i in range(0, len(c) - 1, 2):
        if c[i].value == name:
            v = c[i + 1]
            return v if value is None or v.value == value else None
    return None


def _clear(m: _M, name: str, path: Path) -> None:
    """FieldClearer: removes the first field `name`."""
    _check(m, _MAP, path)
    c = m.content
    for i in range(0, len(c) - 1, 2):
        if c[i].value == name:
            m.content = c[:i] + c[i + 2 :]
            return


def _set_field(m: _M, name: str, value: _M | None, key: _M | None, path: Path) -> None:
    """FieldSetter: a missing or (not kept) null value removes the field; an existing
    field takes the value in place, in its own style; a new one is appended."""
    if value is None or (value.tag == yn.NULL and not value.keep):
        _clear(m, name, path)
        return
    field = _match_field(m, name, None, path)
    if field is not None:
        if field is value:
            return
        # kyaml gives the new value the old one's style, and go-yaml writes a scalar in a
        # quoted or block style as a string.
        value.style = field.style
        if value.kind == _SCALAR and value.style in _STRING_STYLES and value.tag != yn.STR:
            value.tag = yn.STR
        field.become(value)
        return
    if key is None:
        key = _M(_SCALAR, yn.STR, name, None, [], None, value.mark, value.mark)
    m.content = [*m.content, key, value]


def _element_setter(
    rn: _M, element: _M | None, keys: list[str], values: list[str], path: Path
) -> None:
    """ElementSetter: replaces (or, without `element`, removes) every element whose
    fields `keys` have the texts `values` (an empty text: any), appending `element` when
    none does. Null and empty elements go, whatever they are."""
    if not keys:
        keys = [""]
    _check(rn, _SEQ, path)
    mapping_setter = keys[0] != "" and len(values) > 0 and values[0] != ""
    new: list[_M] = []
    found_any = False
    for elem in rn.content:
        if _empty_map(elem):
            continue
        if elem.kind != _MAP and mapping_setter:
            new.append(elem)
            continue
        val: _M | None = None
        found = True
        for j in range(len(keys)):
            if j < len(values):
                val = _match_field(elem, keys[j], values[j] or None, path)
            if val is None:
                found = False
                break
        if not found:
            if values:
                new.append(elem)
            continue
        found_any = True
        if element is not None:
            new.append(element)
    rn.content = new
    if _null(element):
        return
    assert element is not None
    if not found_any:
        rn.content = [*rn.content, element]


def _element_list(rn: _M | None, keys: list[str], values: list[str]) -> _M | None:
    """`RNode.ElementList`: the first element whose fields `keys` have exactly the texts
    `values` (the first scalar of that text for the key "")."""
    if rn is None or rn.kind != _SEQ:
        return None
    keys = keys or [""]
    values = values or [""]
    if keys[0] == "":
        for elem in rn.content:
            if elem.value == values[0]:
                return elem
        return None
    if len(keys) != len(values):
        return None
    for elem in rn.content:
        if elem.kind != _MAP:
            continue  # a null element passes kyaml's check but matches no field
        if all(_text(_field(elem, k)) == v for k, v in zip(keys, values, strict=True)):
            return elem
    return None


def _text(m: _M | None) -> str | None:
    return None if m is None else m.value


# --- the walk (yaml/walk) and the merge visitor (yaml/merge2) ---------------------------


def _schema_of(dest: _M | None, origin: _M | None, schema: _Sch) -> _Sch:
    """Walker.GetSchema: the inherited schema, else the one of the `apiVersion` and
    `kind` the target's or the patch's node names."""
    if schema is not None:
        return schema
    for m in (dest, origin):
        if _null(m):
            continue
        api, kind = _field(m, "apiVersion"), _field(m, "kind")
        if _nil_or_empty(api) or _nil_or_empty(kind):
            continue
        assert api is not None and kind is not None
        if not api.value or not kind.value:
            continue
        found = Schema.of(api.value, kind.value)
        if found.known:
            return (found, None)
    return None


def _field_schema(schema: _Sch, name: str) -> _Sch:
    if schema is None or schema[1] is not None:
        return None  # no schema, or a list's: an array has no fields
    sub, kind = schema[0].field(name)
    if kind is not None:
        return (sub, kind)
    return (sub, None) if sub.known else None


def _walk(dest: _M | None, origin: _M | None, schema: _Sch, path: Path) -> _M | None:
    if len(path) > _MAX_DEPTH:
        raise MergeFailed("nesting too deep", path, origin.node if origin else None)
    schema = _schema_of(dest, origin, schema)
    if dest is not None and dest.tag != yn.NULL:
        kind = dest.kind
    elif origin is not None and origin.tag != yn.NULL:
        kind = origin.kind
    else:
        return _walk_map(dest, origin, schema, path)
    _check(dest, kind, path)
    _check(origin, kind, path)
    if kind == _MAP:
        return _walk_map(dest, origin, schema, path)
    if kind == _SEQ:
        if schema is not None and schema[1] is not None:
            return _walk_associative(dest, origin, schema, path)
        # Not associative: the patch's list, as it is, replaces the target's.
        return origin if origin is not None else dest
    return origin if origin is not None else dest


def _directive(patch: _M | None, path: Path) -> str:
    """determineSmpDirective: the `$patch` of a mapping, or of a list's `{$patch: x}`
    item (an item with other fields is the element's own directive, not the list's);
    a known directive is removed from the patch."""
    if patch is None:
        return _MERGE
    if patch.kind == _SEQ:
        item = next(
            (e for e in patch.content if e.kind == _MAP and _field(e, _DIRECTIVE) is not None),
            None,
        )
        if item is None or len(item.content) > 2:
            return _MERGE
        found = _field(item, _DIRECTIVE)
        assert found is not None
        value = found.value
        if value in (_DELETE, _REPLACE, _MERGE):
            _element_setter(patch, None, [_DIRECTIVE], [value], path)
            return value
        raise MergeFailed(f"unknown patch strategy '{value}'", path, found.node)
    if patch.kind == _MAP:
        found = _field(patch, _DIRECTIVE)
        if found is None:
            return _MERGE
        value = found.value
        if value in (_DELETE, _REPLACE, _MERGE):
            _clear(patch, _DIRECTIVE, path)
            return value
        raise MergeFailed(f"unknown patch strategy '{value}'", path, found.node)
    raise MergeFailed(
        f"no implemented strategic merge patch strategy for '{patch.tag}'", path, patch.node
    )


def _lenient_directive(patch: _M | None, path: Path) -> str:
    # Where the target has nothing, kyaml ignores a bad directive (it stays in the output).
    try:
        return _directive(patch, path)
    except MergeFailed:
        return _UNKNOWN


def _visit_map(dest: _M | None, origin: _M | None, path: Path) -> _M | None:
    if _null(dest):
        if _lenient_directive(origin, path) == _DELETE:
            return None
        if origin is None and dest is not None and dest.value:
            # A target's `~` or `null` survives (MakePersistentNullNode); `key:` does not.
            kept = _M(_SCALAR, yn.NULL, dest.value, None, [], dest.node, dest.mark, dest.end)
            kept.keep = True
            return kept
        return origin
    if origin is not None and origin.tag == yn.NULL:
        return None
    directive = _directive(origin, path)
    if directive == _DELETE:
        return None
    if directive == _REPLACE:
        return origin
    return dest


def _walk_map(dest: _M | None, origin: _M | None, schema: _Sch, path: Path) -> _M | None:
    result = _visit_map(dest, origin, path)
    if result is None:
        return None
    names: set[str] = set()
    for m in (result, origin):
        if m is not None and m.kind == _MAP:
            names.update(m.content[i].value for i in range(0, len(m.content) - 1, 2))
    for name in sorted(names):
        dv, ov = _field(result, name), _field(origin, name)
        sub = _field_schema(schema, name)
        if _unchanged(dv, ov, sub):
            continue
        val = _walk(dv, ov, sub, (*path, name))
        _set_field(result, name, val, _key_of(origin, name) or _key_of(result, name), path)
    return result


def _unchanged(dest: _M | None, origin: _M | None, schema: _Sch) -> bool:
    """The target's own scalar, or list the schema does not merge, with nothing from the
    patch: kyaml walks it and sets it back as it was."""
    if origin is not None or dest is None or dest.tag == yn.NULL:
        return False
    return dest.kind == _SCALAR or (dest.kind == _SEQ and (schema is None or schema[1] is None))


def _key_of(m: _M | None, name: str) -> _M | None:
    if m is None or m.kind != _MAP:
        return None
    c = m.content
    for i in range(0, len(c) - 1, 2):
        if c[i].value == name:
            return c[i]
    return None


def _visit_list(dest: _M | None, origin: _M | None, path: Path) -> _M | None:
    if _null(dest):
        return origin  # directives inside stay: the patch is walked against itself
    if origin is not None and origin.tag == yn.NULL:
        return None
    directive = _directive(origin, path)
    if directive == _DELETE:
        return None
    if directive == _REPLACE:
        return origin
    return dest


def _walk_associative(dest: _M | None, origin: _M | None, schema: _Sch, path: Path) -> _M | None:
    assert schema is not None and schema[1] is not None
    result = _visit_list(dest, origin, path)
    if result is None:
        return None
    keys = list(schema[1].keys or ())
    elements: _Sch = (schema[0], None) if schema[0].known else None
    sources = (result, origin)
    values = _element_values(keys, sources)
    if values or keys:
        return _set_elements(values, keys, sources, elements, path)
    return _set_elements(_primitive_values(sources), [""], sources, elements, path)


def _element_values(keys: list[str], sources: tuple[_M | None, _M | None]) -> list[list[str]]:
    """Walker.elementValues: each element's merge-key texts ("" when missing or empty),
    the patch's elements first, without repeats."""
    out: list[list[str]] = []
    for src in (sources[1], sources[0]):
        if src is None or src.kind != _SEQ:
            continue
        for elem in src.content:
            row = []
            for key in keys:
                v = _field(elem, key)
                row.append("" if v is None or _nil_or_empty(v) else v.value)
            if row and row not in out:
                out.append(row)
    return out


def _primitive_values(sources: tuple[_M | None, _M | None]) -> list[list[str]]:
    out: list[list[str]] = []
    seen: set[str] = set()
    for src in (sources[1], sources[0]):
        if src is None:
            continue
        for item in src.content:
            if item.value not in seen:
                seen.add(item.value)
                out.append([item.value])
    return out


def _validate_keys(
    values_list: list[list[str]], values: list[str], keys: list[str]
) -> tuple[list[str], list[str]]:
    """validateKeys: only the keys some row has a value for."""
    valid = {keys[i] for row in values_list for i, v in enumerate(row) if v != ""}
    if not valid:
        return keys, values
    return (
        [k for k in keys if k in valid],
        [v for i, v in enumerate(values) if v != "" or keys[i] in valid],
    )


def _match(a: list[str], b: list[str]) -> tuple[bool, list[str]]:
    """match: equal where both are set, and at least one position equal."""
    if len(a) != len(b):
        return False, []
    common = False
    out: list[str] = []
    for x, y in zip(a, b, strict=True):
        if x == y:
            common = True
            out.append(x)
            continue
        if x and y:
            return False, []
        out.append(x or y)
    return common, out


def _merge_values(values_list: list[list[str]]) -> list[list[str]]:
    """mergeValues: rows that match become their union, pairwise, in place (a row read at
    the start of its outer turn, as Go's range does)."""
    for i in range(len(values_list)):
        first = values_list[i]
        for j in range(len(values_list)):
            matched, merged = _match(first, values_list[j])
            if matched:
                values_list[i] = merged
                values_list[j] = merged
    return values_list


def _set_elements(
    values_list: list[list[str]],
    keys: list[str],
    sources: tuple[_M | None, _M | None],
    elements: _Sch,
    path: Path,
) -> _M | None:
    """setAssociativeSequenceElements."""
    dest = sources[0]
    assert dest is not None
    items = _M(_SEQ, yn.SEQ, "", None, [], dest.node, dest.mark, dest.end)
    if len(keys) > 1:
        values_list = _merge_values(values_list)
    valid_keys: list[str] = []
    valid_values: list[str] = []
    for values in values_list:
        if not values:
            continue
        valid_keys, valid_values = _validate_keys(values_list, values, keys)
        own_keys, own_values = _validate_keys([valid_values], valid_values, valid_keys)
        found = [_element_list(src, own_keys, own_values) for src in sources]
        index = _index_of(found[1], sources[1])
        if index is None:
            index = _index_of(found[0], dest) or 0
        val = _walk(found[0], found[1], elements, (*path, index))
        deleted = False
        for i, key in enumerate(valid_keys):
            if _empty_map(val):
                # `$patch: delete`, or nothing to merge: the target's elements go.
                _element_setter(dest, None, valid_keys, valid_values, path)
                deleted = True
            elif (
                val is not None
                and val.kind == _MAP
                and _field(val, key) is None
                and valid_values[i] != ""
            ):
                _set_field(val, key, _plain(valid_values[i], val), None, path)
        if deleted:
            continue
        assert val is not None
        _element_setter(items, val, valid_keys, valid_values, path)
    if values_list:
        dest = _append_list_node(items, dest, valid_keys, path)
    if _null(dest):
        return None
    return dest


def _index_of(elem: _M | None, seq: _M | None) -> int | None:
    if elem is None or seq is None:
        return None
    return next((i for i, e in enumerate(seq.content) if e is elem), None)


def _append_list_node(dst: _M, src: _M, keys: list[str], path: Path) -> _M:
    """appendListNode: the target's elements, in order, set into the patch's; an element
    without a key is appended once per missing key before it is set."""
    for elem in list(src.content):
        if keys[0] == "":
            _element_setter(dst, elem, [""], [elem.value], path)
            continue
        found: list[str] = []
        for key in keys:
            value = _match_field(elem, key, None, path)
            if value is None:
                _check(dst, _SEQ, path)
                dst.content = [*dst.content, elem]
                continue
            found.append(value.value)
        if len(keys) > 1:
            _element_setter(dst, None, keys, found, path)
        _element_setter(dst, elem, keys, found, path)
    return dst
