"""A test run that could not run a suite says so in its last lines, without `-rs`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_run_without_redis_server_and_kubectl_says_what_it_skipped(tmp_path: Path) -> None:
    # A machine with git and nothing else of what the suite can use.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = next(
        Path(d) / "git"
        for d in os.environ["PATH"].split(os.pathsep)
        if d and (Path(d) / "git").exists()
    )
    (bin_dir / "git").symlink_to(git)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "FLUX_REVIEW_REQUIRE_KUBECTL", "PYTEST_ADDOPTS")
    }
    env["PATH"] = str(bin_dir)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_kustomize_oracle.py",
            "tests/test_app_redis.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-4:]
    assert "not tested in this run" in last[0]
    # one line per reason, the most skipped first
    reasons = sorted(last[1:3], key=lambda line: line.split(" ", 1)[1])
    assert re.fullmatch(r"\d+ skipped: kubectl is not on the PATH \(install kubectl\)", reasons[0])
    assert reasons[1].endswith(
        "skipped: no redis-server binary and no REDIS_URL: the shared-queue tests cannot run "
        "(install redis-server, or set REDIS_URL)"
    )
    counts = [int(line.split()[0]) for line in last[1:3]]
    assert counts == sorted(counts, reverse=True)
    assert "skipped" in last[3]
