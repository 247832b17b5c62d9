"""Which Flux release the cluster that applies a file runs, and how we know.

Read from the repository, per `flux-system` tree (the directory holding the bootstrap
files and the cluster directory its `flux-system` Kustomization syncs):
- `gotk-components.yaml`: the `# Flux Version: vX.Y.Z` header `flux install` and
  `flux bootstrap` write, else the `app.kubernetes.io/version` labels;
- a Flux Operator `FluxInstance`: `spec.distribution.version`, a semver range such as
  `2.4.x` (the operator installs the newest release that satisfies it).
A HelmRelease of the community `flux2` chart is not used: the chart's version does not
say which Flux release it installs, and no chart index is vendored to map it.

Else the config's `flux_version`, else the newest vendored release.
"""

from __future__ import annotations

import posixpath
import re
import weakref
from dataclasses import dataclass

from bot.analysis import fluxschemas, semver
from bot.analysis import yamlscan as ys
from bot.analysis.fluxschemas import FluxRelease
from bot.analysis.model import BOOTSTRAP_NAME, secure_join
from bot.analysis.snapshot import Snapshot

_HEADER = re.compile(rb"^#\s*Flux Version:\s*v?(\d+)\.(\d+)\.(\d+)", re.M)
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


@dataclass(frozen=True)
class _Tree:
    dirs: tuple[str, ...]  # directories whose files this version governs
    version: FluxVersion


def _minor_release(major: int, minor: int, version: str, reason: str) -> FluxVersion:
    release = fluxschemas.release_for((major, minor))
    if (major, minor) > release.minor:
        reason += f"; newer than the newest vendored schemas, {release.label}"
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


def _sync_paths(repo: Snapshot, directory: str) -> list[str]:
    """spec.path of the `flux-system` Kustomizations defined in `directory`."""
    found = []
    for obj in repo.objects_of("Kustomization"):
        if obj.name == BOOTSTRAP_NAME and posixpath.dirname(obj.path) == directory:
            found.append(secure_join(ys.scalar(ys.get(obj.node, "spec", "path")) or ""))
    return found


def _trees(repo: Snapshot) -> list[_Tree]:
    trees = []
    for path in repo.paths:
        if not path.endswith((".yaml", ".yml")):
            continue
        version: FluxVersion | None = None
        if posixpath.basename(path) == _COMPONENTS:
            version = _from_components(repo, path)
        else:
            data = repo.data(path)
            if data and b"FluxInstance" in data and b"fluxcd.controlplane.io" in data:
                version = _from_instance(repo, path)
        if version is None:
            continue
        directory = posixpath.dirname(path)
        dirs = {directory, *_sync_paths(repo, directory)}
        if posixpath.basename(directory) == BOOTSTRAP_NAME:
            dirs.add(posixpath.dirname(directory))
        trees.append(_Tree(tuple(sorted(dirs)), version))
    return trees


_CACHE: weakref.WeakKeyDictionary[Snapshot, tuple[list[_Tree], dict[str, FluxVersion]]] = (
    weakref.WeakKeyDictionary()
)


def _state(repo: Snapshot) -> tuple[list[_Tree], dict[str, FluxVersion]]:
    state = _CACHE.get(repo)
    if state is None:
        state = (_trees(repo), {})
        _CACHE[repo] = state
    return state


def _under(path: str, directory: str) -> bool:
    return not directory or path.startswith(directory + "/")


def _appliers(repo: Snapshot, path: str) -> set[str]:
    """Files defining the Flux Kustomizations whose build includes `path`."""
    return {obj.path for obj in repo.flux_kustomizations_applying(path)}


def _tree_versions(
    repo: Snapshot, trees: list[_Tree], path: str, depth: int = 0
) -> list[FluxVersion]:
    direct = [t.version for t in trees if any(_under(path, d) for d in t.dirs)]
    if direct or depth > 8:
        return direct
    found: list[FluxVersion] = []
    for source in sorted(_appliers(repo, path)):
        if source != path:
            found.extend(_tree_versions(repo, trees, source, depth + 1))
    return found


def flux_version(repo: Snapshot, path: str | None = None) -> FluxVersion:
    """The Flux release the cluster applying `path` runs (the oldest one when clusters
    of several releases apply it: that is where it breaks)."""
    trees, memo = _state(repo)
    key = path or ""
    if key in memo:
        return memo[key]
    distinct = {t.version.minor: t.version for t in trees}
    result: FluxVersion | None = None
    if len(distinct) == 1:
        result = next(iter(distinct.values()))
    elif distinct and path is not None:
        found = _tree_versions(repo, trees, path)
        if found:
            result = min(found, key=lambda v: v.minor)
    if result is None:
        configured = repo.config.flux_version
        if configured is not None:
            result = _minor_release(
                configured[0],
                configured[1],
                "v{}.{}".format(*configured),
                "from flux_version in the flux-review config",
            )
        elif distinct:
            # Clusters of several releases, none known to apply this file: the newest,
            # so that nothing a cluster here accepts is reported.
            result = max(distinct.values(), key=lambda v: v.minor)
        else:
            newest = fluxschemas.newest()
            result = FluxVersion(
                newest,
                newest.release,
                "the newest vendored release: the repository has no gotk-components.yaml "
                "or FluxInstance and the config no flux_version",
                False,
            )
    memo[key] = result
    return result
