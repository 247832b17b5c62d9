"""A `${VAR}` without a default that no `postBuild` source of its Flux Kustomization
defines.

kustomize-controller substitutes `${VAR}` in everything a Flux Kustomization with
`spec.postBuild` builds, from `postBuild.substitute` and the ConfigMaps and Secrets of
`postBuild.substituteFrom`. Since kustomize-controller v1.9.0 (Flux v2.9) a variable with
no value and no default fails the whole Kustomization (`StrictPostBuildSubstitutions`,
on by default); before, it became an empty string. Reported:

- on a cluster whose Flux is v2.9 or later (see the README for how the version is
  found), any such variable, as an error: the Kustomization fails;
- on an older or unknown one, as an error where the empty string leaves a container
  image invalid (the message shows what the image becomes: Pods fail with
  InvalidImageName), else as a warning that says what the value becomes;
- a `${VAR}` in an image, or in `metadata.name` / `metadata.namespace`, of a file applied
  by a Flux Kustomization without `postBuild` (and that no patch on the way to the
  cluster gives one): Flux leaves it as is and the object is invalid.

Not reported when a `substituteFrom` source is not in the repository (it may define
anything), for `$${VAR}` (Flux's escape, written out as `${VAR}`), for the `${VAR:=x}`,
`${VAR=x}`, `${VAR:-x}` and `${VAR-x}` forms with a default, for objects with the
label or annotation `kustomize.toolkit.fluxcd.io/substitute: disabled`, nor in comments
(substitution runs on the built objects, which have none). `invalid-image-reference`
reads `${VAR}` as a placeholder, so an image broken by a missing variable is reported
once, here.
"""

from __future__ import annotations

import base64
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field

from yaml import nodes as ynodes

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.fluxversion import flux_version
from bot.analysis.model import KUSTOMIZATION_FILES, FluxObject
from bot.analysis.rules.base import Context
from bot.analysis.rules.flux_schema import may_be_patched
from bot.analysis.rules.invalid_image_reference import problem as image_problem
from bot.analysis.snapshot import Snapshot
from bot.analysis.yamlscan import CONTAINER_LISTS

ID = "postbuild-substitution"
SEVERITY = Severity.ERROR

# `$${X}` is the escape: an even number of `$` before `{` is literal text.
_REF = re.compile(r"(\$+)\{([^{}]*)\}")
_NAME = re.compile(r"^([_a-zA-Z][_a-zA-Z0-9]*)(.*)$", re.S)
_DEFAULT_OPS = (":=", ":-", "=", "-")
_OPT_OUT = "kustomize.toolkit.fluxcd.io/substitute"
_STRICT_FROM = (1, 9, 0)  # kustomize-controller release that made strict the default
_GATE_OFF = re.compile(rb"StrictPostBuildSubstitutions\s*=\s*false")


@dataclass(frozen=True)
class Ref:
    name: str
    default: str | None  # None: no default
    text: str  # the whole `${...}`
    start: int
    end: int


def references(value: str) -> list[Ref]:
    """The `${VAR}` references envsubst resolves in `value` (not the `$${VAR}` escapes)."""
    found = []
    for m in _REF.finditer(value):
        if len(m[1]) % 2 == 0:
            continue
        name = _NAME.match(m[2])
        if name is None:
            continue
        rest = name[2]
        default = None
        for op in _DEFAULT_OPS:
            if rest.startswith(op):
                default = rest[len(op) :]
                break
        found.append(
            Ref(name[1], default, m[0][len(m[1]) - 1 :], m.start() + len(m[1]) - 1, m.end())
        )
    return found


def substituted(value: str, known: dict[str, str]) -> str:
    """`value` as envsubst writes it when the variables missing from `known` are empty."""
    out = []
    pos = 0
    for ref in references(value):
        out.append(value[pos : ref.start])
        out.append(known.get(ref.name, ref.default if ref.default is not None else ""))
        pos = ref.end
    out.append(value[pos:])
    return "".join(out).replace("$${", "${")


@dataclass
class _Vars:
    """What a Flux Kustomization's postBuild defines, when all of it is knowable."""

    has_post_build: bool
    values: dict[str, str] = field(default_factory=dict)
    complete: bool = True  # False: a source outside the repository may define more


