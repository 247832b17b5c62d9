"""Fast YAML reading: text first, libyaml when structure is needed.

ruamel.yaml's round-trip loader reads about 0.2 MB/s; libyaml's event parser through
PyYAML about 8 MB/s. Every manifest a controller reads has to be checked, so that check
runs on events; full node trees are composed only for the few files that the model
indexes (Flux objects, kustomization files, Chart.yaml).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml import nodes as ynodes

from bot.analysis.lines import mapped, split_lines, yaml_line_map

_CParser: Any
_Loader: Any
try:
    from yaml._yaml import CParser as _CParser

    _Loader = yaml.CSafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    _CParser = _Loader = yaml.SafeLoader

# go-yaml v3 (used by kustomize and the API machinery) refuses deeper documents.
MAX_DEPTH = 10_000


@dataclass(frozen=True, slots=True)
class YamlProblem:
    line: int  # 1-based
    message: str
    duplicate_of: int | None = None  # a key defined twice: the line of its first definition


def decode(data: bytes) -> str | None:
    """Text of a YAML file as a controller would read it, or None when it is not text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def encoding_problem(data: bytes) -> YamlProblem | None:
    if decode(data) is not None:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return YamlProblem(line, "the file is not valid UTF-8 text")
    return YamlProblem(1, "the file is not valid UTF-16 text")


def _allowed_alias_ratio(count: int) -> float:
    # go-yaml v3 decode.go: aliases may make up most of a small document but at most a
    # tenth of a huge one; beyond that it fails with "document contains excessive aliasing".
    low, high = 400_000, 4_000_000
    if count <= low:
        return 0.99
    if count >= high:
        return 0.10
    return 0.99 - 0.89 * (count - low) / (high - low)


CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})


@dataclass(slots=True)
class DocInfo:
    """What the rules need to know of one document, gathered while checking it."""

    line: int  # 1-based line of the document's root node
    root: str = "empty"  # "mapping", "sequence", "scalar" or "empty"
    empty_mapping: bool = False
    kind: str | None = None
    api_version: str | None = None
    has_name: bool = False
    has_generate_name: bool = False
    has_items: bool = False
    images: list[tuple[int, str]] = field(default_factory=list)  # (line, image)
    # metadata.name / metadata.namespace when written as plain scalars, and the line of
    # the name: enough to know an object's identity without composing the document.
    name: str | None = None
    name_line: int = 0
    namespace: str | None = None


@dataclass(slots=True)
class YamlInfo:
    problem: YamlProblem | None
    docs: list[DocInfo]


_UNTERMINATED = frozenset(
    {
        "found unexpected end of stream",
        "found unexpected document indicator",
        "could not find expected ':'",
        "did not find expected ',' or ']'",
        "did not find expected ',' or '}'",
    }
)


_MAPPING_INDICATOR = re.compile(r":(?:[ \t]|$)")


