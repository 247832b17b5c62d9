"""kustomize-unlisted-manifest: a manifest beside a kustomization.yaml that does not list it."""

from __future__ import annotations

from tests.analysis_helpers import (
    chart_yaml,
    configmap,
    deployment,
    flux_kustomization,
    kustomization,
    of_rule,
    repo,
    run,
    service,
)

RULE = "kustomize-unlisted-manifest"


def podinfo(**files: str) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps/podinfo"),
            "apps/podinfo/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/podinfo/deployment.yaml": deployment("podinfo"),
            **files,
        }
    )


def test_new_manifest_not_in_resources_is_reported() -> None:
    [finding] = run(podinfo(**{"apps/podinfo/service.yaml": service("podinfo")}))
    assert (finding.rule, finding.path, finding.line, finding.severity) == (
        RULE,
        "apps/podinfo/service.yaml",
        1,
        "warning",
    )
    assert "`apps/podinfo/kustomization.yaml` does not list this file" in finding.message
    assert "add `- service.yaml`" in finding.message


def test_manifest_in_subdirectory_without_own_kustomization() -> None:
    [finding] = run(podinfo(**{"apps/podinfo/monitoring/servicemonitor.yaml": service("x")}))
    assert finding.path == "apps/podinfo/monitoring/servicemonitor.yaml"
    assert "add `- monitoring/servicemonitor.yaml`" in finding.message


def test_listed_patch_and_generator_files_are_silent() -> None:
    files = podinfo()
    files["apps/podinfo/kustomization.yaml"] = kustomization(
        ["deployment.yaml"],
        extra="""
        patches:
          - path: replicas-patch.yaml
        configMapGenerator:
          - name: podinfo
            files:
              - config.yaml
        """,
    )
    files["apps/podinfo/replicas-patch.yaml"] = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  replicas: 3\n"
    )
    files["apps/podinfo/config.yaml"] = "apiVersion: v1\nkind: ConfigMap\n"
    assert run(files) == []


def test_non_manifest_yaml_is_silent() -> None:
    files = podinfo(**{"apps/podinfo/values-notes.yaml": "replicaCount: 3\nimage: x\n"})
    assert run(files) == []


def test_directory_without_kustomization_is_silent() -> None:
    # Flux applies every manifest there: nothing to list.
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/deployment.yaml": deployment("podinfo"),
            "apps/service.yaml": service("podinfo"),
        }
    )
    assert run(files) == []


def test_chart_files_beside_a_kustomization_are_silent() -> None:
    files = podinfo(
        **{
            "apps/podinfo/chart/Chart.yaml": chart_yaml("podinfo", "1.0.0"),
            "apps/podinfo/chart/templates/service.yaml": service("podinfo"),
        }
    )
    assert run(files) == []


def test_sourceignored_manifest_is_silent() -> None:
    files = podinfo(
        **{
            "apps/podinfo/examples/service.yaml": service("podinfo"),
            ".sourceignore": "examples/\n",
        }
    )
    assert run(files) == []


def test_subdirectory_with_its_own_kustomization_is_not_the_parent_s_business() -> None:
    files = podinfo(
        **{
            "apps/podinfo/redis/kustomization.yaml": kustomization(["redis.yaml"]),
            "apps/podinfo/redis/redis.yaml": deployment("redis", "redis:7.2"),
        }
    )
    files["apps/podinfo/kustomization.yaml"] = kustomization(["deployment.yaml", "redis"])
    assert run(files) == []
    files["apps/podinfo/redis/sentinel.yaml"] = deployment("sentinel", "redis:7.2")
    [finding] = run(files)
    assert "`apps/podinfo/redis/kustomization.yaml` does not list" in finding.message


def test_a_manifest_listed_by_a_component_nothing_uses_is_listed() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["web.yaml"]),
            "apps/web.yaml": deployment("web"),
            "components/backup/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                "resources:\n  - ./secret.yaml\n"
            ),
            "components/backup/secret.yaml": configmap("backup"),
        }
    )
    assert of_rule(run(files), RULE) == []


def test_commenting_out_an_applied_entry_is_said_once_as_the_prune() -> None:
    # The change comments out a manifest a pruning Flux Kustomization applied: Flux
    # deletes its objects, which prune-deletes says; the notice that the entry is
    # commented out would be a second finding of the same edit.
    base = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": kustomization(["./web.yaml", "./grafana.yaml"]),
            "apps/web.yaml": deployment("web"),
            "apps/grafana.yaml": configmap("grafana"),
        }
    )
    head = dict(base)
    head["apps/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - ./web.yaml\n  # - ./grafana.yaml\n"
    )
    findings = run(head, base)
    assert [(f.rule, f.path) for f in findings] == [("prune-deletes", "apps/grafana.yaml")]
    # Without the base, the commented entry is the notice it always was.
    [notice] = of_rule(run(head), RULE)
    assert notice.severity == "notice" and "comments out `./grafana.yaml`" in notice.message


def test_a_template_a_script_renders_is_not_an_unlisted_manifest() -> None:
    """`scripts/templates/WipeJob.tmpl.yaml` beside an app: a script fills it in and
    applies it; kustomize is not meant to."""
    files = podinfo(
        **{
            "apps/podinfo/scripts/templates/WipeJob.tmpl.yaml": deployment("wipe"),
            "apps/podinfo/scripts/job.tpl.yml": deployment("job"),
            "apps/podinfo/scripts/job.yaml": deployment("job"),
        }
    )
    assert [f.path for f in of_rule(run(files), RULE)] == ["apps/podinfo/scripts/job.yaml"]


def test_a_shelved_apps_other_files_are_a_notice_with_its_commented_entry() -> None:
    # `# - ./game/ks.yaml` shelves the app: the manifests under game/ that no
    # kustomization of their own lists go with it, on purpose.
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/kustomization.yaml": "resources:\n  - ./web.yaml\n  # - ./game/ks.yaml\n",
            "apps/web.yaml": deployment("web"),
            "apps/game/ks.yaml": flux_kustomization("game", "./apps/game/app"),
            "apps/game/sync/cronjob.yaml": configmap("sync"),
            "apps/other.yaml": configmap("other"),
        }
    )
    found = {f.path: f for f in of_rule(run(files), RULE)}
    assert found["apps/game/sync/cronjob.yaml"].severity == "notice"
    assert "comments out `./game/ks.yaml` on line 3" in found["apps/game/sync/cronjob.yaml"].message
    # A file beside the kustomization is not shelved by an entry of another directory.
    assert found["apps/other.yaml"].severity == "warning"
