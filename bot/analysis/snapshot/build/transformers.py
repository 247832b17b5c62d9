"""kustomize's builtin transformers, in the order a kustomization runs them
(`api/internal/target/kusttarget_configplugin.go` `configureBuiltinTransformers`):
patchesStrategicMerge, patches, namespace, namePrefix, nameSuffix, labels and
commonLabels, commonAnnotations, patchesJson6902, replicas, images, replacements."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import re2
from yaml import nodes as ynodes

from bot.analysis.snapshot.build import fieldspecs, jsonpatch, replacements, smp
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.kustfile import KustFile, PatchEntry
from bot.analysis.snapshot.build.problems import BuildProblem, ProblemKind, Unknown
from bot.analysis.snapshot.build.resource import Resource

if TYPE_CHECKING:
    from bot.analysis.snapshot.build.kustomize import Accumulated, Kustomizer


def run(k: Kustomizer, kf: KustFile, acc: Accumulated) -> None:
    for entry in kf.patches:
        if entry.field == "patchesStrategicMerge":
            _patch(k, entry, acc)
    for entry in kf.patches:
        if entry.field == "patches":
            _patch(k, entry, acc)
    if kf.namespace is not None:
        _namespace(kf.namespace, acc)
    if kf.name_prefix is not None or kf.name_suffix is not None:
        _affix(kf, acc)
    _labels(kf, acc)
    _annotations(kf, acc)
    for entry in kf.patches:
        if entry.field == "patchesJson6902":
            _patch(k, entry, acc)
    for node, file in kf.replicas:
        _replicas(node, file, acc)
    for node, file in kf.images:
        _images(node, file, acc)
    if kf.replacements:
        replacements.run(k, kf, acc)


def _map(acc: Accumulated, fn: Callable[[Resource], Resource | None], where: str) -> None:
    out: list[Resource] = []
    changed = False
    for res in acc.resmap:
        new = fn(res)
        if new is not res:
            changed = True
        if new is not None:
            out.append(new)
    if changed:
        acc.resmap.replace_all(out, acc.problems, where)


# --- patches ----------------------------------------------------------------------------


_LABEL_REQ = re.compile(
    r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for c in text:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        if c == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += c
    if current.strip():
        parts.append(current)
    return parts


def selector_matches(selector: str, labels: dict[str, str]) -> bool | None:
    """A Kubernetes label selector against labels; None when it does not parse."""
    for part in _split_selector(selector):
        m = _LABEL_REQ.match(part)
        if m is None:
            return None
        neg, key, op, value, set_op, values = m.groups()
        if neg:
            if op or set_op:
                return None
            if key in labels:
                return False
        elif op in ("=", "=="):
            if labels.get(key) != value:
                return False
        elif op == "!=":
            if labels.get(key) == value:
                return False
        elif set_op:
            options = {v.strip() for v in values.split(",")}
            if set_op == "in" and labels.get(key) not in options:
                return False
            if set_op == "notin" and labels.get(key) in options:
                return False
        elif key not in labels:
            return False
    return True


def _string_map(node: ynodes.Node | None) -> dict[str, str]:
    if not isinstance(node, ynodes.MappingNode):
        return {}
    return {
        k.value: str(v.value)
        for k, v in node.value
        if isinstance(k, ynodes.ScalarNode) and isinstance(v, ynodes.ScalarNode)
    }


# Patterns in a pull request are hostile input: RE2 reads Go's syntax, as kustomize does,
# in time linear in the text (Python's `re` backtracks without bound).
_RE2 = re2.Options()
_RE2.log_errors = False


def _anchored(pattern: str) -> Any:
    try:
        return re2.compile(f"^(?:{pattern})$", _RE2)
    except re2.error:
        return None


def select(acc: Accumulated, target: ynodes.Node | None) -> list[Resource] | None:
    """kustomize's `ResMap.Select`: name and namespace (regular expressions, anchored) match
    the original or the current one, group/version/kind match the current one, and the
    label and annotation selectors match. None when the selector cannot be read."""
    t = {
        k: yn.text(yn.get(target, k)) or ""
        for k in ("group", "version", "kind", "name", "namespace")
    }
    regexes = {k: _anchored(v) if v else None for k, v in t.items()}
    if any(v and regexes[k] is None for k, v in t.items()):
        return None
    label_selector = yn.text(yn.get(target, "labelSelector"))
    annotation_selector = yn.text(yn.get(target, "annotationSelector"))
    found = []
    for res in acc.resmap:
        org_name, org_ns = res.prev[0] if res.prev else (res.name, res.namespace)
        cluster = res.cluster_scoped

        def eff(ns: str | None, cluster: bool = cluster) -> str:
            return "_non_namespaceable_" if cluster else (ns or "default")

        ns_re, name_re = regexes["namespace"], regexes["name"]
        if ns_re is not None and not (ns_re.match(eff(org_ns)) or ns_re.match(eff(res.namespace))):
            continue
        if name_re is not None and not (name_re.match(org_name) or name_re.match(res.name)):
            continue
        for part, value in (("group", res.group), ("version", res.version), ("kind", res.kind)):
            regex = regexes[part]
            if regex is not None and not regex.match(value):
                break
        else:
            meta = yn.get(res.node, "metadata")
            if label_selector:
                matched = selector_matches(label_selector, _string_map(yn.get(meta, "labels")))
                if not matched:
                    continue
            if annotation_selector:
                matched = selector_matches(
                    annotation_selector, _string_map(yn.get(meta, "annotations"))
                )
                if not matched:
                    continue
            found.append(res)
    return found


def _describe(entry: PatchEntry) -> str:
    return f"the patch `{entry.path}`" if entry.path else f"the patch at {entry.file}:{entry.line}"


def _patch(k: Kustomizer, entry: PatchEntry, acc: Accumulated) -> None:
    loaded = k.patch_documents(entry, acc)
    if loaded is None:
        return
    docs, file = loaded
    docs = [d for d in docs if not (isinstance(d, ynodes.ScalarNode) and yn.text(d) is None)]
    if not docs:
        return
    where = _describe(entry)
    if jsonpatch.is_json6902(docs) or entry.field == "patchesJson6902":
        _json6902(entry, docs, acc, where)
        return
    if entry.target is not None and entry.field == "patches":
        if len(docs) > 1:
            _fail(
                acc,
                entry,
                f"{where} holds several strategic-merge patches and a `target`: kustomize "
                "fails with `Multiple Strategic-Merge Patches in one patches entry is not "
                "allowed to set patches.target field`.",
            )
            return
        selected = select(acc, entry.target)
        if selected is None:
            acc.unknown.append(Unknown(where, "has a target kustomize cannot read", (entry.file,)))
            return
        chosen = {id(r) for r in selected}
        _map(
            acc,
            lambda r: (
                _smp(k, r, docs[0], entry, acc, where, retarget=True) if id(r) in chosen else r
            ),
            where,
        )
        return
    for doc in docs:
        if not isinstance(doc, ynodes.MappingNode):
            acc.unknown.append(Unknown(where, "is not a patch kustomize can read", (file,)))
            continue
        target = _by_id(acc, doc)
        if target is None:
            if acc.unknown:
                continue  # what is not known might be the target
            kind = yn.text(yn.get(doc, "kind")) or "?"
            name = yn.text(yn.get(doc, "metadata", "name")) or "?"
            acc.problems.append(
                BuildProblem(
                    ProblemKind.PATCH_TARGET,
                    entry.file,
                    entry.line,
                    f"{where} is for {kind} {name}, which is not in this build: "
                    "kustomize fails with "
                    "`no matches for Id ...; failed to find unique target for patch`.",
                )
            )
            continue
        _map(acc, functools.partial(_smp_one, k, target, doc, entry, acc, where), where)


def _smp_one(
    k: Kustomizer,
    chosen: Resource,
    doc: ynodes.Node,
    entry: PatchEntry,
    acc: Accumulated,
    where: str,
    res: Resource,
) -> Resource | None:
    return _smp(k, res, doc, entry, acc, where) if res is chosen else res


def _by_id(acc: Accumulated, patch: ynodes.MappingNode) -> Resource | None:
    """kustomize's `GetById(patch.OrgId())`: exactly one object whose current or earlier id
    has the patch's group, version, kind, name and effective namespace."""
    api = yn.text(yn.get(patch, "apiVersion")) or ""
    kind = yn.text(yn.get(patch, "kind")) or ""
    name = yn.text(yn.get(patch, "metadata", "name")) or ""
    ns = yn.text(yn.get(patch, "metadata", "namespace"))
    probe = Resource(patch, "", 0, -1, api, kind, name, ns)
    want = probe.key()
    found = []
    for res in acc.resmap:
        ids = [res.key()]
        for prev_name, prev_ns in res.prev:
            ids.append(
                Resource(res.node, "", 0, -1, res.api_version, res.kind, prev_name, prev_ns).key()
            )
        if want in ids:
            found.append(res)
    return found[0] if len(found) == 1 else None


