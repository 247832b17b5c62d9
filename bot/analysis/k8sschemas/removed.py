"""API versions that Kubernetes deprecates and removes, from pluto's `versions.yaml`
(vendored in pluto/, Apache-2.0, see pluto/NOTICE).

Kubernetes removes a deprecated apiVersion in a given minor: from then on the API server
answers an object of it with `no matches for kind "Ingress" in version
"extensions/v1beta1"`, and the Flux Kustomization applying it fails. `removal(api, kind,
minor)` says whether that has happened in the cluster's minor (REMOVED: an error) or
happens in the next one (REMOVED_NEXT: a warning before the upgrade), with the
apiVersion that replaces it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from bot.analysis.k8sschemas import Minor, parse_minor, releases


@dataclass(frozen=True)
class DeprecatedApi:
    api_version: str
    kind: str
    deprecated_in: Minor | None
    removed_in: Minor | None  # None: deprecated, no removal planned yet
    replacement: str | None  # the apiVersion to use instead
    replacement_available_in: Minor | None
    component: str  # "k8s", or the project whose CRDs these are ("cert-manager", "istio")


class Removal(enum.Enum):
    REMOVED = "removed"  # the cluster's minor no longer serves it
    REMOVED_NEXT = "removed in the next minor"


@dataclass(frozen=True)
class RemovalStatus:
    api: DeprecatedApi
    removal: Removal
    cluster: Minor

    @property
    def message(self) -> str:
        api = self.api
        removed = "{}.{}".format(*api.removed_in) if api.removed_in else "?"
        cluster = "{}.{}".format(*self.cluster)
        use = f"; use {api.replacement}" if api.replacement else ""
        if self.removal is Removal.REMOVED:
            return (
                f"{api.kind} {api.api_version} was removed in Kubernetes {removed}: this "
                f"cluster ({cluster}) refuses it{use}"
            )
        return (
            f"{api.kind} {api.api_version} is removed in Kubernetes {removed}, the next "
            f"minor after this cluster's {cluster}{use}"
        )


def _minor(value: object) -> Minor | None:
    return parse_minor(value) if isinstance(value, str) and value else None


@cache
def deprecated_apis() -> dict[tuple[str, str], DeprecatedApi]:
    """(apiVersion, kind) -> what pluto knows of it."""
    text = (
        resources.files("bot.analysis.k8sschemas")
        .joinpath("pluto", "versions.yaml")
        .read_text("utf-8")
    )
    found: dict[tuple[str, str], DeprecatedApi] = {}
    for entry in yaml.safe_load(text)["deprecated-versions"]:
        api = DeprecatedApi(
            api_version=str(entry["version"]),
            kind=str(entry["kind"] or ""),
            deprecated_in=_minor(entry.get("deprecated-in")),
            removed_in=_minor(entry.get("removed-in")),
            replacement=entry.get("replacement-api") or None,
            replacement_available_in=_minor(entry.get("replacement-available-in")),
            component=str(entry.get("component") or ""),
        )
        found[(api.api_version, api.kind)] = api
    return found


def lookup(api_version: str, kind: str) -> DeprecatedApi | None:
    return deprecated_apis().get((api_version, kind))


def removal(api_version: str, kind: str, cluster: Minor) -> RemovalStatus | None:
    """Whether a Kubernetes cluster of this minor no longer serves this built-in apiVersion
    and kind, or stops serving it in the next minor. pluto's entries for other projects
    (cert-manager, istio) count in their own versions, not Kubernetes', and are left out."""
    api = lookup(api_version, kind)
    if api is None or api.component != "k8s" or api.removed_in is None:
        return None
    if cluster >= api.removed_in:
        if still_described(api_version, kind, cluster):
            return None
        return RemovalStatus(api, Removal.REMOVED, cluster)
    if (cluster[0], cluster[1] + 1) == api.removed_in:
        return RemovalStatus(api, Removal.REMOVED_NEXT, cluster)
    return None


def still_described(api_version: str, kind: str, cluster: Minor) -> bool:
    """Whether Kubernetes' own OpenAPI description of this (vendored) minor still has the
    kind: then pluto's removal is not confirmed and is not reported. pluto says
    resource.k8s.io/v1beta1 went in 1.36, yet v1.36.0 and v1.37.0 still describe it."""
    for release in releases():
        if release.minor == cluster:
            return release.kind(api_version, kind) is not None
    return False
