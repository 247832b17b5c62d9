"""Refresh bot/analysis/k8sschemas/pluto/versions.yaml from a local clone of pluto.

    python scripts/vendor_pluto_versions.py PLUTO_CLONE [REV]

PLUTO_CLONE is a clone (bare is fine) of github.com/FairwindsOps/pluto; REV defaults to
HEAD. The file is copied as pluto ships it, after checking that every entry has the
fields bot/analysis/k8sschemas/removed.py reads; the commit it came from is written to
pluto/NOTICE. Nothing is downloaded: the script reads the clone with `git`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "bot" / "analysis" / "k8sschemas" / "pluto"
FIELDS = ("version", "kind", "deprecated-in", "removed-in", "component")
NOTICE = """\
versions.yaml in this directory is pluto's list of deprecated and removed API versions,
copied unchanged from github.com/FairwindsOps/pluto at commit {commit}.
Copyright Fairwinds, licensed under the Apache License, Version 2.0 (LICENSE in this
directory). It is refreshed by scripts/vendor_pluto_versions.py.
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    clone = Path(argv[0])
    rev = argv[1] if len(argv) > 1 else "HEAD"
    commit = git(clone, "rev-parse", f"{rev}^{{commit}}").strip()
    text = git(clone, "show", f"{commit}:versions.yaml")
    data = yaml.safe_load(text)
    entries = data.get("deprecated-versions") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise SystemExit("versions.yaml has no deprecated-versions list")
    for entry in entries:
        missing = [f for f in FIELDS if f not in entry]
        if missing:
            raise SystemExit(f"entry {entry} lacks {', '.join(missing)}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "versions.yaml").write_text(text)
    (OUT / "LICENSE").write_text(git(clone, "show", f"{commit}:LICENSE"))
    (OUT / "NOTICE").write_text(NOTICE.format(commit=commit))
    k8s = sum(1 for e in entries if e["component"] == "k8s")
    print(f"{len(entries)} entries ({k8s} of Kubernetes) from {commit[:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