def _smp(
    k: Kustomizer,
    res: Resource,
    patch: ynodes.Node,
    entry: PatchEntry,
    acc: Accumulated,
    where: str,
    retarget: bool = False,
) -> Resource | None:
    options = {
        k: yn.to_value(v)
        for k, v in (
            (k.value, v)
            for k, v in getattr(entry.options, "value", [])
            if isinstance(k, ynodes.ScalarNode)
        )
    }
    allow = (bool(options.get("allowKindChange")), bool(options.get("allowNameChange")))
    try:
        merged = k.merge(patch, res, allow, functools.partial(_kept_identity, res, allow))
    except smp.MergeFailed as exc:
        line = yn.origin_of(exc.node, entry.file)[1] if exc.node is not None else entry.line
        path = ".".join(str(p) for p in exc.path)
        acc.problems.append(
            BuildProblem(
                ProblemKind.PATCH_FAILS,
                yn.origin_of(exc.node, entry.file)[0] if exc.node is not None else entry.file,
                line,
                f"{where} cannot be merged into {res} at `{path}`: kustomize fails with `{exc}`.",
            )
        )
        return res
    if merged is None:
        return None  # `$patch: delete`
    assert isinstance(merged, ynodes.MappingNode)
    return res.with_node(merged)


def _kept_identity(
    res: Resource, allow: tuple[bool, bool], merged: ynodes.Node | None
) -> ynodes.Node | None:
    """A merge's result as kustomize keeps it: None for `$patch: delete`; else with the
    target's name, kind and namespace, unless the patch's options allow a change
    (`Resource.ApplySmPatch`)."""
    if merged is None or (isinstance(merged, ynodes.MappingNode) and not merged.value):
        return None
    assert isinstance(merged, ynodes.MappingNode)
    allow_kind, allow_name = allow
    if not allow_kind:
        merged = _set_scalar(merged, ("kind",), res.kind)
    if not allow_name:
        merged = _set_scalar(merged, ("metadata", "name"), res.name, keep=True)
    if res.namespace is not None:
        merged = _set_scalar(merged, ("metadata", "namespace"), res.namespace, keep=True)
    elif yn.get(merged, "metadata", "namespace") is not None:
        cleared = yn.update(merged, ("metadata", "namespace"), lambda _: None, create=False)
        assert isinstance(cleared, ynodes.MappingNode)
        merged = cleared
    return merged


