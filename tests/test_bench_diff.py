"""bench/diff.py gives the check run's size for each change, judged against GitHub's
limit, and the time the diff adds to the review."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_diff_benchmark_reports_sizes_and_the_time_it_adds() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/diff.py", "--apps", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    sizes = re.findall(
        r"text ([\d,]+) characters \(limit 65,535 each\): (valid|INVALID)", proc.stdout
    )
    assert [v for _, v in sizes] == ["valid", "valid"], proc.stdout
    assert len(re.findall(r"the diff adds -?\d+% to the review", proc.stdout)) == 2, proc.stdout
    assert re.search(r"^20 image bumps: 20 objects in the diff$", proc.stdout, re.M), proc.stdout
