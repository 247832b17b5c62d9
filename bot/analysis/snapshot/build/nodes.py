"""Object content as the build holds it: libyaml node trees, shared and never mutated.

kustomize works on YAML node trees (kyaml's RNode), and so does the build here: an object
that nothing transforms is the very node tree the parse cache holds, and a transformer
that changes a field copies only the spine from the root to that field. A node keeps its
line in `start_mark`; a node that comes from another file than its object (a patch, a
generator's kustomization file, a value Flux substituted) carries an `Origin` mark that
names that file, so every value of a built object knows where a user would edit it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import yaml
from yaml import nodes as ynodes

# One reading of a mapping key for parsed and built nodes alike.
from bot.analysis.yamlscan import get as get

Node = ynodes.Node
Path = tuple[str | int, ...]

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
BOOL = "tag:yaml.org,2002:bool"
FLOAT = "tag:yaml.org,2002:float"
NULL = "tag:yaml.org,2002:null"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"


class Origin(yaml.Mark):
    """A node's mark when the node comes from another file than the object holding it.
    `via` says how the value got there ("set by the patch of ...", "substituted from
    ConfigMap flux-system/cluster-settings (cluster/settings.yaml:7)")."""

    def __init__(self, path: str, line: int, via: str | None = None, secret: bool = False) -> None:
        super().__init__(path, 0, max(line - 1, 0), 0, None, None)  # type: ignore[arg-type]
        self.via = via
        # The value came from a Secret (through post-build substitution): never shown.
        self.secret = secret


def origin_of(node: Node, default: str) -> tuple[str, int, str | None]:
    """(file, 1-based line, how the value got there) of a node of an object from `default`."""
    mark = node.start_mark
    if isinstance(mark, Origin):
        return mark.name, mark.line + 1, mark.via
    return default, (mark.line + 1 if mark is not None else 1), None


def stamp(node: Node, path: str, line_offset: int = 0, via: str | None = None) -> Node:
    """A deep copy of `node` whose every node says it comes from `path` (lines shifted by
    `line_offset`: a patch parsed from a block scalar starts below its key). Nodes that
    already carry an `Origin` keep it: they came from yet another file."""

    def mark_of(n: Node) -> Any:
        mark = n.start_mark
        if isinstance(mark, Origin):
            return mark
        return Origin(path, (mark.line + 1 if mark is not None else 1) + line_offset, via)

    return remarked(node, mark_of)


def remarked(
    node: Node,
    mark_of: Callable[[Node], Any],
    limit: int = 500,
    too_deep: Callable[[], Exception] = lambda: RecursionError("nesting too deep"),
    step: Callable[[], None] | None = None,
) -> Node:
    """A deep copy of `node` whose every node carries `mark_of(the original)` as its
    marks (a node shared twice in the original is one node in the copy). `too_deep()` is
    raised past `limit` levels; `step()`, when given, is called for every node visited
    (a budget that may raise)."""
    return _remarked(node, 0, {}, mark_of, limit, too_deep, step)


# The recursive walks over nodes are module functions, not closures: a closure that calls
# itself is a reference cycle, and what it holds (its memo, the nodes it walked) would
# wait for the cyclic collector instead of being freed when the walk ends.


def _remarked(
    n: Node,
    depth: int,
    memo: dict[int, Node],
    mark_of: Callable[[Node], Any],
    limit: int,
    too_deep: Callable[[], Exception],
    step: Callable[[], None] | None,
) -> Node:
    if depth > limit:
        raise too_deep()
    if step is not None:
        step()
    done = memo.get(id(n))
    if done is not None:
        return done
    new_mark = mark_of(n)
    out: Node
    deeper = depth + 1
    if isinstance(n, ynodes.MappingNode):
        out = ynodes.MappingNode(n.tag, [], new_mark, new_mark, n.flow_style)
        memo[id(n)] = out
        out.value = [
            (
                _remarked(k, deeper, memo, mark_of, limit, too_deep, step),
                _remarked(v, deeper, memo, mark_of, limit, too_deep, step),
            )
            for k, v in n.value
        ]
    elif isinstance(n, ynodes.SequenceNode):
        out = ynodes.SequenceNode(n.tag, [], new_mark, new_mark, n.flow_style)
        memo[id(n)] = out
        out.value = [_remarked(v, deeper, memo, mark_of, limit, too_deep, step) for v in n.value]
    else:
        assert isinstance(n, ynodes.ScalarNode)
        out = ynodes.ScalarNode(n.tag, n.value, new_mark, new_mark, n.style)
        memo[id(n)] = out
    return out


def fingerprint(node: Node | None) -> object:
    """A value equal for two nodes that are the same YAML written at the same places (tags,
    styles, values, each node's line and column, and the file and route of an `Origin`):
    what a build that copies values from `node` into its objects cannot tell apart."""
    if node is None:
        return None
    return _fingerprint(node, 0, {})


def _mark_of(m: yaml.Mark | None) -> object:
    if m is None:
        return None
    if type(m) is Origin:
        return (m.name, m.line, m.via, m.secret)
    return (m.line, m.column)


def _fingerprint(n: Node, depth: int, memo: dict[int, object]) -> object:
    if type(n) is ynodes.ScalarNode:
        return (n.tag, n.value, n.style, _mark_of(n.start_mark), _mark_of(n.end_mark))
    # Collections are remembered: an alias repeats one, and must not cost it again.
    done = memo.get(id(n))
    if done is not None:
        return done
    if depth > 500:
        raise RecursionError("nesting too deep")
    out: object
    if type(n) is ynodes.MappingNode or isinstance(n, ynodes.MappingNode):
        items = tuple(
            (_fingerprint(k, depth + 1, memo), _fingerprint(v, depth + 1, memo)) for k, v in n.value
        )
        out = ("m", n.tag, n.flow_style, _mark_of(n.start_mark), _mark_of(n.end_mark), items)
    elif isinstance(n, ynodes.SequenceNode):
        values = tuple(_fingerprint(v, depth + 1, memo) for v in n.value)
        out = ("s", n.tag, n.flow_style, _mark_of(n.start_mark), _mark_of(n.end_mark), values)
    else:
        assert isinstance(n, ynodes.ScalarNode)
        out = ("v", n.tag, n.value, n.style, _mark_of(n.start_mark), _mark_of(n.end_mark))
    memo[id(n)] = out
    return out


# --- making nodes -------------------------------------------------------------------


def scalar(
    value: str, mark: yaml.Mark | None = None, tag: str = STR, style: str | None = None
) -> ynodes.ScalarNode:
    return ynodes.ScalarNode(tag, value, mark, mark, style)


def mapping(pairs: list[tuple[Node, Node]], mark: yaml.Mark | None = None) -> ynodes.MappingNode:
    return ynodes.MappingNode(MAP, pairs, mark, mark, None)


def sequence(items: list[Node], mark: yaml.Mark | None = None) -> ynodes.SequenceNode:
    return ynodes.SequenceNode(SEQ, items, mark, mark, None)


def from_value(value: Any, mark: yaml.Mark | None = None) -> Node:
    """Nodes for a plain Python value (what a generator or a JSON patch writes)."""
    if isinstance(value, Node):
        return value
    if isinstance(value, dict):
        return mapping(
            [(scalar(str(k), mark), from_value(v, mark)) for k, v in value.items()], mark
        )
    if isinstance(value, list | tuple):
        return sequence([from_value(v, mark) for v in value], mark)
    if value is None:
        return scalar("null", mark, NULL)
    if isinstance(value, bool):
        return scalar("true" if value else "false", mark, BOOL)
    if isinstance(value, int):
        return scalar(str(value), mark, INT)
    if isinstance(value, float):
        return scalar(repr(value), mark, FLOAT)
    text = str(value)
    # A string that would read back as another type is written quoted, as kyaml does.
    style = '"' if resolve_plain(text) is not text or text == "" else None
    return scalar(text, mark, STR, style)


# --- reading nodes --------------------------------------------------------------------


def text(node: Node | None) -> str | None:
    """A scalar's text; None for null, a missing node or a collection."""
    if isinstance(node, ynodes.ScalarNode):
        if node.tag == NULL or (not node.style and node.value in ("", "~", "null", "Null", "NULL")):
            return None
        return str(node.value)
    return None


def at(node: Node | None, path: Path) -> Node | None:
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, ynodes.SequenceNode) or not -len(node.value) <= part < len(
                node.value
            ):
                return None
            node = node.value[part]
        else:
            node = get(node, part)
            if node is None:
                return None
    return node


