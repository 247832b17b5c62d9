"""`flux-review check`: the analysis on a local git repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.analysis import CONFIG_PATH, Config, ConfigError, Severity, analyze, parse_config
from bot.analysis.parallel import default_workers
from bot.gitrepo import GitError, GitTree, changed_files, remote_urls, repository_uri, resolve
from bot.report import formats


class UsageError(Exception):
    pass


def _load_config(args: argparse.Namespace, repo: Path, tree: GitTree) -> Config:
    if args.config:
        path = Path(args.config)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read config {path}: {exc.strerror}") from None
        return parse_config(data, source=str(path))
    committed = tree.read(CONFIG_PATH)
    if committed is None:
        return Config()
    return parse_config(committed, source=f"{CONFIG_PATH} at {tree.commit[:12]}")


def run_check(args: argparse.Namespace) -> int:
    repo = Path(args.repo)
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory")
    head = resolve(repo, args.head)
    base = resolve(repo, args.base) if args.base else None
    head_tree = GitTree(repo, head)
    base_tree = GitTree(repo, base) if base else None
    # A PR must not switch off its own review: the config comes from the base.
    config = _load_config(args, repo, base_tree or head_tree)
    changes = changed_files(repo, base, head) if base else None
    result = analyze(head_tree, base_tree, changes, config, report_all=args.all,
                     workers=default_workers(), self_urls=remote_urls(repo))
    for error in result.errors:
        print(f"flux-review: warning: {error}", file=sys.stderr)
    findings = result.findings
    if args.format == "json":
        sys.stdout.write(formats.to_json(findings, base, head))
    elif args.format == "sarif":
        sys.stdout.write(formats.to_sarif(findings, base, head, repository_uri(repo)))
    else:
        sys.stdout.write(formats.to_text(findings, color=sys.stdout.isatty()))
    return 1 if any(f.severity is Severity.ERROR for f in findings) else 0


def add_check_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="check a local git repository",
        description="Check a commit of a local git repository (read with git, "
        "not from the working tree).",
    )
    p.add_argument("--repo", default=".", help="repository directory (default: .)")
    p.add_argument("--base", help="base revision: report only what the change introduces")
    p.add_argument("--head", default="HEAD", help="revision to check (default: HEAD)")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument(
        "--all", action="store_true", help="with --base, also report findings that already existed"
    )
    p.add_argument("--config", help="config file (default: .github/flux-review.yml at base)")


def check_main(args: argparse.Namespace) -> int:
    try:
        return run_check(args)
    except (UsageError, GitError, ConfigError) as exc:
        print(f"flux-review: {exc}", file=sys.stderr)
        return 2
