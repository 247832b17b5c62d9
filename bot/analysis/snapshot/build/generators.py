"""`configMapGenerator` and `secretGenerator`, and the content hash kustomize appends to
generated names (`api/internal/generators`, `api/kv`, `api/hasher` of kustomize v5.5)."""

from __future__ import annotations

import base64
import functools
import hashlib
import posixpath
import re
from typing import TYPE_CHECKING, Any

from yaml import nodes as ynodes

from bot.analysis.model import Reader
from bot.analysis.snapshot.build import kustfile
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.problems import BuildProblem, ProblemKind, Related, Unknown
from bot.analysis.snapshot.build.resource import Resource

if TYPE_CHECKING:
    from bot.analysis.snapshot.build.kustomize import Accumulated, Kustomizer

_BOM = b"\xef\xbb\xbf"


def _remove_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _string_map(node: ynodes.Node | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(node, ynodes.MappingNode):
        for k, v in node.value:
            if isinstance(k, ynodes.ScalarNode):
                out[k.value] = yn.text(v) or ""
    return out


class _Options:
    """A generator's `options` with the kustomization's `generatorOptions` merged in
    (`types.MergeGlobalOptionsIntoLocal`: local labels and annotations win, a global
    `true` wins over a local `false`)."""

    def __init__(self, local: ynodes.Node | None, global_: ynodes.Node | None) -> None:
        self.labels = _string_map(yn.get(global_, "labels")) | _string_map(yn.get(local, "labels"))
        self.annotations = _string_map(yn.get(global_, "annotations")) | _string_map(
            yn.get(local, "annotations")
        )
        self.no_hash = any(
            yn.to_value(yn.get(n, "disableNameSuffixHash")) is True for n in (local, global_)
        )
        self.immutable = any(yn.to_value(yn.get(n, "immutable")) is True for n in (local, global_))


def run(k: Kustomizer, kf: kustfile.KustFile, acc: Accumulated) -> None:
    for kind, items in (("ConfigMap", kf.config_maps), ("Secret", kf.secrets)):
        for item in items:
            _generate(k, kf, kind, item, acc)


def _generate(
    k: Kustomizer, kf: kustfile.KustFile, kind: str, item: ynodes.Node, acc: Accumulated
) -> None:
    field = "configMapGenerator" if kind == "ConfigMap" else "secretGenerator"
    name_node = yn.get(item, "name")
    name = yn.text(name_node)
    line = yn.origin_of(name_node if name_node is not None else item, kf.path)[1]
    where = f"`{field}` {name or '?'} of {kf.path}"
    if not name:
        acc.unknown.append(Unknown(where, "has no name", (kf.path,)))
        return
    pairs: list[tuple[str, bytes]] = []
    known = True
    for env_node in [yn.get(item, "env"), *_items(yn.get(item, "envs"))]:
        rel = yn.text(env_node)
        if rel is None:
            continue
        data = _read(k, kf, rel, acc, where)
        if data is None:
            known = False
            continue
        for number, raw in enumerate(data.split(b"\n")):
            text = (raw[3:] if number == 0 and raw.startswith(_BOM) else raw).decode(
                "utf-8", "replace"
            )
            text = text.rstrip("\r").lstrip()
            if not text or text.startswith("#"):
                continue
            key, _, value = text.partition("=")
            pairs.append((key, value.encode()))
    for lit in _items(yn.get(item, "literals")):
        literal = yn.text(lit)
        if literal is None or "=" not in literal or literal.startswith("="):
            acc.unknown.append(Unknown(where, f"has an invalid literal `{literal}`", (kf.path,)))
            known = False
            continue
        key, _, value = literal.partition("=")
        pairs.append((key, _remove_quotes(value).encode()))
    for file_node in _items(yn.get(item, "files")):
        source = yn.text(file_node)
        if source is None:
            continue
        if source.count("=") > 1 or source.startswith("=") or source.endswith("="):
            acc.unknown.append(Unknown(where, f"has an invalid file source `{source}`", (kf.path,)))
            known = False
            continue
        key, sep, rel = source.partition("=")
        if not sep:
            key, rel = posixpath.basename(source), source
        data = _read(k, kf, rel, acc, where)
        if data is None:
            known = False
            continue
        pairs.append((key, data))
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            acc.problems.append(
                BuildProblem(
                    ProblemKind.GENERATOR,
                    kf.path,
                    line,
                    f"{where} has the key `{key}` twice: kustomize fails with `illegally "
                    "repeats the key`.",
                )
            )
        seen.add(key)
    options = _Options(yn.get(item, "options"), kf.generator_options)
    mark = yn.Origin(kf.path, line)
    namespace = yn.text(yn.get(item, "namespace"))
    node = _object(kind, name, namespace, pairs, options, yn.text(yn.get(item, "type")), mark)
    res = Resource.of(node, kf.path, -1, line=line, generator=field, hashed=not options.no_hash)
    if not known:
        acc.unknown.append(Unknown(where, "reads a file that is not in the source", (kf.path,)))
    behavior = yn.text(yn.get(item, "behavior")) or "create"
    _absorb(res, behavior, where, kf, line, acc)


def _items(node: ynodes.Node | None) -> list[ynodes.Node]:
    return list(node.value) if isinstance(node, ynodes.SequenceNode) else []


def _read(
    k: Kustomizer, kf: kustfile.KustFile, rel: str, acc: Accumulated, where: str
) -> bytes | None:
    target = (
        posixpath.normpath(posixpath.join(kf.directory, rel)) if not rel.startswith("/") else None
    )
    real = k.view.real(target) if target is not None and not target.startswith("../") else None
    if real is None:
        acc.unknown.append(Unknown(f"`{rel}` of {where}", "is not in the source", (kf.path,)))
        return None
    acc.reads.append(_read_edge(real, kf.path))
    return k.files.data(real)


def _read_edge(path: str, source: str) -> Any:
    from bot.analysis.snapshot.build.kustomize import Read

    return Read(path, Reader.GENERATOR_DATA, source, 1)


def _object(
    kind: str,
    name: str,
    namespace: str | None,
    pairs: list[tuple[str, bytes]],
    options: _Options,
    secret_type: str | None,
    mark: yn.Origin,
) -> ynodes.MappingNode:
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, value in sorted(pairs, key=lambda p: p[0]):
        if kind == "Secret":
            data[key] = _base64(value)
            continue
        try:
            data[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = _base64(value)
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if options.labels:
        meta["labels"] = dict(sorted(options.labels.items()))
    if options.annotations:
        meta["annotations"] = dict(sorted(options.annotations.items()))
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": meta}
    if data or kind == "Secret":
        obj["data"] = data
    if binary:
        obj["binaryData"] = binary
    if kind == "Secret":
        obj["type"] = secret_type or "Opaque"
    if options.immutable:
        obj["immutable"] = True
    node = yn.from_value(obj, mark)
    assert isinstance(node, ynodes.MappingNode)
    return node


def _base64(value: bytes) -> str:
    """kyaml's `encodeBase64`: standard base64, cut into lines of 70 characters, each
    ending in a newline, once it is 70 characters or longer."""
    encoded = base64.b64encode(value).decode()
    if len(encoded) < 70:
        return encoded
    return "".join(encoded[i : i + 70] + "\n" for i in range(0, len(encoded), 70))


def _absorb(
    res: Resource, behavior: str, where: str, kf: kustfile.KustFile, line: int, acc: Accumulated
) -> None:
    """kustomize's `appendReplaceOrMerge`."""
    key = res.key()
    matches = [r for r in acc.resmap if key in _keys(r)]
    if not matches:
        if behavior in ("merge", "replace"):
            acc.problems.append(
                BuildProblem(
                    ProblemKind.GENERATOR,
                    kf.path,
                    line,
                    f"{where} has `behavior: {behavior}` but the build has no "
                    f"{res.kind} {res.name} to {behavior}: kustomize fails with "
                    "`does not exist; cannot merge or replace`.",
                )
            )
            return
        acc.resmap.append(res, acc.problems, where)
        return
    old = matches[0]
    if behavior == "create" or len(matches) > 1:
        # The same id twice: on both definitions, each naming the other (whichever the
        # change added, its file gets the finding).
        message = (
            "kustomize fails with `behavior must be merge or replace` (set `behavior: merge` "
            "or `replace` to change the existing one)."
        )
        acc.problems.append(
            BuildProblem(
                ProblemKind.DUPLICATE_ID,
                kf.path,
                line,
                f"{where} creates {res.kind} {res.name}, which is already in this build from "
                f"{old.path}:{old.line}: {message}",
                (Related(old.path, old.line, "the other definition"),),
            )
        )
        acc.problems.append(
            BuildProblem(
                ProblemKind.DUPLICATE_ID,
                old.path,
                old.line,
                f"{res.kind} {res.name} is created again by {where} ({kf.path}:{line}): {message}",
                (Related(kf.path, line, "the generator"),),
            )
        )
        return
    # The new object takes the old one's place, name and namespace; labels and
    # annotations are both's (the new ones win); with `merge` so are data and
    # binaryData. Everything else is the new generator's (a Secret's `type` goes back to
    # Opaque, `immutable` is lost unless set again).
    node = res.node
    old_meta = yn.get(old.node, "metadata")
    meta = yn.get(node, "metadata")
    assert isinstance(meta, ynodes.MappingNode)
    meta = yn.with_key(meta, "name", yn.scalar(old.name, meta.start_mark))
    if old.namespace:
        meta = yn.with_key(meta, "namespace", yn.scalar(old.namespace, meta.start_mark))
    for field in ("labels", "annotations"):
        merged = _string_map(yn.get(old_meta, field)) | _string_map(yn.get(meta, field))
        if merged:
            meta = yn.with_key(meta, field, yn.from_value(dict(merged), node.start_mark))
    if behavior == "merge":
        for field in ("data", "binaryData"):
            merged = _string_map(yn.get(old.node, field)) | _string_map(yn.get(node, field))
            if merged:
                node = yn.with_key(
                    node, field, yn.from_value(dict(sorted(merged.items())), node.start_mark)
                )
    node = yn.with_key(node, "metadata", meta)
    new = Resource.of(
        node, res.path, -1, line=res.line, generator=res.generator, hashed=res.hashed and old.hashed
    )
    new = Resource(
        new.node,
        new.path,
        new.line,
        new.doc,
        new.api_version,
        new.kind,
        new.name,
        new.namespace,
        new.generator,
        new.hashed,
        old.prev,
    )
    i = next(i for i, r in enumerate(acc.resmap.resources) if r is old)
    acc.resmap.set(i, new)


def _keys(res: Resource) -> list[tuple[str, str, str, str, str]]:
    out = [res.key()]
    for name, ns in res.prev:
        out.append(Resource(res.node, "", 0, -1, res.api_version, res.kind, name, ns).key())
    return out


# --- the name hash --------------------------------------------------------------------

_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _go_string(value: str) -> str:
    """A string as Go's encoding/json writes it (HTML characters escaped, control
    characters as \\u00XX except \\n \\r \\t): the hash must match kustomize's bytes."""
    out = ['"']
    for c in value:
        esc = _GO_ESCAPES.get(c)
        if esc is not None:
            out.append(esc)
        elif ord(c) < 0x20:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def go_json(value: Any) -> str:
    """Go's json.Marshal of maps (keys sorted), strings and scalars."""
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{_go_string(str(k))}:{go_json(v)}" for k, v in sorted(value.items()))
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    return _go_string(str(value))


def _hash_values(node: ynodes.MappingNode, field: str) -> Any:
    value = yn.get(node, field)
    if value is None:
        return ""
    if isinstance(value, ynodes.ScalarNode):
        return value.value
    return yn.to_value(value)


def content_hash(node: ynodes.MappingNode) -> str:
    """kustomize's `hasher.Hash` of a ConfigMap or Secret. kustomize looks the name up with
    `yaml.Lookup("metadata/name")`, one field named `metadata/name`, which never exists:
    the name is "" in what it hashes, and so it is here."""
    kind = yn.text(yn.get(node, "kind"))
    if kind == "ConfigMap":
        m: dict[str, Any] = {"kind": "ConfigMap", "name": "", "data": _hash_values(node, "data")}
        binary = _hash_values(node, "binaryData")
        if isinstance(binary, dict):
            m["binaryData"] = binary
    else:
        m = {
            "kind": "Secret",
            "type": _hash_values(node, "type"),
            "name": "",
            "data": _hash_values(node, "data"),
        }
        string_data = _hash_values(node, "stringData")
        if isinstance(string_data, dict):
            m["stringData"] = string_data
    digest = hashlib.sha256(go_json(m).encode("utf-8", "replace")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def add_hashes(resources: list[Resource]) -> list[Resource]:
    """kustomize's `addHashesToNames`, at the top of a build: every generated object that
    wants one gets `-<hash of its content>` appended to its name."""
    out = []
    for res in resources:
        if not res.hashed or res.kind not in ("ConfigMap", "Secret"):
            out.append(res)
            continue
        name = f"{res.name}-{content_hash(res.node)}"
        mark = yn.get(res.node, "metadata", "name")
        node = yn.update(
            res.node,
            ("metadata", "name"),
            functools.partial(_renamed, name, mark),
        )
        assert isinstance(node, ynodes.MappingNode)
        out.append(res.with_node(node))
    return out


_ = re


def _renamed(name: str, mark: ynodes.Node | None, _old: ynodes.Node | None) -> ynodes.Node:
    return yn.scalar(name, mark.start_mark if mark is not None else None)
