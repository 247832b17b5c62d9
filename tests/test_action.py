"""The GitHub Action, run the way GitHub runs a composite action.

`action.yml` is parsed and each `run:` step goes through `bash` with the step's `env`
evaluated from the inputs, in the workspace, with `GITHUB_ACTION_PATH` at this repository,
a `GITHUB_EVENT_PATH` pull request event and fresh `GITHUB_OUTPUT` / `GITHUB_STEP_SUMMARY`
files per step. `uses:` steps are skipped: instead of `actions/setup-python` the Python
running the tests is first on the PATH. The workspace is checked out the way
`actions/checkout` does by default: the pull request's merge commit, one commit deep.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.action import ActionError, find_base, input_value
from tests.sarif import assert_valid_sarif
from tests.test_github_formats import INCIDENT, parse_workflow_command

ROOT = Path(__file__).resolve().parent.parent
INCIDENT_FILES = ROOT / "examples" / "incident"
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Example",
    "GIT_AUTHOR_EMAIL": "ex@example.com",
    "GIT_COMMITTER_NAME": "Example",
    "GIT_COMMITTER_EMAIL": "ex@example.com",
}


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


@dataclass
class Origin:
    """The repository on 'GitHub': main at the incident's base, one branch per PR."""

    path: Path
    main: str

    def pull_request(self, number: int, branch: str, files: Mapping[str, Path | None]) -> str:
        """A PR branch off main changing `files` (a source file to copy, None to delete),
        and GitHub's refs/pull/N/merge for it; returns the head SHA."""
        git(self.path, "checkout", "-q", "-b", branch, self.main)
        for name, source in files.items():
            target = self.path / name
            if source is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", f"PR {number}")
        head = git(self.path, "rev-parse", "HEAD")
        # GitHub's test merge: a merge commit even when the branch is ahead of the base.
        tree = git(self.path, "rev-parse", "HEAD^{tree}")
        merge = git(self.path, "commit-tree", tree, "-p", self.main, "-p", head, "-m", "Merge")
        git(self.path, "update-ref", f"refs/pull/{number}/merge", merge)
        git(self.path, "checkout", "-q", "main")
        return head


def incident_change() -> dict[str, Path | None]:
    """The head of examples/build.py: the files of examples/incident/head over the base."""
    head = INCIDENT_FILES / "head"
    return {str(p.relative_to(head)): p for p in head.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    path = tmp_path_factory.mktemp("github") / "platform-gitops"
    shutil.copytree(INCIDENT_FILES / "base", path)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Platform chart 1.1.12")
    return Origin(path, git(path, "rev-parse", "HEAD"))


@pytest.fixture(scope="module")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One RUNNER_TEMP for the module, as for the steps of one job: the action installs
    # flux-review there once (a virtualenv built with pip, dependencies from the package
    # index: tens of seconds, so the tests that run the action are marked slow).
    return tmp_path_factory.mktemp("runner-temp")


def checkout_merge(origin: Origin, number: int, workspace: Path) -> None:
    """What actions/checkout does for a pull_request event at its default fetch-depth 1."""
    workspace.mkdir(parents=True)
    git(workspace, "init", "-q")
    git(workspace, "remote", "add", "origin", f"file://{origin.path}")
    git(
        workspace,
        "fetch",
        "-q",
        "--no-tags",
        "--depth=1",
        "origin",
        f"+refs/pull/{number}/merge:refs/remotes/pull/{number}/merge",
    )
    git(workspace, "checkout", "-q", "--detach", f"refs/remotes/pull/{number}/merge")


@dataclass
class ActionRun:
    returncode: int
    stdout: str
    stderr: str
    summary: str
    outputs: dict[str, str]
    workspace: Path

    def annotations(self) -> list[tuple[str, dict[str, str], str]]:
        return [
            parse_workflow_command(line)
            for line in self.stdout.splitlines()
            if line.startswith("::")
        ]


_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _evaluate(text: str, inputs: Mapping[str, str], steps: Mapping[str, dict[str, str]]) -> str:
    def value(m: re.Match[str]) -> str:
        expr = m[1]
        if expr.startswith("inputs."):
            return inputs[expr.removeprefix("inputs.")]
        if s := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expr):
            return steps.get(s[1], {}).get(s[2], "")
        raise AssertionError(f"expression the test runner does not know: {expr}")

    return _EXPR.sub(value, text)


def _read_outputs(path: Path) -> dict[str, str]:
    outputs: dict[str, str] = {}
    lines = iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and "=" not in line.split("<<")[0]:
            key, delim = line.split("<<", 1)
            outputs[key] = "\n".join(iter(lambda: next(lines), delim))
        elif "=" in line:
            key, _, val = line.partition("=")
            outputs[key] = val
    return outputs


