"""SARIF that code-scanning upload and strict consumers accept: valid against the official
2.1.0 schema, with the repository named where SARIF asks for it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.analysis import Finding, Location, Severity, Side
from bot.gitrepo import https_repository_url
from bot.report import formats
from tests.fakegithub.gitrepo import GitRepo
from tests.sarif import assert_valid_sarif
from tests.test_cli import DEPLOYMENT, FLUX_SYSTEM, check

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "gitops")
    r.commit(
        "bootstrap",
        {
            "clusters/prod/flux-system.yaml": FLUX_SYSTEM,
            "apps/web.yaml": DEPLOYMENT.format(image='"web:"'),
        },
    )
    return r


def sarif(repo_path: Path, *args: str) -> dict[str, Any]:
    proc = check(repo_path, "--format", "sarif", *args)
    assert proc.returncode in (0, 1), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert_valid_sarif(doc)
    return doc


def test_the_incident_validates_and_names_no_repository_without_a_remote(
    tmp_path: Path,
) -> None:
    dest = tmp_path / "example"
    subprocess.run(
        [sys.executable, "examples/build.py", str(dest)], check=True, cwd=ROOT, capture_output=True
    )
    doc = sarif(dest, "--base", "HEAD~1")
    [run] = doc["runs"]
    assert len(run["results"]) == 7
    assert {r["baselineState"] for r in run["results"]} == {"new"}
    # A fix for the chart-version-mismatch is part of the document, and valid too.
    assert any("fixes" in r for r in run["results"])
    assert "versionControlProvenance" not in run


@pytest.mark.parametrize(
    "remote",
    [
        "git@github.com:Example/platform-gitops.git",
        "https://github.com/Example/platform-gitops.git",
        "https://x-access-token:ghs_secret@github.com/Example/platform-gitops",
        "ssh://git@github.com:22/Example/platform-gitops.git",
    ],
)
def test_provenance_names_the_repository_from_origin(repo: GitRepo, remote: str) -> None:
    repo.git("remote", "add", "origin", remote)
    doc = sarif(repo.path)
    assert doc["runs"][0]["versionControlProvenance"] == [
        {"repositoryUri": "https://github.com/Example/platform-gitops", "revisionId": repo.head()}
    ]
    assert "ghs_secret" not in json.dumps(doc)


def test_a_local_remote_leaves_provenance_out(repo: GitRepo, tmp_path: Path) -> None:
    repo.git("remote", "add", "origin", f"file://{tmp_path}/upstream.git")
    assert "versionControlProvenance" not in sarif(repo.path)["runs"][0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@gitlab.com:group/sub/repo.git", "https://gitlab.com/group/sub/repo"),
        ("ssh://git@git.example.com:2222/team/repo", "https://git.example.com/team/repo"),
        ("https://git.example.com:8443/team/repo/", "https://git.example.com:8443/team/repo"),
        ("http://gitea.lan/team/repo.git", "http://gitea.lan/team/repo"),
        ("git://example.org/repo.git", "https://example.org/repo"),
        ("/srv/git/repo.git", None),
        ("../repo", None),
        ("file:///srv/git/repo.git", None),
        ("C:/src/repo", None),
        ("https://github.com", None),
        ("", None),
    ],
)
def test_clone_urls_normalise_to_the_web_address(url: str, expected: str | None) -> None:
    assert https_repository_url(url) == expected


def test_related_locations_are_sarif_related_locations() -> None:
    finding = Finding(
        rule="chart-version-mismatch",
        severity=Severity.ERROR,
        path="infrastructure/platform-release.yaml",
        line=12,
        message="HelmRelease platform asks for chart version 1.1.12",
        related=(
            Location("charts/platform/Chart.yaml", 3, Side.HEAD, "the chart is now 1.1.13"),
            Location("charts/platform/Chart.yaml", 3, Side.BASE, "it was 1.1.12"),
        ),
    )
    doc = json.loads(formats.to_sarif([finding], None, "0" * 40))
    assert_valid_sarif(doc)
    [result] = doc["runs"][0]["results"]
    assert result["relatedLocations"] == [
        {
            "id": 0,
            "message": {"text": "the chart is now 1.1.13"},
            "physicalLocation": {
                "artifactLocation": {"uri": "charts/platform/Chart.yaml", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 3},
            },
        },
        {
            "id": 1,
            "message": {"text": "it was 1.1.12"},
            "physicalLocation": {
                "artifactLocation": {"uri": "charts/platform/Chart.yaml", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 3},
            },
            "properties": {"side": "base"},
        },
    ]


def test_a_finding_without_related_locations_has_none() -> None:
    finding = Finding(
        rule="yaml-syntax-error", severity=Severity.ERROR, path="a.yaml", line=1, message="not YAML"
    )
    doc = json.loads(formats.to_sarif([finding], None, "0" * 40))
    assert_valid_sarif(doc)
    assert "relatedLocations" not in doc["runs"][0]["results"][0]


def test_staged_changes_name_the_repository_but_no_revision(repo: GitRepo) -> None:
    repo.git("remote", "add", "origin", "https://github.com/Example/platform-gitops")
    repo.write({"apps/new.yaml": "a: [\n"})
    repo.git("add", "apps/new.yaml")
    [provenance] = sarif(repo.path, "--staged")["runs"][0]["versionControlProvenance"]
    assert provenance == {"repositoryUri": "https://github.com/Example/platform-gitops"}


def test_a_clone_of_a_mirror_on_disk_names_the_mirror_s_origin(
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.git("remote", "add", "origin", "git@github.com:Example/platform-gitops.git")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo.path), str(clone)], check=True)
    [provenance] = sarif(clone)["runs"][0]["versionControlProvenance"]
    assert provenance["repositoryUri"] == "https://github.com/Example/platform-gitops"
