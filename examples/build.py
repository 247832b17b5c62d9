"""Build the example repository: a base commit and a head commit that reproduces the
incident described in README.md (a chart's templates that a Flux Kustomization also
applies raw gain Helm syntax, the chart is bumped without its HelmRelease, a manifest is
added unlisted, and a HelmRepository is renamed under its HelmRelease).

    python examples/build.py /tmp/flux-review-example
    flux-review check --repo /tmp/flux-review-example --base HEAD~1
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "incident"


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Example",
            "-c",
            "user.email=ex@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        check=True,
        capture_output=True,
    )


def build(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(HERE / "base", dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "Platform chart 1.1.12")
    shutil.copytree(HERE / "head", dest, dirs_exist_ok=True, copy_function=shutil.copy)
    # Same size and mtime as the base copy would let git's stat cache miss the change.
    git(dest, "rm", "-r", "-q", "--cached", ".")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "Use the global image registry; bump platform to 1.1.13")


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python examples/build.py DEST", file=sys.stderr)
        return 2
    dest = Path(sys.argv[1])
    build(dest)
    print(f"built {dest}: base HEAD~1, head HEAD", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
