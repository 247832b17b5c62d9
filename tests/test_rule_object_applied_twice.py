"""object-applied-twice: one object applied by two Flux Kustomizations of one cluster."""

from __future__ import annotations

from tests.analysis_helpers import (
    configmap,
    flux_kustomization,
    kustomization,
    of_rule,
    repo,
    run,
)

RULE = "object-applied-twice"


def test_a_file_listed_by_two_kustomizations_of_one_cluster() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "clusters/prod/infra.yaml": flux_kustomization("infra", "./infra"),
            "apps/kustomization.yaml": kustomization(["../shared/settings.yaml"]),
            "infra/kustomization.yaml": kustomization(["../shared/settings.yaml"]),
            "shared/settings.yaml": configmap("settings").replace(
                "name: settings", "name: settings\n  namespace: shop"
            ),
        }
    )
    [finding] = of_rule(run(files), RULE)
    assert (finding.path, finding.severity) == ("shared/settings.yaml", "warning")
    assert "ConfigMap shop/settings" in finding.message
    assert "flux-system/apps" in finding.message and "flux-system/infra" in finding.message
    assert "cluster clusters/prod" in finding.detail


def test_a_flux_path_inside_another_flux_path_is_applied_by_both() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "clusters/prod/web.yaml": flux_kustomization("web", "./apps/web"),
            "apps/web/settings.yaml": configmap("web"),
        }
    )
    assert len(of_rule(run(files), RULE)) == 1


def test_different_target_namespaces_make_different_objects() -> None:
    files = repo(
        {
            "clusters/prod/a.yaml": flux_kustomization("a", "./app", target_namespace="a"),
            "clusters/prod/b.yaml": flux_kustomization("b", "./app", target_namespace="b"),
            "app/settings.yaml": configmap("settings"),
        }
    )
    assert of_rule(run(files), RULE) == []


def test_two_clusters_may_apply_the_same_object() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/settings.yaml": configmap("settings"),
        },
        cluster="prod",
    )
    files.update(
        repo(
            {"clusters/staging/apps.yaml": flux_kustomization("apps", "./apps")}, cluster="staging"
        )
    )
    assert of_rule(run(files), RULE) == []


def test_substituted_names_are_left_to_flux() -> None:
    files = repo(
        {
            "clusters/prod/a.yaml": flux_kustomization("a", "./app", substitute={"APP": "a"}),
            "clusters/prod/b.yaml": flux_kustomization("b", "./app", substitute={"APP": "b"}),
            "app/settings.yaml": configmap("${APP}-settings"),
        }
    )
    assert of_rule(run(files), RULE) == []


def _remote(name: str, secret: str) -> str:
    """A hub's Kustomization that applies `./spoke` to the cluster whose kubeconfig is
    in Secret `secret`."""
    return flux_kustomization(name, "./spoke") + (
        f"  kubeConfig:\n    secretRef:\n      name: {secret}\n"
    )


def test_a_hub_applies_the_same_object_to_each_of_its_spokes() -> None:
    files = repo(
        {
            "clusters/hub/staging.yaml": _remote("staging", "staging-kubeconfig"),
            "clusters/hub/production.yaml": _remote("production", "production-kubeconfig"),
            # also on the hub itself
            "clusters/hub/local.yaml": flux_kustomization("local", "./spoke"),
            "spoke/settings.yaml": configmap("settings"),
        },
        cluster="hub",
    )
    assert of_rule(run(files), RULE) == []


def test_two_kustomizations_applying_to_the_same_spoke_collide() -> None:
    files = repo(
        {
            "clusters/hub/a.yaml": _remote("a", "spoke-kubeconfig"),
            "clusters/hub/b.yaml": _remote("b", "spoke-kubeconfig"),
            "spoke/settings.yaml": configmap("settings"),
        },
        cluster="hub",
    )
    [finding] = of_rule(run(files), RULE)
    assert "on the cluster of Secret flux-system/spoke-kubeconfig" in finding.detail


def test_a_kustomization_whose_build_fails_applies_nothing_twice() -> None:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "clusters/prod/infra.yaml": flux_kustomization("infra", "./infra"),
            "apps/kustomization.yaml": kustomization(["../shared/settings.yaml"]),
            # the same file twice: kustomize fails this build, which applies nothing
            "infra/kustomization.yaml": kustomization(
                ["../shared/settings.yaml", "../shared/settings.yaml"]
            ),
            "shared/settings.yaml": configmap("settings"),
        }
    )
    rules = {f.rule for f in run(files)}
    assert RULE not in rules and "kustomize-duplicate-resource" in rules
