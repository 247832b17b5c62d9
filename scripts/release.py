"""Release flux-review: one version, written everywhere a user pins it.

    python scripts/release.py bump 0.2.0     # the release commit: version, changelog, pins
    python scripts/release.py check v0.2.0   # what the release workflow checks on the tag
    python scripts/release.py notes v0.2.0   # the changelog's entry, for the GitHub release

The version lives in `bot/__init__.py` (pyproject.toml reads it from there). A release
also names it in the places a user copies it from: the README's Action and pre-commit
snippets (`@vX.Y.Z`, `rev: vX.Y.Z`), the Helm chart's `version`/`appVersion` (the image
tag the release workflow pushes) and the Flux GitRepository of deploy/flux (`tag:`).
`bump` rewrites them all and turns the changelog's `## Unreleased` into `## X.Y.Z -
DATE`; `check` fails unless the tag, every pin and a dated changelog entry agree.

Only the standard library: the release workflow runs it before installing anything.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
UNRELEASED = "## Unreleased"

# (file, a pattern whose group 1 is the version there)
PINS: tuple[tuple[str, str], ...] = (
    ("bot/__init__.py", r'^__version__ = "([^"]+)"$'),
    ("deploy/chart/Chart.yaml", r"^version: (\S+)$"),
    ("deploy/chart/Chart.yaml", r'^appVersion: "([^"]+)"$'),
    ("deploy/flux/source.yaml", r"^    tag: v(\S+)$"),
    ("README.md", r"^      - uses: OWNER/flux-review@v(\S+)$"),
    ("README.md", r"^    rev: v(\S+)$"),
)


class ReleaseError(Exception):
    pass


def pinned(root: Path) -> list[tuple[str, str]]:
    """Every (file, version) a user can read or pin; a pin that is missing is an error."""
    found = []
    for name, pattern in PINS:
        text = (root / name).read_text(encoding="utf-8")
        match = re.search(pattern, text, re.M)
        if match is None:
            raise ReleaseError(f"{name}: no version where /{pattern}/ expects one")
        found.append((name, match[1]))
    return found


def version(root: Path) -> str:
    return pinned(root)[0][1]


def changelog_entry(root: Path, ver: str) -> str:
    """The changelog's text for `ver`, from its heading (`## X.Y.Z - YYYY-MM-DD`) to the
    next one."""
    text = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    heading = re.search(rf"^## {re.escape(ver)} - (\d{{4}}-\d{{2}}-\d{{2}})$", text, re.M)
    if heading is None:
        raise ReleaseError(
            f"CHANGELOG.md has no `## {ver} - YYYY-MM-DD` entry "
            f"(`python scripts/release.py bump {ver}` writes it)"
        )
    rest = text[heading.end() :]
    following = re.search(r"^## ", rest, re.M)
    body = rest[: following.start()] if following else rest
    if not body.strip():
        raise ReleaseError(f"CHANGELOG.md: the entry of {ver} says nothing")
    return body.strip() + "\n"


def check(root: Path, tag: str) -> str:
    """The version a tag releases, once every pin and the changelog agree with it."""
    if not tag.startswith("v") or not VERSION.match(tag[1:]):
        raise ReleaseError(f"a release tag is vX.Y.Z (got {tag!r})")
    ver = tag[1:]
    wrong = [f"{name} says {got}" for name, got in pinned(root) if got != ver]
    if wrong:
        raise ReleaseError(f"{tag} does not match: " + "; ".join(wrong))
    changelog_entry(root, ver)
    return ver


def bump(root: Path, ver: str, today: datetime.date) -> None:
    if not VERSION.match(ver):
        raise ReleaseError(f"a version is X.Y.Z (got {ver!r})")
    changelog = root / "CHANGELOG.md"
    text = changelog.read_text(encoding="utf-8")
    if f"\n## {ver} - " in text:
        raise ReleaseError(f"CHANGELOG.md already has an entry for {ver}")
    if UNRELEASED not in text:
        raise ReleaseError(f"CHANGELOG.md has no `{UNRELEASED}` entry to release")
    pinned(root)  # every pin is where it is expected, before anything is written
    for name, pattern in PINS:
        path = root / name
        content = path.read_text(encoding="utf-8")
        match = re.search(pattern, content, re.M)
        assert match is not None  # pinned() found it
        path.write_text(content[: match.start(1)] + ver + content[match.end(1) :], "utf-8")
    changelog.write_text(
        text.replace(UNRELEASED, f"{UNRELEASED}\n\n## {ver} - {today.isoformat()}", 1),
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("bump", help="write a new version everywhere").add_argument("version")
    sub.add_parser("check", help="check a release tag against the tree").add_argument("tag")
    sub.add_parser("notes", help="print a tag's changelog entry").add_argument("tag")
    args = parser.parse_args(argv)
    try:
        if args.command == "bump":
            bump(ROOT, args.version, datetime.date.today())
            print(f"version {args.version}: commit, then `git tag v{args.version}` and push it")
        elif args.command == "check":
            print(f"{args.tag}: version {check(ROOT, args.tag)}, pins and changelog agree")
        else:
            sys.stdout.write(changelog_entry(ROOT, check(ROOT, args.tag)))
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
