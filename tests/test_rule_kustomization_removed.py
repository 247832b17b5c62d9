"""kustomization-removed: deleting the kustomization file of a path Flux applies."""

from __future__ import annotations

from bot.analysis import Side, analyze
from tests.analysis_helpers import (
    chart_yaml,
    configmap,
    deployment,
    flux_kustomization,
    kustomization,
    of_rule,
    repo,
    tree,
)


def platform(**extra: str) -> dict[str, str | bytes]:
    files: dict[str, str] = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/kustomization.yaml": kustomization(["web.yaml"], extra="namespace: web\n"),
        "apps/web.yaml": deployment("web", "ghcr.io/example/web:1.0"),
        "apps/old/legacy.yaml": configmap("legacy"),
        "apps/ci.yaml": configmap("ci"),
    }
    files.update(extra)
    return repo(files)


def without(files: dict[str, str | bytes], path: str) -> dict[str, str | bytes]:
    return {p: c for p, c in files.items() if p != path}


def test_deleting_a_flux_path_kustomization_is_reported_on_the_deleted_file() -> None:
    base = platform()
    head = without(base, "apps/kustomization.yaml")
    [finding] = of_rule(analyze(tree(head), tree(base)).findings, "kustomization-removed")
    assert finding.path == "apps/kustomization.yaml" and finding.side is Side.BASE
    assert finding.introduced
    # Two files it did not list are applied now, and its namespace is gone.
    assert "2 of them new to the build" in finding.message
    assert "`apps/ci.yaml`" in finding.detail and "`apps/old/legacy.yaml`" in finding.detail
    assert "namespace" in finding.detail
    [related] = finding.related
    assert related.path == "clusters/prod/apps.yaml" and related.side is Side.HEAD


def test_a_deleted_index_under_chart_templates_makes_the_templates_raw() -> None:
    base = repo(
        {
            "clusters/prod/platform.yaml": flux_kustomization("platform", "./charts/p/templates"),
            "charts/p/Chart.yaml": chart_yaml("p", "1.0.0"),
            "charts/p/templates/kustomization.yaml": kustomization(["plain.yaml"]),
            "charts/p/templates/plain.yaml": configmap("plain"),
            "charts/p/templates/api.yaml": deployment("api", '"{{ .Values.registry }}/api:1"'),
        }
    )
    head = without(base, "charts/p/templates/kustomization.yaml")
    findings = analyze(tree(head), tree(base)).findings
    assert [f.path for f in of_rule(findings, "kustomization-removed")] == [
        "charts/p/templates/kustomization.yaml"
    ]
    assert [f.path for f in of_rule(findings, "helm-template-in-raw-manifest")] == [
        "charts/p/templates/api.yaml"
    ]


def test_a_kustomization_no_flux_path_reaches_is_not_reported() -> None:
    base = platform(
        **{"tools/kustomization.yaml": kustomization(["x.yaml"]), "tools/x.yaml": configmap("x")}
    )
    head = without(base, "tools/kustomization.yaml")
    assert of_rule(analyze(tree(head), tree(base)).findings, "kustomization-removed") == []


def test_deleting_the_flux_kustomization_with_its_path_is_not_this_rule() -> None:
    base = platform()
    head = without(without(base, "apps/kustomization.yaml"), "clusters/prod/apps.yaml")
    assert of_rule(analyze(tree(head), tree(base)).findings, "kustomization-removed") == []


def test_renaming_to_another_kustomization_spelling_is_not_a_removal() -> None:
    base = platform()
    head = without(base, "apps/kustomization.yaml")
    head["apps/kustomization.yml"] = base["apps/kustomization.yaml"]
    assert of_rule(analyze(tree(head), tree(base)).findings, "kustomization-removed") == []


def test_a_whole_tree_check_has_nothing_to_say() -> None:
    assert of_rule(analyze(tree(platform())).findings, "kustomization-removed") == []
