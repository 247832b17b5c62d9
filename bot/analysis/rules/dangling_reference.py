"""`dependsOn`, `sourceRef` or `chartRef` naming an object that does not exist.

Flux resolves these references by kind, name and namespace (the referrer's namespace
when none is given). A reference to an object that is not there never becomes ready:
a Kustomization waits forever on a missing dependency, a HelmRelease reports
`HelmChart ... not found` / `source not found`.

Checked references: a Flux Kustomization's `spec.sourceRef` and `spec.dependsOn`; a
HelmRelease's `spec.chart.spec.sourceRef`, `spec.chartRef` and `spec.dependsOn`; a
HelmChart's `spec.sourceRef`.

Secrets and ConfigMaps (`imagePullSecrets`, `secretRef`, `secretKeyRef`, `configMapRef`,
volumes, HelmRelease `valuesFrom`, Kustomization `substituteFrom`; `optional: true`
references are skipped) usually come from outside git, so they are checked against the
change only: a Secret, SealedSecret, ExternalSecret target or generator that the base
defined and the head no longer does, while a manifest still refers to it by name (the
renamed pull secret that breaks every new cluster). References are read from raw
manifests (HelmRelease `values` included), from a chart's `values.yaml`, and from the
literal lines of chart templates (`imagePullSecrets: [{name: regcred}]`, `secretName`).

To stay precise in repositories that hold only part of a platform, the rule only checks
a kind that the repository defines at least once (a tenant repository whose
HelmRepositories live elsewhere is not flagged), skips sources named `flux-system`
(created by `flux bootstrap` or a Flux Operator `FluxInstance`), kinds of objects that a
chart template (unless, with the `helm` extra, every HelmRelease of that chart rendered:
then what it renders counts, as referrer and as target) or a Flux Operator
`ResourceSet` creates, objects defined in a file that does
not parse (reported by `yaml-syntax-error`), and namespaces that kustomize or Flux
rewrite (`namespace` in a kustomization file on the way, or `targetNamespace`). An object
renamed on the way (`namePrefix`, `nameSuffix`) is taken to match a reference that
contains its name, and one named with Flux variables (`${APP}-dragonfly` in a shared
component) any name the variables can make. When the object exists in another
namespace, the message says which.

When the repository has clusters (a `flux-system` Kustomization, or Flux Kustomizations
that nothing else applies), a reference in a file that no cluster applies (an
`.archive/` folder, an app directory its parent no longer lists) breaks nothing and is
not reported; and when everything the referrer's cluster applies is known, the object
must be among what that cluster applies, not merely somewhere in the repository.

Objects that exist on the cluster but not in the repository (a GitRepository created by
another repository's Flux, a HelmRepository applied by hand) are listed in the config's
`external_objects` (`Kind/namespace/name`, `Kind/*/name`, `Kind/name` for cluster-scoped
kinds); a reference to one of them is not dangling, and neither is a Secret or ConfigMap
listed there that the change removes from the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.analysis import secrets
from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.model import BOOTSTRAP_NAME, FluxObject
from bot.analysis.rules.base import ChangeContext, Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn

ID = "dangling-reference"
SEVERITY = Severity.ERROR


_METADATA_NAME = re.compile(
    r"^metadata:[ \t]*\r?\n(?:(?:[ \t]+.*|[ \t]*)\r?\n)*?[ \t]+name:[ \t]*['\"]?([^'\"\s#]*)",
    re.M,
)


def _unparsed(repo: Snapshot) -> set[tuple[str, str]]:
    """(kind, name) of Flux objects in files that do not parse, read from the text; the
    name is "" when it cannot be read. Such a file is reported by yaml-syntax-error; a
    reference to what it defines is not dangling on top of that."""
    found: set[tuple[str, str]] = set()
    for path in repo.paths:
        if not path.endswith((".yaml", ".yml", ".YAML", ".YML")):
            continue
        data = repo.data(path)
        if not data or b"toolkit.fluxcd.io" not in data or repo.problem(path) is None:
            continue
        for doc in ys.split_documents(repo.text(path) or ""):
            if doc.kind:
                m = _METADATA_NAME.search(doc.text)
                name = m.group(1) if m else ""
                found.add((doc.kind, "" if "{{" in name or "$" in name else name))
    return found


_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _substituted_match(pattern: str, name: str) -> bool:
    """Whether `name` can be what `pattern` becomes after Flux's post-build substitution
    (`${APP}-dragonfly` in a shared component is `immich-dragonfly` for one app)."""
    if "${" not in pattern:
        return False
    regex = ".+".join(re.escape(part) for part in _VARIABLE.split(pattern))
    return re.fullmatch(regex, name) is not None


def _plural(kind: str) -> str:
    if kind.endswith("y") and kind[-2:-1] not in ("a", "e", "i", "o", "u"):
        return kind[:-1] + "ies"
    return kind + "s"


@dataclass(frozen=True, slots=True)
class _Object:
    """A Flux object as a cluster (or, without clusters, a standalone build) gets it."""

    kind: str
    group: str
    name: str
    namespace: str | None
    path: str
    node: ys.Node
    previous: tuple[str, ...] = ()  # names it had before a prefix, suffix or hash


def _refs(obj: _Object) -> Iterator[tuple[str, ys.Node | None, str]]:
    spec = ys.get(obj.node, "spec")
    if obj.kind == "Kustomization" and obj.group == "kustomize.toolkit.fluxcd.io":
        yield ("spec.sourceRef", ys.get(spec, "sourceRef"), "GitRepository")
        for d in ys.items(ys.get(spec, "dependsOn")):
            yield ("spec.dependsOn", d, "Kustomization")
    elif obj.kind == "HelmRelease" and obj.group == "helm.toolkit.fluxcd.io":
        yield (
            "spec.chart.spec.sourceRef",
            ys.get(spec, "chart", "spec", "sourceRef"),
            "HelmRepository",
        )
        yield ("spec.chartRef", ys.get(spec, "chartRef"), "OCIRepository")
        for d in ys.items(ys.get(spec, "dependsOn")):
            yield ("spec.dependsOn", d, "HelmRelease")
    elif obj.kind == "HelmChart" and obj.group == "source.toolkit.fluxcd.io":
        yield ("spec.sourceRef", ys.get(spec, "sourceRef"), "HelmRepository")


def _scopes(repo: Snapshot) -> list[tuple[str | None, bool, list[_Object]]]:
    """(cluster name, whether all it applies is known, its Flux objects). Without
    clusters, one scope: what every standalone build makes, and the Flux objects of files
    no build reads, as written."""
    build = repo.build
    scopes: list[tuple[str | None, bool, list[_Object]]] = []
    if build.has_clusters:
        for cluster in build.clusters:
            objects = [
                _Object(
                    a.id.kind,
                    a.id.group,
                    a.id.name,
                    a.id.namespace,
                    a.path,
                    a.node,
                    tuple(n for n, _ in a.res.prev if n != a.id.name),
                )
                for a in cluster.objects()
                if "toolkit.fluxcd.io" in a.id.group
            ]
            scopes.append((cluster.name, cluster.known and not cluster.unfollowed, objects))
        return scopes
    objects = []
    read: set[str] = set()
    for built in build.standalone:
        read.update(r.path for r in built.reads)
        for res in built.resources:
            if "toolkit.fluxcd.io" in res.group:
                objects.append(
                    _Object(res.kind, res.group, res.name, res.namespace, res.path, res.node)
                )
    for obj in repo.flux_objects:
        if obj.path not in read:
            objects.append(
                _Object(obj.kind, obj.group, obj.name, obj.namespace, obj.path, obj.node)
            )
    scopes.append((None, True, objects))
    return scopes


def _templated_kinds(repo: Snapshot) -> set[str]:
    """Flux kinds a chart template creates under names not known here: those of templates
    whose renders are not all known (with the `helm` extra, a chart every HelmRelease of
    which rendered makes objects the clusters hold)."""
    known = repo.build.helm.known_templates
    if not known:
        return repo.templated_kinds
    return {k for k, paths in repo.flux.templated_kind_paths.items() if not paths <= known}


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    unparsed = _unparsed(repo)
    templated = _templated_kinds(repo)
    generated, generated_kinds = repo.generated_objects
    written: dict[str, list[FluxObject]] = {}
    for o in repo.flux_objects:
        written.setdefault(o.kind, []).append(o)
    reported: set[tuple[str, int, str]] = set()
    for cluster, complete, objects in _scopes(repo):
        index: dict[tuple[str, str], list[_Object]] = {}
        fuzzy: dict[str, list[_Object]] = {}
        for item in objects:
            index.setdefault((item.kind, item.name), []).append(item)
            if "${" in item.name:
                fuzzy.setdefault(item.kind, []).append(item)

        def exists(
            kind: str,
            name: str,
            namespace: str | None,
            index: dict[tuple[str, str], list[_Object]] = index,
            fuzzy: dict[str, list[_Object]] = fuzzy,
        ) -> bool:
            if (kind, name) in generated:
                return True
            for candidate in index.get((kind, name), []) + [
                c for c in fuzzy.get(kind, ()) if _substituted_match(c.name, name)
            ]:
                ns = candidate.namespace
                if namespace is None or ns is None or ns == namespace or "${" in ns:
                    return True
            return False

        for obj in objects:
            for field, ref, default_kind in _refs(obj):
                if ref is None:
                    continue
                name_node = ys.get(ref, "name")
                name = ys.scalar(name_node)
                if name is None or name_node is None or "${" in name:
                    continue
                kind = ys.scalar(ys.get(ref, "kind")) or default_kind
                explicit_ns = ys.scalar(ys.get(ref, "namespace"))
                if explicit_ns and "${" in explicit_ns:
                    continue
                namespace = explicit_ns or obj.namespace
                if name == BOOTSTRAP_NAME and kind != "HelmRelease":
                    continue  # created by `flux bootstrap` or the Flux Operator
                if (
                    kind not in written
                    or kind in templated
                    or kind in generated_kinds
                    or kind == "ExternalArtifact"
                ):
                    continue
                if repo.config.has_external(kind, namespace, name) or exists(kind, name, namespace):
                    continue
                if (kind, name) in unparsed or (kind, "") in unparsed:
                    continue
                where = f" in namespace {namespace}" if namespace else ""
                path, line, _ = yn.origin_of(name_node, obj.path)
                in_scope = sorted({o.namespace or "?" for o in index.get((kind, name), [])})
                in_repo = [
                    o for o in written[kind] if o.name == name or _substituted_match(o.name, name)
                ]
                renamed = [o for o in objects if o.kind == kind and name in o.previous]
                ref_text = f"{field} of {obj.kind} {obj.name} names {kind} {name}{where}"
                related: list[Location] = []
                if renamed:
                    message = (
                        f"{ref_text}, which kustomize renames to {renamed[0].name}, so it never "
                        f"becomes ready; name it {renamed[0].name}."
                    )
                    detail = (
                        "A `namePrefix` or `nameSuffix` renames the object on the way, and "
                        "kustomize does not update Flux's references to it."
                    )
                elif in_scope and "?" not in in_scope:
                    message = (
                        f"{ref_text}, which does not exist there, so it never becomes ready; "
                        f"set `namespace: {in_scope[0]}` in the reference."
                    )
                    detail = f"{kind} {name} is in namespace {', '.join(in_scope)}."
                elif in_scope:
                    continue
                elif cluster is not None and in_repo:
                    if not complete:
                        continue  # what the cluster applies beyond what is followed may hold it
                    message = (
                        f"{ref_text}, which cluster {cluster} does not apply, so it never "
                        "becomes ready there."
                    )
                    detail = (
                        f"{kind} {name} is in {in_repo[0].path}, but none of the cluster's "
                        "Kustomizations includes that file."
                    )
                    related.append(
                        Location(in_repo[0].path, in_repo[0].line, message=f"{kind} {name}")
                    )
                else:
                    others = sorted({o.name for o in written[kind]})
                    message = (
                        f"{ref_text}, which does not exist in the repository, so it never "
                        "becomes ready."
                    )
                    detail = (
                        f"Known {_plural(kind)}: {', '.join(others)}." if len(others) <= 20 else ""
                    )
                if (path, line, message) in reported:
                    continue
                reported.add((path, line, message))
                yield ctx.finding(ID, SEVERITY, path, line, message, related=related, detail=detail)


def check_change(ctx: ChangeContext) -> Iterator[Finding]:
    """Secrets and ConfigMaps are mostly created outside git, so only a change proves a
    reference wrong: the object was defined in the repository at the base and is gone."""
    # Only a file the change touched can have taken a definition away.
    before = secrets.providers(ctx.base, ctx.change.base_files)
    if not any(before.values()):
        return
    now = secrets.providers(ctx.head)
    gone = {kind: {n for n in names if n not in now[kind]} for kind, names in before.items()}
    if not any(gone.values()):
        return
    build = ctx.head.build
    for ref in secrets.references(ctx.head):
        if not build.applied(ref.path) and ctx.head.chart_of(ref.path) is None:
            continue  # a raw file no cluster applies
        if ref.name not in gone[ref.kind]:
            continue
        if secrets.still_defined(ctx.head, before[ref.kind][ref.name], ref.name):
            continue
        if ctx.head.config.has_external(ref.kind, None, ref.name):
            continue
        yield ctx.finding(
            ID,
            SEVERITY,
            ref.path,
            ref.line,
            f"`{ref.field}` names {ref.kind} {ref.name}, which this change removes from the "
            "repository: what needs it fails on every cluster that does not have it yet.",
            detail=(
                f"{ref.kind} {ref.name} was defined in {before[ref.kind][ref.name]} at the "
                "base. Pods and Flux objects that need it fail where it is missing."
            ),
        )
