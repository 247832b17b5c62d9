"""Strategic-merge patches on node trees, as kustomize v5.5 applies them.

kustomize merges with kyaml's `merge2` (not apimachinery's strategicpatch), walking the
target and the patch together (`kyaml/yaml/walk`):
- mappings merge field by field; fields the patch adds go after the target's, in name
  order; a `null` in the patch deletes the field; `$patch: delete` deletes the mapping,
  `$patch: replace` replaces it;
- a list merges element by element only where kustomize's built-in schema gives it a
  merge strategy (`fieldspecs.Schema`): by its merge keys, the patch's elements first
  (kustomize prepends them, `MergeOptionsListPrepend`), then the target's others; a list
  of primitives with the strategy is a union, the patch's values first. Every other list,
  and every list of a kind the schema does not know (all custom resources), is replaced;
- a patch whose node kind differs from the target's (a mapping where the target has a
  scalar) fails the build: `wrong node kind: expected ScalarNode but got MappingNode`.
"""

from __future__ import annotations

from yaml import nodes as ynodes

from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.fieldspecs import ListKind, Schema

_DIRECTIVE = "$patch"


class MergeFailed(Exception):
    """kustomize fails the build; the message is what it prints."""

    def __init__(self, message: str, path: tuple[str | int, ...], node: ynodes.Node | None) -> None:
        super().__init__(message)
        self.path = path
        self.node = node  # the patch's node at fault, for its line


def _null(node: ynodes.Node | None) -> bool:
    """kyaml's IsMissingOrNull: no node, or one tagged null (`null`, `~`, nothing)."""
    return node is None or node.tag == yn.NULL


def _kind_name(node: ynodes.Node) -> str:
    if isinstance(node, ynodes.MappingNode):
        return "MappingNode"
    if isinstance(node, ynodes.SequenceNode):
        return "SequenceNode"
    return "ScalarNode"


def _directive(node: ynodes.Node) -> str | None:
    if isinstance(node, ynodes.MappingNode):
        value = yn.text(yn.get(node, _DIRECTIVE))
        if value is not None:
            if value not in ("delete", "replace", "merge"):
                raise MergeFailed(f"unknown patch strategy '{value}'", (), node)
            return value
    elif isinstance(node, ynodes.SequenceNode):
        for item in node.value:
            if isinstance(item, ynodes.MappingNode) and len(item.value) == 1:
                value = yn.text(yn.get(item, _DIRECTIVE))
                if value is not None:
                    if value not in ("delete", "replace", "merge"):
                        raise MergeFailed(f"unknown patch strategy '{value}'", (), node)
                    return value
    return None


def _without_directive(node: ynodes.Node) -> ynodes.Node:
    if isinstance(node, ynodes.MappingNode):
        return ynodes.MappingNode(
            node.tag,
            [
                (k, v)
                for k, v in node.value
                if not (isinstance(k, ynodes.ScalarNode) and k.value == _DIRECTIVE)
            ],
            node.start_mark,
            node.end_mark,
            node.flow_style,
        )
    if isinstance(node, ynodes.SequenceNode):
        return ynodes.SequenceNode(
            node.tag,
            [
                v
                for v in node.value
                if not (
                    isinstance(v, ynodes.MappingNode)
                    and len(v.value) == 1
                    and yn.get(v, _DIRECTIVE) is not None
                )
            ],
            node.start_mark,
            node.end_mark,
            node.flow_style,
        )
    return node


def merge(patch: ynodes.Node, target: ynodes.Node, schema: Schema) -> ynodes.Node | None:
    """`target` with `patch` merged in; None when the patch deletes the whole object."""
    return _walk(target, patch, schema, None, ())


def _walk(
    dest: ynodes.Node | None,
    origin: ynodes.Node | None,
    schema: Schema,
    list_kind: ListKind | None,
    path: tuple[str | int, ...],
) -> ynodes.Node | None:
    if len(path) > 300:
        raise MergeFailed("nesting too deep", path, origin)
    first = dest if not _null(dest) else origin
    if _null(first):
        # Both missing or null: keep a null the target wrote.
        return dest if dest is not None and origin is None else None
    assert first is not None
    for node in (dest, origin):
        if not _null(node) and type(node) is not type(first):
            assert node is not None
            raise MergeFailed(
                f"wrong node kind: expected {_kind_name(first)} but got {_kind_name(node)}",
                path,
                origin,
            )
    if isinstance(first, ynodes.MappingNode):
        return _map(dest, origin, schema, path)
    if isinstance(first, ynodes.SequenceNode):
        return _list(dest, origin, schema, list_kind, path)
    # A scalar: the patch's value wins.
    return origin if origin is not None else dest