def keys(node: Node | None) -> list[str]:
    if not isinstance(node, ynodes.MappingNode):
        return []
    return [k.value for k, _ in node.value if isinstance(k, ynodes.ScalarNode)]


# --- copy-on-write edits --------------------------------------------------------------


def with_key(
    node: ynodes.MappingNode, key: str, value: Node | None, key_mark: yaml.Mark | None = None
) -> ynodes.MappingNode:
    """A copy of the mapping with `key` set to `value` (removed when `value` is None);
    an existing key keeps its place and its key node."""
    pairs: list[tuple[Node, Node]] = []
    done = False
    for k, v in node.value:
        if isinstance(k, ynodes.ScalarNode) and k.value == key:
            if value is not None and not done:
                pairs.append((k, value))
            done = True
            continue
        pairs.append((k, v))
    if not done and value is not None:
        pairs.append((scalar(key, key_mark or value.start_mark), value))
    return ynodes.MappingNode(node.tag, pairs, node.start_mark, node.end_mark, node.flow_style)


def with_item(node: ynodes.SequenceNode, index: int, value: Node | None) -> ynodes.SequenceNode:
    items = list(node.value)
    if value is None:
        del items[index]
    else:
        items[index] = value
    return ynodes.SequenceNode(node.tag, items, node.start_mark, node.end_mark, node.flow_style)


