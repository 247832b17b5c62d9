"""`check --format github` (workflow-command annotations) and `--format markdown` (a job
summary), read back the way GitHub reads them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.analysis import ClusterImpact, Finding, KustomizationImpact, Location, Severity, Side
from bot.report import formats, markdown
from tests.test_cli import check

ROOT = Path(__file__).resolve().parent.parent

INCIDENT = {
    ("error", "helm-template-in-raw-manifest", "charts/platform/templates/api-deployment.yaml", 9),
    ("error", "helm-template-in-raw-manifest", "charts/platform/templates/api-deployment.yaml", 22),
    (
        "error",
        "helm-template-in-raw-manifest",
        "charts/platform/templates/worker-deployment.yaml",
        9,
    ),
    (
        "error",
        "helm-template-in-raw-manifest",
        "charts/platform/templates/worker-deployment.yaml",
        22,
    ),
    ("warning", "chart-version-mismatch", "infrastructure/platform-release.yaml", 12),
    ("error", "dangling-reference", "infrastructure/platform-release.yaml", 15),
    ("warning", "kustomize-unlisted-manifest", "infrastructure/network-policy.yaml", 1),
}


def _unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def _unescape_property(text: str) -> str:
    return _unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def parse_workflow_command(line: str) -> tuple[str, dict[str, str], str]:
    """What the Actions runner does with a `::cmd k=v,k=v::data` line (its
    ActionCommand.TryParseV2): split the properties on `,` and each on its first `=`."""
    m = re.fullmatch(r"::(\w+)(?: ([^:]*))?::(.*)", line)
    assert m, line
    props = {}
    for pair in (m[2] or "").split(","):
        key, _, value = pair.partition("=")
        props[key] = _unescape_property(value)
    return m[1], props, _unescape_data(m[3])


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("incident") / "repo"
    subprocess.run(
        [sys.executable, "examples/build.py", str(dest)], check=True, cwd=ROOT, capture_output=True
    )
    return dest


def test_annotations_land_on_the_incident_lines(incident: Path) -> None:
    proc = check(incident, "--base", "HEAD~1", "--format", "github")
    assert proc.returncode == 1, proc.stderr
    commands = [parse_workflow_command(line) for line in proc.stdout.splitlines()]
    assert {(c, p["title"], p["file"], int(p["line"])) for c, p, _ in commands} == INCIDENT
    mismatch = next(m for _, p, m in commands if p["title"] == "chart-version-mismatch")
    assert mismatch.endswith('Suggestion:\n      version: "1.1.13"')
    assert all("\n" not in line for line in proc.stdout.splitlines())


def test_the_job_summary_counts_and_tabulates_every_finding(incident: Path) -> None:
    proc = check(incident, "--base", "HEAD~1", "--format", "markdown")
    assert proc.returncode == 1
    text = proc.stdout
    assert text.startswith("## flux-review\n")
    assert "**5 errors, 2 warnings** introduced by the change" in text
    rows = [line for line in text.splitlines() if line.startswith("| :")]
    assert len(rows) == 7
    assert any(
        "`infrastructure/platform-release.yaml` line 12" in r and "`chart-version-mismatch`" in r
        for r in rows
    )
    # Every row keeps the table's four columns, whatever the message holds.
    assert all(len(re.split(r"(?<!\\)\|", r)) == 6 for r in rows)
    # As in the check run, the controllers that read each file, which name the cluster.
    readers = text[text.index("### Who reads these files") :]
    assert (
        "- `charts/platform/templates/api-deployment.yaml`: Flux Kustomization "
        "flux-system/platform-services (clusters/prod/platform-services.yaml); Helm"
    ) in readers


def test_a_clean_tree_says_so(incident: Path, tmp_path: Path) -> None:
    # The incident's base without the Kustomization that applies the chart's templates
    # raw: with the helm extra, what both it and the HelmRelease apply is a finding.
    clean = tmp_path / "clean"
    for args in (
        ["clone", "-q", str(incident), str(clean)],
        ["-C", str(clean), "checkout", "-q", "HEAD~1"],
        ["-C", str(clean), "rm", "-q", "clusters/prod/platform-services.yaml"],
        [
            "-C",
            str(clean),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "x",
        ],
    ):
        subprocess.run(["git", *args], check=True, capture_output=True)
    proc = check(clean, "--format", "markdown")
    assert proc.returncode == 0
    assert "**No problems found** in the tree at" in proc.stdout, proc.stdout
    assert "| :" not in proc.stdout
    assert check(clean, "--format", "github").stdout == ""


def finding(**kw: Any) -> Finding:
    base: dict[str, Any] = {
        "rule": "yaml-syntax-error",
        "severity": Severity.ERROR,
        "path": "apps/web.yaml",
        "line": 3,
        "message": "not YAML",
    }
    return Finding(**{**base, **kw})


def test_workflow_command_escaping_round_trips() -> None:
    f = finding(
        path="apps/a,b:c%d.yaml",
        message="100% broken:\r\nline two, really",
        end_line=5,
        severity=Severity.WARNING,
    )
    line = formats.github_annotation(f)
    assert line.count("::") == 2 and "\n" not in line and "\r" not in line
    command, props, message = parse_workflow_command(line)
    assert command == "warning"
    assert props == {
        "file": "apps/a,b:c%d.yaml",
        "line": "3",
        "endLine": "5",
        "title": "yaml-syntax-error",
    }
    assert message == "100% broken:\r\nline two, really"


@pytest.mark.parametrize(
    ("severity", "command"),
    [(Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.NOTICE, "notice")],
)
def test_each_severity_is_its_own_level(severity: Severity, command: str) -> None:
    assert formats.github_annotation(finding(severity=severity)).startswith(f"::{command} ")


def test_introduced_findings_come_first_and_old_ones_say_so() -> None:
    old = finding(path="a.yaml", introduced=False)
    new = finding(path="z.yaml", severity=Severity.NOTICE)
    lines = formats.to_github([old, new]).splitlines()
    assert [parse_workflow_command(line)[1]["file"] for line in lines] == ["z.yaml", "a.yaml"]
    assert parse_workflow_command(lines[1])[1]["title"] == "yaml-syntax-error (pre-existing)"


def test_a_deleted_line_is_annotated_on_its_head_side_cause_or_on_no_file() -> None:
    cause = Location("clusters/prod/apps.yaml", 7, Side.HEAD, "prunes what it applied")
    f = finding(
        rule="prune-deletes",
        severity=Severity.WARNING,
        path="apps/pvc.yaml",
        line=4,
        message="the PVC data is deleted",
        side=Side.BASE,
        related=(cause,),
    )
    _, props, message = parse_workflow_command(formats.github_annotation(f))
    assert (props["file"], props["line"]) == ("clusters/prod/apps.yaml", "7")
    # The line is gone, not necessarily the file: "before this change", never "(deleted)".
    assert message.startswith("apps/pvc.yaml line 4 (before this change): the PVC data is")
    assert "(before this change)" in markdown.findings_table([f])
    assert "(deleted)" not in message + markdown.findings_table([f])
    alone = finding(path="apps/pvc.yaml", line=4, side=Side.BASE)
    _, props, message = parse_workflow_command(formats.github_annotation(alone))
    assert "file" not in props and "line" not in props
    assert message.startswith("apps/pvc.yaml line 4 (before this change): ")


def test_table_cells_survive_pipes_newlines_and_angle_brackets() -> None:
    f = finding(message="a | b\nsee <none> and `x | <y>`")
    row = markdown.findings_table([f]).splitlines()[2]
    assert len(re.split(r"(?<!\\)\|", row)) == 6
    assert "&lt;none&gt;" in row and "`x \\| <y>`" in row and "<br>" in row


def test_the_table_stops_before_the_summary_limit() -> None:
    many = [finding(line=i, message="x" * 500) for i in range(1, 400)]
    table = markdown.findings_table(many, limit_bytes=20_000)
    assert len(table.encode()) <= 20_000
    assert re.search(r"…and \d+ more not listed here", table)


def test_the_verdict_follows_fail_on() -> None:
    warning = [finding(severity=Severity.WARNING)]

    def summary(fail_on: Severity) -> str:
        return markdown.job_summary(warning, base="a" * 40, head="b" * 40, fail_on=fail_on)

    assert "The step fails" in summary(Severity.WARNING)
    assert "The step passes" in summary(Severity.ERROR)


def test_the_impact_section_names_each_cluster() -> None:
    impact = [
        ClusterImpact(
            "clusters/prod",
            [
                KustomizationImpact(
                    "Flux Kustomization flux-system/platform-services",
                    added=["NetworkPolicy platform/deny-all"],
                    changed=["Deployment platform/api", "Deployment platform/worker"],
                )
            ],
        )
    ]
    text = markdown.job_summary([], base="a" * 40, head="b" * 40, impact=impact)
    assert "### Clusters this change reaches" in text
    assert "**clusters/prod**" in text
    row = next(line for line in text.splitlines() if "platform-services" in line)
    assert "1: `NetworkPolicy platform/deny-all`" in row
    assert "2: `Deployment platform/api`, `Deployment platform/worker`" in row
    assert row.endswith("| – |")


def test_the_impact_section_keeps_what_is_removed_beside_what_is_not_known() -> None:
    # A Flux Kustomization dropped from its parent: its PersistentVolumeClaim is pruned,
    # and its HelmRelease's chart was not rendered at the base. Both are said.
    impact = [
        ClusterImpact(
            "clusters/prod",
            [
                KustomizationImpact(
                    "Flux Kustomization default/atuin",
                    removed=["HelmRelease default/atuin", "PersistentVolumeClaim default/atuin"],
                    unknown=["HelmRelease default/atuin is not rendered at the base"],
                ),
                KustomizationImpact(
                    "Flux Kustomization flux-system/apps", removed=["Kustomization default/atuin"]
                ),
            ],
        )
    ]
    text = markdown.impact_section(impact)
    assert "| Flux Kustomization | added | changed | removed | not fully known |" in text
    row = next(line for line in text.splitlines() if "default/atuin |" in line)
    assert "2: `HelmRelease default/atuin`, `PersistentVolumeClaim default/atuin`" in row
    assert row.endswith("| HelmRelease default/atuin is not rendered at the base |")
    apps = next(line for line in text.splitlines() if "flux-system/apps" in line)
    assert apps.endswith("| 1: `Kustomization default/atuin` | – |")


def test_no_cluster_affected_is_said_and_no_impact_is_silent() -> None:
    assert "No cluster is affected" in markdown.impact_section([])
    assert markdown.impact_section(None) == ""
    assert "Clusters" not in markdown.job_summary([], base=None, head="b" * 40)


def test_related_locations_are_named_in_the_annotation() -> None:
    chart = "charts/platform/Chart.yaml"
    f = finding(
        rule="chart-version-mismatch",
        path="infrastructure/platform-release.yaml",
        line=12,
        message="pins 1.1.12",
        related=(
            Location(chart, 3, Side.HEAD, "the chart is 1.1.13"),
            Location(chart, 3, Side.BASE),
        ),
    )
    _, props, message = parse_workflow_command(formats.github_annotation(f))
    assert props["file"] == "infrastructure/platform-release.yaml"
    assert message == (
        "pins 1.1.12\n\nRelated:\n- charts/platform/Chart.yaml:3: the chart is "
        "1.1.13\n- charts/platform/Chart.yaml:3 (before this change)"
    )
    assert "Related:<br>- charts/platform/Chart.yaml:3: the chart is 1.1.13" in (
        markdown.findings_table([f])
    )