def _key_without_colon(data: bytes | str, line: int) -> int | None:
    """The line before `line` when it is a bare word where a key was meant (`replicas 2`,
    `containers`): libyaml reads it and the next line as one multi-line scalar and only
    complains at the next line's `:`. None when the previous line is not like that."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = split_lines(text)
    if not 1 < line <= len(lines):
        return None
    current = lines[line - 1]
    indent = len(current) - len(current.lstrip(" "))
    for number in range(line - 1, 0, -1):
        previous = lines[number - 1]
        stripped = previous.strip()
        if not stripped or stripped.startswith("#"):
            continue
        previous_indent = len(previous) - len(previous.lstrip(" "))
        if (
            previous_indent > indent
            or stripped.startswith(("-", "---", "...", "'", '"', "{", "[", "|", ">", "&", "*", "!"))
            or _MAPPING_INDICATOR.search(stripped)
            or stripped.endswith(("|", ">", "|-", ">-", "|+", ">+"))
        ):
            return None
        return number
    return None


def check(data: bytes | str) -> YamlProblem | None:
    """The first reason a Kubernetes YAML decoder would refuse this text, if any."""
    return scan(data).problem


def scan(data: bytes | str, duplicate_keys_allowed: bool = False) -> YamlInfo:
    """Check a file the way Kubernetes' YAML decoder would, and summarise its documents.

    Beyond libyaml's syntax errors this catches what go-yaml v3 rejects and libyaml
    accepts: duplicate mapping keys, alias bombs and absurd nesting. One pass over
    libyaml's events, no node tree: this runs on every manifest of the repository.
    `duplicate_keys_allowed` reads as Helm reads `values.yaml` and `Chart.yaml`
    (non-strict sigs.k8s.io/yaml: the last value wins).
    """
    docs: list[DocInfo] = []
    if isinstance(data, bytes):
        problem = encoding_problem(data)
        if problem is not None:
            return YamlInfo(problem, docs)
        anchored = b"&" in data
    else:
        anchored = "&" in data
    mapping = yaml_line_map(data)
    parser = _CParser(data)
    try:
        problem = _walk_events(parser, anchored, docs, duplicate_keys_allowed)
        if problem is not None and problem.duplicate_of is not None:
            line = mapped(mapping, problem.line - 1)
            first = next((d.first_line for d in duplicate_keys(data) if d.line == line), 0)
            where = f" (first on line {first})" if first else ""
            problem = YamlProblem(
                problem.line,
                problem.message.replace("is defined twice", f"is defined twice{where}"),
                first,
            )
        if mapping is not None:
            for doc in docs:
                doc.line = mapped(mapping, doc.line - 1)
                doc.images = [(mapped(mapping, line - 1), image) for line, image in doc.images]
                if doc.name_line:
                    doc.name_line = mapped(mapping, doc.name_line - 1)
            if problem is not None:
                problem = YamlProblem(mapped(mapping, problem.line - 1), problem.message)
        return YamlInfo(problem, docs)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem_text = exc.problem or "invalid YAML"
        if exc.context and exc.problem:
            problem_text = f"{exc.problem} ({exc.context})"
        if exc.context_mark is not None and exc.problem in _UNTERMINATED:
            # An unclosed quote or bracket (or a key without its `:`) is found where the
            # parser gives up, often the end of the file; the mistake is where the quoted
            # value, the flow collection or the key starts.
            mark = exc.context_mark
            problem_text = f"{exc.problem} ({exc.context} that starts on this line)"
        line = mapped(mapping, mark.line) if mark is not None else 1
        if exc.problem == "mapping values are not allowed in this context":
            missing = _key_without_colon(data, line)
            if missing is not None:
                line = missing
                problem_text = (
                    "this line has no `:`, so the next line's key is read as part of it "
                    f"({problem_text})"
                )
        if mapping is not None:
            problem_text += (
                "; the file holds a line break that only YAML sees (a lone CR, NEL, U+2028 "
                "or U+2029), so what follows it on the line shown is read as a new line"
            )
        return YamlInfo(YamlProblem(line, problem_text), docs)
    except yaml.YAMLError as exc:  # reader errors: control characters, bad encoding
        mark = getattr(exc, "problem_mark", None)
        return YamlInfo(
            YamlProblem(
                mapped(mapping, mark.line) if mark is not None else 1, str(exc).splitlines()[0]
            ),
            docs,
        )
    except RecursionError:
        return YamlInfo(YamlProblem(1, f"nesting deeper than {MAX_DEPTH} levels"), docs)
    finally:
        parser.dispose()


def _walk_events(
    parser: Any, anchored: bool, docs: list[DocInfo], duplicates_allowed: bool = False
) -> YamlProblem | None:
    get_event = parser.get_event
    scalar_t, alias_t = yaml.ScalarEvent, yaml.AliasEvent
    map_t, seq_t = yaml.MappingStartEvent, yaml.SequenceStartEvent
    map_end_t, seq_end_t = yaml.MappingEndEvent, yaml.SequenceEndEvent
    doc_t = yaml.DocumentStartEvent
    containers = CONTAINER_LISTS
    # One entry per open collection: its key set (None for a sequence), whether the next
    # node is a key, the last key seen, and (only when the file has anchors) its size.
    keysets: list[set[str] | None] = []
    expect_key: list[bool] = []
    last_key: list[str | None] = []
    sizes: list[int] = []
    anchor_of: list[str | None] = []
    anchors: dict[str, int] = {}
    decoded = aliased = 0
    doc: DocInfo | None = None
    while True:
        event = get_event()
        if event is None:
            return None
        cls = type(event)
        if cls is scalar_t or cls is alias_t:
            size = 1
            if cls is alias_t:
                if event.anchor not in anchors:
                    return YamlProblem(
                        event.start_mark.line + 1, f"unknown anchor {event.anchor!r} referenced"
                    )
                size = anchors[event.anchor]
                aliased += size
            elif anchored and event.anchor is not None:
                anchors[event.anchor] = 1
            if not keysets:
                if (
                    doc is not None
                    and cls is scalar_t
                    and not (
                        event.tag is None
                        and event.implicit[0]
                        and event.value in ("", "~", "null", "Null", "NULL")
                    )
                ):
                    doc.root = "scalar"
                    doc.line = event.start_mark.line + 1
                continue
            keys = keysets[-1]
            if keys is not None:
                if expect_key[-1]:
                    if cls is scalar_t:
                        value = event.value
                        if value in keys and value != "<<" and not duplicates_allowed:
                            # The first definition's line is looked up by the caller:
                            # remembering every key's line would slow every file down.
                            return YamlProblem(
                                event.start_mark.line + 1,
                                f"mapping key {value!r} is defined twice; Kubernetes' "
                                "YAML decoder rejects duplicate keys",
                                0,
                            )
                        keys.add(value)
                        last_key[-1] = value
                    else:
                        last_key[-1] = None
                    expect_key[-1] = False
                else:
                    expect_key[-1] = True
                    key = last_key[-1]
                    if cls is scalar_t and key is not None and doc is not None:
                        depth = len(keysets)
                        if key == "image":
                            if depth >= 3 and keysets[-2] is None and last_key[-3] in containers:
                                doc.images.append((event.start_mark.line + 1, event.value))
                        elif depth == 1:
                            if key == "kind":
                                doc.kind = event.value
                            elif key == "apiVersion":
                                doc.api_version = event.value
                        elif depth == 2 and last_key[0] == "metadata":
                            if key == "name":
                                doc.has_name = True
                                doc.name = event.value
                                doc.name_line = event.start_mark.line + 1
                            elif key == "namespace":
                                doc.namespace = event.value
                            elif key == "generateName":
                                doc.has_generate_name = True
            if anchored:
                sizes[-1] += size
                decoded += size
        elif cls is map_t or cls is seq_t:
            depth = len(keysets)
            if depth >= MAX_DEPTH:
                return YamlProblem(
                    event.start_mark.line + 1, f"nesting deeper than {MAX_DEPTH} levels"
                )
            if depth == 0:
                if doc is not None:
                    doc.root = "mapping" if cls is map_t else "sequence"
                    doc.line = event.start_mark.line + 1
            elif keysets[-1] is not None and expect_key[-1]:
                # `? [a]`, `{a: 1}: b`, and an unquoted `- {{ x }}` parse as a collection
                # used as a key; sigs.k8s.io/yaml fails with "unsupported map key".
                return YamlProblem(
                    event.start_mark.line + 1,
                    "a mapping or sequence is used as a mapping key; "
                    "Kubernetes' YAML decoder cannot read it",
                )
            elif depth == 1 and doc is not None and last_key[0] == "items":
                doc.has_items = True
            keysets.append(set() if cls is map_t else None)
            expect_key.append(True)
            last_key.append(None)
            if anchored:
                sizes.append(1)
                anchor_of.append(event.anchor)
        elif cls is map_end_t or cls is seq_end_t:
            keys = keysets.pop()
            expect_key.pop()
            last_key.pop()
            if not keysets and doc is not None and keys is not None and not keys:
                doc.empty_mapping = True
            if keysets and keysets[-1] is not None:
                expect_key[-1] = not expect_key[-1]
            if anchored:
                size = sizes.pop()
                anchor = anchor_of.pop()
                if anchor is not None:
                    anchors[anchor] = size
                decoded += 1
                if sizes:
                    sizes[-1] += size
                if (
                    aliased > 100
                    and decoded > 1000
                    and aliased / decoded > _allowed_alias_ratio(decoded)
                ):
                    return YamlProblem(
                        event.start_mark.line + 1,
                        "the document contains excessive aliasing (an alias "
                        "bomb); Kubernetes' YAML decoder refuses it",
                    )
        elif cls is doc_t:
            anchors.clear()
            doc = DocInfo(line=event.start_mark.line + 1)
            docs.append(doc)


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    key: str  # the key's path, `resources.limits.cpu`, `env[2].name`
    line: int  # 1-based line of the second definition
    first_line: int


def duplicate_keys(data: bytes | str) -> list[DuplicateKey]:
    """Every key defined twice in one mapping, in file order; those before the first
    syntax error when the text is not valid YAML."""
    mapping = yaml_line_map(data)
    parser = _CParser(data)
    found: list[DuplicateKey] = []
    # Per open collection: its keys -> line (None for a sequence), whether the next node
    # is a key, and the name of the entry being read (a key, or a sequence index).
    keysets: list[dict[str, int] | None] = []
    expect_key: list[bool] = []
    names: list[str] = []
    try:
        while (event := parser.get_event()) is not None:
            cls = type(event)
            is_node = cls in (
                yaml.ScalarEvent,
                yaml.AliasEvent,
                yaml.MappingStartEvent,
                yaml.SequenceStartEvent,
            )
            if is_node and keysets and keysets[-1] is None:
                names[-1] = str(int(names[-1]) + 1) if names[-1] else "0"
            if cls is yaml.ScalarEvent or cls is yaml.AliasEvent:
                keys = keysets[-1] if keysets else None
                if keys is None:
                    continue
                if expect_key[-1] and cls is yaml.ScalarEvent:
                    line = mapped(mapping, event.start_mark.line)
                    if event.value in keys and event.value != "<<":
                        found.append(
                            DuplicateKey(
                                _key_path(keysets, names, event.value), line, keys[event.value]
                            )
                        )
                    else:
                        keys[event.value] = line
                    names[-1] = event.value
                expect_key[-1] = not expect_key[-1]
            elif cls is yaml.MappingStartEvent or cls is yaml.SequenceStartEvent:
                keysets.append({} if cls is yaml.MappingStartEvent else None)
                expect_key.append(True)
                names.append("")
            elif cls is yaml.MappingEndEvent or cls is yaml.SequenceEndEvent:
                keysets.pop()
                expect_key.pop()
                names.pop()
                if keysets and keysets[-1] is not None:
                    expect_key[-1] = not expect_key[-1]
            elif cls is yaml.DocumentStartEvent:
                keysets, expect_key, names = [], [], []
    except (yaml.YAMLError, RecursionError):
        pass
    finally:
        parser.dispose()
    return found


def _key_path(keysets: list[dict[str, int] | None], names: list[str], key: str) -> str:
    path = ""
    for keys, name in zip(keysets[:-1], names[:-1], strict=True):
        path += f"[{name}]" if keys is None else (f".{name}" if path else name)
    return f"{path}.{key}" if path else key


def compose_all(data: bytes | str) -> list[ynodes.Node]:
    """Documents of a file as libyaml node trees (line numbers in start_mark).

    Aliases stay shared nodes, so walking only the paths a rule needs never expands an
    alias bomb. Callers must have run `check` first or be ready for YAMLError.
    """
    try:
        docs = [n for n in yaml.compose_all(data, Loader=_Loader) if n is not None]
    except yaml.composer.ComposerError as exc:
        if "duplicate anchor" not in str(exc.context or exc.problem or ""):
            raise
        docs = [n for n in yaml.compose_all(data, Loader=_RedefiningLoader) if n is not None]
    mapping = yaml_line_map(data)
    if mapping is not None:
        _remap_marks(docs, mapping)
    return docs


class _RedefiningLoader(yaml.SafeLoader):
    """go-yaml (kustomize, the API machinery) lets a later anchor of the same name
    replace the earlier one; libyaml's composer refuses it. The pure-Python composer,
    told to forget the earlier anchor, reads such a file as go-yaml does (only files
    that need it pay for the slower loader)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor  # type: ignore[no-untyped-call]
            if anchor is not None:
                self.anchors.pop(anchor, None)
        return super().compose_node(parent, index)


