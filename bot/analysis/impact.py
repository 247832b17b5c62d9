"""What a change does to each cluster: per cluster, the Flux Kustomizations whose
objects it adds, changes or removes.

Computed from the builds of both snapshots. An object is identified as on the cluster
(group, kind, namespace, name); it is "changed" when its built content differs (what a
patch, a generator or a substitution writes counts). A `namespace` or prefix change
moves objects (removed, then added).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.analysis.change import Change
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build import nodes as yn
from bot.analysis.snapshot.build.clusters import Applied, FluxKustomization
from bot.analysis.snapshot.build.problems import Unknown


@dataclass
class KustomizationImpact:
    label: str  # "Flux Kustomization flux-system/apps" or "raw_paths entry deploy"
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Changed objects now defined in another file (the diff's "moved"): among `changed`,
    # each with the file it came from.
    moved: dict[str, str] = field(default_factory=dict)
    # Why the head's build is not fully known (then nothing is said to be removed).
    unknown: list[str] = field(default_factory=list)
    # Why kustomize or Flux fails the head's build: nothing of it is applied (nothing
    # added, changed or removed), the cluster keeps what was applied before.
    fails: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "kustomization": self.label,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "moved_from": self.moved,
            "unknown": self.unknown,
            "fails": self.fails,
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


def _objects(kss: Iterable[FluxKustomization]) -> dict[str, dict[ObjectKey, Applied]]:
    return {k.label: {a.stable_key(): a for a in k.objects} for k in kss}


def _unknown(kss: Iterable[FluxKustomization]) -> dict[str, list[Unknown]]:
    out: dict[str, list[Unknown]] = {}
    for k in kss:
        reasons = list(k.unknown) + (list(k.built.unknown) if k.built is not None else [])
        if reasons or not k.followed:
            out[k.label] = reasons
    return out


def failures(ks: FluxKustomization | None) -> list[tuple[str, tuple[str, ...]]]:
    """Why kustomize or kustomize-controller fails this Kustomization's build, each with
    the files that make it fail: kustomize stops at its first error, and the controller
    then applies nothing and prunes nothing (the cluster keeps the last revision it
    applied)."""
    if ks is None:
        return []
    found = [(p.message, (p.path, *(r.path for r in p.related))) for p in ks.problems]
    reasons = list(ks.unknown) + (list(ks.built.unknown) if ks.built is not None else [])
    found += [(str(r), r.paths) for r in reasons if r.fails]
    return found


def left_behind(change: Change, cluster_name: str) -> dict[int, str | None]:
    """For a cluster of the base that the head no longer has (its directory deleted or
    renamed), each of its Flux Kustomizations (by id), with why it fails when its own
    `spec.path` is gone: the Kustomizations on the cluster still run with the spec they
    last had, and kustomize-controller stops such a one at `kustomization path not
    found` before it builds, applies or prunes; the others (None) keep reconciling their
    directories at the new revision. Empty when the head still has the cluster."""
    if any(c.name == cluster_name for c in change.head.build.clusters):
        return {}
    found: dict[int, str | None] = {}
    for cluster in change.base.build.clusters:
        if cluster.name != cluster_name:
            continue
        for ks in cluster.kustomizations:
            gone = (
                ks.kind == "Kustomization" and ks.directory and not change.head.is_dir(ks.directory)
            )
            found[id(ks)] = (
                f"spec.path `{ks.directory}` of {ks.label} does not exist" if gone else None
            )
    return found


def renamed_clusters(change: Change) -> dict[str, str]:
    """Clusters the change renames, base name -> head name: a cluster of the base that
    the head lacks, with the same root Flux Kustomizations as one cluster of the head
    that the base lacks (its root file moved: `kubernetes/flux/config/cluster.yaml` to
    `kubernetes/flux/cluster/`). On the cluster those roots are the same objects and
    reconcile as before, so what they apply is compared as one cluster's. Not when a
    root's own `spec.path` is gone: that root fails (`left_behind`)."""
    base_names = {c.name for c in change.base.build.clusters}
    head_names = {c.name for c in change.head.build.clusters}
    new = [c for c in change.head.build.clusters if c.name not in base_names]
    found: dict[str, str] = {}
    for cluster in change.base.build.clusters:
        if cluster.name in head_names or cluster.name in found:
            continue
        left = left_behind(change, cluster.name)
        roots = frozenset(k.label for k in cluster.kustomizations if k.parent is None)
        if not roots or any(left.get(id(k)) for k in cluster.kustomizations if k.parent is None):
            continue
        matches = [
            c.name
            for c in new
            if frozenset(k.label for k in c.kustomizations if k.parent is None) == roots
        ]
        if len(matches) == 1:
            found[cluster.name] = matches[0]
    return found


