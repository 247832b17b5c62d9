"""What CONTRIBUTING.md tells a contributor to run works as it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_app_runs_locally_against_the_fake_github() -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/app_against_fake_github.py", "--timeout", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "pull_request.opened -> 202" in out
    assert "completed / failure: 5 errors, 2 warnings" in out
    assert (
        "annotation charts/platform/templates/api-deployment.yaml:22 failure "
        "helm-template-in-raw-manifest"
    ) in out
    assert "review comment charts/platform/templates/api-deployment.yaml:22" in out
    assert "fake GitHub:" not in proc.stderr


def test_every_file_contributing_names_exists() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    named = set(
        re.findall(r"`((?:\.?[\w-]+/)+[\w.-]+\.(?:py|md|yaml|toml)|[\w.-]+\.(?:py|yaml))`", text)
    )
    assert {
        "scripts/app_against_fake_github.py",
        "tests/analysis_helpers.py",
        "noxfile.py",
        ".pre-commit-config.yaml",
    } <= named
    missing = [p for p in named if "<" not in p and not (ROOT / p).exists()]
    assert not missing


def test_ci_runs_the_readme_test_command_exactly() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run the tests", 1)[1]
    command = section.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()
    assert command.endswith("pytest -q") and "'.[test,helm]'" in command
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci
