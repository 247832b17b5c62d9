"""kustomize-duplicate-resource: the same object id twice in one kustomize build."""

from __future__ import annotations

from tests.analysis_helpers import (
    configmap,
    dedent,
    deployment,
    flux_kustomization,
    helm_repository,
    kustomization,
    line_of,
    of_rule,
    repo,
    run,
)

RULE = "kustomize-duplicate-resource"


def applied(files: dict[str, str], path: str = "./apps") -> dict[str, str | bytes]:
    return repo({"clusters/prod/apps.yaml": flux_kustomization("apps", path), **files})


def test_a_copied_helm_repository_is_reported_on_both_each_naming_the_other() -> None:
    copy = helm_repository("bitnami")
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(["sources.yaml", "redis/source.yaml"]),
            "apps/sources.yaml": helm_repository("bitnami"),
            "apps/redis/source.yaml": copy,
        }
    )
    first, second = sorted(of_rule(run(files), RULE), key=lambda f: f.path != "apps/sources.yaml")
    assert (second.path, second.line, second.severity) == (
        "apps/redis/source.yaml",
        line_of(copy, "name: bitnami"),
        "error",
    )
    assert "is already in this build from apps/sources.yaml:4" in second.message
    assert "may not add resource with an already registered id" in second.message
    assert first.path == "apps/sources.yaml"
    assert "is added again from apps/redis/source.yaml:4" in first.message


def test_the_file_a_change_adds_gets_a_finding_of_its_own() -> None:
    # b and c were already duplicates; a third copy, walked first, is what is new
    base = applied({"apps/b.yaml": configmap("shared"), "apps/c.yaml": configmap("shared")})
    head = {**base, "apps/a.yaml": configmap("shared")}
    introduced = of_rule(run(head, base), RULE)
    assert introduced and {f.path for f in introduced} == {"apps/a.yaml"}


def test_a_copied_ks_yaml_still_named_after_its_origin() -> None:
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(["grafana", "loki"]),
            "apps/grafana/kustomization.yaml": kustomization(["ks.yaml"]),
            "apps/grafana/ks.yaml": flux_kustomization("grafana", "./apps/grafana/app"),
            "apps/loki/kustomization.yaml": kustomization(["ks.yaml"]),
            "apps/loki/ks.yaml": flux_kustomization("grafana", "./apps/loki/app"),
            "apps/grafana/app/cm.yaml": configmap("grafana"),
            "apps/loki/app/cm.yaml": configmap("loki"),
        }
    )
    paths = sorted(f.path for f in of_rule(run(files), RULE))
    assert paths == ["apps/grafana/ks.yaml", "apps/loki/ks.yaml"]


def test_the_flux_generated_index_counts_every_file() -> None:
    files = applied(
        {
            "apps/secret-a.yaml": configmap("shared"),
            "apps/nested/secret-b.yaml": configmap("shared"),
        }
    )
    # Flux walks the directory in lexical order: nested/ comes before secret-a.yaml.
    found = {f.path: f.message for f in of_rule(run(files), RULE)}
    assert "is already in this build from apps/nested/secret-b.yaml" in found["apps/secret-a.yaml"]
    assert "is added again from apps/secret-a.yaml" in found["apps/nested/secret-b.yaml"]


def test_default_namespace_and_no_namespace_are_one() -> None:
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(["a.yaml", "b.yaml"]),
            "apps/a.yaml": deployment("web", namespace="default"),
            "apps/b.yaml": deployment("web"),
        }
    )
    assert len(of_rule(run(files), RULE)) == 2


def test_a_namespace_set_on_both_makes_them_collide() -> None:
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(
                ["a.yaml", "b.yaml"], extra="namespace: shop\n"
            ),
            "apps/a.yaml": deployment("web", namespace="one"),
            "apps/b.yaml": deployment("web", namespace="two"),
        }
    )
    found = {f.path: f.message for f in of_rule(run(files), RULE)}
    assert set(found) == {"apps/a.yaml", "apps/b.yaml"}
    assert "the namespace `shop` set in apps/kustomization.yaml" in found["apps/b.yaml"]


def test_different_namespaces_versions_or_prefixes_are_different_objects() -> None:
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(["a.yaml", "b.yaml", "other"]),
            "apps/a.yaml": deployment("web", namespace="one"),
            "apps/b.yaml": deployment("web", namespace="two"),
            "apps/other/kustomization.yaml": kustomization(["a.yaml"], extra="namePrefix: x-\n"),
            "apps/other/a.yaml": deployment("web", namespace="one"),
        }
    )
    assert of_rule(run(files), RULE) == []


def test_a_generator_with_behavior_merge_adds_nothing() -> None:
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(
                ["base"],
                extra=(
                    "configMapGenerator:\n  - name: settings\n    behavior: merge\n"
                    "    literals: [B=2]\n"
                ),
            ),
            "apps/base/kustomization.yaml": kustomization(
                extra=("configMapGenerator:\n  - name: settings\n    literals: [A=1]\n")
            ),
        }
    )
    assert of_rule(run(files), RULE) == []


def test_a_generator_and_a_manifest_of_one_name_collide() -> None:
    files = applied(
        {
            "apps/kustomization.yaml": kustomization(
                ["settings.yaml"],
                extra=("configMapGenerator:\n  - name: settings\n    literals: [A=1]\n"),
            ),
            "apps/settings.yaml": configmap("settings"),
        }
    )
    assert sorted(f.path for f in of_rule(run(files), RULE)) == [
        "apps/kustomization.yaml",
        "apps/settings.yaml",
    ]


def test_a_kustomization_nothing_applies_is_not_checked() -> None:
    files = applied(
        {
            "apps/web.yaml": deployment("web"),
            "old/kustomization.yaml": kustomization(["a.yaml", "b.yaml"]),
            "old/a.yaml": configmap("x"),
            "old/b.yaml": configmap("x"),
        }
    )
    assert of_rule(run(files), RULE) == []


def test_two_objects_that_substitution_names_alike_fail_the_flux_build() -> None:
    configmaps = dedent(
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: ${A}-settings
          namespace: default
        data: {k: a}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: ${B}-settings
        data: {k: b}
        """
    )
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization(
                "apps", "./apps", substitute={"A": "same", "B": "same"}
            ),
            "apps/kustomization.yaml": kustomization(["configmaps.yaml"]),
            "apps/configmaps.yaml": configmaps,
        }
    )
    [finding] = of_rule(run(files), RULE)
    # on the second object, naming the first: an empty namespace is `default` to kustomize
    assert (finding.path, finding.line, finding.severity) == ("apps/configmaps.yaml", 11, "error")
    assert "id matched 2 resources" in finding.message
    assert "apps/configmaps.yaml:4" in finding.message
    # distinct values: two objects, no finding
    files["clusters/prod/apps.yaml"] = flux_kustomization(
        "apps", "./apps", substitute={"A": "one", "B": "two"}
    )
    assert of_rule(run(files), RULE) == []