def run_action(
    workspace: Path, runner_temp: Path, event: dict[str, Any] | None, **given: str
) -> ActionRun:
    spec = yaml.safe_load((ROOT / "action.yml").read_text())
    assert spec["runs"]["using"] == "composite"
    inputs = {name: str(i.get("default", "")) for name, i in spec["inputs"].items()}
    assert set(given) <= set(inputs), given
    inputs.update(given)
    home = runner_temp.parent / f"{workspace.name}-files"
    home.mkdir(exist_ok=True)
    event_path = home / "event.json"
    event_path.write_text(json.dumps(event or {}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "INPUT_"))},
        **GIT_ENV,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_EVENT_NAME": "pull_request" if event else "push",
        "GITHUB_EVENT_PATH": str(event_path),
        "RUNNER_TEMP": str(runner_temp),
    }
    steps: dict[str, dict[str, str]] = {}
    stdout = stderr = summary = ""
    returncode = 0
    for i, step in enumerate(spec["runs"]["steps"]):
        if "uses" in step:  # actions/setup-python: the tests' own Python stands in
            continue
        assert step.get("shell") == "bash"
        output, step_summary = home / f"output-{i}", home / f"summary-{i}"
        output.write_text("")
        step_summary.write_text("")
        step_env = {k: _evaluate(str(v), inputs, steps) for k, v in step.get("env", {}).items()}
        script = home / f"step-{i}.sh"
        script.write_text(_evaluate(step["run"], inputs, steps))
        proc = subprocess.run(
            # GitHub's invocation for `shell: bash`.
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace,
            capture_output=True,
            text=True,
            timeout=600,
            env={
                **env,
                **step_env,
                "GITHUB_OUTPUT": str(output),
                "GITHUB_STEP_SUMMARY": str(step_summary),
            },
        )
        stdout += proc.stdout
        stderr += proc.stderr
        summary += step_summary.read_text()
        if "id" in step:
            steps[step["id"]] = _read_outputs(output)
        if proc.returncode != 0:
            returncode = proc.returncode
            break
    outputs = {
        name: _evaluate(o["value"], inputs, steps) for name, o in spec.get("outputs", {}).items()
    }
    return ActionRun(returncode, stdout, stderr, summary, outputs, workspace)


def pr_event(origin: Origin, number: int, head: str) -> dict[str, Any]:
    return {
        "action": "opened",
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"ref": "main", "sha": origin.main},
            "head": {"ref": f"pr-{number}", "sha": head},
        },
    }


@pytest.fixture(scope="module")
def incident_pr(origin: Origin) -> tuple[int, str]:
    return 1, origin.pull_request(1, "pr-1", incident_change())


@pytest.mark.slow
def test_the_incident_pull_request(
    origin: Origin, incident_pr: tuple[int, str], runner_temp: Path, tmp_path: Path
) -> None:
    number, head = incident_pr
    workspace = tmp_path / "workspace"
    checkout_merge(origin, number, workspace)
    assert git(workspace, "rev-parse", "--is-shallow-repository") == "true"
    absent = subprocess.run(
        ["git", "cat-file", "-e", origin.main], cwd=workspace, capture_output=True, check=False
    )
    assert absent.returncode != 0  # the base is not in a one-commit checkout

    run = run_action(workspace, runner_temp, pr_event(origin, number, head))

    assert run.returncode == 1, run.stdout + run.stderr
    found = {(c, p["title"], p["file"], int(p["line"])) for c, p, _ in run.annotations()}
    assert found == INCIDENT
    assert "## flux-review" in run.summary
    assert "**5 errors, 2 warnings** introduced by the change" in run.summary
    assert "`infrastructure/platform-release.yaml` line 12" in run.summary
    assert run.outputs == {"errors": "5", "warnings": "2", "sarif": "flux-review.sarif"}
    sarif = json.loads((workspace / "flux-review.sarif").read_text())
    assert_valid_sarif(sarif)
    assert len(sarif["runs"][0]["results"]) == 7
    # The base was fetched one commit deep; the clone stays shallow.
    assert git(workspace, "rev-parse", "--is-shallow-repository") == "true"
    assert git(workspace, "cat-file", "-t", origin.main) == "commit"


@pytest.mark.parametrize(
    ("fail_on", "status"), [("error", 1), ("warning", 1), ("notice", 1), ("never", 0)]
)
@pytest.mark.slow
def test_fail_on_sets_the_exit_status(
    origin: Origin,
    incident_pr: tuple[int, str],
    runner_temp: Path,
    tmp_path: Path,
    fail_on: str,
    status: int,
) -> None:
    number, head = incident_pr
    workspace = tmp_path / "workspace"
    checkout_merge(origin, number, workspace)
    run = run_action(workspace, runner_temp, pr_event(origin, number, head), **{"fail-on": fail_on})
    assert run.returncode == status, run.stdout + run.stderr
    # Whatever the threshold, every finding is annotated and counted.
    assert len(run.annotations()) == 7
    assert run.outputs["errors"] == "5"