def _set_scalar(
    node: ynodes.MappingNode, path: tuple[str, ...], value: str, keep: bool = False
) -> ynodes.MappingNode:
    current = yn.at(node, path)
    if keep and current is not None and yn.text(current) == value:
        return node
    if yn.text(current) == value:
        return node
    mark = current.start_mark if current is not None else node.start_mark
    new = yn.update(node, path, lambda _: yn.scalar(value, mark), create=True, mark=mark)
    assert isinstance(new, ynodes.MappingNode)
    return new


def _fail(acc: Accumulated, entry: PatchEntry, message: str) -> None:
    acc.problems.append(BuildProblem(ProblemKind.PATCH_FAILS, entry.file, entry.line, message))


def _json6902(entry: PatchEntry, docs: list[ynodes.Node], acc: Accumulated, where: str) -> None:
    if entry.target is None:
        _fail(
            acc,
            entry,
            f"{where} is a JSON patch without a `target`: "
            "kustomize fails with `must specify a target for JSON patch`.",
        )
        return
    decoded = jsonpatch.operations(docs)
    if decoded is None:
        acc.unknown.append(Unknown(where, "is not a JSON patch kustomize can read", (entry.file,)))
        return
    ops, values = decoded
    selected = select(acc, entry.target)
    if selected is None:
        acc.unknown.append(Unknown(where, "has a target kustomize cannot read", (entry.file,)))
        return
    chosen = {id(r) for r in selected}

    def patch(res: Resource) -> Resource:
        if id(res) not in chosen:
            return res
        try:
            new = jsonpatch.apply(res.node, ops, values)
        except jsonpatch.PatchFailed as exc:
            acc.problems.append(
                BuildProblem(
                    ProblemKind.PATCH_FAILS,
                    entry.file,
                    entry.line,
                    f"{where} cannot be applied to {res}: kustomize fails with `{exc}`.",
                )
            )
            return res
        if not isinstance(new, ynodes.MappingNode):
            return res
        return res.with_node(new)

    _map(acc, patch, where)


