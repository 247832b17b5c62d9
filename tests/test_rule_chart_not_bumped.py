"""chart-not-bumped: chart content changed, version did not, and it is deployed by version."""

from __future__ import annotations

from bot.analysis import ChangedFile, ChangeStatus, analyze
from tests.analysis_helpers import (
    chart_yaml,
    deployment,
    flux_kustomization,
    git_repository,
    helm_release,
    helm_repository,
    line_of,
    repo,
    run,
    tree,
)

RULE = "chart-not-bumped"
CHART = "charts/podinfo/Chart.yaml"


def base_files(release: str | None = None) -> dict[str, str | bytes]:
    return repo(
        {
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "infrastructure/sources.yaml": helm_repository("internal-charts"),
            "infrastructure/podinfo.yaml": release
            or helm_release("podinfo", version="1.1.x", source="internal-charts"),
            CHART: chart_yaml("podinfo", "1.1.12"),
            "charts/podinfo/.helmignore": "*.md\nci/\n",
            "charts/podinfo/README.md": "# podinfo\n",
            "charts/podinfo/ci/lint-values.yaml": "replicaCount: 3\n",
            "charts/podinfo/values.yaml": "replicaCount: 1\n",
            "charts/podinfo/templates/deployment.yaml": deployment(
                "podinfo", '"ghcr.io/stefanprodan/podinfo:{{ .Chart.AppVersion }}"'
            ),
        }
    )


def changed(base: dict[str, str | bytes], **edits: str | None) -> dict[str, str | bytes]:
    head = dict(base)
    for path, content in edits.items():
        path = path.replace("__", "/")
        if content is None:
            del head[path]
        else:
            head[path] = content
    return head


def test_values_change_without_bump_is_reported_on_the_version_line() -> None:
    base = base_files()
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    [finding] = run(head, base)
    assert (finding.rule, finding.path, finding.severity) == (RULE, CHART, "warning")
    assert finding.line == line_of(str(head[CHART]), "version: 1.1.12")
    assert "Chart podinfo changed but its version is still 1.1.12" in finding.message
    assert "`values.yaml`" in finding.detail
    assert "HelmRelease podinfo" in finding.detail
    assert finding.suggestion == "version: 1.1.13"


def test_change_with_bump_is_silent() -> None:
    base = base_files()
    head = changed(
        base,
        **{
            "charts__podinfo__values.yaml": "replicaCount: 2\n",
            "charts__podinfo__Chart.yaml": chart_yaml("podinfo", "1.1.13"),
        },
    )
    assert run(head, base) == []


def test_helmignored_changes_are_silent() -> None:
    base = base_files()
    head = changed(
        base,
        **{
            "charts__podinfo__README.md": "# podinfo\n\nMore docs.\n",
            "charts__podinfo__ci__lint-values.yaml": "replicaCount: 5\n",
        },
    )
    assert run(head, base) == []


def test_removed_template_counts_as_a_change() -> None:
    base = base_files()
    head = changed(base, **{"charts__podinfo__templates__deployment.yaml": None})
    [finding] = run(head, base)
    assert "`templates/deployment.yaml`" in finding.detail


def test_without_base_nothing_is_reported() -> None:
    assert run(base_files()) == []


def test_git_sourced_chart_with_default_strategy_is_reported() -> None:
    release = helm_release(
        "podinfo", "./charts/podinfo", source_kind="GitRepository", source="flux-system"
    )
    base = base_files(release)
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    [finding] = run(head, base)
    assert finding.rule == RULE
    assert "does not roll out" in finding.message


def test_git_sourced_chart_with_revision_strategy_is_silent() -> None:
    release = helm_release(
        "podinfo",
        "./charts/podinfo",
        source_kind="GitRepository",
        source="flux-system",
        reconcile_strategy="Revision",
    )
    base = base_files(release)
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    assert run(head, base) == []


def test_chart_deployed_by_nothing_is_silent() -> None:
    base = base_files()
    del base["infrastructure/podinfo.yaml"]
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    assert run(head, base) == []


def test_new_chart_is_silent() -> None:
    base = base_files()
    base = {k: v for k, v in base.items() if not k.startswith("charts/")}
    head = base_files()
    assert run(head, base) == []


def test_prerelease_version_suggests_the_release() -> None:
    base = base_files()
    base[CHART] = chart_yaml("podinfo", "1.2.0-rc.1")
    base["infrastructure/podinfo.yaml"] = helm_release(
        "podinfo", version=">=1.2.0-0", source="internal-charts"
    )
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    [finding] = run(head, base)
    assert finding.suggestion == "version: 1.2.0"


def test_file_renamed_out_of_the_chart_counts() -> None:
    base = base_files()
    head = dict(base)
    head["docs/deployment-example.yaml"] = head.pop("charts/podinfo/templates/deployment.yaml")
    result = analyze(
        tree(head),
        tree(base),
        changed=[
            ChangedFile(
                "docs/deployment-example.yaml",
                ChangeStatus.RENAMED,
                "charts/podinfo/templates/deployment.yaml",
            )
        ],
    )
    assert [f.rule for f in result.findings] == [RULE]
    assert "`templates/deployment.yaml`" in result.findings[0].detail


def test_chart_of_another_git_repository_is_not_this_chart() -> None:
    # ./charts/podinfo of stefanprodan/podinfo, not the vendored copy in this repository.
    release = helm_release(
        "podinfo", "./charts/podinfo", source_kind="GitRepository", source="podinfo"
    )
    base = base_files(release)
    base["infrastructure/podinfo-source.yaml"] = git_repository(
        "podinfo", "https://github.com/stefanprodan/podinfo"
    )
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    assert run(head, base) == []


def test_second_git_repository_for_this_repository_counts() -> None:
    # Same repository as flux-system (another name, e.g. for a different interval).
    release = helm_release(
        "podinfo", "./charts/podinfo", source_kind="GitRepository", source="platform-charts"
    )
    base = base_files(release)
    base["infrastructure/platform-charts.yaml"] = git_repository(
        "platform-charts", "https://github.com/example/platform-gitops.git"
    )
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    assert [f.rule for f in run(head, base)] == [RULE]


def test_release_without_a_version_still_deploys_the_chart_by_version() -> None:
    # No `version` means the newest: a change that keeps the version never ships.
    for release in (
        helm_release("podinfo", source="internal-charts"),
        helm_release("podinfo", version="*", source="internal-charts"),
    ):
        base = base_files(release)
        head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
        assert [(f.rule, f.path) for f in run(head, base)] == [(RULE, CHART)]


def test_a_copy_of_an_upstream_chart_is_not_deployed_by_its_namesakes_release() -> None:
    upstream = helm_repository("podinfo", "oci://ghcr.io/stefanprodan/charts")
    base = base_files(upstream + "---\n" + helm_release("podinfo", version="6.x", source="podinfo"))
    head = changed(base, **{"charts__podinfo__values.yaml": "replicaCount: 2\n"})
    assert run(head, base) == []
