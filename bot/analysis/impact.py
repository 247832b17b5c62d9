"""What a change does to each cluster: per cluster, the Flux Kustomizations whose
objects it adds, changes or removes.

Computed from the inventories of both snapshots. An object is identified as on the
cluster (group, kind, namespace, name); it is "changed" when the document that defines
it (or the line of the generator entry that makes it) differs. A `namespace` or prefix
change moves objects (removed, then added); what a patch changes inside an object is
not followed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.analysis.change import Change
from bot.analysis.inventory import Applied, FluxBuild, inventory_of
from bot.analysis.snapshot import Snapshot


@dataclass
class KustomizationImpact:
    label: str  # "Flux Kustomization flux-system/apps" or "raw_paths entry deploy"
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Why the head's build is not fully known (then nothing is said to be removed).
    unknown: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kustomization": self.label,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unknown": self.unknown,
        }


@dataclass
class ClusterImpact:
    cluster: str  # the root Flux Kustomization's path, e.g. "clusters/prod"
    kustomizations: list[KustomizationImpact] = field(default_factory=list)
    # When the change touches files no followed build holds: what the cluster applies
    # that flux-review cannot follow (a Flux Kustomization of an ExternalArtifact, say),
    # through which those files may reach it.
    unfollowed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "kustomizations": [k.to_json() for k in self.kustomizations],
            "unfollowed": self.unfollowed,
        }


ObjectKey = tuple[str, str, str | None, str]


def _objects(builds: Iterable[FluxBuild]) -> dict[str, dict[ObjectKey, Applied]]:
    return {fb.label: {a.id.key(): a for a in fb.build.objects} for fb in builds}


def _unknown(builds: Iterable[FluxBuild]) -> dict[str, list[str]]:
    return {fb.label: list(dict.fromkeys(fb.build.unknown)) for fb in builds if not fb.known}


def _about(reason: str, paths: set[str]) -> bool:
    """Whether an inventory's reason ("apps/x.yaml does not parse") is about one of
    `paths`: a reason of no file in particular (`spec.path` substituted) is about none."""
    return any(p in paths for p in getattr(reason, "paths", ()))


def _text(repo: Snapshot, applied: Applied) -> str | None:
    """The text of the document (or generator entry) that defines the object."""
    node = applied.node(repo)
    text = repo.text(applied.path)
    if text is None:
        return None
    if node is None:
        # A generated object: the line of its generator entry stands for it.
        lines = text.split("\n")
        return lines[applied.line - 1] if 0 < applied.line <= len(lines) else None
    return text[node.start_mark.index : node.end_mark.index]


def cluster_impact(change: Change) -> list[ClusterImpact]:
    """Per cluster of either side, what the change adds, changes and removes."""
    before = inventory_of(change.base)
    after = inventory_of(change.head)
    clusters: dict[str, tuple[list[FluxBuild], list[FluxBuild]]] = {}
    for c in before.clusters:
        clusters.setdefault(c.name, ([], []))[0].extend(c.builds)
    for c in after.clusters:
        clusters.setdefault(c.name, ([], []))[1].extend(c.builds)
    touched = set(change.files) | set(change.base_files)
    followed = set().union(*(c.files for c in (*before.clusters, *after.clusters)))
    # Files Flux could apply that no followed build holds: they may reach a cluster
    # through what flux-review cannot follow.
    outside = {p for p in touched - followed if _manifest(p)}
    unfollowed: dict[str, list[str]] = {}
    for c in (*before.clusters, *after.clusters):
        unfollowed.setdefault(c.name, [])
        unfollowed[c.name] += [u for u in c.unfollowed if u not in unfollowed[c.name]]
    result = []
    for name, (old_builds, new_builds) in sorted(clusters.items()):
        old, new = _objects(old_builds), _objects(new_builds)
        unknown = _unknown(new_builds)
        impacts = []
        for label in sorted(set(old) | set(new)):
            o, n = old.get(label, {}), new.get(label, {})
            # What cannot be known is said only where the change is the reason.
            k = KustomizationImpact(
                label, unknown=[r for r in unknown.get(label, []) if _about(r, touched)]
            )
            k.added = sorted(str(n[key].id) for key in n.keys() - o.keys())
            if label not in unknown:
                k.removed = sorted(str(o[key].id) for key in o.keys() - n.keys())
            for key in sorted(n.keys() & o.keys(), key=str):
                a, b = o[key], n[key]
                if (a.path in touched or b.path in touched) and _text(change.base, a) != _text(
                    change.head, b
                ):
                    k.changed.append(str(b.id))
            if k.added or k.changed or k.removed or (k.unknown and label in old):
                impacts.append(k)
        maybe = unfollowed.get(name, []) if outside else []
        if impacts or maybe:
            result.append(ClusterImpact(name, impacts, maybe))
    return result


def _manifest(path: str) -> bool:
    return path.endswith((".yaml", ".yml", ".json")) or posixpath.basename(path) == "Kustomization"
