"""chart-version-mismatch: references that ask for a version the in-repo chart is not."""

from __future__ import annotations

import pytest

from tests.analysis_helpers import (
    chart_yaml,
    flux_kustomization,
    git_repository,
    helm_release,
    helm_repository,
    line_of,
    oci_repository,
    of_rule,
    repo,
    run,
)

RULE = "chart-version-mismatch"
RELEASE = "infrastructure/podinfo.yaml"


def platform(chart_version: str = "1.1.13", **files: str) -> dict[str, str | bytes]:
    """A cluster with an `infrastructure` layer and the in-repo chart `podinfo`."""
    return repo(
        {
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "infrastructure/sources.yaml": helm_repository(
                "internal-charts", "https://charts.example.com/platform"
            )
            + "---\n"
            + git_repository("platform-charts", "https://github.com/example/platform-gitops"),
            "charts/podinfo/Chart.yaml": chart_yaml("podinfo", chart_version),
            "charts/podinfo/values.yaml": "replicaCount: 1\n",
            **files,
        }
    )


def release(version: str | None) -> str:
    return helm_release("podinfo", version=version, source="internal-charts")


def test_helmrelease_pinning_the_old_version_is_reported_with_a_suggestion() -> None:
    text = release("1.1.12")
    [finding] = run(platform("1.1.13", **{RELEASE: text}))
    assert (finding.rule, finding.path, finding.severity) == (RULE, RELEASE, "error")
    assert finding.line == line_of(text, 'version: "1.1.12"')
    assert "asks for chart podinfo `1.1.12`" in finding.message
    assert "charts/podinfo/Chart.yaml is 1.1.13" in finding.message
    assert finding.suggestion == '      version: "1.1.13"'


def test_suggestion_keeps_quoting_and_comment() -> None:
    text = release("1.1.12").replace('version: "1.1.12"', "version: 1.1.12  # pinned by CAB-123")
    [finding] = run(platform("1.1.13", **{RELEASE: text}))
    assert finding.suggestion == "      version: 1.1.13  # pinned by CAB-123"


@pytest.mark.parametrize(
    "constraint",
    [
        "1.1.13",
        "v1.1.13",
        "1.1.x",
        "1.1",
        "~1.1.0",
        "^1.0.0",
        ">=1 <2",
        ">=1.0.0, <2.0.0",
        "1.0.0 - 1.2.0",
        "0.x || 1.x",
        "*",
    ],
)
def test_matching_constraints_are_silent(constraint: str) -> None:
    assert run(platform("1.1.13", **{RELEASE: release(constraint)})) == []


def test_missing_version_means_latest_and_matches() -> None:
    assert run(platform("1.1.13", **{RELEASE: release(None)})) == []


@pytest.mark.parametrize(
    "constraint",
    ["1.1.12", "1.0.x", "~1.0.0", "^2.0.0", ">=1 <1.1.13", "<1.1.13", "1.1.13-rc.1"],
)
def test_non_matching_constraints_are_reported(constraint: str) -> None:
    findings = run(platform("1.1.13", **{RELEASE: release(constraint)}))
    assert [(f.rule, f.path) for f in findings] == [(RULE, RELEASE)]
    assert f"`{constraint}`" in findings[0].message


def test_prerelease_chart_needs_a_prerelease_range() -> None:
    assert of_rule(run(platform("1.2.0-rc.1", **{RELEASE: release("1.2.x")})), RULE)
    assert of_rule(run(platform("1.2.0-rc.1", **{RELEASE: release("~1.2.0")})), RULE)
    assert run(platform("1.2.0-rc.1", **{RELEASE: release(">=1.2.0-0")})) == []
    assert run(platform("1.2.0-rc.1", **{RELEASE: release("~1.2.0-0")})) == []
    assert run(platform("1.2.0-rc.1", **{RELEASE: release("1.2.0-rc.1")})) == []


def test_git_sourced_helmrelease_is_not_checked() -> None:
    # Flux ignores spec.chart.spec.version for GitRepository and Bucket sources.
    text = helm_release(
        "podinfo",
        "./charts/podinfo",
        version="0.0.1",
        source_kind="GitRepository",
        source="platform-charts",
    )
    assert run(platform("1.1.13", **{RELEASE: text})) == []


def test_chart_from_another_name_is_not_matched() -> None:
    text = helm_release("redis", "redis", version="18.x", source="internal-charts")
    assert run(platform("1.1.13", **{"infrastructure/redis.yaml": text})) == []


def test_helmrelease_version_from_postbuild_substitution_is_not_guessed() -> None:
    files = platform(**{RELEASE: release("${PODINFO_VERSION}")})
    files["clusters/prod/infrastructure.yaml"] = flux_kustomization(
        "infrastructure", "./infrastructure", substitute={"PODINFO_VERSION": "1.1.13"}
    )
    assert run(files) == []
    files[RELEASE] = release("${PODINFO_VERSION:=1.1.13}")
    assert run(files) == []