def _source_keys(
    repo: Snapshot, kind: str, name: str, namespace: str | None
) -> dict[str, str] | None:
    for obj_path in _candidate_files(repo, name):
        for doc in repo.documents(obj_path):
            if ys.scalar(ys.get(doc, "kind")) != kind:
                continue
            if ys.scalar(ys.get(doc, "metadata", "name")) != name:
                continue
            ns = ys.scalar(ys.get(doc, "metadata", "namespace"))
            if ns and namespace and ns != namespace:
                continue
            keys: dict[str, str] = {}
            for key, _k, value in ys.pairs(ys.get(doc, "data")):
                text = ys.scalar(value) or ""
                if kind == "Secret":  # base64, or SOPS ciphertext: only the key counts
                    try:
                        text = base64.b64decode(text, validate=True).decode()
                    except (ValueError, UnicodeDecodeError):
                        text = "x"
                keys[key] = text
            for key, _k, value in ys.pairs(ys.get(doc, "stringData")):
                keys[key] = ys.scalar(value) or ""
            return keys
    return None


_FILES: weakref.WeakKeyDictionary[Snapshot, dict[str, list[str]]] = weakref.WeakKeyDictionary()


def _candidate_files(repo: Snapshot, name: str) -> list[str]:
    index = _FILES.get(repo)
    if index is None:
        index = {}
        for path in repo.paths:
            if not path.endswith((".yaml", ".yml")):
                continue
            data = repo.data(path) or b""
            if b"ConfigMap" not in data and b"Secret" not in data:
                continue
            for m in re.finditer(rb"^\s+name:\s*['\"]?([A-Za-z0-9._-]+)", data, re.M):
                index.setdefault(m[1].decode(), []).append(path)
        _FILES[repo] = index
    return sorted(set(index.get(name, ())))


def _vars_of(repo: Snapshot, ks: FluxObject) -> _Vars:
    post = ys.get(ks.node, "spec", "postBuild")
    if post is None or not isinstance(post, ynodes.MappingNode):
        return _Vars(False)
    result = _Vars(True)
    for key, _k, value in ys.pairs(ys.get(post, "substitute")):
        result.values[key] = ys.scalar(value) or ""
    for item in ys.items(ys.get(post, "substituteFrom")):
        kind = ys.scalar(ys.get(item, "kind")) or ""
        name = ys.scalar(ys.get(item, "name")) or ""
        if "${" in name or kind not in ("ConfigMap", "Secret"):
            result.complete = False
            continue
        keys = _source_keys(repo, kind, name, ks.namespace)
        if keys is None:
            result.complete = False
            continue
        for k, v in keys.items():
            result.values.setdefault(k, v)  # the inline substitute map wins
    return result


@dataclass
class _Use:
    ref: Ref
    value: str  # the whole scalar
    line: int
    where: str  # "image", "name" or ""


