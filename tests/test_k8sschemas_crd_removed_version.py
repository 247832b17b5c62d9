"""Custom resources against the repository's CRDs, removed apiVersions per minor (pluto's
data), and the cluster's Kubernetes minor read from the repository's files."""

from __future__ import annotations

from typing import Any

import pytest

from bot.analysis import k8sschemas
from bot.analysis.k8sschemas import ProblemKind, clusterversion, removed
from bot.analysis.k8sschemas.crd import CrdSchemas

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.acme.example"},
    "spec": {
        "group": "acme.example",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Namespaced",
        "versions": [
            {"name": "v1alpha1", "served": False, "storage": False},
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size", "mode"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1},
                                    "mode": {
                                        "type": "string",
                                        "enum": ["fast", "safe"],
                                        "default": "safe",
                                    },
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "name": {"type": "string", "pattern": "^\\p{L}+$"},
                                    "config": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                    "template": {
                                        "type": "object",
                                        "x-kubernetes-embedded-resource": True,
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                },
                            },
                            "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
                        },
                    }
                },
            },
        ],
    },
}


def widget(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "acme.example/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "apps"},
        "spec": {"size": 3, **spec},
    }


def test_a_custom_resource_is_validated_against_its_crd() -> None:
    crds = CrdSchemas([CRD])
    assert crds.defines("acme.example/v1", "Widget")
    assert not crds.defines("acme.example/v1alpha1", "Widget")  # not served
    good = widget(
        port="http",
        name="ÄÖ",  # the RE2 pattern is not checked rather than misread
        config={"any": {"thing": 1}},
        template={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}},
        labels={"a": "b"},
    )
    good["status"] = {"ok": "not judged"}
    assert crds.validate(good) == []
    assert crds.validate(widget(port=80)) == []


def test_what_the_api_server_refuses_of_a_custom_resource() -> None:
    crds = CrdSchemas([CRD])
    problems = crds.validate(widget(sise=3, mode="slow", labels={"a": 1}, port=1.5))
    found = {(p.path, p.kind) for p in problems}
    assert found == {
        (("spec", "sise"), ProblemKind.UNKNOWN_FIELD),
        (("spec", "mode"), ProblemKind.ENUM),
        (("spec", "labels", "a"), ProblemKind.WRONG_TYPE),
        (("spec", "port"), ProblemKind.WRONG_TYPE),
    }
    sise = next(p for p in problems if p.kind is ProblemKind.UNKNOWN_FIELD)
    assert sise.message == (
        "`.spec.sise` is not a field of Widget acme.example/v1 (did you mean `size`?)"
    )
    obj = widget()
    del obj["spec"]["size"]  # `mode` is required too, but its default fills it
    assert [(p.path, p.kind) for p in crds.validate(obj)] == [
        (("spec", "size"), ProblemKind.REQUIRED)
    ]
    assert [p.kind for p in crds.validate(widget(size=0))] == [ProblemKind.RANGE]


def test_metadata_of_a_custom_resource_is_object_meta() -> None:
    crds = CrdSchemas([CRD])
    obj = widget()
    obj["metadata"]["labels"] = {"app": "w"}
    assert crds.validate(obj) == []
    obj["metadata"]["lables"] = {"app": "w"}
    assert [p.path for p in crds.validate(obj)] == [("metadata", "lables")]


def test_kinds_no_crd_defines_are_not_judged() -> None:
    crds = CrdSchemas([CRD, {"kind": "ConfigMap"}])
    other = {"apiVersion": "other.example/v1", "kind": "Gadget", "spec": {"x": 1}}
    assert crds.validate(other) == []


# --- removed apiVersions --------------------------------------------------------------


