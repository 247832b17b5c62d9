"""bench/run.py says, for each ratio, whether it met its target, and what a miss means."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.run import TARGETS, verdict

ROOT = Path(__file__).resolve().parent.parent


def test_a_missed_target_says_by_how_much_and_what_it_means() -> None:
    missed = verdict("pr/tree", 1.5)
    assert missed.startswith("1.50 (target <= 1.25: MISSED by 20%)")
    assert "\n  why: " in missed and "cached by blob id" in missed
    assert "cProfile" in missed
    met = verdict("pr/tree", 1.1)
    assert met == "1.10 (target <= 1.25: ok)"


def test_every_ratio_the_benchmark_prints_is_judged_against_its_target() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/run.py", "--apps", "5", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    judged = re.findall(r"\(target <= [\d.]+: (ok|MISSED by \d+%)\)", proc.stdout)
    assert len(judged) == 4, proc.stdout
    lines = proc.stdout.splitlines()
    for i, line in enumerate(lines):
        if "MISSED" in line:
            assert lines[i + 1].startswith("  why: "), proc.stdout
    assert set(TARGETS) == {"pr/tree", "tree/floor", "pr/floor"}
