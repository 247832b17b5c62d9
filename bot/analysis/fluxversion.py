"""Which Flux release the cluster that applies a file runs, and how we know.

Read from the repository, per `flux-system` tree (the directory holding the bootstrap
files and the cluster directory its `flux-system` Kustomization syncs):
- `gotk-components.yaml`: the `# Flux Version: vX.Y.Z` header `flux install` and
  `flux bootstrap` write (`# Flux version:` before Flux 2), else the
  `app.kubernetes.io/version` labels; a release older than the oldest vendored schemas
  is judged by those;
- a Flux Operator `FluxInstance`: `spec.distribution.version`, a semver range such as
  `2.4.x` (the operator installs the newest release that satisfies it).
A HelmRelease of the community `flux2` chart is not used: the chart's version does not
say which Flux release it installs, and no chart index is vendored to map it.

Else the config's `flux_version`, else the newest vendored release.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.analysis import fluxschemas, semver
from bot.analysis import yamlscan as ys
from bot.analysis.fluxschemas import FluxRelease
from bot.analysis.model import BOOTSTRAP_NAME

if TYPE_CHECKING:
    from bot.analysis.snapshot import Snapshot
    from bot.analysis.snapshot.build.clusters import Cluster, EntryPoint

# `flux install` and `flux bootstrap` write `# Flux Version: v2.x.y`; Flux 0.x wrote
# `# Flux version: v0.16.1`.
_HEADER = re.compile(rb"^#\s*Flux Version:\s*v?(\d+)\.(\d+)\.(\d+)", re.M | re.I)
_LABEL = re.compile(rb"app\.kubernetes\.io/version:\s*['\"]?v?(\d+)\.(\d+)\.(\d+)")
_COMPONENTS = "gotk-components.yaml"


@dataclass(frozen=True)
class FluxVersion:
    release: FluxRelease  # the vendored schemas to validate against
    version: str  # as the repository or config says it: "v2.4.0", "2.4.x"
    reason: str  # "from clusters/prod/flux-system/gotk-components.yaml"
    detected: bool  # read from the repository or config, not assumed

    @property
    def minor(self) -> tuple[int, int]:
        return self.release.minor

    def describe(self) -> str:
        return f"Flux {self.release.label} ({self.reason})"


def _minor_release(major: int, minor: int, version: str, reason: str) -> FluxVersion:
    release = fluxschemas.release_for((major, minor))
    if (major, minor) > release.minor:
        reason += f"; newer than the newest vendored schemas, {release.label}"
    elif (major, minor) < release.minor:
        # A CRD version only gains fields from one release to the next, so what an older
        # Flux accepted in an apiVersion the oldest vendored release still serves, that
        # release's schema accepts too.
        reason += f"; older than the oldest vendored schemas, {release.label}, used instead"
    return FluxVersion(release, version, reason, True)


def _from_components(repo: Snapshot, path: str) -> FluxVersion | None:
    data = repo.data(path) or b""
    match = _HEADER.search(data[:4096])
    how = "the `# Flux Version:` header of"
    if match is None:
        versions = {(int(a), int(b), int(c)) for a, b, c in _LABEL.findall(data)}
        # Controllers carry their own version in the same label on older installs; the
        # Flux release is the one the namespace and the CRDs carry, the highest of them
        # only when all agree on a 2.x.
        versions = {v for v in versions if v[0] == 2}
        if len(versions) != 1:
            return None
        found = versions.pop()
        how = "the app.kubernetes.io/version labels of"
    else:
        found = (int(match[1]), int(match[2]), int(match[3]))
    text = "v{}.{}.{}".format(*found)
    return _minor_release(found[0], found[1], text, f"{text}, from {how} {path}")


def _from_instance(repo: Snapshot, path: str) -> FluxVersion | None:
    for doc in repo.documents(path):
        if ys.scalar(ys.get(doc, "kind")) != "FluxInstance":
            continue
        wanted = ys.scalar(ys.get(doc, "spec", "distribution", "version"))
        if not wanted:
            continue
        best: FluxRelease | None = None
        for release in fluxschemas.releases():
            if any(semver.matches(wanted, p) for p in release.patches):
                best = release
        reason = f"FluxInstance spec.distribution.version {wanted!r} in {path}"
        if best is None:
            m = re.match(r"^v?(\d+)\.(\d+)", wanted)
            if m is None:
                continue
            return _minor_release(int(m[1]), int(m[2]), wanted, reason)
        return FluxVersion(best, wanted, reason, True)
    return None


def _from_helm_release(repo: Snapshot, path: str) -> FluxVersion | None:
    """`values.instance.distribution.version` of a HelmRelease of Flux Operator's
    flux-instance chart (the chart's default is `2.x`)."""
    for doc in repo.documents(path):
        if ys.scalar(ys.get(doc, "kind")) != "HelmRelease":
            continue
        instance = ys.get(doc, "spec", "values", "instance")
        if instance is None:
            continue
        wanted = ys.scalar(ys.get(instance, "distribution", "version"))
        reason = (
            f"values.instance.distribution.version {wanted!r} of the flux-instance "
            f"HelmRelease in {path}"
        )
        if not wanted:
            wanted, reason = "2.x", f"the flux-instance chart's default distribution 2.x ({path})"
        return _matching(wanted, reason)
    return None


def _matching(wanted: str, reason: str) -> FluxVersion | None:
    best: FluxRelease | None = None
    for release in fluxschemas.releases():
        if any(semver.matches(wanted, p) for p in release.patches):
            best = release
    if best is None:
        m = re.match(r"^v?(\d+)\.(\d+)", wanted)
        if m is None:
            return None
        return _minor_release(int(m[1]), int(m[2]), wanted, reason)
    return FluxVersion(best, wanted, reason, True)


_FLUX_ARTIFACT = re.compile(
    r"(?:ghcr\.io/fluxcd/flux-manifests|github\.com/fluxcd/flux2)(?:\.git)?/?$"
)


def _from_pinned_source(repo: Snapshot, objects: list[tuple[str, ys.Node]]) -> FluxVersion | None:
    """An OCIRepository of `oci://ghcr.io/fluxcd/flux-manifests` or a GitRepository of
    fluxcd/flux2 pinned to a release tag: Flux installed from its own manifests."""
    for path, node in objects:
        kind = ys.scalar(ys.get(node, "kind"))
        if kind not in ("OCIRepository", "GitRepository"):
            continue
        url = ys.scalar(ys.get(node, "spec", "url")) or ""
        if not _FLUX_ARTIFACT.search(url):
            continue
        tag = ys.scalar(ys.get(node, "spec", "ref", "tag"))
        m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)$", tag or "")
        if m is not None:
            return _minor_release(
                int(m[1]), int(m[2]), tag or "", f"{tag}, the {kind} of Flux's manifests in {path}"
            )
    return None