# --- OCIRepository ---------------------------------------------------------------------


def oci_release(
    *, tag: str | None = None, semver: str | None = None, digest: str | None = None
) -> str:
    return (
        oci_repository(
            "podinfo", "oci://ghcr.io/example/charts/podinfo", tag=tag, semver=semver, digest=digest
        )
        + "---\n"
        + helm_release("podinfo", chart_ref=("OCIRepository", "podinfo"))
    )


def test_oci_tag_matching_with_underscore_for_plus_is_silent() -> None:
    files = platform(
        "1.1.13+build.7", **{"infrastructure/podinfo.yaml": oci_release(tag="1.1.13_build.7")}
    )
    assert run(files) == []


def test_oci_tag_with_old_version_is_reported_and_suggests_the_tag_spelling() -> None:
    text = oci_release(tag="1.1.12_build.6")
    files = platform("1.1.13+build.7", **{"infrastructure/podinfo.yaml": text})
    [finding] = run(files)
    assert (finding.rule, finding.line) == (RULE, line_of(text, "tag:"))
    assert "OCIRepository podinfo" in finding.message
    # OCI tags cannot hold `+`: Helm pushes 1.1.13+build.7 as 1.1.13_build.7.
    assert "`1.1.13_build.7`" in finding.message
    assert finding.suggestion == '    tag: "1.1.13_build.7"'


def test_oci_tag_differing_only_in_build_metadata_is_reported() -> None:
    files = platform(
        "1.1.13+build.7", **{"infrastructure/podinfo.yaml": oci_release(tag="1.1.13_build.6")}
    )
    assert [f.rule for f in run(files)] == [RULE]


def test_oci_semver_range() -> None:
    ok = platform("1.1.13", **{"infrastructure/podinfo.yaml": oci_release(semver="1.1.x")})
    assert run(ok) == []
    text = oci_release(semver=">=1.2.0")
    bad = platform("1.1.13", **{"infrastructure/podinfo.yaml": text})
    [finding] = run(bad)
    assert (finding.rule, finding.line) == (RULE, line_of(text, "semver:"))


def test_oci_latest_digest_and_substituted_tags_are_silent() -> None:
    for ref in (
        {"tag": "latest"},
        {"digest": "sha256:" + "a" * 64},
        {"tag": "${PODINFO_VERSION}"},
        {"semver": "${PODINFO_RANGE}"},
    ):
        files = platform("1.1.13", **{"infrastructure/podinfo.yaml": oci_release(**ref)})
        assert run(files) == [], ref


def test_oci_repository_that_is_not_a_helm_chart_is_not_checked() -> None:
    # Same name, but a Flux Kustomization artifact: no chartRef and no Helm layer.
    text = oci_repository(
        "podinfo", "oci://ghcr.io/example/manifests/podinfo", tag="0.0.1", helm_layer=False
    )
    assert run(platform("1.1.13", **{"infrastructure/podinfo.yaml": text})) == []


# --- umbrella charts ---------------------------------------------------------------------


def umbrella(version: str, repository: str = "file://../podinfo") -> str:
    return chart_yaml("platform", "2.0.0", dependencies=[("podinfo", version, repository)])


def test_umbrella_file_dependency_with_old_version_is_reported() -> None:
    text = umbrella("1.1.12")
    [finding] = run(platform("1.1.13", **{"charts/platform/Chart.yaml": text}))
    assert (finding.rule, finding.path) == (RULE, "charts/platform/Chart.yaml")
    assert finding.line == line_of(text, 'version: "1.1.12"')
    assert "dependency podinfo of chart platform" in finding.message
    assert finding.suggestion == '    version: "1.1.13"'


@pytest.mark.parametrize("constraint", ["1.1.13", "~1.1.0", "^1", ">=1.1.0 <2.0.0"])
def test_umbrella_file_dependency_in_range_is_silent(constraint: str) -> None:
    files = platform("1.1.13", **{"charts/platform/Chart.yaml": umbrella(constraint)})
    assert run(files) == []


def test_umbrella_file_dependency_follows_the_path_not_the_name() -> None:
    # The dependency is the chart at ../podinfo-fork, whatever other chart is named podinfo.
    files = platform(
        "1.1.13",
        **{
            "charts/podinfo-fork/Chart.yaml": chart_yaml("podinfo", "0.9.0"),
            "charts/platform/Chart.yaml": umbrella("0.9.x", "file://../podinfo-fork"),
        },
    )
    assert run(files) == []
    files["charts/platform/Chart.yaml"] = umbrella("1.1.13", "file://../podinfo-fork")
    [finding] = run(files)
    assert "charts/podinfo-fork/Chart.yaml is 0.9.0" in finding.message


