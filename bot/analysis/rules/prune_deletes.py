"""Objects that a change removes from a Flux Kustomization with `prune: true`: Flux
deletes them from the cluster.

kustomize-controller keeps an inventory of what each Kustomization applied. With
`spec.prune: true`, an object that leaves the build (its file deleted, or no longer
listed by a kustomization file; the kustomization file deleted; the whole Flux
Kustomization deleted, whose finalizer then deletes everything it applied) is deleted
from the cluster at the next reconciliation. For most objects that is the point of the
change; for some it loses data:

- `warning` for a Namespace (everything in it goes), a PersistentVolumeClaim or a
  PersistentVolume (the volume's data, under the usual `Delete` reclaim policy), a
  StatefulSet (and, with a `persistentVolumeClaimRetentionPolicy` of `Delete`, its
  volumes), and a CustomResourceDefinition (every custom resource of that kind, on the
  whole cluster);
- `notice` for every other object.

Nothing is reported for an object that moves to another Flux Kustomization of the same
cluster (Flux hands it over instead of deleting it), for one annotated
`kustomize.toolkit.fluxcd.io/prune: disabled` (Flux leaves it on the cluster), or for a
Kustomization without `prune: true`; nor when what the cluster applies after the change
cannot be known from the repository (a file that does not parse, a remote base); nor for
what a HelmRelease renders (with the `helm` extra: Helm, not the prune, removes it); nor
for what a Kustomization applied whose `spec.path` the change deletes or renames, with
the cluster's directory (on the cluster it fails with `kustomization path not found`
before it prunes anything; its children keep their last spec and still prune what
leaves their own directories); a cluster whose root file moves to another directory
keeps its root Kustomizations, and what they apply is compared as one cluster's. The
finding sits on the object's line in the base
(the left side of the diff) and names the Flux Kustomization and the cluster; the
kustomization entry the change removed, when there is one, is a related location. Only
reported when a change is reviewed.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Location, Severity, Side
from bot.analysis.impact import left_behind, renamed_clusters, still_applied
from bot.analysis.rules.base import ChangeContext
from bot.analysis.snapshot.build.clusters import Applied
from bot.analysis.snapshot.build.ids import ObjectId

ID = "prune-deletes"
SEVERITY = Severity.NOTICE

_PRUNE_ANNOTATION = "kustomize.toolkit.fluxcd.io/prune"
# What goes with the object when Flux deletes it.
_LOSES = {
    ("", "Namespace"): "and every object in the namespace with it",
    ("", "PersistentVolumeClaim"): "and the volume's data with it",
    ("", "PersistentVolume"): "and, with the usual Delete reclaim policy, its data",
    ("apps", "StatefulSet"): "with its Pods, and its volumes under a Delete retention policy",
    ("apiextensions.k8s.io", "CustomResourceDefinition"): (
        "and every custom resource of that kind on the cluster with it"
    ),
}


def _prune_disabled(applied: Applied) -> bool:
    meta = ys.get(applied.node, "metadata")
    return any(
        (ys.scalar(ys.get(meta, section, _PRUNE_ANNOTATION)) or "").lower() == "disabled"
        for section in ("annotations", "labels")
    )


def _removed_entries(ctx: ChangeContext, path: str) -> list[Location]:
    """The kustomization entries of the base that listed `path` and that the change
    deleted: the line a reviewer sees go."""
    found = []
    for kfile, k in ctx.base.kustomizations.items():
        if kfile not in ctx.change.base_files:
            continue
        for entry in k.entries:
            t = entry.target
            if (
                t is not None
                and (path == t or path.startswith(t + "/"))
                and ctx.change.touched(Location(kfile, entry.line, Side.BASE))
            ):
                found.append(
                    Location(kfile, entry.line, Side.BASE, "the entry this change removes")
                )
    return found


def check_change(ctx: ChangeContext) -> Iterator[Finding]:
    head_clusters: dict[str, set[tuple[str, str, str | None, str]]] = {}
    unknown: set[str] = set()
    for c in ctx.head.build.clusters:
        keys = head_clusters.setdefault(c.name, set())
        keys.update(a.stable_key() for a in c.objects())
        if not c.known:
            unknown.add(c.name)
    renamed = renamed_clusters(ctx.change)
    for cluster in ctx.base.build.clusters:
        name = renamed.get(cluster.name, cluster.name)
        if name in unknown:
            # Part of what the cluster applies after the change cannot be known (a file
            # that does not parse, a remote base): an object may well still be there.
            continue
        still = head_clusters.get(name, set())
        left = left_behind(ctx.change, cluster.name) if name == cluster.name else {}
        for fb in cluster.kustomizations:
            if not fb.prune or not fb.known or left.get(id(fb)) is not None:
                continue
            causes = []
            if fb.res is not None and ctx.change.touched(Location(fb.path, fb.line, Side.BASE)):
                causes.append(
                    Location(
                        fb.path,
                        fb.line,
                        Side.BASE,
                        "the Flux Kustomization this change edits or deletes",
                    )
                )
            for applied in fb.objects:
                i: ObjectId = applied.id
                if (
                    i.templated
                    or applied.stable_key() in still
                    or (id(fb) in left and still_applied(ctx.change, applied))
                    or _prune_disabled(applied)
                    # Helm, not Flux's prune, removes what a release no longer renders.
                    or applied.rendered_by is not None
                ):
                    continue
                loses = _LOSES.get((i.group, i.kind))
                severity = Severity.WARNING if loses is not None else Severity.NOTICE
                what = (
                    f"Flux deletes it from the cluster {loses}"
                    if loses
                    else ("Flux deletes it from the cluster")
                )
                yield ctx.finding(
                    ID,
                    severity,
                    applied.path,
                    applied.line,
                    f"This change removes {i} from {fb.label}, which prunes: {what}.",
                    detail=f"On cluster {cluster.name}; {fb.label} has `prune: true`.",
                    side=Side.BASE,
                    related=[*_removed_entries(ctx, applied.path), *causes],
                    key=(cluster.name, fb.label, *map(str, i.key())),
                )
