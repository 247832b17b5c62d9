"""`dependsOn`, `sourceRef` or `chartRef` naming an object that does not exist.

Flux resolves these references by kind, name and namespace (the referrer's namespace
when none is given). A reference to an object that is not there never becomes ready:
a Kustomization waits forever on a missing dependency, a HelmRelease reports
`HelmChart ... not found` / `source not found`.

Checked references: a Flux Kustomization's `spec.sourceRef` and `spec.dependsOn`; a
HelmRelease's `spec.chart.spec.sourceRef`, `spec.chartRef` and `spec.dependsOn`; a
HelmChart's `spec.sourceRef`.

To stay precise in repositories that hold only part of a platform, the rule only checks
a kind that the repository defines at least once (a tenant repository whose
HelmRepositories live elsewhere is not flagged), skips sources named `flux-system`
(created by `flux bootstrap`), objects that a chart template creates, and namespaces
that kustomize or Flux rewrite.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import BOOTSTRAP_NAME, FluxObject, Repository
from bot.analysis.rules.base import Context

ID = "dangling-reference"
SEVERITY = Severity.ERROR


def _namespace(repo: Repository, obj: FluxObject) -> str | None:
    """The namespace an object ends up in, or None when kustomize or Flux may rewrite it."""
    for consumer in repo.consumers.get(obj.path, ()):
        if consumer.description.startswith("Flux Kustomization"):
            for k in repo.objects_of("Kustomization"):
                if k.path == consumer.source and ys.get(k.node, "spec", "targetNamespace"):
                    return None
        kfile = repo.kustomizations.get(consumer.source)
        if kfile is not None and kfile.namespace:
            return None
    return obj.namespace


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    by_kind: dict[str, list[FluxObject]] = {}
    for obj in repo.flux_objects:
        by_kind.setdefault(obj.kind, []).append(obj)
    namespaces = {id(o): _namespace(repo, o) for o in repo.flux_objects}

    def exists(kind: str, name: str, namespace: str | None) -> bool:
        for candidate in by_kind.get(kind, ()):
            if candidate.name != name:
                continue
            ns = namespaces[id(candidate)]
            if namespace is None or ns is None or ns == namespace:
                return True
        return False

    for obj in repo.flux_objects:
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
            if kind not in by_kind or kind in repo.templated_kinds or kind == "ExternalArtifact":
                continue
            if exists(kind, name, namespace):
                continue
            where = f" in namespace {namespace}" if namespace else ""
            others = sorted({o.name for o in by_kind[kind]})
            hint = ""
            if len(others) <= 8:
                hint = f" Known {kind}s: {', '.join(others)}."
            yield ctx.finding(
                ID,
                SEVERITY,
                obj.path,
                ys.line_of(name_node),
                f"{field} of {obj.kind} {obj.name} names {kind} {name}{where}, which does not "
                f"exist in the repository, so it never becomes ready.{hint}",
            )
