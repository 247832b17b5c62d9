"""What the API server's validation code refuses that the OpenAPI description does not say.

Kubernetes validates built-in objects with hand-written Go code, not with their OpenAPI
schema, and the published description carries neither value ranges nor enums (its `enum`s
were taken out again in kubernetes/kubernetes#109178). This table holds the checks of that
code that a manifest's author gets wrong and that hold whatever else the object says: each
entry is a definition and a field, the constraint in JSON Schema terms (`minimum`,
`maximum`, `enum`, `pattern`, `maxLength`; for the items of a list under `items`), and the
file of kubernetes/kubernetes (v1.33 to v1.37) that enforces it.

A string enum accepts "" too: the API server defaults most empty enum fields before it
validates (Container.imagePullPolicy "" becomes IfNotPresent or Always), and where it does
not, "" is refused as a missing value, which this table does not claim to know. A range
starts at 0 where 0 means "not set" (hostPort, nodePort).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CORE = "pkg/apis/core/validation/validation.go"
APPS = "pkg/apis/apps/validation/validation.go"
BATCH = "pkg/apis/batch/validation/validation.go"
NETWORKING = "pkg/apis/networking/validation/validation.go"
AUTOSCALING = "pkg/apis/autoscaling/validation/validation.go"
RBAC = "pkg/apis/rbac/validation/validation.go"
POLICY = "pkg/apis/policy/validation/validation.go"
STORAGE = "pkg/apis/storage/validation/validation.go"
SCHEDULING = "pkg/apis/scheduling/validation/validation.go"
ADMISSION = "pkg/apis/admissionregistration/validation/validation.go"
APIEXTENSIONS = (
    "staging/src/k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation/validation.go"
)
META = "staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation/validation.go"
LABELS = "staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go"

PORT = {"minimum": 1, "maximum": 65535}  # validation.IsValidPortNum
PORT_OR_UNSET = {"minimum": 0, "maximum": 65535}
NON_NEGATIVE = {"minimum": 0}  # ValidateNonnegativeField
POSITIVE = {"minimum": 1}
FILE_MODE = {"minimum": 0, "maximum": 0o777}  # "between 0 and 0777 (octal), both inclusive"
PROTOCOLS = ("TCP", "UDP", "SCTP")
WEIGHT = {"minimum": 1, "maximum": 100}


def _enum(*values: str) -> dict[str, Any]:
    return {"enum": ["", *values]}


@dataclass(frozen=True)
class Check:
    definition: str  # "io.k8s.api.core.v1.ContainerPort"
    field: str
    constraint: dict[str, Any]
    source: str  # the kubernetes/kubernetes file that enforces it
    items: bool = False  # the constraint is on each item of a list


_C = "io.k8s.api.core.v1."
_A = "io.k8s.api.apps.v1."
_B = "io.k8s.api.batch.v1."
_N = "io.k8s.api.networking.v1."
_H = "io.k8s.api.autoscaling.v2."
_R = "io.k8s.api.rbac.v1."
_W = "io.k8s.api.admissionregistration.v1."

CHECKS: tuple[Check, ...] = (
    # Pods and their templates
    Check(_C + "ContainerPort", "containerPort", PORT, CORE),
    Check(_C + "ContainerPort", "hostPort", PORT_OR_UNSET, CORE),
    Check(_C + "ContainerPort", "protocol", _enum(*PROTOCOLS), CORE),
    Check(_C + "Container", "imagePullPolicy", _enum("Always", "IfNotPresent", "Never"), CORE),
    Check(
        _C + "Container", "terminationMessagePolicy", _enum("File", "FallbackToLogsOnError"), CORE
    ),
    Check(
        _C + "EphemeralContainer", "imagePullPolicy", _enum("Always", "IfNotPresent", "Never"), CORE
    ),
    Check(_C + "PodSpec", "restartPolicy", _enum("Always", "OnFailure", "Never"), CORE),
    Check(
        _C + "PodSpec",
        "dnsPolicy",
        _enum("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
        CORE,
    ),
    Check(_C + "PodSpec", "terminationGracePeriodSeconds", NON_NEGATIVE, CORE),
    Check(_C + "PodSpec", "activeDeadlineSeconds", POSITIVE, CORE),
    Check(_C + "Probe", "initialDelaySeconds", NON_NEGATIVE, CORE),
    Check(_C + "Probe", "timeoutSeconds", NON_NEGATIVE, CORE),
    Check(_C + "Probe", "periodSeconds", NON_NEGATIVE, CORE),
    Check(_C + "Probe", "successThreshold", NON_NEGATIVE, CORE),
    Check(_C + "Probe", "failureThreshold", NON_NEGATIVE, CORE),
    Check(_C + "HTTPGetAction", "port", PORT, CORE),  # a number; a name is an IANA_SVC_NAME
    Check(_C + "HTTPGetAction", "scheme", _enum("HTTP", "HTTPS"), CORE),
    Check(_C + "TCPSocketAction", "port", PORT, CORE),
    Check(_C + "GRPCAction", "port", PORT, CORE),
    Check(_C + "Toleration", "operator", _enum("Exists", "Equal"), CORE),
    Check(_C + "Toleration", "effect", _enum("NoSchedule", "PreferNoSchedule", "NoExecute"), CORE),
    Check(
        _C + "NodeSelectorRequirement",
        "operator",
        _enum("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"),
        CORE,
    ),
    Check(_C + "WeightedPodAffinityTerm", "weight", WEIGHT, CORE),
    Check(_C + "PreferredSchedulingTerm", "weight", WEIGHT, CORE),
    Check(_C + "TopologySpreadConstraint", "maxSkew", POSITIVE, CORE),
    Check(
        _C + "TopologySpreadConstraint",
        "whenUnsatisfiable",
        _enum("DoNotSchedule", "ScheduleAnyway"),
        CORE,
    ),
    Check(_C + "TopologySpreadConstraint", "nodeAffinityPolicy", _enum("Honor", "Ignore"), CORE),
    Check(_C + "TopologySpreadConstraint", "nodeTaintsPolicy", _enum("Honor", "Ignore"), CORE),
    Check(
        _C + "PodSecurityContext", "fsGroupChangePolicy", _enum("OnRootMismatch", "Always"), CORE
    ),
    Check(_C + "SeccompProfile", "type", _enum("RuntimeDefault", "Unconfined", "Localhost"), CORE),
    Check(_C + "AppArmorProfile", "type", _enum("RuntimeDefault", "Unconfined", "Localhost"), CORE),
    Check(
        _C + "VolumeMount",
        "mountPropagation",
        _enum("None", "HostToContainer", "Bidirectional"),
        CORE,
    ),
    Check(
        _C + "HostPathVolumeSource",
        "type",
        _enum(
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        ),
        CORE,
    ),
    Check(_C + "SecretVolumeSource", "defaultMode", FILE_MODE, CORE),
    Check(_C + "ConfigMapVolumeSource", "defaultMode", FILE_MODE, CORE),
    Check(_C + "ProjectedVolumeSource", "defaultMode", FILE_MODE, CORE),
    Check(_C + "DownwardAPIVolumeSource", "defaultMode", FILE_MODE, CORE),
    Check(_C + "KeyToPath", "mode", FILE_MODE, CORE),
    Check(_C + "DownwardAPIVolumeFile", "mode", FILE_MODE, CORE),
    # Services
    Check(_C + "ServicePort", "port", PORT, CORE),
    Check(_C + "ServicePort", "nodePort", PORT_OR_UNSET, CORE),
    Check(_C + "ServicePort", "targetPort", PORT_OR_UNSET, CORE),  # 0: defaults to `port`
    Check(_C + "ServicePort", "protocol", _enum(*PROTOCOLS), CORE),
    Check(
        _C + "ServiceSpec",
        "type",
        _enum("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
        CORE,
    ),
    Check(_C + "ServiceSpec", "sessionAffinity", _enum("ClientIP", "None"), CORE),
    Check(_C + "ServiceSpec", "internalTrafficPolicy", _enum("Cluster", "Local"), CORE),
    Check(_C + "ServiceSpec", "externalTrafficPolicy", _enum("Cluster", "Local"), CORE),
    Check(
        _C + "ServiceSpec",
        "ipFamilyPolicy",
        _enum("SingleStack", "PreferDualStack", "RequireDualStack"),
        CORE,
    ),
    Check(_C + "ServiceSpec", "ipFamilies", _enum("IPv4", "IPv6"), CORE, items=True),
    # Storage
    Check(
        _C + "PersistentVolumeClaimSpec",
        "accessModes",
        _enum("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"),
        CORE,
        items=True,
    ),
    Check(_C + "PersistentVolumeClaimSpec", "volumeMode", _enum("Block", "Filesystem"), CORE),
    Check(
        _C + "PersistentVolumeSpec",
        "accessModes",
        _enum("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"),
        CORE,
        items=True,
    ),
    Check(
        _C + "PersistentVolumeSpec",
        "persistentVolumeReclaimPolicy",
        _enum("Recycle", "Delete", "Retain"),
        CORE,
    ),
    Check(_C + "PersistentVolumeSpec", "volumeMode", _enum("Block", "Filesystem"), CORE),
    Check(_C + "LimitRangeItem", "type", _enum("Pod", "Container", "PersistentVolumeClaim"), CORE),
    Check(
        "io.k8s.api.storage.v1.StorageClass", "reclaimPolicy", _enum("Delete", "Retain"), STORAGE
    ),
    Check(
        "io.k8s.api.storage.v1.StorageClass",
        "volumeBindingMode",
        _enum("Immediate", "WaitForFirstConsumer"),
        STORAGE,
    ),
    # Workloads
    Check(_A + "DeploymentSpec", "replicas", NON_NEGATIVE, APPS),
    Check(_A + "DeploymentSpec", "minReadySeconds", NON_NEGATIVE, APPS),
    Check(_A + "DeploymentSpec", "revisionHistoryLimit", NON_NEGATIVE, APPS),
    Check(_A + "DeploymentStrategy", "type", _enum("Recreate", "RollingUpdate"), APPS),
    Check(_A + "StatefulSetSpec", "replicas", NON_NEGATIVE, APPS),
    Check(_A + "StatefulSetSpec", "minReadySeconds", NON_NEGATIVE, APPS),
    Check(_A + "StatefulSetSpec", "revisionHistoryLimit", NON_NEGATIVE, APPS),
    Check(_A + "StatefulSetSpec", "podManagementPolicy", _enum("OrderedReady", "Parallel"), APPS),
    Check(_A + "StatefulSetUpdateStrategy", "type", _enum("RollingUpdate", "OnDelete"), APPS),
    Check(_A + "RollingUpdateStatefulSetStrategy", "partition", NON_NEGATIVE, APPS),
    Check(
        _A + "StatefulSetPersistentVolumeClaimRetentionPolicy",
        "whenDeleted",
        _enum("Retain", "Delete"),
        APPS,
    ),
    Check(
        _A + "StatefulSetPersistentVolumeClaimRetentionPolicy",
        "whenScaled",
        _enum("Retain", "Delete"),
        APPS,
    ),
    Check(_A + "DaemonSetSpec", "minReadySeconds", NON_NEGATIVE, APPS),
    Check(_A + "DaemonSetSpec", "revisionHistoryLimit", NON_NEGATIVE, APPS),
    Check(_A + "DaemonSetUpdateStrategy", "type", _enum("RollingUpdate", "OnDelete"), APPS),
    Check(_A + "ReplicaSetSpec", "replicas", NON_NEGATIVE, APPS),
    Check(_B + "JobSpec", "parallelism", NON_NEGATIVE, BATCH),
    Check(_B + "JobSpec", "completions", NON_NEGATIVE, BATCH),
    Check(_B + "JobSpec", "backoffLimit", NON_NEGATIVE, BATCH),
    Check(_B + "JobSpec", "ttlSecondsAfterFinished", NON_NEGATIVE, BATCH),
    Check(_B + "JobSpec", "completionMode", _enum("NonIndexed", "Indexed"), BATCH),
    Check(_B + "JobSpec", "podReplacementPolicy", _enum("TerminatingOrFailed", "Failed"), BATCH),
    Check(_B + "CronJobSpec", "concurrencyPolicy", _enum("Allow", "Forbid", "Replace"), BATCH),
    Check(_B + "CronJobSpec", "startingDeadlineSeconds", NON_NEGATIVE, BATCH),
    Check(_B + "CronJobSpec", "successfulJobsHistoryLimit", NON_NEGATIVE, BATCH),
    Check(_B + "CronJobSpec", "failedJobsHistoryLimit", NON_NEGATIVE, BATCH),
    # Networking
    Check(
        _N + "HTTPIngressPath",
        "pathType",
        _enum("Exact", "Prefix", "ImplementationSpecific"),
        NETWORKING,
    ),
    Check(_N + "ServiceBackendPort", "number", PORT_OR_UNSET, NETWORKING),
    Check(_N + "NetworkPolicyPort", "protocol", _enum(*PROTOCOLS), NETWORKING),
    Check(_N + "NetworkPolicyPort", "port", PORT, NETWORKING),
    Check(_N + "NetworkPolicyPort", "endPort", PORT, NETWORKING),
    Check(
        _N + "NetworkPolicySpec", "policyTypes", _enum("Ingress", "Egress"), NETWORKING, items=True
    ),
    Check(
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        "unhealthyPodEvictionPolicy",
        _enum("IfHealthyBudget", "AlwaysAllow"),
        POLICY,
    ),
    # Autoscaling
    # minReplicas 0 is refused unless the HPAScaleToZero feature gate is on, which clusters
    # that scale to zero turn on: only a negative value is refused everywhere.
    Check(_H + "HorizontalPodAutoscalerSpec", "minReplicas", NON_NEGATIVE, AUTOSCALING),
    Check(_H + "HorizontalPodAutoscalerSpec", "maxReplicas", POSITIVE, AUTOSCALING),
    Check(
        _H + "MetricSpec",
        "type",
        _enum("Object", "Pods", "Resource", "ContainerResource", "External"),
        AUTOSCALING,
    ),
    Check(_H + "MetricTarget", "type", _enum("Utilization", "Value", "AverageValue"), AUTOSCALING),
    Check(_H + "HPAScalingRules", "selectPolicy", _enum("Max", "Min", "Disabled"), AUTOSCALING),
    Check(
        _H + "HPAScalingRules",
        "stabilizationWindowSeconds",
        {"minimum": 0, "maximum": 3600},
        AUTOSCALING,
    ),
    Check(_H + "HPAScalingPolicy", "type", _enum("Pods", "Percent"), AUTOSCALING),
    Check(_H + "HPAScalingPolicy", "value", POSITIVE, AUTOSCALING),
    Check(_H + "HPAScalingPolicy", "periodSeconds", {"minimum": 1, "maximum": 1800}, AUTOSCALING),
    Check(
        "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec",
        "minReplicas",
        POSITIVE,
        AUTOSCALING,
    ),
    Check(
        "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec",
        "maxReplicas",
        POSITIVE,
        AUTOSCALING,
    ),
    # RBAC
    Check(_R + "RoleRef", "apiGroup", {"enum": ["rbac.authorization.k8s.io"]}, RBAC),
    Check(_R + "RoleRef", "kind", {"enum": ["Role", "ClusterRole"]}, RBAC),
    Check(_R + "Subject", "kind", {"enum": ["ServiceAccount", "User", "Group"]}, RBAC),
    # Admission webhooks, CRDs, priorities
    Check(_W + "ValidatingWebhook", "sideEffects", {"enum": ["None", "NoneOnDryRun"]}, ADMISSION),
    Check(_W + "MutatingWebhook", "sideEffects", {"enum": ["None", "NoneOnDryRun"]}, ADMISSION),
    Check(_W + "ValidatingWebhook", "failurePolicy", _enum("Ignore", "Fail"), ADMISSION),
    Check(_W + "MutatingWebhook", "failurePolicy", _enum("Ignore", "Fail"), ADMISSION),
    Check(_W + "ValidatingWebhook", "matchPolicy", _enum("Exact", "Equivalent"), ADMISSION),
    Check(_W + "MutatingWebhook", "matchPolicy", _enum("Exact", "Equivalent"), ADMISSION),
    Check(_W + "MutatingWebhook", "reinvocationPolicy", _enum("Never", "IfNeeded"), ADMISSION),
    Check(_W + "ValidatingWebhook", "timeoutSeconds", {"minimum": 1, "maximum": 30}, ADMISSION),
    Check(_W + "MutatingWebhook", "timeoutSeconds", {"minimum": 1, "maximum": 30}, ADMISSION),
    Check(
        _W + "RuleWithOperations",
        "operations",
        _enum("*", "CREATE", "UPDATE", "DELETE", "CONNECT"),
        ADMISSION,
        items=True,
    ),
    Check(_W + "RuleWithOperations", "scope", _enum("*", "Cluster", "Namespaced"), ADMISSION),
    Check(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
        "scope",
        {"enum": ["Cluster", "Namespaced"]},
        APIEXTENSIONS,
    ),
    Check(
        "io.k8s.api.scheduling.v1.PriorityClass",
        "preemptionPolicy",
        _enum("PreemptLowerPriority", "Never"),
        SCHEDULING,
    ),
    # Every object
    Check(
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
        "operator",
        {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
        META,
    ),
)

# A label value: at most 63 characters, alphanumeric at both ends, `-_.` inside
# (IsValidLabelValue, ValidateLabels of meta/v1/validation for every object's labels).
LABEL_VALUE = {"maxLength": 63, "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}
LABELS_SOURCE = LABELS

# `required` in the OpenAPI description means only that the Go field has no `omitempty`;
# the API server decodes a missing one as its zero value and its validation code decides.
# These are required there, yet their zero value (false, 0, "", an empty list) is accepted.
ZERO_VALUE_ACCEPTED: frozenset[tuple[str, str]] = frozenset(
    {
        ("io.k8s.api.scheduling.v1.PriorityClass", "value"),  # priority 0
        ("io.k8s.api.discovery.v1.EndpointSlice", "endpoints"),  # a slice with no endpoint
        (_C + "HTTPHeader", "value"),  # an empty header value
        (_C + "Sysctl", "value"),
        (_C + "EndpointSubset", "addresses"),
    }
)
