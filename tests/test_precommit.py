"""The pre-commit hook, through `pre-commit try-repo` as a user tries it.

try-repo clones the hook repository it is given and installs the hook the way pre-commit
does for `language: python` (a virtualenv, `pip install` of the clone), so the hook's
dependencies come from the package index pip is configured with; the hook repository is
a clone of this checkout's HEAD, so what is tested is what is committed. try-repo keeps
no environment between runs: each run builds it anew, which takes tens of seconds
(marked `slow`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
INCIDENT = ROOT / "examples" / "incident"
BIN = Path(sys.executable).parent
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Example",
    "GIT_AUTHOR_EMAIL": "ex@example.com",
    "GIT_COMMITTER_NAME": "Example",
    "GIT_COMMITTER_EMAIL": "ex@example.com",
}


def _pre_commit() -> str:
    found = BIN / "pre-commit"
    if found.exists():
        return str(found)
    which = shutil.which("pre-commit")
    if which is None:
        pytest.skip("pre-commit is not installed (pip install '.[test]')")
    return which


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=False,
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (
        subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, check=False
        ).returncode
        != 0
    ):
        pytest.skip("not a git checkout: try-repo needs a commit to clone")
    dest = tmp_path_factory.mktemp("hooks") / "flux-review"
    git(ROOT.parent, "clone", "-q", "--no-hardlinks", str(ROOT), str(dest))
    return dest


@pytest.fixture
def gitops(tmp_path: Path) -> Path:
    """The incident's base, committed; each test stages its own change."""
    repo = tmp_path / "platform-gitops"
    shutil.copytree(INCIDENT / "base", repo)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Platform chart 1.1.12")
    return repo


def try_repo(repo: Path, hook_repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_pre_commit(), "try-repo", str(hook_repo), "flux-review", "--color", "never", "--verbose"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **os.environ,
            **GIT_ENV,
            "PRE_COMMIT_HOME": str(repo.parent / "pre-commit-home"),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        },
    )


@pytest.mark.slow
def test_a_staged_incident_fails_with_its_findings(gitops: Path, hook_repo: Path) -> None:
    shutil.copytree(INCIDENT / "head", gitops, dirs_exist_ok=True, copy_function=shutil.copy)
    # Same size and mtime as the base copy would let git's stat cache miss the change.
    git(gitops, "rm", "-r", "-q", "--cached", ".")
    git(gitops, "add", "-A")
    proc = try_repo(gitops, hook_repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "flux-review" in proc.stdout and "Failed" in proc.stdout
    for line in (
        "charts/platform/templates/api-deployment.yaml:22: error [helm-template-in-raw-manifest]",
        "infrastructure/platform-release.yaml:12: warning [chart-version-mismatch]",
        "infrastructure/network-policy.yaml:1: warning [kustomize-unlisted-manifest]",
    ):
        assert line in proc.stdout, proc.stdout


@pytest.mark.slow
def test_a_clean_staged_change_passes_whatever_the_working_tree_holds(
    gitops: Path,
    hook_repo: Path,
) -> None:
    namespace = gitops / "infrastructure" / "namespace.yaml"
    namespace.write_text("# The platform's namespace.\n" + namespace.read_text())
    git(gitops, "add", "-A")
    # Broken after staging: pre-commit stashes it, and flux-review reads the index anyway.
    namespace.write_text("kind: [\n")
    proc = try_repo(gitops, hook_repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout
    assert namespace.read_text() == "kind: [\n"


@pytest.mark.slow
def test_the_hook_fails_as_the_configs_fail_on_says(gitops: Path, hook_repo: Path) -> None:
    config = gitops / ".github" / "flux-review.yml"
    config.parent.mkdir()
    config.write_text("fail_on: warning\n")
    git(gitops, "add", "-A")
    git(gitops, "commit", "-q", "-m", "fail on warnings")
    unlisted = INCIDENT / "head" / "infrastructure" / "network-policy.yaml"
    shutil.copy(unlisted, gitops / "infrastructure" / "network-policy.yaml")
    git(gitops, "add", "-A")
    proc = try_repo(gitops, hook_repo)
    # One warning, nothing worse: the config's threshold blocks the commit.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "infrastructure/network-policy.yaml:1: warning [kustomize-unlisted-manifest]" in (
        proc.stdout
    )
    assert " error [" not in proc.stdout


@pytest.mark.parametrize(
    ("path", "checked"),
    [
        ("clusters/prod/apps.yaml", True),
        ("charts/platform/templates/_helpers.tpl", True),
        ("charts/platform/values.yml", True),
        ("apps/base/Kustomization", True),
        ("charts/platform/.helmignore", True),
        (".sourceignore", True),
        ("README.md", False),
        ("scripts/render.sh", False),
        ("docs/yaml.md", False),
    ],
)
def test_the_hook_runs_for_files_a_controller_reads(path: str, checked: bool) -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "flux-review" and hook["language"] == "python"
    assert hook["pass_filenames"] is False
    assert hook["entry"] == "flux-review check --staged"
    # pre-commit matches `files` with re.search on the repository-relative path.
    assert bool(re.search(hook["files"], path)) is checked


def test_the_hook_manifest_and_the_contributors_config_are_valid() -> None:
    for command, path in (
        ("validate-manifest", ".pre-commit-hooks.yaml"),
        ("validate-config", ".pre-commit-config.yaml"),
    ):
        proc = subprocess.run(
            [_pre_commit(), command, path], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
