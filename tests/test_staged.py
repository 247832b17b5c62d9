"""`check --staged`: what the next commit would bring, read from the index through git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakegithub.gitrepo import GitRepo
from tests.test_cli import DEPLOYMENT, FLUX_SYSTEM, ROOT, check, findings, named


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "gitops")
    r.commit(
        "bootstrap",
        {
            "clusters/prod/flux-system.yaml": FLUX_SYSTEM,
            "apps/web.yaml": DEPLOYMENT.format(image="ghcr.io/example/web:1.0"),
        },
    )
    return r


def staged(repo: GitRepo, *args: str) -> subprocess.CompletedProcess[str]:
    return check(repo.path, "--staged", "--format", "json", *args)


def test_a_staged_breakage_is_reported_and_the_working_tree_ignored(repo: GitRepo) -> None:
    repo.write({"apps/web.yaml": DEPLOYMENT.format(image='"ghcr.io/example/web:"')})
    repo.git("add", "apps/web.yaml")
    # Edited again after staging, and an untracked broken file: neither is committed.
    repo.write(
        {
            "apps/web.yaml": DEPLOYMENT.format(image="ghcr.io/example/web:1.1"),
            "apps/draft.yaml": "a: [\n",
        }
    )
    proc = staged(repo)
    assert proc.returncode == 1, proc.stderr
    assert [(f["rule"], f["path"], f["line"]) for f in findings(proc)] == [
        ("invalid-image-reference", "apps/web.yaml", 10)
    ]
    doc = json.loads(proc.stdout)
    assert doc["base"] == repo.head()
    assert doc["head"] == repo.git("write-tree")


def test_a_clean_staged_change_passes_even_with_a_broken_working_tree(repo: GitRepo) -> None:
    repo.write({"apps/api.yaml": named("api", "ghcr.io/example/api:2.0")})
    repo.git("add", "apps/api.yaml")
    repo.write({"apps/api.yaml": named("api", "{{ .Values.image }}")})
    proc = staged(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert findings(proc) == []


def test_only_what_the_staged_change_introduces(repo: GitRepo) -> None:
    repo.commit("old breakage", {"apps/old.yaml": named("old", "Bad Image")})
    repo.write({"apps/new.yaml": "a: [\n"})
    repo.git("add", "apps/new.yaml")
    assert [f["path"] for f in findings(staged(repo))] == ["apps/new.yaml"]
    assert [f["path"] for f in findings(staged(repo, "--all"))] == [
        "apps/new.yaml",
        "apps/old.yaml",
    ]
    # Against an older base, the committed breakage is part of the change too.
    assert [f["path"] for f in findings(staged(repo, "--base", "HEAD~1"))] == [
        "apps/new.yaml",
        "apps/old.yaml",
    ]


def test_a_staged_deletion_counts(repo: GitRepo) -> None:
    repo.commit("listed", {"apps/kustomization.yaml": "resources:\n  - web.yaml\n"})
    repo.git("rm", "-q", "--cached", "apps/web.yaml")  # still in the working tree
    proc = staged(repo)
    assert [(f["rule"], f["path"]) for f in findings(proc)] == [
        ("kustomize-missing-resource", "apps/kustomization.yaml")
    ]


def test_a_repository_without_commits_checks_the_whole_index(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "fresh")
    repo.write(
        {
            "clusters/prod/flux-system.yaml": FLUX_SYSTEM,
            "apps/web.yaml": DEPLOYMENT.format(image="Bad Image"),
        }
    )
    repo.git("add", "-A")
    proc = staged(repo)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["base"] is None


def test_the_index_git_commit_hands_its_hooks_is_the_one_read(repo: GitRepo) -> None:
    # `git commit` runs hooks with GIT_INDEX_FILE naming the index it is about to commit
    # (for `git commit -a` or `git commit FILE`, a temporary one).
    repo.write({"apps/web.yaml": DEPLOYMENT.format(image='"web:"')})
    other = repo.path / ".git" / "index.commit"
    env = {**os.environ, "GIT_INDEX_FILE": str(other)}
    subprocess.run(["git", "read-tree", "HEAD"], cwd=repo.path, env=env, check=True)
    subprocess.run(["git", "add", "apps/web.yaml"], cwd=repo.path, env=env, check=True)
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--repo", str(repo.path), "--staged"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1 and "invalid-image-reference" in proc.stdout
    # The default index holds nothing new.
    assert staged(repo).returncode == 0


def test_staged_takes_no_head(repo: GitRepo) -> None:
    proc = staged(repo, "--head", "HEAD")
    assert proc.returncode == 2
    assert "--staged" in proc.stderr and "Traceback" not in proc.stderr


def test_an_unmerged_index_is_a_one_line_error(repo: GitRepo) -> None:
    repo.branch("other")
    repo.commit("theirs", {"apps/web.yaml": DEPLOYMENT.format(image="ghcr.io/example/web:3")})
    repo.checkout("main")
    repo.commit("ours", {"apps/web.yaml": DEPLOYMENT.format(image="ghcr.io/example/web:2")})
    subprocess.run(
        ["git", "merge", "-q", "other"],
        cwd=repo.path,
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull},
    )
    proc = staged(repo)
    assert proc.returncode == 2
    assert "cannot read the staged changes" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
