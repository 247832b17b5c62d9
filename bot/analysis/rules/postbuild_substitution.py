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

import re
from collections.abc import Iterator
from dataclasses import dataclass

from yaml import nodes as ynodes

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.fluxversion import cluster_version, flux_version
from bot.analysis.images import problem as image_problem
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import flux
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import Cluster, FluxKustomization
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


def _strict(repo: Snapshot, cluster: Cluster) -> tuple[bool | None, str]:
    """Whether the cluster's kustomize-controller fails on an undefined variable (None:
    not known), and the Flux version as the message says it."""
    version = cluster_version(repo, cluster)
    if version is None:
        return None, flux_version(repo, None).describe()
    controller = version.release.controller("kustomize-controller")
    strict = controller >= _STRICT_FROM if controller is not None else None
    if strict and _gate_off(repo):
        strict = False
    return strict, version.describe()


def _gate_off(repo: Snapshot) -> bool:
    """A repository that turns the feature gate off (a patch of kustomize-controller's
    arguments `--feature-gates=StrictPostBuildSubstitutions=false`)."""
    return any(
        _GATE_OFF.search(repo.data(p) or b"")
        for p in repo.paths
        if p.endswith((".yaml", ".yml")) and "flux" in p
    )


def _substitutes(k: FluxKustomization) -> bool:
    """Whether kustomize-controller substitutes in what `k` builds: it has `postBuild`
    and some variable (or `substituteStrategy: Always`)."""
    post = yn.get(k.spec, "postBuild")
    if post is None:
        return False
    if yn.text(yn.get(post, "substituteStrategy")) == "Always":
        return True
    return bool(yn.keys(yn.get(post, "substitute"))) or bool(
        ys.items(yn.get(post, "substituteFrom"))
    )


def _where(field: tuple[str | int, ...]) -> str:
    names = [p for p in field if isinstance(p, str)]
    if names and names[-1] == "image" and CONTAINER_LISTS.intersection(names):
        return "image"
    if tuple(field) in (("metadata", "name"), ("metadata", "namespace")):
        return "name"
    return ""


def _literal_uses(node: ys.Node, path: str) -> Iterator[_Use]:
    """`${VAR}`s left as written where that breaks the object (an image, a name)."""
    for field, n in yn.walk(node):
        if not isinstance(n, ynodes.ScalarNode) or "${" not in n.value:
            continue
        where = _where(field)
        if not where:
            continue
        file, line, _ = yn.origin_of(n, path)
        for ref in references(n.value):
            yield _Use(ref, n.value, line, where, file)


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    reported: set[tuple[str, int, str]] = set()
    for cluster in repo.build.clusters:
        strict, version = _strict(repo, cluster)
        for k in cluster.kustomizations:
            if k.kind != "Kustomization" or not k.followed:
                continue
            label = k.label
            defined_at = [Location(k.path, k.line, message=f"{k.label}, its postBuild")]
            if not _substitutes(k):
                if not k.spec_known:
                    continue  # applied from outside the repository: it may substitute
                why = (
                    "has no postBuild"
                    if yn.get(k.spec, "postBuild") is None
                    else "defines no variable"
                )
                for obj in k.objects:
                    if (
                        obj.rendered_by is not None  # helm-controller applies it: no postBuild
                        or flux.opted_out(obj.res)
                        or repo.raw_template_actions(obj.path)
                    ):
                        continue
                    for use in _literal_uses(obj.node, obj.path):
                        key = (use.file, use.line, use.ref.name)
                        if key in reported:
                            continue
                        reported.add(key)
                        message = _literal_message(use, label, why)
                        yield ctx.finding(
                            ID,
                            SEVERITY,
                            use.file,
                            use.line,
                            message,
                            related=defined_at,
                            detail=f"{label} ({k.path}) {why}.",
                        )
                continue
            for u in k.undefined:
                key = (u.path, u.line, u.name)
                if (
                    key in reported
                    or repo.problem(u.path) is not None
                    or repo.raw_template_actions(u.path)
                ):
                    continue
                reported.add(key)
                use = _Use(
                    Ref(u.name, None, u.text, 0, 0), u.value, u.line, _where(u.field), u.path
                )
                severity, message, detail = _message(use, strict, version, label)
                yield ctx.finding(
                    ID,
                    severity,
                    u.path,
                    u.line,
                    message,
                    related=defined_at,
                    detail=f"{detail}\nApplied by {label} ({k.path}).",
                )


@dataclass
class _Use:
    ref: Ref
    value: str  # the whole scalar
    line: int
    where: str  # "image", "name" or ""
    file: str = ""


def _literal_message(use: _Use, label: str, why: str) -> str:
    ref = use.ref
    if use.where == "image":
        return (
            f"`{ref.text}` stays as written because {label} {why}: the image "
            f"`{_short(use.value)}` is invalid and Pods fail with InvalidImageName."
        )
    return (
        f"`{ref.text}` stays as written because {label} {why}: "
        f"`{_short(use.value)}` is not a valid Kubernetes name and the apply fails."
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(use: _Use, strict: bool | None, version: str, label: str) -> tuple[Severity, str, str]:
    """Severity, message and detail of an undefined variable."""
    ref = use.ref
    undefined = f"`${{{ref.name}}}` has no default and {label} does not define it"
    defines = (
        "Neither postBuild.substitute nor a substituteFrom source of the Kustomization "
        f"defines `{ref.name}`. Define it, give it a default (`${{{ref.name}:=value}}`) or "
        f"escape it as `$${{{ref.name}}}`."
    )
    if strict:
        return (
            SEVERITY,
            f"{undefined}: kustomize-controller fails the whole Kustomization on it.",
            f"{defines}\nkustomize-controller v1.9.0 and later substitute strictly; the "
            f"cluster runs {version}.",
        )
    becomes = substituted(use.value, {})
    later = (
        "On Flux v2.9 and later (kustomize-controller v1.9.0) the Kustomization fails on it "
        f"instead; the Flux version checked: {version}."
        if strict is None
        else f"The cluster runs {version}, before strict substitution."
    )
    if use.where == "image":
        reason = image_problem(becomes)
        if reason is not None:
            return (
                SEVERITY,
                f"{undefined}: Flux substitutes an empty string, so the image "
                f"`{_short(becomes)}` is invalid and Pods fail with InvalidImageName.",
                f"{defines}\nThe image becomes `{becomes}`: {reason}.\n{later}",
            )
    shown = becomes if "\n" not in becomes else becomes.splitlines()[0]
    result = f"so the value becomes `{_short(shown)}`" if shown.strip() else "so the value is empty"
    return (
        Severity.WARNING,
        f"{undefined}: Flux substitutes an empty string, {result}.",
        f"{defines}\n{later}",
    )
