"""dangling-reference: sourceRef / dependsOn / chartRef naming objects that are not there."""

from __future__ import annotations

import json

from tests.analysis_helpers import (
    chart_yaml,
    dedent,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    oci_repository,
    of_rule,
    repo,
    run,
)

RULE = "dangling-reference"


def infra(**files: str) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "infrastructure/sources/bitnami.yaml": helm_repository(
                "bitnami", "https://charts.bitnami.com/bitnami"
            ),
            **files,
        }
    )


def test_helmrelease_source_that_does_not_exist() -> None:
    text = helm_release("redis", version="18.x", source="bitnami-charts")
    [finding] = run(infra(**{"infrastructure/redis.yaml": text}))
    assert (finding.rule, finding.path, finding.severity) == (
        RULE,
        "infrastructure/redis.yaml",
        "error",
    )
    assert finding.line == line_of(text, "name: bitnami-charts")
    assert "names HelmRepository bitnami-charts" in finding.message
    assert "Known HelmRepositories: bitnami." in finding.detail


def test_existing_source_is_silent() -> None:
    text = helm_release("redis", version="18.x", source="bitnami")
    assert run(infra(**{"infrastructure/redis.yaml": text})) == []


def test_missing_kustomization_dependency() -> None:
    text = flux_kustomization("apps", "./infrastructure", depends_on=["infra-controllers"])
    # (apps applies what infrastructure does: object-applied-twice says so)
    [finding] = of_rule(run(infra(**{"clusters/prod/apps.yaml": text})), RULE)
    assert (finding.path, finding.line) == (
        "clusters/prod/apps.yaml",
        line_of(text, "name: infra-controllers"),
    )
    assert "spec.dependsOn of Kustomization apps names Kustomization infra-controllers" in (
        finding.message
    )


def test_existing_kustomization_dependency_is_silent() -> None:
    text = flux_kustomization("apps", "./infrastructure", depends_on=["infrastructure"])
    assert of_rule(run(infra(**{"clusters/prod/apps.yaml": text})), RULE) == []


def test_missing_helmrelease_dependency() -> None:
    text = helm_release("app", version="1.x", source="bitnami", depends_on=["cert-manager"])
    [finding] = run(infra(**{"infrastructure/app.yaml": text}))
    assert "names HelmRelease cert-manager" in finding.message


def test_missing_chart_ref() -> None:
    files = infra(
        **{
            "infrastructure/podinfo.yaml": helm_release(
                "podinfo", chart_ref=("OCIRepository", "podinfo-chart")
            ),
            "infrastructure/sources/redis.yaml": oci_repository(
                "redis", "oci://registry-1.docker.io/bitnamicharts/redis", tag="18.0.0"
            ),
        }
    )
    [finding] = run(files)
    assert "spec.chartRef of HelmRelease podinfo names OCIRepository podinfo-chart" in (
        finding.message
    )


def test_flux_system_source_is_assumed_to_exist() -> None:
    # Created by `flux bootstrap`; many repositories do not contain gotk-sync.yaml.
    files = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "clusters/prod/infrastructure.yaml": flux_kustomization("infrastructure", "./apps"),
        "apps/podinfo.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: podinfo\n",
        "sources/other.yaml": dedent(
            """
            apiVersion: source.toolkit.fluxcd.io/v1
            kind: GitRepository
            metadata:
              name: platform-charts
              namespace: flux-system
            spec:
              url: https://github.com/example/charts
            """
        ),
    }
    assert [f for f in run(files) if f.rule == RULE] == []


def test_reference_in_another_namespace_says_where_the_object_is() -> None:
    text = helm_release("redis", version="18.x", source="bitnami", namespace="cache")
    [finding] = run(infra(**{"infrastructure/redis.yaml": text}))
    assert finding.rule == RULE
    assert "names HelmRepository bitnami in namespace cache" in finding.message
    assert "set `namespace: flux-system`" in finding.message
    assert "namespace flux-system" in finding.detail


def test_explicit_source_namespace_is_honoured() -> None:
    text = helm_release("redis", version="18.x", source="bitnami", namespace="cache").replace(
        "        name: bitnami", "        name: bitnami\n        namespace: flux-system"
    )
    assert run(infra(**{"infrastructure/redis.yaml": text})) == []


def test_kinds_not_defined_in_the_repository_are_not_checked() -> None:
    # A tenant repository: its HelmRepositories live in the platform repository.
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/redis.yaml": helm_release("redis", version="18.x", source="bitnami"),
            "apps/app.yaml": helm_release("app", chart_ref=("OCIRepository", "app")),
            "apps/podinfo.yaml": helm_release(
                "podinfo", "./charts/podinfo", source_kind="Bucket", source="charts"
            ),
        }
    )
    assert run(files) == []