def _remap_marks(docs: list[ynodes.Node], mapping: list[int]) -> None:
    seen: set[int] = set()
    stack: list[ynodes.Node] = list(docs)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for attr in ("start_mark", "end_mark"):
            mark = getattr(node, attr)
            if mark is not None:
                setattr(
                    node,
                    attr,
                    yaml.Mark(
                        mark.name, mark.index, mapped(mapping, mark.line) - 1, mark.column, None, 0
                    ),
                )
        if isinstance(node, ynodes.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, ynodes.SequenceNode):
            stack.extend(node.value)


# --- node helpers -----------------------------------------------------------------

Node = ynodes.Node


def get(node: Node | None, *keys: str) -> Node | None:
    for key in keys:
        if not isinstance(node, ynodes.MappingNode):
            return None
        found = None
        # The key's text first: most keys differ, and a comparison costs less than
        # isinstance (a collection key's value is a list, never equal to a str).
        for k, v in node.value:
            if k.value == key and isinstance(k, ynodes.ScalarNode):
                found = v
        node = found
    return node


def scalar(node: Node | None) -> str | None:
    if isinstance(node, ynodes.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null" or (
            node.style is None and node.value in ("", "~", "null", "Null", "NULL")
        ):
            return None
        return str(node.value)
    return None


