"""What a reviewer reads: short messages with their reasoning in `detail`, one finding for a
deprecated apiVersion however many objects use it, a commented-out kustomization entry as
a notice, and a pin of a chart version the repository published as a lag, not an error."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from bot.__main__ import main as bot_main
from bot.analysis import Severity, analyze
from bot.analysis.findings import Finding, Location, Side
from bot.report import checkrun, formats
from tests.analysis_helpers import (
    assert_readable,
    chart_yaml,
    dedent,
    flux_kustomization,
    gotk_sync,
    helm_release,
    helm_repository,
    kustomization,
    line_of,
    message_problems,
    tree,
)
from tests.fakegithub.gitrepo import GitRepo

DEPRECATED = "flux-schema"
UNLISTED = "kustomize-unlisted-manifest"
MISMATCH = "chart-version-mismatch"


def check(repo: Path, *args: str) -> tuple[int, list[dict[str, object]], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = bot_main(["check", "--repo", str(repo), *args])
    if "--format" in args:
        return code, json.loads(out.getvalue())["findings"], err.getvalue()
    return code, [], out.getvalue()


def cluster() -> dict[str, str]:
    """A bootstrapped cluster that does not say which Flux it runs (no
    gotk-components.yaml): an apiVersion an older Flux served is a warning."""
    return {
        "clusters/prod/flux-system/gotk-sync.yaml": gotk_sync(),
        "clusters/prod/flux-system/kustomization.yaml": kustomization(["gotk-sync.yaml"]),
        "clusters/prod/apps.yaml": flux_kustomization("apps", "./apps"),
    }


def old_helm_repository(name: str) -> str:
    return helm_repository(name).replace(
        "source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2"
    )


def test_a_hundred_objects_of_a_deprecated_api_version_are_one_finding(tmp_path: Path) -> None:
    files = cluster()
    names = [f"repo-{i:03}" for i in range(100)]
    files["apps/kustomization.yaml"] = kustomization([f"{n}.yaml" for n in names])
    files.update({f"apps/{n}.yaml": old_helm_repository(n) for n in names})
    repo = GitRepo(tmp_path / "repo")
    repo.commit("a hundred HelmRepositories of v1beta2", files)
    code, findings, _ = check(repo.path, "--format", "json")
    assert code == 0
    [finding] = [f for f in findings if f["rule"] == DEPRECATED]
    assert (finding["severity"], finding["path"], finding["line"]) == (
        "warning",
        "apps/repo-000.yaml",
        1,
    )
    message = str(finding["message"])
    assert "`source.toolkit.fluxcd.io/v1beta2` HelmRepository" in message
    assert "100 HelmRepository objects use it" in message
    related = finding["related"]
    assert isinstance(related, list) and len(related) == 99
    assert {(r["path"], r["line"]) for r in related} == {(f"apps/{n}.yaml", 1) for n in names[1:]}
    assert "apps/repo-099.yaml:1" in str(finding["detail"])
    assert "set `flux_version`" in str(finding["detail"])
    assert_readable(findings)


def test_deprecations_group_per_kind_and_api_version(tmp_path: Path) -> None:
    files = cluster()
    old_release = helm_release("web", version="1.0.0").replace(
        "helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta2"
    )
    files["apps/kustomization.yaml"] = kustomization(["a.yaml", "b.yaml", "web.yaml"])
    files["apps/a.yaml"] = old_helm_repository("charts")
    files["apps/b.yaml"] = old_helm_repository("more")
    files["apps/web.yaml"] = old_release
    repo = GitRepo(tmp_path / "repo")
    repo.commit("two kinds", files)
    _, findings, _ = check(repo.path, "--format", "json")
    grouped = sorted(
        (str(f["path"]), str(f["message"])) for f in findings if f["rule"] == DEPRECATED
    )
    assert [p for p, _ in grouped] == ["apps/a.yaml", "apps/web.yaml"]
    assert "2 HelmRepository objects use it" in grouped[0][1]
    assert "this object uses it" in grouped[1][1]


def test_a_suppressed_object_leaves_the_group_not_the_group_with_it(tmp_path: Path) -> None:
    files = cluster()
    files["apps/kustomization.yaml"] = kustomization(["a.yaml", "b.yaml", "c.yaml"])
    files["apps/a.yaml"] = (
        "# flux-review: ignore flux-schema -- migrated with the next Flux upgrade\n"
        + old_helm_repository("charts")
    )
    files["apps/b.yaml"] = old_helm_repository("more")
    files["apps/c.yaml"] = old_helm_repository("most")
    repo = GitRepo(tmp_path / "repo")
    repo.commit("one silenced", files)
    _, findings, _ = check(repo.path, "--format", "json")
    [finding] = [f for f in findings if f["rule"] == DEPRECATED]
    assert finding["path"] == "apps/b.yaml"
    assert "2 HelmRepository objects use it" in str(finding["message"])


def test_a_pull_request_adding_an_object_of_a_deprecated_version_reports_the_group(
    tmp_path: Path,
) -> None:
    files = cluster()
    files["apps/kustomization.yaml"] = kustomization(["a.yaml"])
    files["apps/a.yaml"] = old_helm_repository("charts")
    repo = GitRepo(tmp_path / "repo")
    base = repo.commit("one", files)
    repo.write(
        {
            "apps/kustomization.yaml": kustomization(["a.yaml", "b.yaml"]),
            "apps/b.yaml": old_helm_repository("more"),
        }
    )
    repo.commit("another")
    _, findings, _ = check(repo.path, "--base", base, "--format", "json")
    [finding] = [f for f in findings if f["rule"] == DEPRECATED]
    assert finding["introduced"] and "2 HelmRepository objects use it" in str(finding["message"])
    # A change elsewhere does not report it again.
    base = repo.head()
    repo.write({"README.md": "docs\n"})
    repo.commit("docs")
    _, findings, _ = check(repo.path, "--base", base, "--format", "json")
    assert [f for f in findings if f["rule"] == DEPRECATED] == []


def test_a_commented_out_entry_is_a_notice_that_names_the_line(tmp_path: Path) -> None:
    files = cluster()
    listing = dedent(
        """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources:
          - ./web.yaml
          # - ./grafana.yaml
          # - ./dashboards
        """
    )
    files["apps/kustomization.yaml"] = listing
    files["apps/web.yaml"] = helm_repository("web")
    files["apps/grafana.yaml"] = helm_repository("grafana")
    files["apps/dashboards/board.yaml"] = helm_repository("board")
    files["apps/forgotten.yaml"] = helm_repository("forgotten")
    repo = GitRepo(tmp_path / "repo")
    repo.commit("commented entries", files)
    _, findings, _ = check(repo.path, "--format", "json")
    got = {
        str(f["path"]): (f["severity"], str(f["message"]), f["related"])
        for f in findings
        if f["rule"] == UNLISTED
    }
    assert set(got) == {"apps/grafana.yaml", "apps/dashboards/board.yaml", "apps/forgotten.yaml"}
    severity, message, related = got["apps/grafana.yaml"]
    assert severity == "notice"
    assert message == (
        "`apps/kustomization.yaml` comments out `./grafana.yaml` on line 5, "
        "so kustomize does not apply this manifest."
    )
    assert related == [
        {
            "path": "apps/kustomization.yaml",
            "line": line_of(listing, "# - ./grafana.yaml"),
            "side": "head",
            "message": "`./grafana.yaml` commented out",
        }
    ]
    assert got["apps/dashboards/board.yaml"][0] == "notice"
    assert "`./dashboards` on line 6" in got["apps/dashboards/board.yaml"][1]
    # Not commented out, just not listed: still the warning.
    assert got["apps/forgotten.yaml"][0] == "warning"
    assert_readable(findings)


# --- chart versions from history ------------------------------------------------------


def chart_repo(version: str, pinned: str) -> dict[str, str]:
    files = cluster()
    files["apps/kustomization.yaml"] = kustomization(["repository.yaml", "release.yaml"])
    files["apps/repository.yaml"] = dedent(
        """
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmRepository
        metadata:
          name: own
          namespace: flux-system
        spec:
          type: oci
          interval: 30m
          url: oci://ghcr.io/example/charts
        """
    )
    files["apps/release.yaml"] = helm_release("web", version=pinned, source="own")
    files["charts/web/Chart.yaml"] = chart_yaml("web", version)
    files["charts/web/templates/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\n"
    return files


def test_a_pin_of_a_version_the_chart_had_in_history_is_a_warning(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("1.1.0", chart_repo("1.1.0", "1.1.0"))
    repo.write({"charts/web/Chart.yaml": chart_yaml("web", "1.1.1")})
    repo.commit("1.1.1")
    repo.write({"charts/web/Chart.yaml": chart_yaml("web", "1.1.3")})
    repo.commit("1.1.3")
    # A whole-tree check of the last commit: 1.1.0 is two commits back.
    code, findings, _ = check(repo.path, "--format", "json")
    [finding] = [f for f in findings if f["rule"] == MISMATCH]
    assert code == 0 and finding["severity"] == "warning"
    assert str(finding["message"]) == (
        "HelmRelease web pins chart web `1.1.0`, an earlier version: "
        "charts/web/Chart.yaml is now 1.1.3, so the dependency lags; use `1.1.3`."
    )
    assert "Earlier versions of the chart known here: 1.1.0, 1.1.1." in str(finding["detail"])
    # A version the chart never had stays an error.
    repo.write({"apps/release.yaml": helm_release("web", version="1.1.2", source="own")})
    repo.commit("a version that was never published")
    code, findings, _ = check(repo.path, "--format", "json")
    [finding] = [f for f in findings if f["rule"] == MISMATCH]
    assert code == 1 and finding["severity"] == "error"
    assert "no earlier version matches" in str(finding["message"])


def test_without_history_the_base_version_counts_as_published() -> None:
    """What the App knows: the base and the head, no history. The base's version was
    published; an older one is unknown, so a pin of it stays an error."""
    base = tree(chart_repo("1.1.0", "1.1.0"))
    head = tree(chart_repo("1.1.1", "1.1.0"))
    result = analyze(head, base)
    [finding] = [f for f in result.findings if f.rule == MISMATCH]
    assert finding.severity is Severity.WARNING and "lags" in finding.message
    # Whole tree, nothing known of the past: the pin is an error.
    [alone] = [f for f in analyze(head).findings if f.rule == MISMATCH]
    assert alone.severity is Severity.ERROR
    # What a caller knows of the history counts.
    told = analyze(
        head, chart_history=lambda path: {"1.1.0"} if path.endswith("web/Chart.yaml") else set()
    )
    [finding] = [f for f in told.findings if f.rule == MISMATCH]
    assert finding.severity is Severity.WARNING


def test_the_staged_index_reads_the_history_of_its_base(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("1.1.0", chart_repo("1.1.0", "1.1.0"))
    repo.write({"charts/web/Chart.yaml": chart_yaml("web", "1.1.1")})
    repo.commit("1.1.1")
    repo.write({"charts/web/Chart.yaml": chart_yaml("web", "1.2.0")})
    repo.git("add", "-A")
    code, findings, _ = check(repo.path, "--staged", "--all", "--format", "json")
    [finding] = [f for f in findings if f["rule"] == MISMATCH]
    assert code == 0 and finding["severity"] == "warning"


# --- where the detail is shown ------------------------------------------------------


def finding_with_detail() -> Finding:
    return Finding(
        rule="dangling-reference",
        severity=Severity.ERROR,
        path="apps/web.yaml",
        line=9,
        message="spec.sourceRef names GitRepository web, which does not exist.",
        related=tuple(Location("apps/other.yaml", n, message="known") for n in range(1, 8)),
        detail="Known GitRepositories: flux-system, platform.",
    )


def test_text_shows_the_detail_and_every_related_location_with_verbose() -> None:
    f = finding_with_detail()
    short = formats.to_text([f])
    assert "Known GitRepositories" not in short
    assert "related: apps/other.yaml:5: known" in short
    assert "apps/other.yaml:6" not in short and "2 more (-v lists them)" in short
    verbose = formats.to_text([f], verbose=True)
    assert "    Known GitRepositories: flux-system, platform." in verbose
    assert "related: apps/other.yaml:7: known" in verbose


def test_verbose_text_lists_a_location_once_when_the_detail_lists_it() -> None:
    f = Finding(
        "flux-schema",
        Severity.WARNING,
        "apps/a.yaml",
        1,
        "`helm.toolkit.fluxcd.io/v2beta1` HelmRelease is served up to Flux v2.6 only.",
        related=(
            Location("apps/b.yaml", 3, message="also a HelmRelease"),
            Location("apps/c.yaml", 9, message="a location the detail does not list"),
        ),
        detail="Objects of this apiVersion:\n- apps/a.yaml:1\n- apps/b.yaml:3",
    )
    verbose = formats.to_text([f], verbose=True)
    assert verbose.count("apps/b.yaml:3") == 1 and "    - apps/b.yaml:3" in verbose
    assert "related: apps/c.yaml:9: a location the detail does not list" in verbose
    assert "more (-v lists them)" not in verbose


def test_the_verbose_flag_of_check(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.commit("pinned", chart_repo("1.1.3", "1.1.2"))
    code, _, text = check(repo.path)
    assert code == 1 and "Earlier versions" not in text
    code, _, text = check(repo.path, "-v")
    assert code == 1 and "No earlier version of the chart is known here." in text


def test_the_check_run_annotation_carries_the_detail_as_raw_details() -> None:
    annotation = checkrun.annotation(finding_with_detail())
    assert annotation is not None
    assert annotation["raw_details"] == "Known GitRepositories: flux-system, platform."
    assert "Known GitRepositories" not in annotation["message"]
    plain = checkrun.annotation(Finding("r", Severity.NOTICE, "a.yaml", 1, "m"))
    assert plain is not None and "raw_details" not in plain


def test_a_base_side_line_is_not_called_deleted() -> None:
    f = Finding(
        "prune-deletes", Severity.NOTICE, "apps/web.yaml", 4, "Flux deletes it.", side=Side.BASE
    )
    text = formats.to_text([f])
    assert text.startswith("apps/web.yaml:4 (before this change): notice")
    assert "(deleted)" not in text


def test_what_makes_a_message_unreadable() -> None:
    assert message_problems("`x` is missing, so the build fails.") == []
    assert message_problems("Flux v2.9 (the newest (vendored) release)") == [
        "parentheses inside parentheses"
    ]
    assert message_problems("so this becomes ``.") == ["empty backquotes"]
    assert message_problems("x" * 201) == ["201 characters, over 200"]
