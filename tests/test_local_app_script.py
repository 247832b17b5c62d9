"""`scripts/app_against_fake_github.py` as a user runs it: on a repository and pull request
of theirs, printing what it promises, and stopping the App it started when it is stopped."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "scripts/app_against_fake_github.py"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def test_it_reviews_the_pull_request_a_user_names_and_prints_the_rule_docs(
    tmp_path: Path,
) -> None:
    # The user's repository: main at the incident's base, their branch `topic` with it.
    repo = tmp_path / "platform-gitops"
    subprocess.run(
        [sys.executable, "examples/build.py", str(repo)], cwd=ROOT, check=True, capture_output=True
    )
    git(repo, "branch", "topic")
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    refs = git(repo, "for-each-ref")
    proc = subprocess.run(
        [
            sys.executable,
            SCRIPT,
            "--repo",
            str(repo),
            "--base",
            "main",
            "--head",
            "topic",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "(pull request #1: topic into main)" in out
    assert "completed / failure: 5 errors, 2 warnings" in out
    # "Each rule's documentation follows the list": it does.
    assert "Each rule's documentation follows the list." in out
    for rule in ("chart-version-mismatch", "dangling-reference", "helm-template-in-raw-manifest"):
        assert f"\n## {rule}\n" in out, rule
    assert "Fix:" in out
    # The user's repository is read, never written.
    assert git(repo, "for-each-ref") == refs
    assert git(repo, "status", "--porcelain") == ""


def test_a_revision_the_repository_lacks_is_one_line(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(
        [sys.executable, "examples/build.py", str(repo)], cwd=ROOT, check=True, capture_output=True
    )
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--repo", str(repo), "--base", "main", "--head", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"{repo} has no commit 'nope'"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_stops_the_app_it_started() -> None:
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, "--keep", "--timeout", "60"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    app_pid = None
    try:
        deadline = time.monotonic() + 90
        while True:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            if found := re.search(r"the App \(pid (\d+)\)", line):
                app_pid = int(found[1])
            if line.startswith("running until Ctrl-C or SIGTERM"):
                break
        assert app_pid is not None and _alive(app_pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=45) == 0
        reader.join(timeout=10)
        rest = "".join(lines.get_nowait() for _ in range(lines.qsize()))
        assert "stopped by SIGTERM; the App is stopped too" in rest
        assert not _alive(app_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if app_pid is not None and _alive(app_pid):
            os.kill(app_pid, signal.SIGKILL)