def items(node: Node | None) -> list[Node]:
    if isinstance(node, ynodes.SequenceNode):
        return list(node.value)
    return []


def pairs(node: Node | None) -> Iterator[tuple[str, Node, Node]]:
    if isinstance(node, ynodes.MappingNode):
        for k, v in node.value:
            if isinstance(k, ynodes.ScalarNode):
                yield k.value, k, v


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


# --- text helpers -----------------------------------------------------------------

# `\r?`: a CRLF file's `---` line ends in a CR that `$` does not skip.
_DOC_SEP = re.compile(r"^---(?:[ \t].*)?\r?$|^\.\.\.\s*$", re.M)
_TOP_KIND = re.compile(r"^kind:[ \t]*['\"]?([A-Za-z0-9]+)", re.M)
_TOP_API = re.compile(r"^apiVersion:[ \t]*['\"]?([A-Za-z0-9./-]+)", re.M)


@dataclass(frozen=True, slots=True)
class TextDoc:
    start_line: int  # 1-based line of the document's first line
    end_line: int  # inclusive
    kind: str | None
    api_version: str | None
    text: str


def split_documents(text: str) -> list[TextDoc]:
    """Documents by `---` lines, with their top-level kind/apiVersion read from the text."""
    docs: list[TextDoc] = []
    pos = 0
    line = 1
    for match in _DOC_SEP.finditer(text):
        chunk = text[pos : match.start()]
        docs.append(_text_doc(chunk, line))
        line += chunk.count("\n") + 1
        pos = match.end() + 1
    chunk = text[pos:]
    docs.append(_text_doc(chunk, line))
    return [d for d in docs if d.text.strip()]


def _text_doc(chunk: str, start: int) -> TextDoc:
    kind = _TOP_KIND.search(chunk)
    api = _TOP_API.search(chunk)
    return TextDoc(
        start_line=start,
        end_line=start + chunk.count("\n"),
        kind=kind.group(1) if kind else None,
        api_version=api.group(1) if api else None,
        text=chunk,
    )