def update(
    root: Node,
    path: Path,
    fn: Callable[[Node | None], Node | None],
    create: bool = True,
    mark: yaml.Mark | None = None,
) -> Node:
    """`root` with the node at `path` replaced by `fn(old)` (None removes it), copying only
    the spine. Missing mappings on the way are created when `create`, else `root` is
    returned unchanged; a list index that does not exist is never created."""
    result = _updated(root, 0, path, fn, create, mark)
    return result if result is not None else mapping([], mark)


def _updated(
    node: Node | None,
    depth: int,
    path: Path,
    fn: Callable[[Node | None], Node | None],
    create: bool,
    mark: yaml.Mark | None,
) -> Node | None:
    if depth == len(path):
        return fn(node)
    part = path[depth]
    if isinstance(part, int):
        if not isinstance(node, ynodes.SequenceNode) or not 0 <= part < len(node.value):
            return node
        new = _updated(node.value[part], depth + 1, path, fn, create, mark)
        if new is node.value[part]:
            return node
        return with_item(node, part, new)
    if node is None or (isinstance(node, ynodes.ScalarNode) and text(node) is None):
        if not create:
            return node
        node = mapping([], mark)
    if not isinstance(node, ynodes.MappingNode):
        return node
    child = get(node, part)
    if child is None and not create and depth + 1 < len(path):
        return node
    new = _updated(child, depth + 1, path, fn, create, mark)
    if new is child:
        return node
    return with_key(node, part, new, mark)


def walk(node: Node, path: Path = ()) -> Iterator[tuple[Path, Node]]:
    """Every node below `node` (itself included) with its path; mapping keys are not
    visited. Shared (aliased) nodes are visited once per path, to a bounded depth."""
    stack: list[tuple[Path, Node]] = [(path, node)]
    while stack:
        p, n = stack.pop()
        yield p, n
        if len(p) > 200:
            continue
        if isinstance(n, ynodes.MappingNode):
            for k, v in reversed(n.value):
                if isinstance(k, ynodes.ScalarNode):
                    stack.append(((*p, k.value), v))
        elif isinstance(n, ynodes.SequenceNode):
            for i in range(len(n.value) - 1, -1, -1):
                stack.append(((*p, i), n.value[i]))


# --- values ---------------------------------------------------------------------------


class Unsure(str):
    """A plain scalar whose type the readers disagree on: YAML 1.1 reads `yes`, `on` or
    `1:30` as a boolean or a number, go-yaml v3 (kustomize) as a string. A check that
    depends on the type does not judge it."""

    __slots__ = ()


_YAML11_BOOLS = {
    "yes": True,
    "no": False,
    "on": True,
    "off": False,
    "y": True,
    "n": False,
    "true": True,
    "false": False,
}
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_YAML11_ONLY = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"  # sexagesimal
    r"|[-+]?[0-9]+_[0-9_]*)$"
)
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_SPECIAL_FLOATS = {
    ".inf": float("inf"),
    ".Inf": float("inf"),
    ".INF": float("inf"),
    "-.inf": float("-inf"),
    "-.Inf": float("-inf"),
    "-.INF": float("-inf"),
    "+.inf": float("inf"),
    ".nan": float("nan"),
    ".NaN": float("nan"),
    ".NAN": float("nan"),
}


def _integer(value: str) -> int | None:
    """go-yaml v3's `strconv.ParseInt(plain, 0, 64)`: `0x`, `0o`, `0b` prefixes, and a
    leading `0` for octal (`0755` is 493, as a file mode should be)."""
    sign = -1 if value.startswith("-") else 1
    body = value[1:] if value[:1] in "+-" else value
    if not body:
        return None
    try:
        if body[:2] in ("0x", "0X"):
            return sign * int(body[2:], 16)
        if body[:2] in ("0o", "0O"):
            return sign * int(body[2:], 8)
        if body[:2] in ("0b", "0B"):
            return sign * int(body[2:], 2)
        if not body.isdigit() or not body.isascii():
            return None
        if len(body) > 1 and body[0] == "0":
            return sign * int(body, 8)
        return sign * int(body)
    except ValueError:
        return None


