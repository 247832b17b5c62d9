"""`fail_on` is one setting: the config's `fail_on`, `--fail-on` of the command line and
the Action's `fail-on` input decide the same way in the CLI, the pre-commit hook (the
CLI with `--staged`), the Action and the App's check run. The hook through
`pre-commit try-repo` is in tests/test_precommit.py (slow)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.action import run as run_action
from bot.server import create_app
from bot.settings import Settings
from tests.fakegithub import FakeGitHub, GitRepo
from tests.test_cli import DEPLOYMENT, FLUX_SYSTEM, check, findings

CONFIG = ".github/flux-review.yml"
# A manifest in a kustomize directory that its kustomization.yaml does not list: a
# warning (kustomize-unlisted-manifest), nothing worse.
LISTED = {
    "clusters/prod/flux-system.yaml": FLUX_SYSTEM,
    "apps/kustomization.yaml": "resources:\n  - web.yaml\n",
    "apps/web.yaml": DEPLOYMENT.format(image="ghcr.io/example/web:1.0"),
}
UNLISTED = {"apps/extra.yaml": DEPLOYMENT.format(image="ghcr.io/example/extra:1.0")}
BROKEN = {"apps/web.yaml": DEPLOYMENT.format(image='"ghcr.io/example/web:"')}


def one_warning(repo: GitRepo, config: str | None) -> str:
    """Base: a working tree with `config`; head: one new warning. Returns the base."""
    files = dict(LISTED)
    if config is not None:
        files[CONFIG] = config
    repo.commit("base", files)
    base = repo.head()
    repo.commit("unlisted", UNLISTED)
    return base


@pytest.mark.parametrize(
    ("config", "args", "status"),
    [
        (None, [], 0),
        ("fail_on: warning\n", [], 1),
        ("fail_on: notice\n", [], 1),
        ("fail_on: error\n", [], 0),
        # The command line overrides the config, either way.
        ("fail_on: warning\n", ["--fail-on", "error"], 0),
        (None, ["--fail-on", "warning"], 1),
        ("fail_on: never\n", ["--fail-on", "notice"], 1),
    ],
)
def test_the_cli_exits_by_the_config_unless_fail_on_is_given(
    tmp_path: Path, config: str | None, args: list[str], status: int
) -> None:
    repo = GitRepo(tmp_path / "gitops")
    base = one_warning(repo, config)
    proc = check(repo.path, "--base", base, "--format", "json", *args)
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert [(f["rule"], f["severity"]) for f in findings(proc)] == [
        ("kustomize-unlisted-manifest", "warning")
    ]


def test_fail_on_never_passes_errors_and_still_reports_them(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit("base", {**LISTED, CONFIG: "fail_on: never\n"})
    repo.commit("break", BROKEN)
    proc = check(repo.path, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [f["severity"] for f in findings(proc)] == ["error"]
    assert check(repo.path, "--fail-on", "error").returncode == 1


def test_pre_existing_findings_fail_the_command_only_when_all_reports_them(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit("base", LISTED)
    repo.commit("old breakage", BROKEN)
    base = repo.head()
    repo.commit("unrelated", {"README.md": "# platform\n"})
    proc = check(repo.path, "--base", base, "--format", "json")
    # As the App's check run: the change did not cause it.
    assert findings(proc) == [] and proc.returncode == 0, proc.stdout
    proc = check(repo.path, "--base", base, "--all", "--format", "json")
    assert [(f["severity"], f["introduced"]) for f in findings(proc)] == [("error", False)]
    # The exit status counts every reported finding (the command line's contract).
    assert proc.returncode == 1, proc.stdout


def test_the_staged_check_of_the_hook_honours_the_config(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit("base", {**LISTED, CONFIG: "fail_on: warning\n"})
    repo.write(UNLISTED)
    repo.git("add", "-A")
    # `.pre-commit-hooks.yaml`'s entry, as the hook runs it.
    proc = check(repo.path, "--staged")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "warning [kustomize-unlisted-manifest]" in proc.stdout


def test_a_wrong_fail_on_is_a_usage_error(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit("base", LISTED)
    proc = check(repo.path, "--fail-on", "critical")
    assert proc.returncode == 2
    assert "invalid choice: 'critical'" in proc.stderr
    assert "'error', 'warning', 'notice', 'never'" in proc.stderr


def test_fail_on_is_in_the_cli_help() -> None:
    proc = check(Path("."), "--help")
    assert "--fail-on {error,warning,notice,never}" in proc.stdout


# -- the Action's step (bot/action.py), in process --------------------------------------------


def action(
    repo: GitRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str], **inputs: str
) -> tuple[int, str, str]:
    """The Action's step outside a pull request (the whole tree at HEAD): exit status,
    workflow commands and the job summary."""
    summary = tmp_path / "summary.md"
    env = {
        "FLUX_REVIEW_PATH": str(repo.path),
        "FLUX_REVIEW_SARIF": str(tmp_path / "review.sarif"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(summary),
        **{f"FLUX_REVIEW_{k.upper()}": v for k, v in inputs.items()},
    }
    status = run_action(env)
    return status, capsys.readouterr().out, summary.read_text()


@pytest.mark.parametrize(
    ("config", "given", "status", "verdict"),
    [
        ("fail_on: warning\n", "", 1, "The step fails: findings of severity `warning`"),
        ("fail_on: warning\n", "error", 0, "only findings of severity `error` or higher"),
        ("", "notice", 1, "The step fails: findings of severity `notice`"),
        ("fail_on: never\n", "", 0, "The step passes whatever it finds"),
        ("fail_on: error\n", "never", 0, "The step passes whatever it finds"),
    ],
)
def test_the_action_follows_the_config_and_its_input_overrides_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config: str,
    given: str,
    status: int,
    verdict: str,
) -> None:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit("tree", {**LISTED, **UNLISTED, CONFIG: config})
    got, out, summary = action(repo, tmp_path, capsys, fail_on=given)
    assert got == status, out
    assert "::warning file=apps/extra.yaml" in out
    assert verdict in summary


# -- the App's check run ------------------------------------------------------------------------


@pytest.fixture
async def app_url(fake_github: FakeGitHub, github_app_key: str) -> AsyncIterator[str]:
    settings = Settings(
        app_id=fake_github.app_id,
        private_key=github_app_key,
        webhook_secret="fail-on-secret",
        github_api_url=fake_github.url,
        write_interval=0.0,
        shutdown_grace=2.0,
        review_timeout=20.0,
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("config", "conclusion", "says"),
    [
        ("fail_on: error\n", "success", "only findings of severity `error` or higher"),
        ("fail_on: warning\n", "failure", "findings of severity `warning` or higher"),
        ("fail_on: never\n", "success", "passes whatever it finds (`fail_on: never`)"),
    ],
)
async def test_the_check_run_follows_the_config(
    fake_github: FakeGitHub,
    git_repo: GitRepo,
    app_url: str,
    config: str,
    conclusion: str,
    says: str,
) -> None:
    git_repo.commit("base", {**LISTED, CONFIG: config})
    git_repo.branch("feature")
    git_repo.commit("unlisted", UNLISTED)
    git_repo.checkout("main")
    fake_github.add_pull("feature")
    answer = await fake_github.deliver(app_url, "pull_request.opened", "fail-on-secret")
    assert answer.status == 202
    deadline = time.monotonic() + 20
    while not [r for r in fake_github.check_runs_named() if r.status == "completed"]:
        assert time.monotonic() < deadline, "no completed check run"
        await asyncio.sleep(0.05)
    [run] = fake_github.check_runs_named()
    assert run.conclusion == conclusion
    assert says in (run.summary or "")
    assert [a["path"] for a in run.annotations] == ["apps/extra.yaml"]


def test_the_readme_documents_fail_on_once() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    # One place says what the values mean; the Action's input and the CLI point at it.
    assert readme.count("`error`, `warning`, `notice` or `never`") == 1
    assert "[`fail_on`](#failing-the-check)" in readme
