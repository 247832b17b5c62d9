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
(created by `flux bootstrap` or a Flux Operator `FluxInstance`), objects that a chart
template or a Flux Operator `ResourceSet` creates, objects defined in a file that does
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

from bot.analysis import secrets
from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.inventory import Applied, Cluster, Inventory, inventory_of
from bot.analysis.model import BOOTSTRAP_NAME, FluxObject, ReadKind
from bot.analysis.rules.base import ChangeContext, Context
from bot.analysis.snapshot import Snapshot

ID = "dangling-reference"
SEVERITY = Severity.ERROR


def _placement(repo: Snapshot, obj: FluxObject) -> tuple[str | None, bool]:
    """Where an object ends up: its namespace, or None when kustomize or Flux may rewrite
    it (a kustomization file with `namespace` or a Flux Kustomization with
    `targetNamespace` anywhere on the way from the object's file up to the cluster); and
    whether its name may be rewritten on the way (`namePrefix` / `nameSuffix`)."""
    namespace: str | None = obj.namespace
    renamed = False
    seen = {obj.path}
    stack = [obj.path]
    while stack:
        current = stack.pop()
        for consumer in repo.consumers.get(current, ()):
            if consumer.how is not ReadKind.RAW:
                continue
            if consumer.reader.is_flux_root:
                if consumer.owner is not None:
                    spec = ys.get(consumer.owner.node, "spec")
                    if ys.get(spec, "targetNamespace"):
                        namespace = None
                    if ys.get(spec, "namePrefix") or ys.get(spec, "nameSuffix"):
                        renamed = True
                continue
            kfile = repo.kustomizations.get(consumer.source)
            if kfile is None:
                continue
            if kfile.namespace:
                namespace = None
            renamed = renamed or kfile.renames
            if kfile.path not in seen:
                seen.add(kfile.path)
                stack.append(kfile.path)
    return namespace, renamed


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


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    by_kind: dict[str, list[FluxObject]] = {}
    for obj in repo.flux_objects:
        by_kind.setdefault(obj.kind, []).append(obj)
    placements = {id(o): _placement(repo, o) for o in repo.flux_objects}
    namespaces = {key: namespace for key, (namespace, _) in placements.items()}
    renamed = {key for key, (_, affixed) in placements.items() if affixed}
    unparsed = _unparsed(repo)

    generated, generated_kinds = repo.generated_objects

    # Candidates by (kind, name), and per kind those whose final name is not the one
    # written (renamed on the way, or named with Flux variables): few, checked one by one.
    by_name: dict[tuple[str, str], list[FluxObject]] = {}
    fuzzy: dict[str, list[FluxObject]] = {}
    for obj in repo.flux_objects:
        by_name.setdefault((obj.kind, obj.name), []).append(obj)
        if id(obj) in renamed or "${" in obj.name:
            fuzzy.setdefault(obj.kind, []).append(obj)

    def exists(kind: str, name: str, namespace: str | None) -> bool:
        if (kind, name) in generated:
            return True
        candidates = by_name.get((kind, name), []) + [
            c
            for c in fuzzy.get(kind, ())
            if (id(c) in renamed and c.name in name) or _substituted_match(c.name, name)
        ]
        for candidate in candidates:
            ns = namespaces[id(candidate)]
            if namespace is None or ns is None or ns == namespace or "${" in ns:
                return True
        return False

    inv = inventory_of(repo)
    placed = _placed(repo, inv)

    for obj in repo.flux_objects:
        if not inv.applied(obj.path):
            continue  # no cluster applies this file: nothing breaks
        own_ns = namespaces[id(obj)]
        refs: list[tuple[str, ys.Node | None, str]] = []
        spec = ys.get(obj.node, "spec")
        if obj.kind == "Kustomization" and obj.group == "kustomize.toolkit.fluxcd.io":
            refs.append(("spec.sourceRef", ys.get(spec, "sourceRef"), "GitRepository"))
            refs += [
                ("spec.dependsOn", d, "Kustomization") for d in ys.items(ys.get(spec, "dependsOn"))
            ]
        elif obj.kind == "HelmRelease":
            refs.append(
                (
                    "spec.chart.spec.sourceRef",
                    ys.get(spec, "chart", "spec", "sourceRef"),
                    "HelmRepository",
                )
            )
            refs.append(("spec.chartRef", ys.get(spec, "chartRef"), "OCIRepository"))
            refs += [
                ("spec.dependsOn", d, "HelmRelease") for d in ys.items(ys.get(spec, "dependsOn"))
            ]
        elif obj.kind == "HelmChart":
            refs.append(("spec.sourceRef", ys.get(spec, "sourceRef"), "HelmRepository"))
        for field, ref, default_kind in refs:
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
            namespace = explicit_ns or own_ns
            if name == BOOTSTRAP_NAME and kind != "HelmRelease":
                continue
            if (
                kind not in by_kind
                or kind in repo.templated_kinds
                or kind in generated_kinds
                or kind == "ExternalArtifact"
            ):
                continue
            if repo.config.has_external(kind, namespace, name):
                continue
            if exists(kind, name, namespace):
                missing = None
                if (kind, name) not in generated and not any(
                    (id(c) in renamed and c.name in name) or _substituted_match(c.name, name)
                    for c in fuzzy.get(kind, ())
                ):
                    # Only an object written with its literal name is looked for in the
                    # cluster: a renamed or substituted one may be any of its builds'.
                    missing = _missing_in_cluster(
                        placed.get(id(obj.node), []), kind, name, explicit_ns
                    )
                if missing is not None:
                    cluster, where = missing
                    yield ctx.finding(
                        ID,
                        SEVERITY,
                        obj.path,
                        ys.line_of(name_node),
                        f"{field} of {obj.kind} {obj.name} names {kind} {name}{where}, which "
                        f"cluster {cluster.name} does not apply (it is in the repository, "
                        "but none of that cluster's Kustomizations includes it), so it "
                        "never becomes ready there.",
                    )
                continue
            if (kind, name) in unparsed or (kind, "") in unparsed:
                continue
            where = f" in namespace {namespace}" if namespace else ""
            elsewhere = sorted(
                {
                    namespaces[id(o)] or "?"
                    for o in by_kind[kind]
                    if o.name == name and namespaces[id(o)] != namespace
                }
            )
            if elsewhere and "?" not in elsewhere:
                hint = (
                    f" {kind} {name} is in namespace {', '.join(elsewhere)}: set "
                    f"`namespace: {elsewhere[0]}` in the reference."
                )
            else:
                others = sorted({o.name for o in by_kind[kind]})
                hint = ""
                if len(others) <= 8:
                    hint = f" Known {_plural(kind)}: {', '.join(others)}."
            yield ctx.finding(
                ID,
                SEVERITY,
                obj.path,
                ys.line_of(name_node),
                f"{field} of {obj.kind} {obj.name} names {kind} {name}{where}, which does not "
                f"exist in the repository, so it never becomes ready.{hint}",
            )


