"""Files that no cluster applies break nothing: their errors are notices."""

from __future__ import annotations

from bot.analysis import Severity
from tests.analysis_helpers import (
    chart_yaml,
    deployment,
    flux_kustomization,
    kustomization,
    repo,
    run,
)


def platform(**extra: str) -> dict[str, str | bytes]:
    files = {
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
        "apps/kustomization.yaml": kustomization(["web"]),
        "apps/web/kustomization.yaml": kustomization(["deployment.yaml"]),
        "apps/web/deployment.yaml": deployment("web", "ghcr.io/example/web:1.0"),
    }
    files.update(extra)
    return repo(files)


def test_an_archived_app_gets_notices_not_errors() -> None:
    files = platform(
        **{
            ".archive/old/kustomization.yaml": kustomization(["deployment.yaml", "gone.yaml"]),
            ".archive/old/deployment.yaml": deployment("old", "ghcr.io/Example/Old:1"),
        }
    )
    found = {(f.rule, f.path): f for f in run(files)}
    image = found[("invalid-image-reference", ".archive/old/deployment.yaml")]
    missing = found[("kustomize-missing-resource", ".archive/old/kustomization.yaml")]
    for f in (image, missing):
        assert f.severity is Severity.NOTICE
        assert f.message.endswith(" No cluster applies this file yet.")
        assert "Nothing in this repository applies this file" in f.detail


def test_an_app_its_parent_no_longer_lists_gets_notices() -> None:
    files = platform(
        **{
            "apps/legacy/kustomization.yaml": kustomization(["deployment.yaml"]),
            "apps/legacy/deployment.yaml": deployment("legacy", "ghcr.io/Example/Legacy:1"),
        }
    )
    [finding] = [f for f in run(files) if f.rule == "invalid-image-reference"]
    assert finding.severity is Severity.NOTICE


def test_the_same_mistake_in_an_applied_file_is_an_error() -> None:
    files = platform(**{"apps/web/deployment.yaml": deployment("web", "ghcr.io/Example/W:1")})
    [finding] = [f for f in run(files) if f.rule == "invalid-image-reference"]
    assert finding.severity is Severity.ERROR


def test_without_clusters_nothing_is_downgraded() -> None:
    files = {
        "apps/kustomization.yaml": kustomization(["deployment.yaml"]),
        "apps/deployment.yaml": deployment("web", "ghcr.io/Example/W:1"),
    }
    [finding] = [f for f in run(files) if f.rule == "invalid-image-reference"]
    assert finding.severity is Severity.ERROR


def test_a_chart_keeps_its_errors_helm_reads_it_through_a_helmrelease() -> None:
    files = platform(
        **{
            "charts/c/Chart.yaml": chart_yaml("c", "1.0.0"),
            "charts/c/templates/kustomization.yaml": kustomization(["x.yaml"]),
        }
    )
    [finding] = [f for f in run(files) if f.rule == "kustomization-in-chart-templates"]
    assert finding.severity is Severity.ERROR
