"""`flux-review check` at the edges a new user meets: a clone without an index, a shallow
clone, a subdirectory, this project's own repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.action import ActionError, find_base
from tests.fakegithub.gitrepo import GitRepo
from tests.test_cli import DEPLOYMENT, FLUX_SYSTEM, ROOT, check, findings

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=GIT_ENV, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    return line


@pytest.fixture
def origin(tmp_path: Path) -> GitRepo:
    repo = GitRepo(tmp_path / "origin")
    repo.commit(
        "bootstrap",
        {
            "clusters/prod/flux-system.yaml": FLUX_SYSTEM,
            "apps/web.yaml": DEPLOYMENT.format(image="ghcr.io/example/web:1.0"),
        },
    )
    repo.commit("bump", {"apps/web.yaml": DEPLOYMENT.format(image="ghcr.io/example/web:1.1")})
    return repo


# -- --staged without an index ----------------------------------------------------------------


def test_staged_in_a_clone_without_an_index_says_so(origin: GitRepo, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--no-checkout", f"file://{origin.path}", str(clone))
    assert not (clone / ".git" / "index").exists()
    line = one_line(check(clone, "--staged"))
    assert "has no index" in line and "nothing is staged" in line
    assert "`git reset`" in line
    # Not a report of every object as deleted.
    assert "prune-deletes" not in line
    git(clone, "reset", "-q")
    assert check(clone, "--staged").returncode == 0


def test_staged_with_an_emptied_index_says_so(origin: GitRepo) -> None:
    origin.git("rm", "-r", "-q", "--cached", ".")
    line = one_line(check(origin.path, "--staged", "--format", "json"))
    assert "the index of" in line and "is empty" in line
    assert "would delete every file" in line


def test_staged_in_a_new_repository_still_checks_what_is_staged(tmp_path: Path) -> None:
    # No commit yet: nothing to compare with, so an empty index is simply nothing to check.
    repo = GitRepo(tmp_path / "fresh")
    proc = check(repo.path, "--staged", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert findings(proc) == []


# -- a shallow clone ----------------------------------------------------------------------------


def test_a_shallow_clone_gets_a_hint_to_fetch_more_history(origin: GitRepo, tmp_path: Path) -> None:
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin.path}", str(clone))
    line = one_line(check(clone, "--base", "HEAD~1"))
    assert "unknown revision 'HEAD~1'" in line
    assert "the clone is shallow" in line
    assert "git fetch --deepen" in line and "--unshallow" in line
    assert "fetch-depth: 0" in line
    # Following the hint works.
    git(clone, "fetch", "-q", "--deepen=1")
    proc = check(clone, "--base", "HEAD~1")
    assert proc.returncode == 0, proc.stderr


def test_a_full_clone_gets_no_shallow_hint(origin: GitRepo) -> None:
    line = one_line(check(origin.path, "--base", "HEAD~5"))
    assert "unknown revision 'HEAD~5'" in line
    assert "shallow" not in line


def test_the_action_names_the_checkout_depth_for_a_relative_base(
    origin: GitRepo, tmp_path: Path
) -> None:
    # actions/checkout's default: one commit. `base: HEAD~1` cannot be fetched by name.
    clone = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin.path}", str(clone))
    with pytest.raises(ActionError) as info:
        find_base(clone, "HEAD~1", {})
    message = str(info.value)
    assert "cannot fetch the base HEAD~1" in message
    assert "shallow clone" in message and "fetch-depth: 0" in message


# -- --repo of a subdirectory -------------------------------------------------------------------


def test_a_subdirectory_reports_what_is_below_it_from_the_whole_repository(
    tmp_path: Path,
) -> None:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit(
        "tree",
        {
            "clusters/prod/flux-system.yaml": FLUX_SYSTEM,
            # Applied by the Flux Kustomization under clusters/: only the whole
            # repository says that apps/ is applied raw.
            "apps/web.yaml": DEPLOYMENT.format(image="{{ .Values.image }}"),
            "apps/other/kustomization.yaml": "resources:\n  - missing.yaml\n",
        },
    )
    proc = check(repo.path / "apps" / "other", "--format", "json")
    assert [(f["rule"], f["path"]) for f in findings(proc)] == [
        ("kustomize-missing-resource", "apps/other/kustomization.yaml")
    ]
    assert proc.returncode == 1
    note = proc.stderr.strip()
    assert note.startswith("flux-review: note: ")
    assert "the whole repository is read" in note
    assert "only findings under apps/other/ are reported (1 elsewhere left out)" in note

    whole = check(repo.path / "apps", "--format", "json")
    assert {(f["rule"], f["path"]) for f in findings(whole)} == {
        ("helm-template-in-raw-manifest", "apps/web.yaml"),
        ("kustomize-missing-resource", "apps/other/kustomization.yaml"),
    }
    # Paths stay relative to the repository's root, as in the App and the Action.
    at_root = check(repo.path, "--format", "json")
    assert findings(at_root) == findings(whole) and at_root.stderr == ""


def test_a_clean_subdirectory_exits_zero_whatever_is_elsewhere(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit(
        "tree",
        {
            "clusters/prod/flux-system.yaml": FLUX_SYSTEM,
            "apps/web.yaml": DEPLOYMENT.format(image="Bad Image"),
            "docs/notes.yaml": "a: 1\n",
        },
    )
    proc = check(repo.path / "docs")
    assert proc.returncode == 0, proc.stdout
    assert "1 elsewhere left out" in proc.stderr


# -- this project's own repository ---------------------------------------------------------------


def test_this_repository_reports_no_errors_and_says_what_examples_is(tmp_path: Path) -> None:
    """`flux-review check` in a clone of flux-review: examples/ holds the two commits of
    the example repository, not manifests of this one, and the config says so."""
    copy = GitRepo(tmp_path / "flux-review")
    if (ROOT / ".git").exists():
        listed = git(ROOT, "ls-files", "-z", "-co", "--exclude-standard").split("\0")
        files = [ROOT / p for p in listed if p and (ROOT / p).is_file()]
    else:  # an unpacked source archive
        files = [
            p
            for p in ROOT.rglob("*")
            if p.is_file() and not {".git", ".venv", ".nox"} & set(p.relative_to(ROOT).parts)
        ]
    for source in files:
        target = copy.path / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    copy.git("add", "-A")
    copy.commit("flux-review")
    proc = check(copy.path, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [f for f in findings(proc) if f["severity"] == "error"] == []
    config = (ROOT / ".github" / "flux-review.yml").read_text()
    assert "examples/build.py" in config
    # Without it, the example's manifests are reported as this repository's: as notices,
    # since no cluster of this repository applies them.
    (copy.path / ".github" / "flux-review.yml").unlink()
    copy.git("add", "-A")
    copy.commit("no config")
    found = findings(check(copy.path, "--format", "json"))
    assert found
    assert all(str(f["path"]).startswith("examples/") for f in found)
    assert {f["severity"] for f in found} == {"notice"}


# -- the config ---------------------------------------------------------------------------------


def test_a_misspelt_rule_in_the_config_gets_did_you_mean(origin: GitRepo) -> None:
    origin.commit(
        "config", {".github/flux-review.yml": "rules:\n  kustomize-unlisted-manifests: off\n"}
    )
    line = one_line(check(origin.path))
    assert line == (
        "flux-review: .github/flux-review.yml at "
        f"{origin.head()[:12]}: line 2: unknown rule 'kustomize-unlisted-manifests' in "
        "'rules'; did you mean 'kustomize-unlisted-manifest'?"
    )