# --- namespace, names -----------------------------------------------------------------


def _namespace(setting: tuple[str, int, str], acc: Accumulated) -> None:
    namespace, line, file = setting
    mark = yn.Origin(file, line)
    specs = acc.config.table("namespace")

    def setter(_old: ynodes.Node | None, _path: Any) -> ynodes.Node:
        return yn.scalar(namespace, mark)

    def one(res: Resource) -> Resource:
        res = res.stored()
        node: ynodes.Node = res.node
        if not res.cluster_scoped:
            node = yn.update(
                node,
                ("metadata", "namespace"),
                lambda old: old if yn.text(old) == namespace else yn.scalar(namespace, mark),
                mark=mark,
            )
        for spec in specs:
            if spec.path == ("metadata", "name") and res.api_version != "v1":
                continue  # only a v1 Namespace is renamed
            if spec.selects(res.api_version, res.kind):
                node = fieldspecs.apply(node, spec, setter, mark)
        if res.kind in ("RoleBinding", "ClusterRoleBinding"):
            node = _subjects(node, namespace, mark)
        if node is res.node:
            return res
        assert isinstance(node, ynodes.MappingNode)
        return res.with_node(node, store=False)

    _map(acc, one, f"the namespace `{namespace}` set in {file}")


def _subjects(node: ynodes.Node, namespace: str, mark: Any) -> ynodes.Node:
    """kustomize's default `setRoleBindingSubjects: defaultOnly`: only subjects named
    `default` get the namespace."""
    subjects = yn.get(node, "subjects")
    if not isinstance(subjects, ynodes.SequenceNode):
        return node
    items = []
    changed = False
    for item in subjects.value:
        if isinstance(item, ynodes.MappingNode) and yn.text(yn.get(item, "name")) == "default":
            new = yn.with_key(item, "namespace", yn.scalar(namespace, mark), mark)
            items.append(new)
            changed = True
        else:
            items.append(item)
    if not changed:
        return node
    return yn.update(
        node,
        ("subjects",),
        lambda _old: ynodes.SequenceNode(
            subjects.tag, items, subjects.start_mark, subjects.end_mark, subjects.flow_style
        ),
    )


