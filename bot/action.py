"""The GitHub Action's step (`action.yml`): one analysis, every output GitHub reads.

Run as `python -m bot.action` with the action's inputs in the environment. It finds the
base of the change (the pull request's base commit, fetched when `actions/checkout` left
it out), runs the check once and writes from that one result: workflow-command
annotations on stdout, the job summary to `$GITHUB_STEP_SUMMARY`, the SARIF file, and
`errors`, `warnings` and `sarif` to `$GITHUB_OUTPUT`. The exit status follows `fail-on`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.analysis import ConfigError, Severity
from bot.analysis.options import FAIL_ON_CHOICES, fails
from bot.cli import UsageError, analyze_repository, fail_on_for, render
from bot.gitrepo import GitError, is_shallow
from bot.report import formats

_EXPRESSION = "${{"


class ActionError(Exception):
    """A wrong input or a base that cannot be had: the step fails with this message."""


def input_value(name: str, env: Mapping[str, str], default: str = "") -> str:
    """An input of the action. GitHub sets no `INPUT_*` variables for the steps of a
    composite action (actions/runner#665), so action.yml passes each input as
    `FLUX_REVIEW_<NAME>`; `INPUT_<NAME>` (with `-` or `_`) is read too, for runners and
    scripts that set those. A value still holding `${{` was never evaluated, and an empty
    one says nothing: the next spelling, then the default, applies."""
    upper = name.upper()
    keys = [
        f"FLUX_REVIEW_{upper.replace('-', '_')}",
        f"INPUT_{upper}",
        f"INPUT_{upper.replace('-', '_')}",
    ]
    for key in keys:
        value = env.get(key, "").strip()
        if value and _EXPRESSION not in value:
            return value
    return default


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )


def _has_commit(repo: Path, rev: str) -> bool:
    proc = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    return proc.returncode == 0


def _pull_request(env: Mapping[str, str]) -> dict[str, object] | None:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pr = event.get("pull_request") if isinstance(event, dict) else None
    return pr if isinstance(pr, dict) else None


def _sha(pr: dict[str, object], side: str) -> str | None:
    ref = pr.get(side)
    sha = ref.get("sha") if isinstance(ref, dict) else None
    return sha if isinstance(sha, str) and sha else None


def find_base(repo: Path, wanted: str, env: Mapping[str, str]) -> str | None:
    """The revision to compare with: the `base` input, else the pull request's base
    commit, else None (the whole tree is checked). One that is not in the clone is
    fetched from `origin`, one commit deep: `actions/checkout` fetches a single commit by
    default, and the comparison needs the base's tree only, not its history."""
    if wanted.startswith("-"):
        raise ActionError(f"base must be a revision (got {wanted!r})")
    if not wanted:
        pr = _pull_request(env)
        if pr is None or (base_sha := _sha(pr, "base")) is None:
            return None
        # actions/checkout checks out the merge commit of the pull request into the base:
        # compared with the base commit, that is what merging changes.
        wanted = base_sha
    if _has_commit(repo, wanted):
        return wanted
    fetch = _git(
        repo,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-recurse-submodules",
        "--depth=1",
        "origin",
        wanted,
    )
    if fetch.returncode != 0:
        reason = (fetch.stderr.strip().splitlines() or ["git fetch failed"])[-1]
        hint = ""
        if any(c in wanted for c in "~^@") and is_shallow(repo):
            # `HEAD~1` names a commit by its place in the history, and origin cannot be
            # asked for it: it must be in the clone, which actions/checkout makes one
            # commit deep by default.
            hint = (
                f"; {wanted} is counted back from a commit of this shallow clone, whose "
                "history stops before it: give actions/checkout `fetch-depth: 0` (or run "
                "`git fetch --deepen=50`), or set `base` to a branch, tag or commit id"
            )
        raise ActionError(f"cannot fetch the base {wanted} from origin: {reason}{hint}")
    if _has_commit(repo, wanted):
        return wanted
    # A branch or tag name: what was fetched is FETCH_HEAD.
    fetched = _git(repo, "rev-parse", "--verify", "FETCH_HEAD^{commit}").stdout.strip()
    if not fetched:
        raise ActionError(f"fetched the base {wanted} from origin but found no commit")
    return fetched


def _write(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(text)


def _output(env: Mapping[str, str], values: Mapping[str, str]) -> None:
    _write(env.get("GITHUB_OUTPUT"), "".join(f"{k}={v}\n" for k, v in values.items()))


def run(env: Mapping[str, str]) -> int:
    repo = Path(input_value("path", env, ".") or ".")
    fail_on_name = input_value("fail-on", env).lower()
    if fail_on_name and fail_on_name not in FAIL_ON_CHOICES:
        raise ActionError(
            f"fail-on must be one of {', '.join(FAIL_ON_CHOICES)} (got {fail_on_name!r})"
        )
    sarif_path = input_value("sarif", env, "flux-review.sarif")
    config = input_value("config", env)
    base = find_base(repo, input_value("base", env), env)
    args = argparse.Namespace(
        repo=str(repo), base=base, head=None, staged=False, all=False, config=config or None
    )
    outcome = analyze_repository(args)
    # Without the input, the repository's own `fail_on` decides, as for the App.
    fail_on = fail_on_for(fail_on_name, outcome.config)
    for note in outcome.notes:
        print(f"::notice title=flux-review::{formats.escape_data(note)}")
    for warning in outcome.warnings:
        print(f"::warning title=flux-review::{formats.escape_data(warning)}")
    sys.stdout.write(render(outcome, "github"))
    findings = outcome.findings
    print(
        f"flux-review: {len(findings)} finding(s) "
        f"{'introduced by the change from ' + base if base else 'in the tree'}"
    )
    _write(env.get("GITHUB_STEP_SUMMARY"), render(outcome, "markdown", fail_on=fail_on))
    if sarif_path:
        Path(sarif_path).parent.mkdir(parents=True, exist_ok=True)
        Path(sarif_path).write_text(render(outcome, "sarif"), encoding="utf-8")
    _output(
        env,
        {
            "errors": str(sum(f.severity is Severity.ERROR for f in findings)),
            "warnings": str(sum(f.severity is Severity.WARNING for f in findings)),
            "sarif": sarif_path,
        },
    )
    return 1 if fails(outcome.findings, fail_on) else 0


def main() -> int:
    try:
        return run(os.environ)
    except (ActionError, UsageError, GitError, ConfigError) as exc:
        print(f"::error title=flux-review::{formats.escape_data(str(exc))}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
