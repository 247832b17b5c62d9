"""A kustomization file that kustomize refuses.

kustomize v5.5 (the build kustomize-controller runs) decodes a kustomization strictly
and fails the whole build on:
- a field it does not know (`invalid Kustomization: json: unknown field "resource"`), at
  the top or inside a patch, image, replica or generator entry; names match like Go's
  JSON decoder, so `NamePrefix` is `namePrefix`;
- a value of the wrong type (`json: cannot unmarshal ...`): a list where a string goes,
  a string where a list goes, an unquoted `true`, `yes` or `1.10` where a string goes
  (`commonLabels`, `newTag`, `namespace`);
- a `kind` other than `Kustomization` / `Component`, or an `apiVersion` that does not
  go with it;
- a file with no entries at all (`kustomization.yaml is empty`; `resources: []` is an
  entry). kustomize-controller tolerates an empty entry point of a Flux Kustomization and
  applies nothing: with `prune: true` that deletes everything it applied before;
- a cycle: a kustomization that includes itself through `resources` or `components`
  (`cycle detected`);
- a strategic-merge patch without a `target` whose object is not in the build (`no
  matches for Id ...; failed to find unique target for patch`). Matched generously (by
  kind and any name the object had on the way, any namespace), and not checked when part
  of the build is unknown (a remote resource, a Helm chart generator);
- two kustomization files in one directory (`Found multiple kustomization files`);
- a replacement kustomize cannot carry out: a source that selects no object or several
  (`nothing selected by ...`, `multiple matches for selector ...`), a source field that
  is not set, a target field that does not exist without `options.create` (`unable to
  find field ... in replacement target`), a value the target's type cannot hold (the
  text `abc` in `replicas: 1`).

Only kustomization files that something applies are checked (through a Flux
Kustomization of this repository or a `raw_paths` entry; every one in a repository
without either). A file that is not valid YAML is `yaml-syntax-error`'s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import KUSTOMIZATION_FILES, Reader
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build.problems import ProblemKind

ID = "kustomize-invalid-kustomization"
SEVERITY = Severity.ERROR

# Field types of kustomize v5.5's api/types (kustomization.go and what it holds).
S, L, M, B, N, A, MB = (
    "string",
    "list of strings",
    "map of strings",
    "bool",
    "int",
    "any",
    "map of bools",
)
_SELECTOR = {
    k: S
    for k in (
        "group",
        "version",
        "kind",
        "name",
        "namespace",
        "labelSelector",
        "annotationSelector",
    )
}
_PATCH = {"path": S, "patch": S, "target": ("object", _SELECTOR), "options": MB}
_IMAGE = {k: S for k in ("name", "newName", "tagSuffix", "newTag", "digest")}
_GEN_OPTIONS = {"labels": M, "annotations": M, "disableNameSuffixHash": B, "immutable": B}
_GENERATOR = {
    "namespace": S,
    "name": S,
    "behavior": S,
    "literals": L,
    "files": L,
    "envs": L,
    "env": S,
    "options": ("object", _GEN_OPTIONS),
}
_FIELD_OPTIONS = {"delimiter": S, "index": N, "encoding": S, "create": B}
_REPLACEMENT = {
    "path": S,
    "source": (
        "object",
        {
            **{k: S for k in ("group", "version", "kind", "name", "namespace", "fieldPath")},
            "options": ("object", _FIELD_OPTIONS),
        },
    ),
    "targets": (
        "objects",
        {
            "select": ("object", _SELECTOR),
            "reject": ("objects", _SELECTOR),
            "fieldPaths": L,
            "options": ("object", _FIELD_OPTIONS),
        },
    ),
}
_SCHEMA: dict[str, Any] = {
    "apiVersion": S,
    "kind": S,
    "metadata": ("object", {"name": S, "namespace": S, "labels": M, "annotations": M}),
    "openapi": M,
    "namePrefix": S,
    "nameSuffix": S,
    "namespace": S,
    "commonLabels": M,
    "labels": ("objects", {"pairs": M, "includeSelectors": B, "includeTemplates": B, "fields": A}),
    "commonAnnotations": M,
    "patchesStrategicMerge": L,
    "patchesJson6902": ("objects", _PATCH),
    "patches": ("objects", _PATCH),
    "images": ("objects", _IMAGE),
    "imageTags": ("objects", _IMAGE),
    "replacements": ("objects", _REPLACEMENT),
    "replicas": ("objects", {"name": S, "count": N}),
    "vars": ("objects", {"name": S, "objref": A, "fieldref": A}),
    "sortOptions": A,
    "resources": L,
    "components": L,
    "crds": L,
    "bases": L,
    "configMapGenerator": ("objects", _GENERATOR),
    "secretGenerator": ("objects", {**_GENERATOR, "type": S}),
    "helmGlobals": A,
    "helmCharts": A,
    "helmChartInflationGenerator": A,
    "generatorOptions": ("object", _GEN_OPTIONS),
    "configurations": L,
    "generators": L,
    "transformers": L,
    "validators": L,
    "buildMetadata": L,
}
_NOT_STRING = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_NULL = "tag:yaml.org,2002:null"


def _go_type(node: ys.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "object"
    if isinstance(node, yaml.SequenceNode):
        return "array"
    return {
        "tag:yaml.org,2002:bool": "bool",
        "tag:yaml.org,2002:int": "number",
        "tag:yaml.org,2002:float": "number",
    }.get(node.tag, "string")


def _is_null(node: ys.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and (
        node.tag == _NULL
        or (node.style is None and node.value in ("", "~", "null", "Null", "NULL"))
    )


def _string_ok(node: ys.Node) -> bool:
    return _is_null(node) or (isinstance(node, yaml.ScalarNode) and node.tag not in _NOT_STRING)


def _lookup(schema: dict[str, Any], key: str) -> tuple[str, Any] | None:
    if key in schema:
        return key, schema[key]
    for name, spec in schema.items():
        if name.lower() == key.lower():
            return name, spec
    return None


def _problems(node: ys.Node, schema: dict[str, Any], where: str) -> Iterator[tuple[int, str]]:
    """(line, message) for each unknown field and wrong type below `node`."""
    if _is_null(node):
        return
    if not isinstance(node, yaml.MappingNode):
        yield (
            ys.line_of(node),
            (f"{where or 'the kustomization'} must be a mapping, not {_go_type(node)}"),
        )
        return
    for key, key_node, value in ys.pairs(node):
        if key == "<<":
            continue
        found = _lookup(schema, key)
        path = f"{where}.{key}" if where else key
        if found is None:
            yield ys.line_of(key_node), f"unknown field `{path}`"
            continue
        spec = found[1]
        yield from _check_value(value, spec, path)


def _check_value(value: ys.Node, spec: Any, path: str) -> Iterator[tuple[int, str]]:
    if spec == A or _is_null(value):
        return
    line = ys.line_of(value)
    wrong = f"`{path}` must be a {{}}, not {_go_type(value)}"
    if spec == S:
        if not _string_ok(value):
            yield line, wrong.format("string") + _quote_hint(value)
    elif spec == N:
        if not (isinstance(value, yaml.ScalarNode) and value.tag == "tag:yaml.org,2002:int"):
            yield line, wrong.format("number")
    elif spec == B:
        if not isinstance(value, yaml.ScalarNode):
            yield line, wrong.format("boolean")
    elif spec == L:
        if not isinstance(value, yaml.SequenceNode):
            yield line, wrong.format("list of strings")
            return
        for item in value.value:
            if not _string_ok(item):
                yield (
                    ys.line_of(item),
                    (
                        f"items of `{path}` must be strings, not {_go_type(item)}"
                        + _quote_hint(item)
                    ),
                )
    elif spec in (M, MB):
        if not isinstance(value, yaml.MappingNode):
            yield line, wrong.format("mapping")
            return
        for key, _, item in ys.pairs(value):
            ok = isinstance(item, yaml.ScalarNode) if spec == MB else _string_ok(item)
            if not ok:
                kind = "boolean" if spec == MB else "string"
                yield (
                    ys.line_of(item),
                    (
                        f"`{path}.{key}` must be a {kind}, not {_go_type(item)}"
                        + ("" if spec == MB else _quote_hint(item))
                    ),
                )
    elif spec[0] == "object":
        if not isinstance(value, yaml.MappingNode):
            yield line, wrong.format("mapping")
            return
        yield from _problems(value, spec[1], path)
    elif spec[0] == "objects":
        if not isinstance(value, yaml.SequenceNode):
            yield line, wrong.format("list")
            return
        for index, item in enumerate(value.value):
            if _is_null(item):
                continue
            if not isinstance(item, yaml.MappingNode):
                yield (
                    ys.line_of(item),
                    (f"items of `{path}` must be mappings, not {_go_type(item)}"),
                )
                continue
            yield from _problems(item, spec[1], f"{path}[{index}]")


def _quote_hint(node: ys.Node) -> str:
    if isinstance(node, yaml.ScalarNode) and node.tag in _NOT_STRING:
        return f' (quote it: "{node.value}")'
    return ""


def _empty(root: ys.Node | None) -> bool:
    """kustomize's CheckEmpty: nothing but apiVersion and kind, or only null values
    (a string field set to "" is empty too; `resources: []` is not)."""
    if root is None or _is_null(root):
        return True
    if not isinstance(root, yaml.MappingNode):
        return False
    for key, _, value in ys.pairs(root):
        found = _lookup(_SCHEMA, key)
        if found is not None and found[0] in ("apiVersion", "kind"):
            continue
        if _is_null(value):
            continue
        if (
            found is not None
            and found[1] == S
            and isinstance(value, yaml.ScalarNode)
            and value.value == ""
        ):
            continue
        return False
    return True


def _kustomization_files(repo: Snapshot) -> tuple[set[str], dict[str, Any]]:
    """The kustomization files some build reads (a cluster's, or a standalone one's),
    and those Flux builds from (the entry point of a Flux Kustomization)."""
    kfiles: set[str] = set()
    entries: dict[str, Any] = {}
    for built in repo.build.builds():
        if built.kfile is not None:
            kfiles.add(built.kfile)
        for read in built.reads:
            if read.path.rsplit("/", 1)[-1] in KUSTOMIZATION_FILES:
                kfiles.add(read.path)
    for k in repo.build.kustomizations:
        for read in k.reads:
            if read.reader is Reader.FLUX_ENTRY:
                entries.setdefault(read.path, k)
    return kfiles, entries


_PROBLEMS = (
    ProblemKind.CYCLE,
    ProblemKind.PATCH_TARGET,
    ProblemKind.PATCH_FAILS,
    ProblemKind.MULTIPLE_FILES,
    ProblemKind.GENERATOR,
    ProblemKind.ENTRY_KIND,
    ProblemKind.REPLACEMENT,
)


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    kfiles, entries = _kustomization_files(repo)
    for kfile in sorted(kfiles):
        if repo.problem(kfile) is not None:
            continue
        docs = repo.documents(kfile)
        root = docs[0] if docs else None
        entry = entries.get(kfile)
        if _empty(root):
            if entry is not None:
                # kustomize-controller's generator rewrites the file and builds it (as
                # nothing): it does not fail, it applies nothing.
                yield ctx.finding(
                    ID,
                    Severity.WARNING,
                    kfile,
                    1,
                    f"{kfile} has no entries: {entry.label} applies nothing from it"
                    + (" and prunes everything it applied before" if entry.prune else "")
                    + ".",
                )
                continue
            yield ctx.finding(
                ID,
                SEVERITY,
                kfile,
                1,
                f"{kfile} has no entries: kustomize fails with `kustomization.yaml is empty`.",
            )
            continue
        assert root is not None
        for line, message in _problems(root, _SCHEMA, ""):
            unknown = message.startswith("unknown field")
            if unknown and entry is not None:
                # kustomize-controller reads the entry point's kustomization into its
                # struct and writes it back (fluxcd/pkg kustomize_generator.go): an
                # unknown field is dropped, not refused.
                yield ctx.finding(
                    ID,
                    Severity.WARNING,
                    kfile,
                    line,
                    f"{message}: {entry.label} drops it when it rewrites this file, so what "
                    "it says does not happen (kustomize alone fails with `invalid Kustomization`).",
                )
                continue
            yield ctx.finding(
                ID,
                SEVERITY,
                kfile,
                line,
                f"{message}: kustomize fails with `invalid Kustomization`.",
            )
        kind = ys.scalar(ys.get(root, "kind"))
        api = ys.scalar(ys.get(root, "apiVersion"))
        if kind and kind not in ("Kustomization", "Component"):
            node = ys.get(root, "kind")
            assert node is not None
            yield ctx.finding(
                ID,
                SEVERITY,
                kfile,
                ys.line_of(node),
                f"kind `{kind}`: kustomize fails with `kind should be Kustomization or Component`.",
            )
        elif api:
            wanted = (
                "kustomize.config.k8s.io/v1alpha1"
                if kind == "Component"
                else "kustomize.config.k8s.io/v1beta1"
            )
            if api != wanted:
                node = ys.get(root, "apiVersion")
                assert node is not None
                yield ctx.finding(
                    ID,
                    SEVERITY,
                    kfile,
                    ys.line_of(node),
                    f"apiVersion `{api}` with kind {kind or 'Kustomization'}: kustomize "
                    f"fails with `apiVersion for {kind or 'Kustomization'} should be "
                    f"{wanted}`.",
                )
    for kind in _PROBLEMS:
        for problem in repo.build.problems(kind):
            yield ctx.finding(ID, SEVERITY, problem.path, problem.line, problem.message)