_NO_AFFIX = (
    ("", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("", "Namespace"),
)


def _affix(kf: KustFile, acc: Accumulated) -> None:
    prefix, pline, pfile = kf.name_prefix or ("", 0, kf.path)
    suffix, sline, sfile = kf.name_suffix or ("", 0, kf.path)
    mark = yn.Origin(pfile if prefix else sfile, pline or sline)

    def one(res: Resource) -> Resource:
        org_name, _ = res.prev[0] if res.prev else (res.name, res.namespace)
        if any((not g or g == res.group) and k == res.kind for g, k in _NO_AFFIX):
            return res
        name = f"{prefix}{res.name}{suffix}"
        node = yn.update(res.node, ("metadata", "name"), lambda _: yn.scalar(name, mark), mark=mark)
        assert isinstance(node, ynodes.MappingNode)
        del org_name
        return res.with_node(node)

    _map(acc, one, f"the name prefix or suffix of {kf.path}")


# --- labels, annotations ------------------------------------------------------------


def _entries(node: ynodes.Node | None) -> list[tuple[str, ynodes.Node]]:
    if not isinstance(node, ynodes.MappingNode):
        return []
    return [(k.value, v) for k, v in node.value if isinstance(k, ynodes.ScalarNode)]


def _set_entries(
    pairs: list[tuple[str, ynodes.Node]], file: str
) -> Callable[[ynodes.Node | None, Any], ynodes.Node | None]:
    def fn(old: ynodes.Node | None, _path: Any) -> ynodes.Node | None:
        if old is not None and not isinstance(old, ynodes.MappingNode):
            if yn.text(old) is not None:
                return old
            old = None
        node = (
            old
            if old is not None
            else yn.mapping([], yn.Origin(file, yn.origin_of(pairs[0][1], file)[1]))
        )
        assert isinstance(node, ynodes.MappingNode)
        for key, value in pairs:
            text = yn.text(value) or ""
            current = yn.get(node, key)
            if current is not None and yn.text(current) == text and current.tag == yn.STR:
                continue
            origin = yn.origin_of(value, file)
            mark = (
                value.start_mark
                if isinstance(value.start_mark, yn.Origin)
                else yn.Origin(origin[0], origin[1])
            )
            new_value = yn.from_value(text, mark)
            node = yn.with_key(node, key, new_value, mark)
        return node

    return fn


def _apply_map(
    acc: Accumulated,
    specs: list[fieldspecs.FieldSpec],
    pairs: list[tuple[str, ynodes.Node]],
    file: str,
    where: str,
) -> None:
    if not pairs:
        return
    fn = _set_entries(pairs, file)

    def one(res: Resource) -> Resource:
        node: ynodes.Node = res.node
        for spec in specs:
            if spec.selects(res.api_version, res.kind):
                node = fieldspecs.apply(node, spec, fn, yn.Origin(file, 1))
        if node is res.node:
            return res
        assert isinstance(node, ynodes.MappingNode)
        return res.with_node(node)

    _map(acc, one, where)


_METADATA_LABELS = fieldspecs.FieldSpec("", "", "", ("metadata", "labels"), True)


def _labels(kf: KustFile, acc: Accumulated) -> None:
    for node, file in kf.labels:
        pairs = _entries(yn.get(node, "pairs"))
        include_selectors = yn.to_value(yn.get(node, "includeSelectors")) is True
        include_templates = yn.to_value(yn.get(node, "includeTemplates")) is True
        specs: list[fieldspecs.FieldSpec] = []
        for raw in yn.to_value(yn.get(node, "fields")) or []:
            if isinstance(raw, dict) and isinstance(raw.get("path"), str):
                specs.append(
                    fieldspecs.FieldSpec(
                        raw.get("group") or "",
                        raw.get("version") or "",
                        raw.get("kind") or "",
                        tuple(raw["path"].split("/")),
                        bool(raw.get("create")),
                    )
                )
        if include_selectors:
            specs.extend(acc.config.table("commonLabels"))
        else:
            if include_templates:
                specs.extend(acc.config.table("templateLabels"))
            specs.append(_METADATA_LABELS)
        _apply_map(acc, _dedupe(specs), pairs, file, f"the labels of {file}")
    for node, file in kf.common_labels:
        _apply_map(
            acc,
            list(acc.config.table("commonLabels")),
            _entries(node),
            file,
            f"the commonLabels of {file}",
        )


def _dedupe(specs: list[fieldspecs.FieldSpec]) -> list[fieldspecs.FieldSpec]:
    seen: set[tuple[str, str, str, tuple[str, ...]]] = set()
    out = []
    for s in specs:
        key = (s.group, s.version, s.kind, s.path)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _annotations(kf: KustFile, acc: Accumulated) -> None:
    for node, file in kf.common_annotations:
        _apply_map(
            acc,
            list(acc.config.table("commonAnnotations")),
            _entries(node),
            file,
            f"the commonAnnotations of {file}",
        )


# --- replicas, images ------------------------------------------------------------------


def _replicas(node: ynodes.Node, file: str, acc: Accumulated) -> None:
    name = yn.text(yn.get(node, "name"))
    count_node = yn.get(node, "count")
    count = yn.to_value(count_node)
    if not name or not isinstance(count, int) or isinstance(count, bool) or count_node is None:
        return
    mark = (
        count_node.start_mark
        if isinstance(count_node.start_mark, yn.Origin)
        else yn.Origin(file, yn.origin_of(count_node, file)[1])
    )
    specs = acc.config.table("replicas")

    def one(res: Resource) -> Resource:
        if name not in res.names():
            return res
        new: ynodes.Node = res.node
        for spec in specs:
            if spec.selects(res.api_version, res.kind):
                new = fieldspecs.apply(
                    new, spec, lambda _o, _p: yn.scalar(str(count), mark, yn.INT), mark
                )
        if new is res.node:
            return res
        assert isinstance(new, ynodes.MappingNode)
        return res.with_node(new)

    _map(acc, one, f"the replicas of {file}")


def split_image(image: str) -> tuple[str, str, str]:
    """kustomize's `image.Split`: (name, tag, digest)."""
    search = image
    slash = image.find("/")
    if slash > 0:
        search = image[slash:]
    else:
        slash = 0
    at = search.find("@")
    colon = search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (at < colon or colon < 0):
        at += slash
        return image[:at], "", image[at + 1 :]
    if at >= 0 and colon >= 0:
        at += slash
        colon += slash
        return image[:colon], image[colon + 1 : at], image[at + 1 :]
    colon += slash
    return image[:colon], image[colon + 1 :], ""


def _images(node: ynodes.Node, file: str, acc: Accumulated) -> None:
    spec = {
        k: yn.text(yn.get(node, k)) or ""
        for k in ("name", "newName", "newTag", "digest", "tagSuffix")
    }
    if not spec["name"]:
        return
    try:
        matcher = re2.compile(
            "^" + spec["name"] + r"(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$", _RE2
        )
    except re2.error:
        acc.unknown.append(
            Unknown(
                f"the image `{spec['name']}` in {file}",
                "is not a name kustomize can match",
                (file,),
            )
        )
        return
    origin = yn.origin_of(node, file)
    mark = yn.Origin(origin[0], origin[1])

    def update(value: str) -> str | None:
        if not matcher.match(value):
            return None
        name, tag, digest = split_image(value)
        if spec["newName"]:
            name = spec["newName"]
        if spec["newTag"] and spec["digest"]:
            tag, digest = spec["newTag"], spec["digest"]
        elif spec["newTag"]:
            tag, digest = spec["newTag"], ""
        elif spec["digest"]:
            tag, digest = "", spec["digest"]
        elif spec["tagSuffix"]:
            tag, digest = tag + spec["tagSuffix"], ""
        out = name
        if tag:
            out += ":" + tag
        if digest:
            out += "@" + digest
        return out

    def walk(n: ynodes.Node, depth: int) -> ynodes.Node:
        """kustomize's LegacyFilter: every `image` of a list under a `containers` or
        `initContainers` field, anywhere in the object (custom resources too)."""
        if depth > 100 or not isinstance(n, ynodes.MappingNode):
            if isinstance(n, ynodes.SequenceNode):
                items = [walk(i, depth + 1) for i in n.value]
                if any(a is not b for a, b in zip(items, n.value, strict=True)):
                    return ynodes.SequenceNode(n.tag, items, n.start_mark, n.end_mark, n.flow_style)
            return n
        pairs = []
        changed = False
        for k, v in n.value:
            new_v = walk(v, depth + 1)
            if (
                isinstance(k, ynodes.ScalarNode)
                and k.value in ("containers", "initContainers")
                and isinstance(new_v, ynodes.SequenceNode)
            ):
                items = []
                for item in new_v.value:
                    image = yn.get(item, "image")
                    value = yn.text(image) if isinstance(image, ynodes.ScalarNode) else None
                    new_value = update(value) if value is not None else None
                    if new_value is not None and new_value != value:
                        assert isinstance(item, ynodes.MappingNode)
                        item = yn.with_key(item, "image", yn.scalar(new_value, mark), mark)
                    items.append(item)
                if any(a is not b for a, b in zip(items, new_v.value, strict=True)):
                    new_v = ynodes.SequenceNode(
                        new_v.tag, items, new_v.start_mark, new_v.end_mark, new_v.flow_style
                    )
            if new_v is not v:
                changed = True
            pairs.append((k, new_v))
        if not changed:
            return n
        return ynodes.MappingNode(n.tag, pairs, n.start_mark, n.end_mark, n.flow_style)

    def fieldspec_pass(node: ynodes.Node, res: Resource) -> ynodes.Node:
        for fs in acc.config.table("images"):
            if fs.selects(res.api_version, res.kind):
                node = fieldspecs.apply(
                    node,
                    fieldspecs.FieldSpec(fs.group, fs.version, fs.kind, fs.path, False),
                    lambda old, _p: (
                        yn.scalar(new_value, mark)
                        if isinstance(old, ynodes.ScalarNode)
                        and (new_value := update(old.value)) is not None
                        and new_value != old.value
                        else old
                    ),
                    mark,
                )
        return node

    def one(res: Resource) -> Resource:
        if res.kind == "CustomResourceDefinition":
            return res
        # Two passes, as kustomize's ImageTagTransformer runs them: every `containers`
        # list anywhere, then the field specs of pod specs (the same fields again, which
        # only `tagSuffix` notices: it is appended twice).
        new = fieldspec_pass(walk(res.node, 0), res)
        if new is res.node:
            return res
        assert isinstance(new, ynodes.MappingNode)
        return res.with_node(new)

    _map(acc, one, f"the images of {file}")