def entry_version(repo: Snapshot, entry: EntryPoint) -> FluxVersion | None:
    """What the entry point of a cluster says about the Flux it runs, without building it:
    bootstrap's gotk-components.yaml, a FluxInstance's or the flux-instance chart's
    distribution version."""
    if entry.kind == "bootstrap":
        directory = entry.name if entry.name != "." else ""
        components = posixpath.join(directory, BOOTSTRAP_NAME, _COMPONENTS)
        if components in repo.path_set:
            return _from_components(repo, components)
        return None
    if entry.kind == "FluxInstance":
        return _from_instance(repo, entry.path)
    if entry.kind == "flux-instance HelmRelease":
        return _from_helm_release(repo, entry.path)
    return None


def _configured(repo: Snapshot) -> FluxVersion | None:
    configured = repo.config.flux_version
    if configured is None:
        return None
    return _minor_release(
        configured[0],
        configured[1],
        "v{}.{}".format(*configured),
        "from flux_version in the flux-review config",
    )


def cluster_version(repo: Snapshot, cluster: Cluster) -> FluxVersion | None:
    """The Flux release a cluster runs, from its entry point, else from what it applies
    (a FluxInstance, the flux-instance chart, Flux's own manifests pinned to a tag), else
    the config's flux_version; None when nothing says."""
    found = entry_version(repo, cluster.entry)
    if found is not None:
        return found
    for obj in cluster.objects():
        if obj.id.kind == "FluxInstance":
            wanted = ys.scalar(ys.get(obj.node, "spec", "distribution", "version"))
            if wanted:
                found = _matching(
                    wanted, f"FluxInstance spec.distribution.version {wanted!r} in {obj.path}"
                )
        elif (
            obj.id.kind == "HelmRelease"
            and ys.get(obj.node, "spec", "values", "instance", "distribution") is not None
        ):
            found = _from_helm_release(repo, obj.path)
        if found is not None:
            return found
    found = _from_pinned_source(repo, [(o.path, o.node) for o in cluster.objects()])
    if found is not None:
        return found
    # A FluxInstance kept in the cluster's directory although nothing lists it (the
    # operator was installed with it by hand or by a bootstrap script).
    directory = cluster.entry.name if cluster.entry.name != "." else ""
    for path in repo.paths:
        if (not directory or path.startswith(directory + "/")) and path.endswith((".yaml", ".yml")):
            data = repo.data(path)
            if data and b"FluxInstance" in data and b"fluxcd.controlplane.io" in data:
                found = _from_instance(repo, path)
                if found is not None:
                    return found
    return _configured(repo)


def strict_substitution(repo: Snapshot, entry: EntryPoint) -> bool | None:
    """Whether the cluster's kustomize-controller fails on an undefined variable
    (v1.9.0, Flux v2.9, made StrictPostBuildSubstitutions the default); None when nothing
    says which Flux it runs."""
    version = entry_version(repo, entry) or _configured(repo)
    if version is None:
        return None
    controller = version.release.controller("kustomize-controller")
    return None if controller is None else controller >= (1, 9, 0)


def _newest(why: str) -> FluxVersion:
    newest = fluxschemas.newest()
    return FluxVersion(newest, newest.release, why, False)


def flux_version(repo: Snapshot, path: str | None = None) -> FluxVersion:
    """The Flux release the cluster applying `path` runs (the oldest one when clusters
    of several releases apply it: that is where it breaks)."""
    memo = repo.facts.flux_versions
    key = path or ""
    if key in memo:
        return memo[key]
    clusters = repo.build.clusters_of(path) if path is not None else repo.build.clusters
    versions = [v for c in clusters if (v := cluster_version(repo, c)) is not None]
    result: FluxVersion
    if versions:
        result = min(versions, key=lambda v: v.minor)
    else:
        configured = _configured(repo)
        if configured is not None:
            result = configured
        else:
            known = [v for c in repo.build.clusters if (v := cluster_version(repo, c)) is not None]
            # Clusters of several releases, none known to apply this file: the newest,
            # so that nothing a cluster here accepts is reported.
            result = (
                max(known, key=lambda v: v.minor)
                if known
                else _newest("the newest vendored; nothing says which Flux the clusters run")
            )
    memo[key] = result
    return result
