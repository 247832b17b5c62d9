"""The release process: one version, pinned alike everywhere a user copies it from, and a
workflow that tests and publishes what a tag names."""

from __future__ import annotations

import datetime
import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import bot
from scripts.release import PINS, ReleaseError, bump, changelog_entry, check, pinned

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def test_every_pin_names_the_packages_version() -> None:
    assert {got for _, got in pinned(ROOT)} == {bot.__version__}
    # pyproject.toml reads the version from bot/__init__.py: one place to change.
    assert importlib.metadata.version("flux-review") == bot.__version__
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()


def test_the_readme_pins_a_tag_the_release_process_creates() -> None:
    readme = (ROOT / "README.md").read_text()
    tag = f"v{bot.__version__}"
    assert f"uses: OWNER/flux-review@{tag}" in readme
    assert f"rev: {tag}" in readme
    # No pin out of thin air.
    assert re.findall(r"flux-review@(v[\w.]+)", readme) == [tag]
    assert re.findall(r"^\s+rev: (\S+)$", readme, re.M) == [tag]
    assert "CHANGELOG.md" in readme and f"{tag} is the first to be tagged" in readme


def release_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "flux-review"
    for name in {name for name, _ in PINS} | {"CHANGELOG.md"}:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, copy / name)
    return copy


def test_bump_writes_one_version_everywhere_and_check_accepts_its_tag(tmp_path: Path) -> None:
    copy = release_copy(tmp_path)
    unreleased = (copy / "CHANGELOG.md").read_text().split("## Unreleased", 1)[1]
    bump(copy, "0.2.0", datetime.date(2027, 1, 15))
    assert {got for _, got in pinned(copy)} == {"0.2.0"}
    assert check(copy, "v0.2.0") == "0.2.0"
    changelog = (copy / "CHANGELOG.md").read_text()
    # A fresh Unreleased entry on top, what it held under the new version.
    assert "## Unreleased\n\n## 0.2.0 - 2027-01-15\n" in changelog
    assert changelog_entry(copy, "0.2.0") == unreleased.strip() + "\n"
    chart = yaml.safe_load((copy / "deploy/chart/Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("0.2.0", "0.2.0")
    source = yaml.safe_load((copy / "deploy/flux/source.yaml").read_text())
    assert source["spec"]["ref"]["tag"] == "v0.2.0"
    with pytest.raises(ReleaseError, match=re.escape("already has an entry for 0.2.0")):
        bump(copy, "0.2.0", datetime.date(2027, 1, 16))


def test_check_refuses_a_tag_the_tree_does_not_say(tmp_path: Path) -> None:
    copy = release_copy(tmp_path)
    with pytest.raises(ReleaseError) as info:
        check(copy, "v9.9.9")
    assert "bot/__init__.py says" in str(info.value)
    assert "README.md says" in str(info.value)
    with pytest.raises(ReleaseError, match=re.escape("a release tag is vX.Y.Z")):
        check(copy, "latest")
    # The version is right, but the changelog has no dated entry for it yet.
    with pytest.raises(ReleaseError, match=r"no `## .* - YYYY-MM-DD` entry"):
        check(copy, f"v{bot.__version__}")


def test_the_script_runs_with_the_standard_library_alone() -> None:
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "scripts/release.py", "check", "v0.0.0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("release: v0.0.0 does not match: bot/__init__.py says")


def readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run the tests", 1)[1]
    return re.search(r"```sh\n(.+?)\n```", section, re.S)[1]  # type: ignore[index]


def test_a_tag_is_checked_tested_and_published() -> None:
    release = yaml.safe_load((WORKFLOWS / "release.yml").read_text())
    # PyYAML reads the key `on` as True.
    assert release[True] == {"push": {"tags": ["v*.*.*"]}}
    jobs = release["jobs"]
    assert any(
        'python scripts/release.py check "$GITHUB_REF_NAME"' in step.get("run", "")
        for step in jobs["check"]["steps"]
    )
    assert jobs["test"] == {"needs": "check", "uses": "./.github/workflows/ci.yml"}
    assert jobs["publish"]["needs"] == "test"
    publish = "\n".join(step.get("run", "") for step in jobs["publish"]["steps"])
    assert 'gh release create "$GITHUB_REF_NAME" dist/*' in publish
    assert "docker push" in publish

    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    assert "workflow_call" in ci[True]
    runs = [step.get("run", "") for step in ci["jobs"]["test"]["steps"]]
    # The README's command, exactly, with the suites it says need redis-server and kubectl.
    assert readme_test_command() in runs
    assert any("redis-server" in run for run in runs)
    assert any(
        step.get("env", {}).get("FLUX_REVIEW_REQUIRE_KUBECTL")
        for step in ci["jobs"]["test"]["steps"]
    )