def test_substituted_names_are_not_checked() -> None:
    text = helm_release("redis", version="18.x", source="${HELM_REPOSITORY}")
    assert run(infra(**{"infrastructure/redis.yaml": text})) == []


def test_namespace_rewritten_by_target_namespace_is_not_compared() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./apps", target_namespace="flux-system"
            ),
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "apps/redis.yaml": helm_release(
                "redis", version="18.x", source="bitnami", namespace="default"
            ),
            "infrastructure/bitnami.yaml": helm_repository("bitnami"),
        }
    )
    assert run(files) == []


def test_namespace_rewritten_by_an_outer_kustomization_is_not_compared() -> None:
    # apps/prod sets `namespace: flux-system` for everything it builds, including
    # what ../base/redis lists.
    files = infra(
        **{
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/prod"),
            "apps/prod/kustomization.yaml": kustomization(
                ["../base/redis"], extra="namespace: flux-system\n"
            ),
            "apps/base/redis/kustomization.yaml": kustomization(["release.yaml"]),
            "apps/base/redis/release.yaml": helm_release(
                "redis", version="18.x", source="bitnami", namespace="cache"
            ),
        }
    )
    assert run(files) == []


def test_source_defined_in_a_chart_template_is_not_checked() -> None:
    files = infra(
        **{
            "charts/tenant/Chart.yaml": chart_yaml("tenant", "0.1.0"),
            "charts/tenant/templates/repo.yaml": dedent(
                """
                apiVersion: source.toolkit.fluxcd.io/v1
                kind: HelmRepository
                metadata:
                  name: {{ .Values.tenant }}-charts
                spec:
                  url: {{ .Values.url }}
                """
            ),
            "infrastructure/app.yaml": helm_release("app", version="1.x", source="team-a-charts"),
        }
    )
    assert run(files) == []


def test_source_in_a_file_that_does_not_parse_is_not_reported_twice() -> None:
    # The HelmRepository is there; its file is broken. That is one problem, reported
    # by yaml-syntax-error, not also a dangling reference.
    broken = helm_repository("internal").replace("  interval: 30m\n", "  interval: 30m\n   x: 1\n")
    files = infra(
        **{
            "infrastructure/sources/internal.yaml": broken,
            "infrastructure/app.yaml": helm_release("app", version="1.x", source="internal"),
        }
    )
    assert [f.rule for f in run(files)] == ["yaml-syntax-error"]


# --- Secrets and ConfigMaps: only a change proves them gone ------------------------------

WORKLOAD = dedent(
    """
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      template:
        spec:
          imagePullSecrets:
            - name: registry-credentials
          containers:
            - name: web
              image: ghcr.io/example/web:1.0.0
              envFrom:
                - secretRef:
                    name: web-env
                - configMapRef:
                    name: web-settings
                    optional: true
    """
)


def sealed_secret(name: str) -> str:
    return dedent(
        f"""
        apiVersion: bitnami.com/v1alpha1
        kind: SealedSecret
        metadata:
          name: {name}
        spec:
          encryptedData:
            token: AgBy3i4OJSWK
        """
    )


def apps(**files: str) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/web.yaml": WORKLOAD,
            **files,
        }
    )


def test_renamed_pull_secret_is_reported_on_the_reference() -> None:
    base = apps(**{"apps/pull-secret.yaml": sealed_secret("registry-credentials")})
    head = apps(**{"apps/pull-secret.yaml": sealed_secret("ghcr-credentials")})
    [finding] = [f for f in run(head, base) if f.rule == RULE]
    assert (finding.path, finding.line) == (
        "apps/web.yaml",
        line_of(WORKLOAD, "registry-credentials"),
    )
    assert "registry-credentials" in finding.message and "apps/pull-secret.yaml" in finding.detail
    assert finding.introduced


def test_secrets_defined_outside_the_repository_are_not_reported() -> None:
    # web-env and registry-credentials exist nowhere in git: SOPS, External Secrets or a
    # bootstrap script may create them.
    assert [f for f in run(apps(), apps()) if f.rule == RULE] == []
    assert [f for f in run(apps()) if f.rule == RULE] == []


def test_optional_references_and_kept_secrets_are_silent() -> None:
    settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\n"
    base = apps(
        **{
            "apps/settings.yaml": settings,
            "apps/pull-secret.yaml": sealed_secret("registry-credentials"),
        }
    )
    # The optional ConfigMap goes away; the pull secret only moves to another file.
    head = apps(**{"apps/secrets/pull.yaml": sealed_secret("registry-credentials")})
    assert [f for f in run(head, base) if f.rule == RULE] == []