def test_umbrella_dependency_by_name_from_the_repositorys_own_registry_is_reported() -> None:
    # The HelmRelease shows that the in-repo podinfo is published to charts.example.com.
    files = platform(
        "1.1.13",
        **{
            RELEASE: release("1.1.13"),
            "charts/platform/Chart.yaml": umbrella("1.1.12", "https://charts.example.com/platform"),
        },
    )
    [finding] = run(files)
    assert (finding.rule, finding.path) == (RULE, "charts/platform/Chart.yaml")


def test_umbrella_dependency_by_name_from_another_registry_is_another_chart() -> None:
    files = platform(
        "1.1.13",
        **{
            RELEASE: release("1.1.13"),
            "charts/platform/Chart.yaml": umbrella(
                "6.7.1", "https://stefanprodan.github.io/podinfo"
            ),
        },
    )
    assert run(files) == []


# --- whose chart: the repository's own, or a copy of someone else's -------------------------


def upstream(
    release_version: str,
    copy_version: str,
    copy_dir: str = "charts/grafana",
    url: str = "https://grafana.github.io/helm-charts",
) -> dict[str, str | bytes]:
    """A copy of upstream's grafana chart kept in the repository (for reading, or patched
    for a test cluster) beside a HelmRelease that installs upstream's grafana."""
    return platform(
        "1.1.13",
        **{
            "infrastructure/grafana.yaml": helm_repository("grafana", url)
            + "---\n"
            + helm_release("grafana", version=release_version, source="grafana"),
            f"{copy_dir}/Chart.yaml": chart_yaml("grafana", copy_version),
        },
    )


def test_a_copy_of_an_upstream_chart_is_not_the_chart_its_release_installs() -> None:
    assert run(upstream("7.3.0", "6.0.0")) == []
    # The copy was in step; Renovate bumps upstream's version: nothing to say either.
    assert run(upstream("7.3.1", "7.3.0"), upstream("7.3.0", "7.3.0")) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://charts.bitnami.com/bitnami",
        "oci://registry-1.docker.io/bitnamicharts",
        "oci://ghcr.io/grafana/helm-charts",
        "https://grafana.github.io/helm-charts",
    ],
)
def test_releases_from_someone_elses_registry_are_not_compared(url: str) -> None:
    assert run(upstream("7.3.1", "7.3.0", url=url)) == []


def test_a_vendored_copy_is_a_copy_whatever_the_registry() -> None:
    files = upstream("7.3.1", "7.3.0", "vendor/grafana", url="https://charts.example.com/mirror")
    assert run(files) == []
    # The same chart under charts/ of this repository, served by its private registry,
    # is this repository's chart.
    files = upstream("7.3.1", "7.3.0", url="https://charts.example.com/platform")
    assert [(f.rule, f.path) for f in run(files)] == [(RULE, "infrastructure/grafana.yaml")]


def test_the_repositorys_own_space_on_a_hosting_service_serves_its_charts() -> None:
    # The repository is github.com/example/platform-gitops (its flux-system source).
    files = upstream("7.3.1", "7.3.0", url="oci://ghcr.io/example/charts")
    assert [(f.rule, f.path) for f in run(files)] == [(RULE, "infrastructure/grafana.yaml")]
    files = upstream("7.3.1", "7.3.0", url="https://example.github.io/charts")
    assert [(f.rule, f.path) for f in run(files)] == [(RULE, "infrastructure/grafana.yaml")]


def test_own_chart_and_an_upstream_chart_of_the_same_name() -> None:
    files = platform(
        "1.1.13",
        **{
            "charts/redis/Chart.yaml": chart_yaml("redis", "1.0.0"),
            "infrastructure/redis.yaml": helm_repository("own", "oci://ghcr.io/example/charts")
            + "---\n"
            + helm_repository("bitnami", "oci://registry-1.docker.io/bitnamicharts")
            + "---\n"
            + helm_release("cache", "redis", version="1.0.0", source="own")
            + "---\n"
            + helm_release("sessions", "redis", version="18.1.0", source="bitnami"),
        },
    )
    assert run(files) == []
    files["charts/redis/Chart.yaml"] = chart_yaml("redis", "1.0.1")
    [finding] = run(files)
    assert "HelmRelease cache" in finding.message


def test_the_incident_is_reported_in_a_whole_tree_check() -> None:
    # No base to compare with: the repository as it stands deploys the wrong version.
    [finding] = run(platform("1.1.13", **{RELEASE: release("1.1.12")}))
    assert (finding.rule, finding.path, finding.introduced) == (RULE, RELEASE, True)
