"""JSON patches (RFC 6902) on node trees, as kustomize applies them.

kustomize's patchJson6902 filter converts the object to JSON and applies the patch with
evanphx/json-patch (v5, no "ensure path exists" option): `add` needs the parent to
exist, `remove`, `replace`, `move` and `copy` need their path, `-` appends to a list, and
the first failing operation fails the whole build. Here the operations work on the node
tree directly so that a value the patch writes keeps the patch's file and line.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml import nodes as ynodes

from bot.analysis.snapshot.build import nodes as yn


class PatchFailed(Exception):
    """An operation kustomize fails on; the message is what it prints."""


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchFailed(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(node: ynodes.SequenceNode, part: str, adding: bool) -> int:
    if part == "-":
        if adding:
            return len(node.value)
        raise PatchFailed("Unable to access invalid index: -")
    try:
        i = int(part)
    except ValueError:
        raise PatchFailed(f"Unable to access invalid index: {part}") from None
    if i < 0:
        # json-patch v4 with SupportNegativeIndices: -1 is the last element (for add,
        # the position after it).
        i += len(node.value) + (1 if adding else 0)
        if i < 0:
            raise PatchFailed(f"Unable to access invalid index: {part}")
    limit = len(node.value) if adding else len(node.value) - 1
    if i > limit:
        raise PatchFailed(f"Unable to access invalid index: {i}")
    return i


def _get(root: ynodes.Node, parts: list[str], op: str, path: str) -> ynodes.Node:
    node = root
    for part in parts:
        if isinstance(node, ynodes.MappingNode):
            child = yn.get(node, part)
            if child is None:
                raise PatchFailed(f"{op} operation does not apply: doc is missing path: {path!r}")
            node = child
        elif isinstance(node, ynodes.SequenceNode):
            node = node.value[_index(node, part, False)]
        else:
            raise PatchFailed(f"{op} operation does not apply: doc is missing path: {path!r}")
    return node


def _set(
    root: ynodes.Node, parts: list[str], value: ynodes.Node | None, op: str, path: str
) -> ynodes.Node:
    """`root` with the value at `parts` added (op add), replaced or removed (None)."""
    if not parts:
        if value is None:
            raise PatchFailed("cannot remove the whole document")
        return value
    parent_parts, last = parts[:-1], parts[-1]
    parent = _get(root, parent_parts, op, path)

    def edit(node: ynodes.Node | None) -> ynodes.Node | None:
        assert node is parent
        if isinstance(node, ynodes.MappingNode):
            exists = yn.get(node, last) is not None or last in yn.keys(node)
            if op in ("remove", "replace") and not exists:
                raise PatchFailed(f"{op} operation does not apply: doc is missing key: {path!r}")
            return yn.with_key(node, last, value)
        if isinstance(node, ynodes.SequenceNode):
            items = list(node.value)
            i = _index(node, last, op == "add")
            if op == "add":
                assert value is not None
                items.insert(i, value)
            elif value is None:
                del items[i]
            else:
                items[i] = value
            return ynodes.SequenceNode(
                node.tag, items, node.start_mark, node.end_mark, node.flow_style
            )
        raise PatchFailed(f"{op} operation does not apply: doc is missing path: {path!r}")

    path_t: yn.Path = tuple(_step(root, parent_parts))
    return yn.update(root, path_t, edit, create=False)


def _step(root: ynodes.Node, parts: list[str]) -> list[str | int]:
    """JSON pointer parts as node-tree path parts (list indexes as ints)."""
    out: list[str | int] = []
    node: ynodes.Node | None = root
    for part in parts:
        if isinstance(node, ynodes.SequenceNode):
            i = _index(node, part, False)
            out.append(i)
            node = node.value[i]
        else:
            out.append(part)
            node = yn.get(node, part)
    return out


def _equal(a: ynodes.Node, b: ynodes.Node) -> bool:
    return bool(yn.to_value(a) == yn.to_value(b))


def apply(root: ynodes.Node, ops: list[Any], value_nodes: list[ynodes.Node | None]) -> ynodes.Node:
    """Apply `ops` (decoded operations) to `root`; `value_nodes[i]` is operation i's
    `value` as a node (stamped with where the patch is written)."""
    for op_spec, value in zip(ops, value_nodes, strict=True):
        if not isinstance(op_spec, dict):
            raise PatchFailed("a JSON patch operation must be a mapping")
        op = op_spec.get("op")
        path = op_spec.get("path")
        if not isinstance(path, str):
            raise PatchFailed(f"operation {op!r} has no path")
        parts = _pointer(path)
        if op == "add":
            if value is None:
                raise PatchFailed("add operation has no value")
            root = _set(root, parts, value, "add", path)
        elif op == "remove":
            _get(root, parts, "remove", path)
            root = _set(root, parts, None, "remove", path)
        elif op == "replace":
            if value is None:
                value = yn.scalar("null", None, yn.NULL)  # evanphx/json-patch sets null
            _get(root, parts, "replace", path)
            root = _set(root, parts, value, "replace", path)
        elif op in ("move", "copy"):
            source = op_spec.get("from")
            if not isinstance(source, str):
                raise PatchFailed(f"{op} operation has no from")
            from_parts = _pointer(source)
            moved = _get(root, from_parts, op, source)
            if op == "move":
                root = _set(root, from_parts, None, "remove", source)
            root = _set(root, parts, moved, "add", path)
        elif op == "test":
            if value is None:
                raise PatchFailed("test operation has no value")
            current = _get(root, parts, "test", path)
            if not _equal(current, value):
                raise PatchFailed(f"testing value {path} failed")
        else:
            raise PatchFailed(f"Unexpected kind: {op}")
    return root


# A JSON patch written in YAML reaches json-patch through sigs.k8s.io/yaml's `YAMLToJSON`,
# that is go-yaml v2: a plain scalar is a YAML 1.1 boolean (`yes`, `on`, `n`...), a null,
# a Go integer literal once its `_`s are removed (`0755`, `0x1F`, `1_000`), a float
# (`1e3`, `.5`), or a string. (The object patched goes through go-yaml v3, which reads
# `yes` as a string: only the patch's own values are typed this way.)
_V2_MAP = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), yn.BOOL),
    **dict.fromkeys(("true", "True", "TRUE", "false", "False", "FALSE"), yn.BOOL),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), yn.BOOL),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), yn.NULL),
    **dict.fromkeys((".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF"), yn.FLOAT),
    **dict.fromkeys(("+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"), yn.FLOAT),
}
_V2_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _v2_tag(value: str) -> str:
    found = _V2_MAP.get(value)
    if found is not None:
        return found
    if value[0] in "+-0123456789":
        plain = value.replace("_", "")
        if yn._integer(plain) is not None:
            return yn.INT
        if _V2_FLOAT.match(plain):
            return yn.FLOAT
    elif value[0] == "." and _V2_FLOAT.match(value):
        return yn.FLOAT
    return yn.STR


def _v2_typed(node: ynodes.Node, depth: int = 0) -> ynodes.Node:
    """The value as go-yaml v2 types it: each plain scalar tagged explicitly (a quoted
    style keeps `to_value` from reading it again as go-yaml v3 would)."""
    if depth > 200:
        raise PatchFailed("a value nested too deep")
    if isinstance(node, ynodes.ScalarNode):
        if node.style or node.tag != yn._implicit_tag(node.value):
            return node
        tag = _v2_tag(node.value)
        value = node.value.replace("_", "") if tag == yn.INT else node.value
        return ynodes.ScalarNode(tag, value, node.start_mark, node.end_mark, "'")
    if isinstance(node, ynodes.SequenceNode):
        return ynodes.SequenceNode(
            node.tag,
            [_v2_typed(v, depth + 1) for v in node.value],
            node.start_mark,
            node.end_mark,
            node.flow_style,
        )
    if isinstance(node, ynodes.MappingNode):
        return ynodes.MappingNode(
            node.tag,
            [(k, _v2_typed(v, depth + 1)) for k, v in node.value],
            node.start_mark,
            node.end_mark,
            node.flow_style,
        )
    return node


def operations(docs: list[ynodes.Node]) -> tuple[list[Any], list[ynodes.Node | None]] | None:
    """The operations of a JSON 6902 patch document (YAML or JSON: kustomize accepts
    both), with each operation's value node; None when it is not a list of operations."""
    if len(docs) != 1 or not isinstance(docs[0], ynodes.SequenceNode):
        return None
    # kustomize decodes a patch that starts with `[` as JSON, anything else as YAML.
    as_yaml = not docs[0].flow_style
    ops: list[Any] = []
    values: list[ynodes.Node | None] = []
    for item in docs[0].value:
        if not isinstance(item, ynodes.MappingNode):
            return None
        spec = {
            k: yn.to_value(v)
            for k, v in ((k.value, v) for k, v in item.value if isinstance(k, ynodes.ScalarNode))
            if k != "value"
        }
        ops.append(spec)
        value = yn.get(item, "value")
        values.append(_v2_typed(value) if as_yaml and value is not None else value)
    return ops, values


def is_json6902(docs: list[ynodes.Node]) -> bool:
    return len(docs) == 1 and isinstance(docs[0], ynodes.SequenceNode)


__all__ = ["PatchFailed", "apply", "is_json6902", "operations", "yaml"]