def still_applied(change: Change, applied: Applied) -> bool:
    """Whether an object of a Kustomization `left_behind` still reconciles is still in
    what it applies: built by some cluster of the head, or still written in its file
    (the head has no build of that Kustomization to ask)."""
    if applied.stable_key() in change.head.derived("impact-stable-keys", _stable_keys):
        return True
    if applied.res.doc < 0:  # generated: by a kustomization file that is still there
        return change.head.data(applied.path) is not None
    base_docs = change.base.documents(applied.path)
    if applied.res.doc >= len(base_docs):
        return False
    written = _written(base_docs[applied.res.doc])
    return any(_written(doc) == written for doc in change.head.documents(applied.path))


def _stable_keys(snapshot: Snapshot) -> set[tuple[str, str, str | None, str]]:
    return {a.stable_key() for c in snapshot.build.clusters for a in c.objects()}


def _written(doc: Any) -> tuple[str | None, ...]:
    return (
        yn.text(yn.get(doc, "apiVersion")),
        yn.text(yn.get(doc, "kind")),
        yn.text(yn.get(doc, "metadata", "name")),
        yn.text(yn.get(doc, "metadata", "namespace")),
    )


def _about(reason: Unknown, paths: set[str]) -> bool:
    """Whether a reason ("apps/x.yaml does not parse") is about one of `paths`: a
    reason of no file in particular (`spec.path` substituted) is about none."""
    return any(p in paths for p in reason.paths)


def _content(applied: Applied) -> Any:
    return yn.to_value(applied.node)


_Unrendered = dict[tuple[str, str], dict[str, str]]


def _unrendered(change: Change) -> tuple[_Unrendered, _Unrendered, set[str]]:
    """Per side, per cluster and Flux Kustomization label: the HelmReleases it applies
    that were to be rendered and were not (a render that fails leaves the release as it
    was; one not fully known says nothing), by object key -> why; and which of those
    reasons the change is responsible for (the release's inputs differ between the
    sides: a remote chart's release that nothing touched is not news)."""
    sides: list[_Unrendered] = []
    signatures = (change.base.build.helm.signatures, change.head.build.helm.signatures)
    changed = {
        k
        for k in signatures[0].keys() | signatures[1].keys()
        if signatures[0].get(k) != signatures[1].get(k)
    }
    news: set[str] = set()
    for snap, when in ((change.base, "at the base"), (change.head, "after the change")):
        found: _Unrendered = {}
        for r in snap.build.helm.releases:
            if r.status.value in ("rendered", "skipped", "unrendered"):
                continue
            why = r.failure.message if r.failure is not None else "; ".join(r.why)
            where = (r.cluster.name, r.release.owner.label)
            text = f"{r.label} is not rendered {when}: {why}"
            found.setdefault(where, {})[str(r.release.stable_key())] = text
            if r.key in changed:
                news.add(text)
        for e in snap.build.helm.elsewhere:
            where = (e.cluster.name, e.release.owner.label)
            text = f"{e.label} is not rendered {when}: {e.why}"
            found.setdefault(where, {})[str(e.release.stable_key())] = text
            if e.key in changed:
                news.add(text)
        sides.append(found)
    return sides[0], sides[1], news


def _by(applied: Applied) -> str | None:
    return str(applied.rendered_by.stable_key()) if applied.rendered_by is not None else None


@dataclass
class Pairing:
    """One Flux Kustomization of one cluster at base and head: the objects each side
    applies (by stable key), why the head's build is not fully known, and the
    HelmReleases not rendered on either side (by key -> why). The change summary and the
    diff read the same pairing."""

    cluster: str
    label: str
    old_ks: FluxKustomization | None
    new_ks: FluxKustomization | None
    old: dict[ObjectKey, Applied]
    new: dict[ObjectKey, Applied]
    # None when the head's build is fully known and followed.
    unknown: list[Unknown] | None
    was: dict[str, str]
    now: dict[str, str]
    # Why the head's build fails (then `new` is what the base applied: the cluster keeps
    # it), and of those the reasons the change is responsible for (the base's build did
    # not fail so, or the change touched a file of the failure): only those are said.
    fails: list[str] = field(default_factory=list)
    fails_new: list[str] = field(default_factory=list)

    def added(self) -> list[ObjectKey]:
        """What the head applies that the base did not (a HelmRelease's render on one
        side only, because the other side's render failed or is not known, is neither
        added nor removed: the release stays)."""
        return [k for k in self.new.keys() - self.old.keys() if _by(self.new[k]) not in self.was]

    def removed(self) -> list[ObjectKey]:
        if self.unknown is not None:
            return []
        return [k for k in self.old.keys() - self.new.keys() if _by(self.old[k]) not in self.now]

    _changed: list[ObjectKey] | None = field(default=None, repr=False)

    def changed(self) -> list[ObjectKey]:
        """What both sides apply with another content (computed once)."""
        if self._changed is None:
            self._changed = [
                key
                for key in sorted(self.new.keys() & self.old.keys(), key=str)
                if self.old[key].node is not self.new[key].node
                and _content(self.old[key]) != _content(self.new[key])
            ]
        return self._changed