def _map(
    dest: ynodes.Node | None,
    origin: ynodes.Node | None,
    schema: Schema,
    path: tuple[str | int, ...],
) -> ynodes.Node | None:
    if _null(dest):
        assert origin is not None
        if _directive(origin) == "delete":
            return None
        # Nothing to merge into: the patch's mapping, its own directives applied.
        return _clean(origin, schema, path)
    assert isinstance(dest, ynodes.MappingNode)
    if origin is not None and origin.tag == yn.NULL:
        return None
    if origin is None:
        return dest
    directive = _directive(origin)
    if directive == "delete":
        return None
    if directive == "replace":
        return _clean(_without_directive(origin), schema, path)
    assert isinstance(origin, ynodes.MappingNode)
    pairs = list(dest.value)
    index = {k.value: i for i, (k, _) in enumerate(pairs) if isinstance(k, ynodes.ScalarNode)}
    patch_fields = {
        k.value: (k, v)
        for k, v in origin.value
        if isinstance(k, ynodes.ScalarNode) and k.value != _DIRECTIVE
    }
    removed: set[int] = set()
    added: list[tuple[ynodes.Node, ynodes.Node]] = []
    for name in sorted(patch_fields):
        key, value = patch_fields[name]
        sub, kind = schema.field(name)
        i = index.get(name)
        current = pairs[i][1] if i is not None else None
        merged = _walk(current, value, sub, kind, (*path, name))
        if merged is None or (merged.tag == yn.NULL and value.tag == yn.NULL):
            if i is not None:
                removed.add(i)
            continue
        if i is not None:
            pairs[i] = (pairs[i][0], merged)
        else:
            added.append((key, merged))
    out = [p for i, p in enumerate(pairs) if i not in removed] + added
    return ynodes.MappingNode(dest.tag, out, dest.start_mark, dest.end_mark, dest.flow_style)


def _clean(node: ynodes.Node, schema: Schema, path: tuple[str | int, ...]) -> ynodes.Node | None:
    """A patch subtree added where the target has nothing: directives and nulls act on
    nothing and are dropped (kyaml walks the patch against itself)."""
    if isinstance(node, ynodes.MappingNode):
        if _directive(node) == "delete":
            return None
        out = []
        for k, v in node.value:
            if isinstance(k, ynodes.ScalarNode) and k.value == _DIRECTIVE:
                continue
            if v.tag == yn.NULL:
                continue
            name = k.value if isinstance(k, ynodes.ScalarNode) else ""
            sub, _ = schema.field(name)
            cleaned = _clean(v, sub, (*path, name))
            if cleaned is not None:
                out.append((k, cleaned))
        return ynodes.MappingNode(node.tag, out, node.start_mark, node.end_mark, node.flow_style)
    if isinstance(node, ynodes.SequenceNode):
        if _directive(node) == "delete":
            return None
        return _without_directive(node)
    return node


def _values(element: ynodes.Node, keys: tuple[str, ...]) -> tuple[str, ...] | None:
    if not isinstance(element, ynodes.MappingNode):
        return None
    found = tuple(yn.text(yn.get(element, k)) or "" for k in keys)
    return found if any(found) else None


def _matches(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """kyaml's `match`: equal where both are set, at least one in common (two
    containerPorts with and without a protocol are one)."""
    common = False
    for x, y in zip(a, b, strict=True):
        if x == y:
            common = True
        elif x and y:
            return False
    return common


def _list(
    dest: ynodes.Node | None,
    origin: ynodes.Node | None,
    schema: Schema,
    kind: ListKind | None,
    path: tuple[str | int, ...],
) -> ynodes.Node | None:
    if kind is None:
        # Not associative: the patch's list replaces the target's.
        if origin is not None:
            if origin.tag == yn.NULL:
                return None
            return _without_directive(origin)
        return dest
    if _null(dest):
        return _without_directive(origin) if origin is not None else None
    if origin is None:
        return dest
    if origin.tag == yn.NULL:
        return None
    directive = _directive(origin)
    if directive == "delete":
        return None
    if directive == "replace":
        return _without_directive(origin)
    assert isinstance(dest, ynodes.SequenceNode) and isinstance(origin, ynodes.SequenceNode)
    patch_items = _without_directive(origin).value
    if not kind.keys:
        # A list of primitives with the merge strategy (finalizers): a union, the patch's
        # values first.
        seen: set[str] = set()
        items = []
        for item in [*patch_items, *dest.value]:
            value = item.value if isinstance(item, ynodes.ScalarNode) else repr(yn.to_value(item))
            if value not in seen:
                seen.add(value)
                items.append(item)
        return ynodes.SequenceNode(dest.tag, items, dest.start_mark, dest.end_mark, dest.flow_style)
    keys = kind.keys
    order: list[tuple[str, ...]] = []
    for source in (patch_items, dest.value):
        for item in source:
            values = _values(item, keys)
            if values is not None and not any(_matches(values, seen) for seen in order):
                order.append(values)
    merged: list[ynodes.Node] = []
    for values in order:
        target = next(
            (e for e in dest.value if (v := _values(e, keys)) is not None and _matches(v, values)),
            None,
        )
        patch = next(
            (e for e in patch_items if (v := _values(e, keys)) is not None and _matches(v, values)),
            None,
        )
        result = _walk(target, patch, schema, None, (*path, len(merged)))
        if result is None or (isinstance(result, ynodes.MappingNode) and not result.value):
            continue  # `$patch: delete` on the element
        merged.append(result)
    # Elements without their key cannot be matched: the target's stay, at the end.
    for item in dest.value:
        if _values(item, keys) is None:
            merged.append(item)
    if not merged:
        return None
    return ynodes.SequenceNode(dest.tag, merged, dest.start_mark, dest.end_mark, dest.flow_style)
