"""With a base revision: which findings the change introduced."""

from __future__ import annotations

from bot.analysis import ChangedFile, ChangeStatus, analyze
from tests.analysis_helpers import (
    chart_yaml,
    deployment,
    flux_kustomization,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    repo,
    run,
    service,
    tree,
)

OLD_BAD = "ghcr.io/Example/legacy:1.0"


def base() -> dict[str, str | bytes]:
    """A platform with one pre-existing finding (an upper-case image in legacy.yaml)."""
    return repo(
        {
            "clusters/prod/infrastructure.yaml": flux_kustomization(
                "infrastructure", "./infrastructure"
            ),
            "infrastructure/sources.yaml": helm_repository("internal-charts"),
            "infrastructure/platform.yaml": helm_release(
                "platform", version="1.1.12", source="internal-charts"
            ),
            "infrastructure/legacy.yaml": deployment("legacy", OLD_BAD),
            "charts/platform/Chart.yaml": chart_yaml("platform", "1.1.12"),
            "charts/platform/templates/api.yaml": deployment(
                "api", '"{{ .Values.registry }}/api:1.4.0"'
            ),
        }
    )


def head(**edits: str | None) -> dict[str, str | bytes]:
    files = base()
    for path, content in edits.items():
        path = path.replace("__", "/")
        if content is None:
            del files[path]
        else:
            files[path] = content
    return files


def test_unchanged_tree_reports_nothing_new() -> None:
    assert run(base(), base()) == []


def test_pre_existing_findings_are_marked_with_report_all() -> None:
    [finding] = run(base(), base(), report_all=True)
    assert finding.rule == "invalid-image-reference"
    assert finding.introduced is False


def test_without_base_everything_counts_as_introduced() -> None:
    [finding] = run(base())
    assert finding.introduced is True


def test_new_finding_on_a_changed_line() -> None:
    files = head(**{"infrastructure__web.yaml": deployment("web", "ghcr.io/Example/web:2.0")})
    [finding] = run(files, base())
    assert (finding.path, finding.introduced) == ("infrastructure/web.yaml", True)
    everything = run(files, base(), report_all=True)
    assert [(f.path, f.introduced) for f in everything] == [
        ("infrastructure/legacy.yaml", False),
        ("infrastructure/web.yaml", True),
    ]


def test_editing_the_line_of_an_old_finding_makes_it_new() -> None:
    files = head(
        **{"infrastructure__legacy.yaml": deployment("legacy", "ghcr.io/Example/legacy:1.1")}
    )
    [finding] = run(files, base())
    assert finding.path == "infrastructure/legacy.yaml"


def test_lines_inserted_above_do_not_make_an_old_finding_new() -> None:
    moved = "# Legacy service, owned by team-a.\n# Do not scale.\n" + deployment("legacy", OLD_BAD)
    files = head(**{"infrastructure__legacy.yaml": moved})
    assert run(files, base()) == []
    [finding] = run(files, base(), report_all=True)
    assert finding.line == line_of(moved, "image:")
    assert finding.introduced is False


def test_second_identical_finding_in_the_same_file_is_new() -> None:
    doubled = deployment("legacy", OLD_BAD) + "---\n" + deployment("legacy-worker", OLD_BAD)
    files = head(**{"infrastructure__legacy.yaml": doubled})
    [finding] = run(files, base())
    assert finding.rule == "invalid-image-reference"


def test_bumping_the_chart_makes_the_unchanged_helmrelease_wrong() -> None:
    files = head(**{"charts__platform__Chart.yaml": chart_yaml("platform", "1.1.13")})
    [finding] = run(files, base())
    assert (finding.rule, finding.path) == (
        "chart-version-mismatch",
        "infrastructure/platform.yaml",
    )
    assert finding.introduced is True


