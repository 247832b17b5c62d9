"""Object identity: as kustomize compares objects inside a build, and as they land on the
cluster."""

from __future__ import annotations

from typing import NamedTuple

# What kustomize v5.5 knows to be cluster-scoped (kyaml/openapi
# precomputedIsNamespaceScoped, from the Kubernetes 1.21 schema). Its namespace
# transformer sets a namespace on every other kind, and it compares the ids of these
# kinds without a namespace.
KUSTOMIZE_CLUSTER_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
        ("networking.k8s.io", "IngressClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("policy", "PodSecurityPolicy"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("", "ComponentStatus"),
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
    }
)
# Cluster-scoped kinds newer than that schema, and those of widely used operators: on
# the cluster they have no namespace, whatever kustomize wrote into metadata.
CLUSTER_SCOPED: frozenset[tuple[str, str]] = KUSTOMIZE_CLUSTER_SCOPED | {
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    ("networking.k8s.io", "IPAddress"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceSlice"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("cert-manager.io", "ClusterIssuer"),
    ("external-secrets.io", "ClusterSecretStore"),
    ("external-secrets.io", "ClusterExternalSecret"),
    ("external-secrets.io", "ClusterGenerator"),
    ("kyverno.io", "ClusterPolicy"),
    ("kyverno.io", "ClusterCleanupPolicy"),
    ("gateway.networking.k8s.io", "GatewayClass"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotContent"),
    ("metallb.io", "BGPPeer"),
    ("cilium.io", "CiliumClusterwideNetworkPolicy"),
    ("cilium.io", "CiliumLoadBalancerIPPool"),
    ("cilium.io", "CiliumBGPClusterConfig"),
    ("cilium.io", "CiliumBGPPeerConfig"),
    ("cilium.io", "CiliumBGPAdvertisement"),
    ("cilium.io", "CiliumL2AnnouncementPolicy"),
    ("monitoring.coreos.com", "ClusterScrapeConfig"),
}


def group_version(api_version: str) -> tuple[str, str]:
    group, sep, version = api_version.rpartition("/")
    return (group, version) if sep else ("", api_version)


class ObjectId(NamedTuple):
    """An object as it lands on the cluster: namespace None when cluster-scoped (or
    never set: Flux then refuses a namespaced object)."""

    group: str
    version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def gvk(self) -> str:
        return f"{self.api_version}/{self.kind}" if self.group else f"v1/{self.kind}"

    @property
    def templated(self) -> bool:
        return "${" in self.name or "${" in (self.namespace or "")

    def key(self) -> tuple[str, str, str | None, str]:
        """Identity on the cluster: an object served in two versions is one object."""
        return (self.group, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"