def resolve_plain(value: str) -> Any:
    """A plain (unquoted) scalar as go-yaml v3, the YAML library of kustomize and of the
    API machinery, resolves it (YAML 1.2's core schema); `Unsure` where YAML 1.1 would
    read another type. Returns `value` itself when it is a string."""
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    first = value[0]
    if first in "tTfF":
        found = _BOOLS.get(value)
        if found is not None:
            return found
    if first in "0123456789-+.":
        number = _integer(value)
        if number is not None:
            return number
        if _FLOAT.match(value) and any(c.isdigit() for c in value):
            return float(value)
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
    if _YAML11_ONLY.match(value):
        return Unsure(value)
    return value


# What a `to_value` judge answers for a node it leaves to the usual reading.
WALK = object()


def to_value(
    node: Node | None, depth: int = 0, judge: Callable[[Node, int], Any] | None = None
) -> Any:
    """The JSON value the API server receives for a node. Merge keys (`<<`) are expanded
    as kustomize does; a null field is kept (callers decide what the server drops).
    `judge`, when given, sees every node first (with its depth) and answers its value
    instead, or `WALK` to have it read as usual."""
    if node is None:
        return None
    if judge is not None:
        judged = judge(node, depth)
        if judged is not WALK:
            return judged
    if depth > 300:
        raise RecursionError("nesting too deep")
    if isinstance(node, ynodes.MappingNode):
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for k, v in node.value:
            if not isinstance(k, ynodes.ScalarNode):
                continue
            if k.tag == "tag:yaml.org,2002:merge":
                sources = v.value if isinstance(v, ynodes.SequenceNode) else [v]
                for source in sources:
                    value = to_value(source, depth + 1, judge)
                    if isinstance(value, dict):
                        for mk, mv in value.items():
                            merged.setdefault(mk, mv)
                continue
            out[k.value] = to_value(v, depth + 1, judge)
        for mk, mv in merged.items():
            out.setdefault(mk, mv)
        return out
    if isinstance(node, ynodes.SequenceNode):
        return [to_value(v, depth + 1, judge) for v in node.value]
    assert isinstance(node, ynodes.ScalarNode)
    if not node.style and node.tag == _implicit_tag(node.value):
        # Plain, with the tag a resolver gives it: go-yaml v3 decides its type.
        return resolve_plain(node.value)
    if node.tag == INT:
        number = _integer(node.value.replace("_", ""))
        return number if number is not None else node.value
    if node.tag == BOOL:
        # A tag set by a YAML 1.1 reader (Flux reads substituted text that way).
        return _BOOLS.get(node.value, _YAML11_BOOLS.get(node.value.lower(), node.value))
    if node.tag == FLOAT:
        try:
            return float(node.value)
        except ValueError:
            return node.value
    if node.tag == NULL:
        return None
    if node.style == ">":
        return _go_folded(node.value)
    return node.value


_MORE_INDENTED = re.compile(r"(?<=[^\n])\n(?=[ \t])")


def _go_folded(value: str) -> str:
    """A folded (`>`) scalar as go-yaml v3 reads it: where a normal line is followed by a
    more-indented one it keeps an extra line break that libyaml (and the YAML spec)
    does not. Both are correct about everything else."""
    if "\n " not in value and "\n\t" not in value:
        return value
    out = []
    pos = 0
    for m in _MORE_INDENTED.finditer(value):
        line_start = value.rfind("\n", 0, m.start()) + 1
        if value[line_start : line_start + 1] in (" ", "\t"):
            continue  # the line before is more-indented itself
        out.append(value[pos : m.start()])
        out.append("\n\n")
        pos = m.end()
    out.append(value[pos:])
    return "".join(out)


_RESOLVER = yaml.resolver.Resolver()


@lru_cache(maxsize=4096)
def _implicit_tag(value: str) -> str:
    """The tag PyYAML's resolver gives a plain scalar: a plain scalar whose tag differs
    was tagged explicitly (`!!str 3`) and keeps it. (The C loader marks plain scalars
    with style '', the Python one with None: neither says whether the tag was written.)"""
    return str(_RESOLVER.resolve(ynodes.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]