def test_a_branch_of_any_of_checks_declared_fields_without_closing_the_object() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "example.com",
            "names": {"kind": "Route"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "host": {"type": "string"},
                                        "path": {"type": "string"},
                                    },
                                    "anyOf": [
                                        {"properties": {"host": {"minLength": 1}}},
                                        {"required": ["path"]},
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    schemas = CrdSchemas([crd])

    def route(**spec: str) -> dict[str, Any]:
        return {
            "apiVersion": "example.com/v1",
            "kind": "Route",
            "metadata": {"name": "r"},
            "spec": spec,
        }

    # `path` is declared by the object, not by the branch that checks `host`.
    assert schemas.validate(route(host="a", path="/")) == []
    assert [p.path for p in schemas.validate(route(host="a", extra="x"))] == [("spec", "extra")]
    # Neither branch holds: an empty host and no path.
    assert [p.path for p in schemas.validate(route(host=""))] == [("spec",)]


def test_a_removed_api_version_is_an_error_and_the_next_minor_s_removal_a_warning() -> None:
    api = removed.lookup("extensions/v1beta1", "Ingress")
    assert api is not None
    assert (api.deprecated_in, api.removed_in) == ((1, 14), (1, 22))
    assert api.replacement == "networking.k8s.io/v1"
    assert removed.removal("extensions/v1beta1", "Ingress", (1, 20)) is None
    upgrade = removed.removal("extensions/v1beta1", "Ingress", (1, 21))
    assert upgrade is not None and upgrade.removal is removed.Removal.REMOVED_NEXT
    gone = removed.removal("extensions/v1beta1", "Ingress", (1, 22))
    assert gone is not None and gone.removal is removed.Removal.REMOVED
    assert gone.message == (
        "Ingress extensions/v1beta1 was removed in Kubernetes 1.22: this cluster (1.22) "
        "refuses it; use networking.k8s.io/v1"
    )
    cron = removed.removal("batch/v1beta1", "CronJob", (1, 33))
    assert cron is not None and cron.api.replacement == "batch/v1"


def test_apis_still_served_and_other_projects_are_not_removals() -> None:
    assert removed.removal("apps/v1", "Deployment", (1, 37)) is None
    # pluto counts cert-manager's versions in cert-manager releases, not Kubernetes'
    assert removed.lookup("cert-manager.io/v1alpha2", "Certificate") is not None
    assert removed.removal("cert-manager.io/v1alpha2", "Certificate", (1, 37)) is None


def test_pluto_s_removals_agree_with_the_vendored_schemas_but_for_known_ones() -> None:
    """What pluto says a minor removed, that minor's schemas do not describe, except
    resource.k8s.io/v1beta1: pluto has it removed in 1.36, Kubernetes 1.36.0 and 1.37.0
    still describe it, and such a removal is not reported."""
    disputed = set()
    checked = 0
    for api in removed.deprecated_apis().values():
        if api.component != "k8s" or api.removed_in is None:
            continue
        for release in k8sschemas.releases():
            if release.minor >= api.removed_in:
                checked += 1
                if release.kind(api.api_version, api.kind) is not None:
                    disputed.add((api.api_version, api.kind))
                    assert removed.removal(api.api_version, api.kind, release.minor) is None
    assert checked > 300
    assert disputed == {
        ("resource.k8s.io/v1beta1", kind)
        for kind in ("ResourceSlice", "ResourceClaim", "DeviceClass", "ResourceClaimTemplate")
    }


# --- the cluster's version ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "doc", "minor"),
    [
        ("talos/talconfig.yaml", {"clusterName": "home", "kubernetesVersion": "v1.34.2"}, (1, 34)),
        ("talos/topf.yaml", {"talosVersion": "v1.13.9", "kubernetesVersion": "1.36.4"}, (1, 36)),
        (
            "talos/controlplane.yaml",
            {
                "version": "v1alpha1",
                "machine": {"kubelet": {"image": "ghcr.io/siderolabs/kubelet:v1.35.1"}},
                "cluster": {"apiServer": {"image": "registry.k8s.io/kube-apiserver:v1.35.1"}},
            },
            (1, 35),
        ),
        (
            "upgrade/plan.yaml",
            {
                "apiVersion": "upgrade.cattle.io/v1",
                "kind": "Plan",
                "spec": {"version": "v1.33.5+k3s1"},
            },
            (1, 33),
        ),
        (
            "upgrade/k8s.yaml",
            {
                "apiVersion": "tuppr.home-operations.com/v1alpha1",
                "kind": "KubernetesUpgrade",
                "spec": {"kubernetes": {"version": "v1.36.0"}},
            },
            (1, 36),
        ),
        (
            "kind.yaml",
            {
                "apiVersion": "kind.x-k8s.io/v1alpha4",
                "kind": "Cluster",
                "nodes": [{"role": "control-plane", "image": "kindest/node:v1.32.1@sha256:6afe"}],
            },
            (1, 32),
        ),
        (
            "capi.yaml",
            {
                "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
                "kind": "KubeadmControlPlane",
                "spec": {"version": "v1.31.4"},
            },
            (1, 31),
        ),
        (
            "eks.yaml",
            {
                "apiVersion": "eksctl.io/v1alpha5",
                "kind": "ClusterConfig",
                "metadata": {"version": 1.3},
            },
            (1, 3),
        ),
    ],
)
def test_the_cluster_version_is_read_from_what_the_repository_says(
    path: str, doc: dict[str, Any], minor: tuple[int, int]
) -> None:
    found = clusterversion.detect([(path, [doc])])
    assert found is not None
    assert (found.minor, found.path) == (minor, path)


def test_no_statement_of_a_version_and_substituted_ones_say_nothing() -> None:
    plan = {"apiVersion": "upgrade.cattle.io/v1", "kind": "Plan", "spec": {"version": "${K3S}"}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"version": "1.30"}}
    assert clusterversion.detect([("plan.yaml", [plan, deployment, None, "text"])]) is None
    assert clusterversion.detect([]) is None


def test_the_newest_of_several_statements_is_the_cluster_s() -> None:
    files: list[tuple[str, list[Any]]] = [
        ("talconfig.yaml", [{"talosVersion": "v1.12.6", "kubernetesVersion": "v1.33.1"}]),
        (
            "upgrade.yaml",
            [
                {
                    "apiVersion": "tuppr.home-operations.com/v1alpha1",
                    "kind": "KubernetesUpgrade",
                    "spec": {"kubernetes": {"version": "v1.34.2"}},
                }
            ],
        ),
    ]
    found = clusterversion.detect(files)
    assert found is not None
    assert found.describe() == ("Kubernetes 1.34, from the tuppr KubernetesUpgrade in upgrade.yaml")
    assert [f.label for f in clusterversion.detect_all(files)] == ["1.33", "1.34"]