def test_external_secret_target_counts_as_the_secret() -> None:
    def external(target: str) -> str:
        return dedent(
            f"""
            apiVersion: external-secrets.io/v1
            kind: ExternalSecret
            metadata:
              name: web
            spec:
              target:
                name: {target}
            """
        )

    base = apps(**{"apps/env.yaml": external("web-env")})
    head = apps(**{"apps/env.yaml": external("web-environment")})
    [finding] = [f for f in run(head, base) if f.rule == RULE]
    assert finding.line == line_of(WORKLOAD, "web-env")


def test_a_source_defined_in_a_listed_json_file_exists() -> None:
    # kustomize reads a JSON resource like YAML; tab indentation and all.
    source = json.dumps(
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "charts", "namespace": "flux-system"},
            "spec": {"interval": "1h", "url": "https://charts.example.com"},
        },
        indent="\t",
    )
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["sources.json", "release.yaml"]),
            "apps/sources.json": source,
            "apps/release.yaml": helm_repository("other")
            + "---\n"
            + helm_release("web", version="1.0.0", source="charts"),
        }
    )
    assert run(files) == []
    # Not listed, it is not applied: the reference dangles.
    files["apps/kustomization.yaml"] = kustomization(["release.yaml"])
    assert [(f.rule, f.path) for f in run(files)] == [("dangling-reference", "apps/release.yaml")]


# --- what each cluster applies -----------------------------------------------------------


def test_a_file_no_cluster_applies_breaks_nothing() -> None:
    # An archived app with its own ks.yaml that nothing applies any more.
    files = infra(
        **{
            ".archive/old/ks.yaml": flux_kustomization(
                "old", "./.archive/old/app", depends_on=["gone"]
            ),
            ".archive/old/app/release.yaml": helm_release("old", source="retired"),
        }
    )
    assert of_rule(run(files), RULE) == []


def test_an_object_only_another_cluster_applies_is_dangling_here() -> None:
    release = helm_release("redis", version="18.x", source="bitnami")
    files = repo(
        {
            "clusters/staging/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/redis.yaml": release,
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "infrastructure/bitnami.yaml": helm_repository("bitnami"),
        },
        cluster="prod",
    )
    files.update(repo({}, cluster="staging"))
    [finding] = of_rule(run(files), RULE)
    assert (finding.path, finding.line) == ("apps/redis.yaml", line_of(release, "name: bitnami"))
    assert "cluster clusters/staging does not apply" in finding.message


def test_an_object_the_same_cluster_applies_is_found() -> None:
    files = infra(**{"infrastructure/redis.yaml": helm_release("redis", source="bitnami")})
    assert of_rule(run(files), RULE) == []


def test_an_object_a_resource_set_creates_is_not_looked_for_in_the_builds() -> None:
    resource_set = dedent(
        """
        apiVersion: fluxcd.controlplane.io/v1
        kind: ResourceSet
        metadata:
          name: sources
          namespace: flux-system
        spec:
          resources:
            - apiVersion: source.toolkit.fluxcd.io/v1
              kind: HelmRepository
              metadata:
                name: generated
                namespace: flux-system
        """
    )
    files = infra(
        **{
            "infrastructure/set.yaml": resource_set,
            "infrastructure/redis.yaml": helm_release("redis", source="generated"),
        }
    )
    assert of_rule(run(files), RULE) == []


EXTERNAL = """
external_objects:
  - HelmRepository/flux-system/bitnami-charts
  - Kustomization/*/infra-controllers
  - Secret/apps/registry-credentials
"""


def test_objects_listed_as_external_are_not_dangling() -> None:
    release = helm_release("redis", version="18.x", source="bitnami-charts")
    dependent = flux_kustomization("apps", "./infrastructure", depends_on=["infra-controllers"])
    files = infra(**{"infrastructure/redis.yaml": release, "clusters/prod/apps.yaml": dependent})
    assert sorted(
        f.message.split(" names ")[1].split(",")[0] for f in of_rule(run(files), RULE)
    ) == [
        "HelmRepository bitnami-charts in namespace flux-system",
        "Kustomization infra-controllers in namespace flux-system",
    ]
    assert of_rule(run(files, config=EXTERNAL), RULE) == []


def test_an_external_object_in_another_namespace_does_not_count() -> None:
    release = helm_release("redis", version="18.x", source="bitnami-charts")
    files = infra(**{"infrastructure/redis.yaml": release})
    config = "external_objects: [HelmRepository/default/bitnami-charts, HelmRepository/x]\n"
    [finding] = run(files, config=config)
    assert "names HelmRepository bitnami-charts" in finding.message


def test_a_removed_secret_listed_as_external_is_not_dangling() -> None:
    base = apps(**{"apps/pull-secret.yaml": sealed_secret("registry-credentials")})
    head = apps()
    assert [f.rule for f in of_rule(run(head, base), RULE)] == [RULE]
    assert of_rule(run(head, base, config=EXTERNAL), RULE) == []
