"""`flux-review diff` on a local git repository, and what `check` says about it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakegithub.gitrepo import GitRepo
from tests.test_diff import base_files


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, str, str]:
    git = GitRepo(tmp_path_factory.mktemp("diff") / "gitops")
    files = base_files()
    files["clusters/staging/flux-system/gotk-sync.yaml"] = str(
        files["clusters/prod/flux-system/gotk-sync.yaml"]
    ).replace("./clusters/prod", "./clusters/staging")
    files["clusters/staging/apps.yaml"] = files["clusters/prod/infra.yaml"]
    base = git.commit("base", files)
    head = git.commit(
        "bump",
        {
            "apps/web.yaml": str(files["apps/web.yaml"]).replace("web:1.0.0", "web:1.1.0"),
            "infra/monitoring.yaml": str(files["infra/monitoring.yaml"]).replace("30s", "15s"),
        },
    )
    return git, base, head


def test_json_follows_the_contract(history: tuple[GitRepo, str, str]) -> None:
    git, base, head = history
    done = _run(git.path, "diff", "--base", base, "--head", head, "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert (doc["version"], doc["base"], doc["head"]) == (1, base, head)
    names = [c["cluster"] for c in doc["clusters"]]
    assert names == ["clusters/prod", "clusters/staging"]
    prod = doc["clusters"][0]
    [apps, infra] = prod["kustomizations"]
    assert (apps["kustomization"], infra["kustomization"]) == (
        "flux-system/apps",
        "flux-system/infra",
    )
    [web] = apps["objects"]
    assert {k: web[k] for k in ("apiVersion", "kind", "namespace", "name", "change")} == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "web",
        "name": "web",
        "change": "changed",
    }
    assert (web["path"], web["line"], web["side"], web["moved_from"]) == (
        "apps/web.yaml",
        4,
        "head",
        None,
    )
    image = web["after"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "ghcr.io/example/web:1.1.0"
    assert web["before"]["metadata"] == web["after"]["metadata"]
    # The HelmRelease of a remote chart is not rendered, but the change does not touch it.
    assert apps["unknown"] == []


def test_text_color_and_cluster(history: tuple[GitRepo, str, str]) -> None:
    git, base, head = history
    plain = _run(git.path, "diff", "--base", base, "--head", head, "--color", "never")
    assert "\x1b[" not in plain.stdout
    assert "-      - image: ghcr.io/example/web:1.0.0" in plain.stdout
    assert "# Cluster clusters/staging" in plain.stdout
    colored = _run(git.path, "diff", "--base", base, "--head", head, "--color", "always")
    assert "\x1b[31m-      - image: ghcr.io/example/web:1.0.0\x1b[0m" in colored.stdout
    one = _run(git.path, "diff", "--base", base, "--head", head, "--cluster", "clusters/staging")
    assert "# Cluster clusters/staging" in one.stdout and "clusters/prod" not in one.stdout
    markdown = _run(git.path, "diff", "--base", base, "--head", head, "--format", "markdown")
    assert markdown.stdout.startswith("## What this pull request changes")
    assert "```diff" in markdown.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: --base"),
        (["--base", "HEAD~1", "--format", "sarif"], "invalid choice: 'sarif'"),
        (["--base", "HEAD~1", "--color", "sometimes"], "invalid choice: 'sometimes'"),
        (["--base", "nope"], "unknown revision 'nope'"),
        (["--base", "HEAD~1", "--staged", "--head", "HEAD"], "takes no --head"),
        (["--base", "HEAD~1", "--cluster", "clusters/dev"], "--cluster clusters/dev: no such"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    history: tuple[GitRepo, str, str], args: list[str], message: str
) -> None:
    git, _, _ = history
    done = _run(git.path, "diff", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_check_says_how_to_see_the_diff(history: tuple[GitRepo, str, str]) -> None:
    git, base, head = history
    done = _run(git.path, "check", "--base", base, "--head", head)
    assert f"flux-review diff --base {base[:12]} --head {head[:12]}" in done.stdout
    as_json = json.loads(
        _run(git.path, "check", "--base", base, "--head", head, "--format", "json").stdout
    )
    assert [c["cluster"] for c in as_json["diff"]] == ["clusters/prod", "clusters/staging"]
    summary = _run(git.path, "check", "--base", base, "--head", head, "--format", "markdown")
    assert "### What this pull request changes" in summary.stdout


def test_a_change_that_applies_nothing_says_so(history: tuple[GitRepo, str, str]) -> None:
    git, _, head = history
    readme = git.commit("docs", {"README.md": "# platform\n"})
    done = _run(git.path, "diff", "--base", head, "--head", readme)
    assert done.stdout == "This change touches no object that a cluster applies.\n"
    check = _run(git.path, "check", "--base", head, "--head", readme)
    assert "flux-review diff" not in check.stdout


def test_staged_changes_against_the_base(tmp_path: Path) -> None:
    git = GitRepo(tmp_path / "gitops")
    files = base_files()
    base = git.commit("base", files)
    git.write({"apps/web.yaml": str(files["apps/web.yaml"]).replace("web:1.0.0", "web:2.0.0")})
    git.git("add", "apps/web.yaml")
    done = _run(git.path, "diff", "--base", base, "--staged", "--color", "never")
    assert done.returncode == 0, done.stderr
    assert "+      - image: ghcr.io/example/web:2.0.0" in done.stdout
    check = _run(git.path, "check", "--staged")
    assert f"flux-review diff --base {base[:12]} --staged" in check.stdout
