"""`flux-review check` as a user runs it: a real git repository, a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.analysis_helpers import gotk_sync, tenant_sync
from tests.fakegithub.gitrepo import GitRepo
from tests.sarif import assert_valid_sarif

ROOT = Path(__file__).resolve().parent.parent

FLUX_SYSTEM = gotk_sync("./apps")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: {image}
    metadata:
      labels:
        app: web
  selector:
    matchLabels:
      app: web
"""


def named(name: str, image: str) -> str:
    """DEPLOYMENT under another name: two Deployments `web` in one build are a duplicate."""
    return DEPLOYMENT.format(image=image).replace("name: web\n", f"name: {name}\n", 1)


def check(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check", "--repo", str(repo), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def findings(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    doc = json.loads(proc.stdout)
    return doc["findings"]  # type: ignore[no-any-return]


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


def test_the_built_in_example_reports_the_incident(tmp_path: Path) -> None:
    dest = tmp_path / "example"
    subprocess.run(
        [sys.executable, "examples/build.py", str(dest)], check=True, cwd=ROOT, capture_output=True
    )
    proc = check(dest, "--base", "HEAD~1", "--format", "json")
    assert proc.returncode == 1, proc.stderr
    got = {(f["rule"], f["path"], f["line"]) for f in findings(proc)}
    assert got == {
        ("helm-template-in-raw-manifest", "charts/platform/templates/api-deployment.yaml", 9),
        ("helm-template-in-raw-manifest", "charts/platform/templates/api-deployment.yaml", 22),
        ("helm-template-in-raw-manifest", "charts/platform/templates/worker-deployment.yaml", 9),
        ("helm-template-in-raw-manifest", "charts/platform/templates/worker-deployment.yaml", 22),
        ("chart-version-mismatch", "infrastructure/platform-release.yaml", 12),
        ("dangling-reference", "infrastructure/platform-release.yaml", 15),
        ("kustomize-unlisted-manifest", "infrastructure/network-policy.yaml", 1),
    }
    mismatch = next(f for f in findings(proc) if f["rule"] == "chart-version-mismatch")
    assert mismatch["suggestion"] == '      version: "1.1.13"'
    # Its base is a working repository.
    assert check(dest, "--head", "HEAD~1").returncode == 0


def test_json_output_follows_the_contract(repo: GitRepo) -> None:
    base = repo.head()
    broken = DEPLOYMENT.format(image='"ghcr.io/Example/web:"')
    head = repo.commit("break", {"apps/web.yaml": broken})
    proc = check(repo.path, "--base", base, "--head", head, "--format", "json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["version"] == 1 and doc["base"] == base and doc["head"] == head
    [finding] = doc["findings"]
    assert finding == {
        "rule": "invalid-image-reference",
        "severity": "error",
        "path": "apps/web.yaml",
        "line": 10,
        "end_line": None,
        "message": finding["message"],
        "introduced": True,
        "suggestion": None,
        "side": "head",
        "related": [],
        "detail": finding["detail"],
    }
    assert "ghcr.io/Example/web:" in str(finding["message"])


def test_only_introduced_findings_unless_all(repo: GitRepo) -> None:
    repo.commit("old breakage", {"apps/old.yaml": named("old", "Bad Image")})
    base = repo.head()
    repo.commit("new breakage", {"apps/new.yaml": named("new", "also bad")})
    only_new = findings(check(repo.path, "--base", base, "--format", "json"))
    assert [(f["path"], f["introduced"]) for f in only_new] == [("apps/new.yaml", True)]
    everything = findings(check(repo.path, "--base", base, "--all", "--format", "json"))
    assert [(f["path"], f["introduced"]) for f in everything] == [
        ("apps/new.yaml", True),
        ("apps/old.yaml", False),
    ]
    whole_tree = findings(check(repo.path, "--format", "json"))
    assert [f["path"] for f in whole_tree] == ["apps/new.yaml", "apps/old.yaml"]


def test_findings_are_sorted_by_path_line_rule(repo: GitRepo) -> None:
    repo.commit(
        "several",
        {
            "apps/b.yaml": named("b", "B"),
            "apps/a.yaml": "key: [unclosed\n",
            "apps/c.yaml": named("c", "{{ .Values.image }}"),
        },
    )
    got = findings(check(repo.path, "--format", "json"))
    keys = [(f["path"], f["line"], f["rule"]) for f in got]
    assert keys == sorted(keys)
    assert [f["path"] for f in got] == ["apps/a.yaml", "apps/b.yaml", "apps/c.yaml"]


def test_text_output_names_file_line_and_rule(repo: GitRepo) -> None:
    repo.commit("break", {"apps/web.yaml": DEPLOYMENT.format(image='"web:"')})
    proc = check(repo.path)
    assert proc.returncode == 1
    assert "apps/web.yaml:10: error [invalid-image-reference]" in proc.stdout
    assert proc.stdout.rstrip().endswith("1 error")


def test_clean_repository_exits_zero(repo: GitRepo) -> None:
    proc = check(repo.path)
    assert proc.returncode == 0, proc.stdout
    assert "no problems found" in proc.stdout


def test_sarif_output(repo: GitRepo) -> None:
    base = repo.head()
    repo.commit("break", {"apps/web.yaml": DEPLOYMENT.format(image='"web:"')})
    proc = check(repo.path, "--base", base, "--format", "sarif")
    assert proc.returncode == 1
    sarif = json.loads(proc.stdout)
    assert_valid_sarif(sarif)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    [result] = run["results"]
    assert result["ruleId"] == "invalid-image-reference"
    assert rule_ids[result["ruleIndex"]] == "invalid-image-reference"
    assert result["level"] == "error"
    assert result["baselineState"] == "new"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "apps/web.yaml"
    assert location["region"]["startLine"] == 10


def test_checks_the_commit_not_the_working_tree(repo: GitRepo) -> None:
    broken = DEPLOYMENT.format(image="Broken Image")
    (repo.path / "apps" / "web.yaml").write_text(broken)
    (repo.path / "apps" / "untracked.yaml").write_text("a: [\n")
    assert check(repo.path).returncode == 0


def test_symlinks_submodules_and_binary_files_do_not_break_it(
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.symlink("apps/link.yaml", "/etc/passwd")
    repo.write({"apps/binary.yml.bin": b"\x00\x01\x02", "docs/logo.yaml": b"\x89PNG\x00\xff"})
    sub = GitRepo(tmp_path / "sub")
    sub.commit("x", {"a.yaml": "a: 1\n"})
    repo.git(
        "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendor/sub"
    )
    repo.commit("odd entries")
    proc = check(repo.path, "--format", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert findings(proc) == []


def test_config_is_read_from_the_base_revision(repo: GitRepo) -> None:
    base = repo.head()
    repo.commit(
        "turn the rule off and break",
        {
            ".github/flux-review.yml": "rules:\n  invalid-image-reference: off\n",
            "apps/web.yaml": DEPLOYMENT.format(image='"web:"'),
        },
    )
    # The PR cannot switch off its own review...
    assert check(repo.path, "--base", base).returncode == 1
    # ...but once merged, the config applies.
    assert check(repo.path).returncode == 0


def test_config_file_option_and_severity_override(repo: GitRepo, tmp_path: Path) -> None:
    repo.commit("break", {"apps/web.yaml": DEPLOYMENT.format(image='"web:"')})
    config = tmp_path / "review.yml"
    config.write_text("rules:\n  invalid-image-reference: warning\n")
    proc = check(repo.path, "--config", str(config), "--format", "json")
    assert proc.returncode == 0
    assert [f["severity"] for f in findings(proc)] == ["warning"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--head", "no-such-rev"], "unknown revision 'no-such-rev'"),
        (["--base", "nope"], "unknown revision 'nope'"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--config", "/nonexistent/config.yml"], "cannot read config"),
    ],
)
def test_usage_errors_exit_2_with_one_line(repo: GitRepo, args: list[str], message: str) -> None:
    proc = check(repo.path, *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_not_a_repository_exits_2(tmp_path: Path) -> None:
    proc = check(tmp_path)
    assert proc.returncode == 2
    assert "not a git repository" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_invalid_config_names_key_and_line(repo: GitRepo) -> None:
    repo.commit("config", {".github/flux-review.yml": "rules:\n  yaml-syntax-error: loud\n"})
    proc = check(repo.path)
    assert proc.returncode == 2
    assert "line 2" in proc.stderr and "yaml-syntax-error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_console_script_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'flux-review = "bot.__main__:main"' in text
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0 and "check" in proc.stdout and "serve" in proc.stdout


def test_a_gitrepository_pointing_at_the_origin_is_this_repository(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "home-ops")
    repo.commit(
        "custom source name",
        {
            "clusters/main/apps.yaml": """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: home-ops
  namespace: flux-system
spec:
  interval: 1h
  url: https://github.com/example/home-ops
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  path: ./kubernetes/apps
  sourceRef:
    kind: GitRepository
    name: home-ops
  interval: 1h
  prune: true
"""
        },
    )
    # Without knowing where the repository lives, the source may be another repository.
    assert findings(check(repo.path, "--format", "json")) == []
    repo.git("remote", "add", "origin", "git@github.com:Example/home-ops.git")
    got = findings(check(repo.path, "--format", "json"))
    assert [(f["rule"], f["path"], f["line"]) for f in got] == [
        ("kustomize-missing-resource", "clusters/main/apps.yaml", 16)
    ]


def test_sarif_links_rules_only_to_a_known_docs_url(repo: GitRepo) -> None:
    repo.commit("break", {"apps/web.yaml": DEPLOYMENT.format(image='"web:"')})
    plain = json.loads(check(repo.path, "--format", "sarif").stdout)
    assert_valid_sarif(plain)
    assert all("helpUri" not in r for r in plain["runs"][0]["tool"]["driver"]["rules"])
    env = {**os.environ, "DOCS_URL": "https://docs.example.com/rules.md"}
    linked = json.loads(
        subprocess.run(
            [sys.executable, "-m", "bot", "check", "--repo", str(repo.path), "--format", "sarif"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=60,
        ).stdout
    )
    assert_valid_sarif(linked)
    rules = linked["runs"][0]["tool"]["driver"]["rules"]
    assert rules[0]["helpUri"] == f"https://docs.example.com/rules.md#{rules[0]['id']}"


def test_a_root_syncing_another_branch_than_the_one_reviewed_builds_nothing(
    tmp_path: Path,
) -> None:
    # A tenant's sync.yaml applied by hand, in a repository without bootstrap: its
    # Kustomization syncs the root of the dev-team branch, not what a pull request into
    # main changes (flux2-multi-tenancy's history has it).
    r = GitRepo(tmp_path / "tenants")
    r.commit("start", {"README.md": "tenants\n"})
    base = r.head()
    r.git("checkout", "-q", "-b", "add-tenant")
    head = r.commit(
        "tenant",
        {
            "tenants/dev-team/sync.yaml": tenant_sync("branch: dev-team"),
            "ci/settings.yaml": "lint: strict\n",
        },
    )
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_BASE_REF"}

    def rules(*args: str, **extra: str) -> set[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "bot", "check", "--repo", str(r.path), *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env={**env, **extra},
        )
        assert proc.returncode in (0, 1), proc.stderr
        return {str(f["rule"]) for f in findings(proc)}

    # The branch under review, from --base naming it or from GitHub Actions' pull request.
    assert rules("--base", "main", "--head", head, "--format", "json") == set()
    assert (
        rules("--base", base, "--head", head, "--format", "json", GITHUB_BASE_REF="main") == set()
    )
    # Not known: the root is taken as this repository's, as before.
    assert "yaml-syntax-error" in rules("--base", base, "--head", head, "--format", "json")
    assert rules("--base", base, "--format", "json", GITHUB_BASE_REF="dev-team") >= {
        "yaml-syntax-error"
    }
