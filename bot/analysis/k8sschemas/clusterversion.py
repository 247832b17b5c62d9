"""The Kubernetes minor a cluster runs, as the files of its repository say it.

A pure function over `(path, documents)` pairs (each document parsed YAML). What it reads:
- talhelper's `talconfig.yaml` and topf's config: `kubernetesVersion` beside `talosVersion`
  or `clusterName`; kubeadm's ClusterConfiguration: `kubernetesVersion`;
- a Talos machine config (or a patch of one): the tag of `machine.kubelet.image` or
  `cluster.apiServer.image`;
- system-upgrade-controller's `Plan` (k3s, RKE2): `spec.version` (`v1.31.2+k3s1`);
  tuppr's `KubernetesUpgrade`: `spec.kubernetes.version`;
- a kind `Cluster`: the tag of a node's `image` (`kindest/node:v1.31.0`);
- Cluster API: `KubeadmControlPlane`/`TalosControlPlane` `spec.version`, a
  `MachineDeployment`'s `spec.template.spec.version`, a `Cluster`'s `spec.topology.version`;
  Rancher's provisioning `Cluster`: `spec.kubernetesVersion`; eksctl's `ClusterConfig`:
  `metadata.version`; k0sctl's `Cluster`: `spec.k0s.version`;
- Ansible variables of the k3s roles (`k3s_release_version` of xanmanning.k3s, which the
  k8s-at-home cluster template installs with; `k3s_version` of k3s-io/k3s-ansible), in a
  `group_vars`/`host_vars` file: `v1.20.7+k3s1`.
A value still holding `${` (substituted later) says nothing. Flux's HelmRelease has no
field for the cluster's version (none of its CRD versions declares one), so it is not read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.analysis.k8sschemas import Minor, parse_minor

_IMAGE_TAG = re.compile(
    r"(?:^|/)(?:kubelet|kube-apiserver|node):v?(\d+)\.(\d+)(?:\.\d+)?(?:[@+-]|$)"
)


# The k3s installers' Ansible roles name the release they install with these variables.
_ANSIBLE_K3S = ("k3s_release_version", "k3s_version")


@dataclass(frozen=True)
class FoundVersion:
    minor: Minor
    version: str  # as written: "v1.31.2+k3s1"
    path: str
    how: str  # "kubernetesVersion of a talhelper/topf config"

    @property
    def label(self) -> str:
        return "{}.{}".format(*self.minor)

    def describe(self) -> str:
        return f"Kubernetes {self.label}, from the {self.how} in {self.path}"


def _get(doc: Any, *keys: str | int) -> Any:
    for key in keys:
        if isinstance(key, int):
            if not isinstance(doc, list) or len(doc) <= key:
                return None
        elif not isinstance(doc, Mapping):
            return None
        doc = doc[key] if isinstance(key, int) else doc.get(key)
    return doc


def _version(value: Any) -> tuple[Minor, str] | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # eksctl's `version: 1.31` read as a number
    if not isinstance(value, str) or "${" in value:
        return None
    minor = parse_minor(value)
    return (minor, value) if minor is not None and minor[0] == 1 else None


def _image(value: Any) -> tuple[Minor, str] | None:
    if not isinstance(value, str) or "${" in value:
        return None
    m = _IMAGE_TAG.search(value)
    if m is None:
        return None
    return (int(m[1]), int(m[2])), value


def _group(doc: Mapping[str, Any]) -> str:
    api = doc.get("apiVersion")
    return api.rpartition("/")[0] if isinstance(api, str) else ""


def _in_document(doc: Mapping[str, Any]) -> Iterator[tuple[tuple[Minor, str] | None, str]]:
    kind = doc.get("kind")
    group = _group(doc)
    if "kubernetesVersion" in doc and (
        "talosVersion" in doc or "clusterName" in doc or kind == "ClusterConfiguration"
    ):
        what = "kubeadm ClusterConfiguration" if kind else "talhelper/topf config"
        yield _version(doc["kubernetesVersion"]), f"kubernetesVersion of the {what}"
    if isinstance(doc.get("machine"), Mapping) or isinstance(doc.get("cluster"), Mapping):
        yield _image(_get(doc, "machine", "kubelet", "image")), "Talos machine config's kubelet"
        yield (
            _image(_get(doc, "cluster", "apiServer", "image")),
            "Talos machine config's kube-apiserver",
        )
    if kind is None:
        for key in _ANSIBLE_K3S:
            if key in doc:
                yield _version(doc[key]), f"Ansible variable {key}"
    if group == "upgrade.cattle.io" and kind == "Plan":
        yield _version(_get(doc, "spec", "version")), "system-upgrade-controller Plan"
    elif group.startswith("tuppr.") and kind == "KubernetesUpgrade":
        yield _version(_get(doc, "spec", "kubernetes", "version")), "tuppr KubernetesUpgrade"
    elif group == "kind.x-k8s.io" and kind == "Cluster":
        for node in _get(doc, "nodes") or ():
            yield _image(_get(node, "image")), "kind node image"
    elif group == "controlplane.cluster.x-k8s.io":
        yield _version(_get(doc, "spec", "version")), f"Cluster API {kind}"
    elif group == "cluster.x-k8s.io" and kind == "MachineDeployment":
        yield _version(_get(doc, "spec", "template", "spec", "version")), "MachineDeployment"
    elif group == "cluster.x-k8s.io" and kind == "Cluster":
        yield _version(_get(doc, "spec", "topology", "version")), "Cluster API topology"
    elif group == "provisioning.cattle.io" and kind == "Cluster":
        yield _version(_get(doc, "spec", "kubernetesVersion")), "Rancher Cluster"
    elif group == "eksctl.io" and kind == "ClusterConfig":
        yield _version(_get(doc, "metadata", "version")), "eksctl ClusterConfig"
    elif group == "k0sctl.k0sproject.io" and kind == "Cluster":
        yield _version(_get(doc, "spec", "k0s", "version")), "k0sctl Cluster"


def detect_all(files: Iterable[tuple[str, Iterable[Any]]]) -> list[FoundVersion]:
    """Every statement of a Kubernetes version in these files, in their order."""
    found = []
    for path, documents in files:
        for doc in documents:
            if not isinstance(doc, Mapping):
                continue
            for result, how in _in_document(doc):
                if result is not None:
                    found.append(FoundVersion(result[0], result[1], path, how))
    return found


def detect(files: Iterable[tuple[str, Iterable[Any]]]) -> FoundVersion | None:
    """The cluster's minor as these files say it; None when none does. Where they say
    several (a staging cluster a minor ahead), the newest: an apiVersion's removal breaks
    the newest cluster first. Pass one cluster's files to get its own."""
    found = detect_all(files)
    return max(found, key=lambda f: f.minor) if found else None