def test_renaming_the_helm_repository_makes_the_unchanged_helmrelease_dangle() -> None:
    files = head(**{"infrastructure__sources.yaml": helm_repository("platform-charts")})
    found = run(files, base())
    assert [(f.rule, f.path) for f in found] == [
        ("dangling-reference", "infrastructure/platform.yaml"),
        # the old HelmRepository leaves the cluster
        ("prune-deletes", "infrastructure/sources.yaml"),
    ]


def test_pointing_flux_at_chart_templates_makes_unchanged_templates_break() -> None:
    """The incident: the templates did not change, who reads them did."""
    files = head(
        **{
            "clusters__prod__platform.yaml": flux_kustomization(
                "platform-services", "./charts/platform/templates"
            )
        }
    )
    [finding] = run(files, base())
    assert (finding.rule, finding.path) == (
        "helm-template-in-raw-manifest",
        "charts/platform/templates/api.yaml",
    )


def test_unlisting_a_manifest_reports_it() -> None:
    before = head(
        **{
            "infrastructure__kustomization.yaml": kustomization(
                ["sources.yaml", "platform.yaml", "legacy.yaml", "service.yaml"]
            ),
            "infrastructure__service.yaml": service("legacy"),
        }
    )
    after = dict(before)
    after["infrastructure/kustomization.yaml"] = kustomization(
        ["sources.yaml", "platform.yaml", "legacy.yaml"]
    )
    unlisted, pruned = run(after, before)
    assert (unlisted.rule, unlisted.path) == (
        "kustomize-unlisted-manifest",
        "infrastructure/service.yaml",
    )
    # ... and the Service it applied is deleted from the cluster
    assert (pruned.rule, pruned.path, pruned.side.value) == (
        "prune-deletes",
        "infrastructure/service.yaml",
        "base",
    )


def test_fixing_a_finding_reports_nothing() -> None:
    files = head(
        **{"infrastructure__legacy.yaml": deployment("legacy", "ghcr.io/example/legacy:1.0")}
    )
    assert run(files, base()) == []
    assert run(files, base(), report_all=True) == []


def test_renamed_file_keeps_its_old_findings_old() -> None:
    files = head(**{"infrastructure__legacy.yaml": None})
    files["infrastructure/legacy-app.yaml"] = deployment("legacy", OLD_BAD)
    rename = [
        ChangedFile(
            "infrastructure/legacy-app.yaml", ChangeStatus.RENAMED, "infrastructure/legacy.yaml"
        )
    ]
    result = analyze(tree(files), tree(base()), changed=rename)
    assert result.findings == []
    result = analyze(tree(files), tree(base()), changed=rename, report_all=True)
    assert [(f.path, f.introduced) for f in result.findings] == [
        ("infrastructure/legacy-app.yaml", False)
    ]


def test_without_rename_information_a_moved_file_counts_as_new() -> None:
    files = head(**{"infrastructure__legacy.yaml": None})
    files["infrastructure/legacy-app.yaml"] = deployment("legacy", OLD_BAD)
    [finding] = run(files, base())
    assert finding.path == "infrastructure/legacy-app.yaml"


def test_consumers_of_reported_files_are_returned() -> None:
    files = head(**{"infrastructure__web.yaml": deployment("web", "ghcr.io/Example/web:2.0")})
    result = analyze(tree(files), tree(base()))
    assert result.consumers == {
        "infrastructure/web.yaml": [
            "Flux Kustomization flux-system/infrastructure (clusters/prod/infrastructure.yaml)"
        ]
    }
    assert result.errors == []


def test_an_identical_new_finding_above_an_old_one_is_the_new_one() -> None:
    old = deployment("legacy", OLD_BAD)
    twin = old.replace(
        "      containers:\n",
        f"      containers:\n        - name: sidecar\n          image: {OLD_BAD}\n",
    )
    head = {**base(), "infrastructure/legacy.yaml": twin}
    found = [
        (f.line, f.introduced)
        for f in run(head, base(), report_all=True)
        if f.path == "infrastructure/legacy.yaml"
    ]
    first = line_of(twin, OLD_BAD)
    assert found == [(first, True), (line_of(twin, OLD_BAD, occurrence=2), False)]