@dataclass
class ClusterPairing:
    cluster: str
    pairs: list[Pairing]
    # Kustomizations that may apply a changed file flux-review cannot follow.
    unfollowed: list[str]
    # The files the change touches, at either side.
    touched: set[str]
    # Why HelmReleases are not rendered, for those whose inputs the change touched.
    news: set[str] = field(default_factory=set)


def pairings(change: Change) -> list[ClusterPairing]:
    """Per cluster of either side (by name; a renamed one by its head name), each Flux
    Kustomization of either side."""
    before = change.base.build.clusters
    after = change.head.build.clusters
    clusters: dict[str, tuple[list[FluxKustomization], list[FluxKustomization]]] = {}
    renamed = renamed_clusters(change)
    for c in before:
        clusters.setdefault(renamed.get(c.name, c.name), ([], []))[0].extend(c.kustomizations)
    for c in after:
        clusters.setdefault(c.name, ([], []))[1].extend(c.kustomizations)
    touched = set(change.files) | set(change.base_files)
    followed = {
        r.path for c in (*before, *after) for k in c.kustomizations if not k.shadow for r in k.reads
    }
    followed |= {k.path for c in (*before, *after) for k in c.kustomizations if k.res}
    # Files Flux could apply that no followed build holds.
    outside = {p for p in touched - followed if _manifest(p)}
    # A changed file may reach a cluster through a Kustomization flux-review cannot
    # follow only where that one may read it: an OCI artifact built from its path, a
    # path named by a variable. Not every unfollowed Kustomization for every change.
    unfollowed: dict[str, list[str]] = {}
    for c in (*before, *after):
        seen = unfollowed.setdefault(c.name, [])
        for ks in c.kustomizations:
            text = f"{ks.label} ({ks.unfollowed})"
            if text not in seen and any(ks.may_read(p) for p in outside):
                seen.append(text)
    unrendered_before, unrendered_after, news = _unrendered(change)
    result = []
    for name, (old_kss, new_kss) in sorted(clusters.items()):
        old, new = _objects(old_kss), _objects(new_kss)
        old_by = {k.label: k for k in old_kss}
        new_by = {k.label: k for k in new_kss}
        unknown = _unknown(new_kss)
        left = left_behind(change, name)
        pairs = []
        for label in sorted(set(old) | set(new)):
            fails = failures(new_by.get(label))
            was = old_by.get(label)
            if was is not None and id(was) in left:
                why = left[id(was)]
                fails = [(why, ())] if why is not None else []
                new[label] = {
                    k: a
                    for k, a in old.get(label, {}).items()
                    if why is not None or still_applied(change, a)
                }
            was_failing = {why for why, _ in failures(was)}
            pairs.append(
                Pairing(
                    name,
                    label,
                    old_by.get(label),
                    new_by.get(label),
                    old.get(label, {}),
                    # A build that fails applies nothing: what the cluster has stays.
                    old.get(label, {}) if fails else new.get(label, {}),
                    unknown.get(label),
                    unrendered_before.get((name, label), {}),
                    unrendered_after.get((name, label), {}),
                    fails=[why for why, _ in fails],
                    fails_new=[
                        why
                        for why, paths in fails
                        if why not in was_failing or touched.intersection(paths)
                    ],
                )
            )
        result.append(ClusterPairing(name, pairs, unfollowed.get(name, []), touched, news))
    return result


def cluster_impact(
    change: Change, paired: list[ClusterPairing] | None = None
) -> list[ClusterImpact]:
    """Per cluster of either side, what the change adds, changes and removes."""
    result = []
    for cp in paired if paired is not None else pairings(change):
        impacts = []
        for p in cp.pairs:
            # What cannot be known is said only where the change is the reason.
            k = KustomizationImpact(
                p.label, unknown=[str(r) for r in p.unknown or [] if _about(r, cp.touched)]
            )
            k.added = sorted(str(p.new[key].id) for key in p.added())
            k.removed = sorted(str(p.old[key].id) for key in p.removed())
            k.unknown += [
                why
                for why in {**p.was, **p.now}.values()
                if why in cp.news and why not in k.unknown
            ]
            k.changed = [str(p.new[key].id) for key in p.changed()]
            k.moved = {
                str(p.new[key].id): p.old[key].path
                for key in p.changed()
                if p.old[key].path != p.new[key].path
            }
            k.fails = list(p.fails_new)
            k.unknown = [why for why in k.unknown if why not in p.fails]
            if k.added or k.changed or k.removed or k.fails or (k.unknown and p.old_ks is not None):
                impacts.append(k)
        if impacts or cp.unfollowed:
            result.append(ClusterImpact(cp.cluster, impacts, cp.unfollowed))
    return result


def _manifest(path: str) -> bool:
    return path.endswith((".yaml", ".yml", ".json")) or posixpath.basename(path) == "Kustomization"