@pytest.mark.slow
def test_a_warning_fails_only_from_fail_on_warning(
    origin: Origin, runner_temp: Path, tmp_path: Path
) -> None:
    unlisted = INCIDENT_FILES / "head" / "infrastructure" / "network-policy.yaml"
    head = origin.pull_request(2, "pr-2", {"infrastructure/network-policy.yaml": unlisted})
    for fail_on, status in (("", 0), ("error", 0), ("warning", 1)):
        workspace = tmp_path / f"workspace-{fail_on or 'default'}"
        checkout_merge(origin, 2, workspace)
        run = run_action(workspace, runner_temp, pr_event(origin, 2, head), **{"fail-on": fail_on})
        assert run.returncode == status, (fail_on, run.stdout + run.stderr)
        [(command, props, _)] = run.annotations()
        assert (command, props["file"], props["line"]) == (
            "warning",
            "infrastructure/network-policy.yaml",
            "1",
        )
        assert run.outputs["errors"] == "0" and run.outputs["warnings"] == "1"


@pytest.mark.slow
def test_a_clean_pull_request_passes(origin: Origin, runner_temp: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# platform\n")
    head = origin.pull_request(3, "pr-3", {"README.md": readme})
    workspace = tmp_path / "workspace"
    checkout_merge(origin, 3, workspace)
    run = run_action(workspace, runner_temp, pr_event(origin, 3, head), sarif="out/review.sarif")
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.annotations() == []
    assert "**No problems found** introduced by the change" in run.summary
    assert run.outputs == {"errors": "0", "warnings": "0", "sarif": "out/review.sarif"}
    assert_valid_sarif(json.loads((workspace / "out" / "review.sarif").read_text()))


@pytest.mark.slow
def test_a_plain_shallow_clone_of_the_branch_and_an_explicit_base(
    origin: Origin,
    incident_pr: tuple[int, str],
    runner_temp: Path,
    tmp_path: Path,
) -> None:
    number, head = incident_pr
    workspace = tmp_path / "clone"
    git(
        tmp_path,
        "clone",
        "-q",
        "--depth",
        "1",
        "--branch",
        f"pr-{number}",
        f"file://{origin.path}",
        str(workspace),
    )
    run = run_action(workspace, runner_temp, None, base="main")
    assert run.returncode == 1, run.stdout + run.stderr
    assert {(c, p["file"], int(p["line"])) for c, p, _ in run.annotations()} == {
        (c, path, line) for c, _, path, line in INCIDENT
    }
    assert head == git(workspace, "rev-parse", "HEAD")


@pytest.mark.slow
def test_outside_a_pull_request_the_whole_tree_is_checked(
    origin: Origin, runner_temp: Path, tmp_path: Path
) -> None:
    workspace = tmp_path / "main"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin.path}", str(workspace))
    run = run_action(workspace, runner_temp, None)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "**No problems found** in the tree at" in run.summary


@pytest.mark.slow
def test_a_wrong_input_or_an_unreachable_base_fails_with_a_message(
    origin: Origin,
    incident_pr: tuple[int, str],
    runner_temp: Path,
    tmp_path: Path,
) -> None:
    number, head = incident_pr
    workspace = tmp_path / "workspace"
    checkout_merge(origin, number, workspace)
    event = pr_event(origin, number, head)
    run = run_action(workspace, runner_temp, event, **{"fail-on": "sometimes"})
    assert run.returncode == 2
    [(command, _, message)] = run.annotations()
    assert command == "error" and "fail-on must be one of" in message
    run = run_action(workspace, runner_temp, event, base="0" * 40)
    assert run.returncode == 2
    assert "cannot fetch the base" in run.annotations()[0][2]


def test_inputs_come_from_the_step_env_or_input_variables() -> None:
    assert input_value("fail-on", {"FLUX_REVIEW_FAIL_ON": "warning"}) == "warning"
    # Runners that set INPUT_* (with GitHub's spelling, `-` kept) and leave expressions alone.
    env = {"FLUX_REVIEW_FAIL_ON": "${{ inputs.fail-on }}", "INPUT_FAIL-ON": "never"}
    assert input_value("fail-on", env) == "never"
    assert input_value("fail-on", {"INPUT_FAIL_ON": "notice"}) == "notice"
    assert input_value("sarif", {}, "flux-review.sarif") == "flux-review.sarif"
    # A runner that evaluates an input it was not given to nothing: the default applies.
    assert input_value("sarif", {"FLUX_REVIEW_SARIF": ""}, "flux-review.sarif") == (
        "flux-review.sarif"
    )


def test_a_base_that_looks_like_an_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="base must be a revision"):
        find_base(tmp_path, "--upload-pack=touch /tmp/owned", {})


def test_outside_a_pull_request_event_there_is_no_base(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/heads/main", "before": "a" * 40}))
    assert find_base(tmp_path, "", {"GITHUB_EVENT_PATH": str(event)}) is None
    assert find_base(tmp_path, "", {}) is None
