"""chart-not-found: a chart asked for from the repository's own registry that no
in-repository chart is."""

from __future__ import annotations

import pytest

from tests.analysis_helpers import (
    chart_yaml,
    flux_kustomization,
    helm_release,
    helm_repository,
    line_of,
    oci_repository,
    of_rule,
    repo,
    run,
)

RULE = "chart-not-found"
OWN = "oci://ghcr.io/example/charts"


def platform(**files: str) -> dict[str, str | bytes]:
    """The repository publishes `podinfo` and `webapp` to ghcr.io/example/charts, and the
    `podinfo` HelmRelease deploys it from there."""
    return repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/sources.yaml": helm_repository("own", OWN)
            + "---\n"
            + helm_repository("bitnami", "https://charts.bitnami.com/bitnami"),
            "apps/podinfo.yaml": helm_release("podinfo", version="1.0.0", source="own"),
            "charts/podinfo/Chart.yaml": chart_yaml("podinfo", "1.0.0"),
            "charts/webapp/Chart.yaml": chart_yaml("webapp", "2.0.0"),
            **files,
        }
    )


def findings(files: dict[str, str | bytes]) -> list[tuple[str, int, str]]:
    """Each finding's place, and its message with its detail."""
    return [(f.path, f.line, f"{f.message}\n{f.detail}") for f in of_rule(run(files), RULE)]


def test_a_renamed_chart_is_reported_with_its_new_name() -> None:
    release = helm_release("web", "web-app", version="2.0.0", source="own")
    [(path, line, message)] = findings(platform(**{"apps/web.yaml": release}))
    assert (path, line) == ("apps/web.yaml", line_of(release, "chart: web-app"))
    assert "asks ghcr.io/example/charts for chart web-app" in message
    assert "The closest in-repository charts: webapp." in message
    [finding] = of_rule(run(platform(**{"apps/web.yaml": release})), RULE)
    assert finding.severity == "warning"


def test_charts_that_exist_and_other_registries_are_silent() -> None:
    files = platform(
        **{
            "apps/web.yaml": helm_release("web", "webapp", version="2.0.0", source="own"),
            "apps/redis.yaml": helm_release("redis", version="18.x", source="bitnami"),
        }
    )
    assert findings(files) == []


def test_no_finding_when_nothing_is_deployed_from_the_registry() -> None:
    # The same registry and a chart that is not in the repository, but no reference
    # deploys an in-repository chart from it: nothing says the repository publishes there.
    files = platform(
        **{
            "apps/podinfo.yaml": helm_release("podinfo", version="1.0.0", source="bitnami"),
            "apps/web.yaml": helm_release("web", "web-app", version="2.0.0", source="own"),
        }
    )
    assert findings(files) == []


def test_someone_elses_space_on_the_same_host_is_not_the_repositorys() -> None:
    files = platform(
        **{
            "apps/sources.yaml": helm_repository("own", OWN)
            + "---\n"
            + helm_repository("grafana", "oci://ghcr.io/grafana/helm-charts"),
            "apps/grafana.yaml": helm_release("grafana", version="8.x", source="grafana"),
        }
    )
    assert findings(files) == []


def test_an_oci_repository_and_an_umbrella_dependency() -> None:
    oci = oci_repository("web-chart", f"{OWN}/web-app", tag="2.0.0")
    umbrella = chart_yaml(
        "stack",
        "0.1.0",
        dependencies=[
            ("podinfo-v2", "1.0.0", OWN),
            ("redis", "18.x", "https://charts.bitnami.com/bitnami"),
        ],
    )
    files = platform(**{"apps/web.yaml": oci, "charts/stack/Chart.yaml": umbrella})
    got = findings(files)
    assert [(p, line) for p, line, _ in got] == [
        ("apps/web.yaml", line_of(oci, "url:")),
        ("charts/stack/Chart.yaml", line_of(umbrella, "- name: podinfo-v2")),
    ]
    assert "OCIRepository web-chart" in got[0][2]
    assert "closest in-repository charts: webapp" in got[0][2]
    assert "dependency podinfo-v2 of chart stack" in got[1][2] and "podinfo" in got[1][2]


def test_a_removed_chart_that_is_still_asked_for() -> None:
    files = platform(**{"apps/web.yaml": helm_release("web", "webapp", source="own")})
    del files["charts/webapp/Chart.yaml"]
    [(_, _, message)] = findings(files)
    assert "chart webapp" in message and "deployed from it: podinfo" in message


@pytest.mark.parametrize("chart", ["${APP_CHART}", "web-app"])
def test_unknown_names_are_not_guessed(chart: str) -> None:
    files = platform(**{"apps/web.yaml": helm_release("web", chart, source="own")})
    if chart == "web-app":
        # A Chart.yaml that does not parse: its name is not known, so nothing is missing.
        files["charts/broken/Chart.yaml"] = "name: [web-app\n"
    assert findings(files) == []


def test_a_rename_in_the_change_is_the_related_cause_and_is_introduced() -> None:
    release = helm_release("web", "webapp", version="2.0.0", source="own")
    base = platform(**{"apps/web.yaml": release})
    head = dict(base)
    renamed = chart_yaml("web-app", "2.0.0")
    head["charts/webapp/Chart.yaml"] = renamed
    [finding] = of_rule(run(head, base), RULE)
    assert finding.introduced
    assert [(r.path, r.line) for r in finding.related] == [
        ("charts/webapp/Chart.yaml", line_of(renamed, "name: web-app"))
    ]
    # Already wrong at the base: the same reference is not new.
    assert of_rule(run(head, head), RULE) == []


def single_chart(name: str, *, keep: bool = True) -> dict[str, str | bytes]:
    files = repo(
        {
            "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
            "apps/sources.yaml": helm_repository("own", "https://charts.example.com/platform"),
            "apps/podinfo.yaml": helm_release("podinfo", version="1.0.0", source="own"),
            f"charts/{name}/Chart.yaml": chart_yaml(name, "1.0.0"),
        }
    )
    if not keep:
        del files[f"charts/{name}/Chart.yaml"]
    return files


def test_renaming_the_only_chart_deployed_from_the_registry() -> None:
    base = single_chart("podinfo")
    head = single_chart("podinfo")
    head["charts/podinfo/Chart.yaml"] = chart_yaml("podinfo-app", "1.0.0")
    [finding] = of_rule(run(head, base), RULE)
    assert (finding.path, finding.line) == (
        "apps/podinfo.yaml",
        line_of(str(head["apps/podinfo.yaml"]), "chart: podinfo"),
    )
    assert "this change leaves no chart of the repository named" in finding.message
    assert "closest in-repository charts: podinfo-app" in finding.detail
    assert finding.introduced
    assert [(r.path, r.side.value) for r in finding.related] == [
        ("charts/podinfo/Chart.yaml", "head")
    ]
    # The head alone does not show that the registry is this repository's.
    assert of_rule(run(head), RULE) == []


def test_removing_the_only_chart_points_at_the_deleted_file() -> None:
    base = single_chart("podinfo")
    head = single_chart("podinfo", keep=False)
    head["charts/other/Chart.yaml"] = chart_yaml("other", "1.0.0")
    [finding] = of_rule(run(head, base), RULE)
    assert [(r.path, r.line, r.side.value) for r in finding.related] == [
        ("charts/podinfo/Chart.yaml", 2, "base")
    ]
    # Nothing changes for a registry that the head still shows is the repository's.
    assert of_rule(run(base, base), RULE) == []
