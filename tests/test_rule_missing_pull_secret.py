"""missing-pull-secret: a pull secret or source secretRef nothing on the cluster defines."""

from __future__ import annotations

from bot.analysis.config import parse_config
from bot.analysis.rules import missing_pull_secret
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot
from tests.analysis_helpers import (
    dedent,
    flux_kustomization,
    helm_release,
    kustomization,
    line_of,
    of_rule,
    repo,
    run,
    tree,
)

RULE = "missing-pull-secret"


def pull_secret(name: str, namespace: str = "media") -> str:
    return dedent(
        f"""
        apiVersion: v1
        kind: Secret
        metadata:
          name: {name}
          namespace: {namespace}
        type: kubernetes.io/dockerconfigjson
        stringData:
          .dockerconfigjson: "{{}}"
        """
    )


def workload(secret: str, namespace: str = "media") -> str:
    return dedent(
        f"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: plex
          namespace: {namespace}
        spec:
          template:
            spec:
              imagePullSecrets:
                - name: {secret}
              containers:
                - name: plex
                  image: ghcr.io/example/plex:1.0.0
        """
    )


def cluster(files: dict[str, str]) -> dict[str, str | bytes]:
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"), **files})


def test_the_renamed_pull_secret_says_did_you_mean() -> None:
    deploy = workload("ghcr-pull-secret")
    files = cluster({"apps/secret.yaml": pull_secret("ghcr-pull"), "apps/plex.yaml": deploy})
    [finding] = of_rule(run(files), RULE)
    assert (finding.path, finding.line, finding.severity) == (
        "apps/plex.yaml",
        line_of(deploy, "name: ghcr-pull-secret"),
        "warning",
    )
    assert "names Secret ghcr-pull-secret" in finding.message
    assert "namespace media" in finding.message
    assert "did you mean ghcr-pull?" in finding.message


def test_a_secret_in_another_namespace_does_not_count() -> None:
    files = cluster(
        {
            "apps/secret.yaml": pull_secret("ghcr-pull", namespace="other"),
            "apps/plex.yaml": workload("ghcr-pull"),
        }
    )
    [finding] = of_rule(run(files), RULE)
    assert "did you mean ghcr-pull?" in finding.message
    assert "It is defined in namespace other." in finding.detail


def test_defined_by_a_secret_a_sealed_secret_an_external_secret_or_a_generator() -> None:
    sealed = dedent(
        """
        apiVersion: bitnami.com/v1alpha1
        kind: SealedSecret
        metadata:
          name: sealed
          namespace: media
        spec:
          template:
            metadata:
              name: sealed-pull
            type: kubernetes.io/dockerconfigjson
        """
    )
    external = dedent(
        """
        apiVersion: external-secrets.io/v1beta1
        kind: ExternalSecret
        metadata:
          name: es
          namespace: media
        spec:
          target:
            name: es-pull
        """
    )
    for name in ("ghcr-pull", "sealed-pull", "es-pull", "generated-pull"):
        files = cluster(
            {
                "apps/kustomization.yaml": kustomization(
                    ["secret.yaml", "sealed.yaml", "external.yaml", "plex.yaml"],
                    extra="secretGenerator:\n  - name: generated-pull\n    namespace: media\n"
                    "    type: kubernetes.io/dockerconfigjson\n    literals: [a=b]\n",
                ),
                "apps/secret.yaml": pull_secret("ghcr-pull"),
                "apps/sealed.yaml": sealed,
                "apps/external.yaml": external,
                "apps/plex.yaml": workload(name),
            }
        )
        assert of_rule(run(files), RULE) == [], name


def test_copied_by_reflector_or_from_external_objects() -> None:
    reflected = pull_secret("ghcr-pull", namespace="flux-system").replace(
        "  namespace: flux-system\n",
        "  namespace: flux-system\n  annotations:\n"
        '    reflector.v1.k8s.emberstack.com/reflection-auto-enabled: "true"\n'
        '    reflector.v1.k8s.emberstack.com/reflection-auto-namespaces: "media"\n',
    )
    files = cluster({"apps/secret.yaml": reflected, "apps/plex.yaml": workload("ghcr-pull")})
    assert of_rule(run(files), RULE) == []
    files = cluster(
        {"apps/secret.yaml": pull_secret("other-pull"), "apps/plex.yaml": workload("ghcr-pull")}
    )
    assert len(of_rule(run(files), RULE)) == 1
    # declared in the config as existing on the cluster
    for declared, expected in (
        ("Secret/media/ghcr-pull", 0),
        ("Secret/*/ghcr-pull", 0),
        ("secret/media/ghcr-pull", 0),  # kinds match whatever their case, as kubectl's
        ("Secret/other/ghcr-pull", 1),
        ("ConfigMap/media/ghcr-pull", 1),
    ):
        config = parse_config(f"external_objects: [{declared}]\n")
        found = list(missing_pull_secret.check(Context(Snapshot(tree(files), config))))
        assert len(found) == expected, declared


def test_a_cluster_without_any_pull_secret_in_git_makes_them_by_hand() -> None:
    files = cluster({"apps/plex.yaml": workload("ghcr-pull")})
    assert of_rule(run(files), RULE) == []


def test_an_unknown_inventory_says_nothing() -> None:
    files = cluster(
        {
            "apps/kustomization.yaml": kustomization(
                ["https://github.com/org/secrets//media?ref=v1", "secret.yaml", "plex.yaml"]
            ),
            "apps/secret.yaml": pull_secret("other-pull"),
            "apps/plex.yaml": workload("ghcr-pull"),
        }
    )
    assert of_rule(run(files), RULE) == []


def test_helm_release_values_only_near_misses() -> None:
    values = "imagePullSecrets:\n  - name: ghcr-pull-secret\n"
    release = helm_release("plex", version="1.x", namespace="media", values=values)
    files = cluster({"apps/secret.yaml": pull_secret("ghcr-pull"), "apps/plex.yaml": release})
    [finding] = of_rule(run(files), RULE)
    assert "the values of HelmRelease media/plex" in finding.message
    assert "did you mean ghcr-pull?" in finding.message
    # a name far from any pull secret may be made by the chart itself
    release = helm_release(
        "plex", version="1.x", namespace="media", values="imagePullSecrets:\n  - name: quay-creds\n"
    )
    files = cluster({"apps/secret.yaml": pull_secret("ghcr-pull"), "apps/plex.yaml": release})
    assert of_rule(run(files), RULE) == []


def test_a_source_secret_ref() -> None:
    source = dedent(
        """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: private
          namespace: flux-system
        spec:
          url: https://charts.example.com
          secretRef:
            name: chart-auth
        """
    )
    auth = pull_secret("charts-auth", namespace="flux-system").replace(
        "type: kubernetes.io/dockerconfigjson\n", ""
    )
    files = cluster({"apps/source.yaml": source, "apps/auth.yaml": auth})
    [finding] = of_rule(run(files), RULE)
    assert "`spec.secretRef` of HelmRepository flux-system/private" in finding.message
    assert "never becomes ready" in finding.detail
    assert "did you mean charts-auth?" in finding.message


def test_the_pull_secret_of_an_in_repo_chart() -> None:
    """The incident: every chart's values named ghcr-pull-secret, the cluster had ghcr-pull."""
    values = "imagePullSecrets:\n  - name: ghcr-pull-secret\nreplicas: 1\n"
    release = dedent(
        """
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata:
          name: api
          namespace: media
        spec:
          chart:
            spec:
              chart: ./charts/api
              sourceRef:
                kind: GitRepository
                name: flux-system
                namespace: flux-system
        """
    )
    files = cluster(
        {
            "apps/secret.yaml": pull_secret("ghcr-pull"),
            "apps/api.yaml": release,
            "charts/api/Chart.yaml": "apiVersion: v2\nname: api\nversion: 1.0.0\n",
            "charts/api/values.yaml": values,
            "charts/api/templates/deployment.yaml": "kind: Deployment\n{{ .Values.x }}\n",
        }
    )
    [finding] = of_rule(run(files), RULE)
    assert (finding.path, finding.line) == (
        "charts/api/values.yaml",
        line_of(values, "ghcr-pull-secret"),
    )
    assert "did you mean ghcr-pull?" in finding.message
    # the release's own values replace the chart's
    files["apps/api.yaml"] = release + "  values:\n    imagePullSecrets:\n      - name: ghcr-pull\n"
    assert of_rule(run(files), RULE) == []