def _placed(repo: Snapshot, inv: Inventory) -> dict[int, list[tuple[Cluster, Applied]]]:
    """Flux objects (by node) -> the known clusters that apply them, and as what."""
    placed: dict[int, list[tuple[Cluster, Applied]]] = {}
    if not inv.has_roots:
        return placed
    for cluster in inv.clusters:
        if not cluster.known:
            continue
        for _, applied in cluster.objects():
            if "toolkit.fluxcd.io" not in applied.id.group:
                continue
            node = applied.node(repo)
            if node is not None:
                placed.setdefault(id(node), []).append((cluster, applied))
    return placed


def _missing_in_cluster(
    placements: list[tuple[Cluster, Applied]], kind: str, name: str, explicit_ns: str | None
) -> tuple[Cluster, str] | None:
    """The first known cluster of the referrer that does not apply the referenced object
    (in the namespace the reference resolves to there), with a " in namespace x"."""
    for cluster, referrer in placements:
        namespace = explicit_ns or referrer.id.namespace
        found = False
        for _, candidate in cluster.objects():
            cid = candidate.id
            if cid.kind != kind or "toolkit.fluxcd.io" not in cid.group:
                continue
            if cid.templated or (
                (cid.name == name or name in candidate.previous_names)
                and (namespace is None or cid.namespace in (None, namespace))
            ):
                found = True
                break
        if not found:
            return cluster, f" in namespace {namespace}" if namespace else ""
    return None


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
    inv = inventory_of(ctx.head)
    for ref in secrets.references(ctx.head):
        if not inv.applied(ref.path) and ctx.head.chart_of(ref.path) is None:
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
            f"repository (it was defined in {before[ref.kind][ref.name]}): Pods and Flux "
            f"objects that need it fail on every cluster that does not already have it.",
        )