def _uses(doc: ys.Node) -> Iterator[_Use]:
    stack: list[tuple[ys.Node, tuple[str, ...]]] = [(doc, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ynodes.MappingNode):
            for key, value in node.value:
                if isinstance(key, ynodes.ScalarNode):
                    stack.append((value, (*path, key.value)))
        elif isinstance(node, ynodes.SequenceNode):
            stack.extend((item, path) for item in node.value)
        elif isinstance(node, ynodes.ScalarNode) and "${" in node.value:
            value = node.value
            where = ""
            if path and path[-1] == "image" and CONTAINER_LISTS.intersection(path):
                where = "image"
            elif path in (("metadata", "name"), ("metadata", "namespace")):
                where = "name"
            for ref in references(value):
                line = ys.line_of(node)
                if node.style in ("|", ">"):
                    line += 1 + value[: ref.start].count("\n")
                yield _Use(ref, value, line, where)


def _opted_out(doc: ys.Node) -> bool:
    return any(
        ys.scalar(ys.get(doc, "metadata", section, _OPT_OUT)) == "disabled"
        for section in ("labels", "annotations")
    )


_IMAGE_OR_NAME = re.compile(r"^\s*(?:-\s*)?(?:image|name|namespace)\s*:", re.M)


def _may_report(text: str, owners: list[_Vars]) -> bool:
    """Whether the text holds a `${VAR}` one of these Kustomizations could be reported
    for (a superset: comments count here)."""
    refs = references(text)
    if not refs:
        return False
    for found in owners:
        if not found.has_post_build or (found.complete and not found.values):
            # Left as written: only in an image or a name does it break.
            if any(_IMAGE_OR_NAME.search(line) and "${" in line for line in text.splitlines()):
                return True
        elif found.complete and any(r.default is None and r.name not in found.values for r in refs):
            return True
    return False


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    cache: dict[int, _Vars] = {}
    gate_off: bool | None = None
    for path in repo.paths:
        if not path.endswith((".yaml", ".yml")) or path.rsplit("/", 1)[-1] in (KUSTOMIZATION_FILES):
            continue
        data = repo.data(path)
        if not data or b"${" not in data or not repo.raw_consumers(path):
            continue
        owners = repo.flux_kustomizations_applying(path)
        if not owners:
            continue
        for ks in owners:
            if id(ks) not in cache:
                cache[id(ks)] = _vars_of(repo, ks)
        # Most files that hold `${VAR}` use only variables that are defined or have a
        # default: read the text before parsing anything.
        if not _may_report(repo.text(path) or "", [cache[id(ks)] for ks in owners]):
            continue
        if repo.problem(path) is not None or repo.raw_template_actions(path):
            continue  # reported as a YAML or template problem, the real cause
        version = flux_version(repo, path)
        controller = version.release.controller("kustomize-controller")
        # None: which kustomize-controller the cluster runs is not known.
        strict: bool | None = None
        if version.detected and controller is not None:
            strict = controller >= _STRICT_FROM
        if strict:
            if gate_off is None:
                gate_off = any(
                    _GATE_OFF.search(repo.data(p) or b"")
                    for p in repo.paths
                    if p.endswith((".yaml", ".yml")) and "flux" in p
                )
            strict = not gate_off
        reported: set[tuple[int, str]] = set()
        for doc in repo.documents(path):
            if _opted_out(doc):
                continue
            uses = list(_uses(doc))
            if not uses:
                continue
            for ks in owners:
                found = cache[id(ks)]
                label = f"Flux Kustomization {ks.ref().split(' ', 1)[1]} ({ks.path})"
                # With nothing to substitute, Flux leaves the text as it is; unless a
                # patch on the way to the cluster gives the Kustomization its postBuild
                # (home-ops repositories add substituteFrom to every child that way).
                literal = not found.has_post_build or (found.complete and not found.values)
                if literal and may_be_patched(repo, ks.path):
                    continue  # its variables, if any, are not knowable here
                for use in uses:
                    key = (use.line, use.ref.name)
                    if key in reported:
                        continue
                    result = _message(use, found, literal, strict, version.describe(), label)
                    if result is not None:
                        severity, message = result
                        reported.add(key)
                        yield ctx.finding(ID, severity, path, use.line, message)


def _message(
    use: _Use, found: _Vars, literal: bool, strict: bool | None, version: str, label: str
) -> tuple[Severity, str] | None:
    ref = use.ref
    if literal:
        if not use.where:
            return None
        why = "has no postBuild" if not found.has_post_build else "defines no variable"
        if use.where == "image":
            return SEVERITY, (
                f"`{ref.text}` stays as written: {label} {why}, so nothing substitutes it, "
                f"and the image `{use.value}` is not a valid reference: Pods using it fail "
                "with InvalidImageName."
            )
        return SEVERITY, (
            f"`{ref.text}` stays as written: {label} {why}, so nothing substitutes it, and "
            f"`{use.value}` is not a valid Kubernetes name: the apply fails."
        )
    if ref.default is not None or ref.name in found.values or not found.complete:
        return None
    undefined = (
        f"`${{{ref.name}}}` has no default and neither postBuild.substitute nor a "
        f"substituteFrom source of {label} defines it"
    )
    fix = (
        f"Define it, give it a default (`${{{ref.name}:=value}}`) or escape it as "
        f"`$${{{ref.name}}}`."
    )
    if strict:
        return SEVERITY, (
            f"{undefined}: kustomize-controller v1.9.0 and later fail the whole "
            f"Kustomization on it (strict substitution; {version}). {fix}"
        )
    becomes = substituted(use.value, found.values)
    later = (
        "On Flux v2.9 and later (kustomize-controller v1.9.0) the Kustomization fails on "
        f"it instead ({version})."
        if strict is None
        else f"({version}, before strict substitution)"
    )
    if use.where == "image":
        reason = image_problem(becomes)
        if reason is not None:
            return SEVERITY, (
                f"{undefined}: Flux replaces it with an empty string, so the image becomes "
                f"`{becomes}`, which is not a valid reference ({reason}): Pods fail with "
                f"InvalidImageName. {later}"
            )
    shown = (
        becomes
        if "\n" not in becomes
        else becomes.splitlines()[use.value[: use.ref.start].count("\n")]
    )
    return Severity.WARNING, (
        f"{undefined}: Flux replaces it with an empty string, so this becomes `{shown}`. "
        f"{later} {fix}"
    )
