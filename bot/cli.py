"""`flux-review check`: the analysis on a local git repository."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.analysis import (
    CONFIG_PATH,
    AnalysisResult,
    ClusterImpact,
    Config,
    ConfigError,
    Finding,
    Severity,
    analyze,
    parse_config,
)
from bot.analysis.engine import diff_trees
from bot.analysis.options import FAIL_ON_CHOICES, fails, parse_fail_on
from bot.analysis.parallel import default_workers
from bot.gitrepo import (
    GitError,
    GitTree,
    branch_of,
    changed_files,
    chart_history,
    has_commits,
    index_path,
    index_tree,
    remote_urls,
    repository_uri,
    resolve,
    subdirectory,
)
from bot.helm import renderer as helm_renderer
from bot.report import diff as diff_report
from bot.report import formats, markdown

FORMATS = ("text", "json", "sarif", "github", "markdown")


class UsageError(Exception):
    pass


def _load_config(
    args: argparse.Namespace, repo: Path, tree: GitTree, base: str | None = None
) -> Config:
    """The config, with the branch the change is reviewed against (`branch_of`)."""
    return replace(_read_config(args, tree), branch=branch_of(repo, base))


def _read_config(args: argparse.Namespace, tree: GitTree) -> Config:
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


@dataclass
class CheckOutcome:
    """One analysis of a repository, ready to be rendered in any format."""

    result: AnalysisResult
    base: str | None
    head: str
    config: Config
    repository_uri: str | None
    # `head` is a commit, not the tree of the index that --staged checks.
    head_is_commit: bool = True
    # What the user should know about what was checked (not about missing results).
    notes: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return self.result.findings

    @property
    def impact(self) -> list[ClusterImpact] | None:
        return self.result.impact

    @property
    def warnings(self) -> list[str]:
        """What the user must know about how complete the result is."""
        notes = list(self.result.errors)
        notes += [
            f"the base could not be compared ({error}); only findings on lines the change "
            "touched are reported for that rule"
            for error in self.result.base_errors
        ]
        return notes


def fail_on_for(given: str | None, config: Config) -> Severity | None:
    """The threshold that decides the exit status: `--fail-on` (the Action's `fail-on`)
    when given, else the config's `fail_on`. None is `never`."""
    if not given:
        return config.fail_on
    try:
        return parse_fail_on(given)
    except ValueError as exc:
        raise UsageError(f"--fail-on {exc}") from None


def _staged_index(
    repo: Path, base_tree: GitTree | None, head_tree: GitTree, had_index: bool
) -> None:
    """Refuse an index that holds nothing while the base has files: compared with it,
    every file would look deleted, which is never what someone checking a commit meant."""
    if base_tree is None or next(head_tree.paths(), None) is not None:
        return
    if next(base_tree.paths(), None) is None:
        return
    fix = (
        "`git reset` fills it from HEAD without touching the working tree; "
        "`flux-review check` without --staged checks HEAD itself"
    )
    if not had_index:
        raise UsageError(
            f"--staged: {repo} has no index (a clone made with --no-checkout, or a fresh "
            f"worktree), so nothing is staged to check; {fix}"
        )
    raise UsageError(
        f"--staged: the index of {repo} is empty, so the next commit would delete every "
        f"file of {base_tree.commit[:12]}; if that is not what you staged, {fix}"
    )


@dataclass
class Revisions:
    repo: Path
    base: str | None
    head: str
    base_tree: GitTree | None
    head_tree: GitTree
    staged: bool


def read_revisions(args: argparse.Namespace) -> Revisions:
    """The commits (or the index, with --staged) that `check` and `diff` compare."""
    repo = Path(args.repo)
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory")
    staged = bool(getattr(args, "staged", False))
    if staged:
        if args.head is not None:
            raise UsageError("--staged checks the index: it takes no --head")
        # `git write-tree` leaves an index behind: look before.
        had_index = index_path(repo).exists()
        head = index_tree(repo)
        # The index of a repository without commits yet is checked as a whole tree.
        if args.base:
            base: str | None = resolve(repo, args.base)
        else:
            base = resolve(repo, "HEAD") if has_commits(repo) else None
    else:
        head = resolve(repo, args.head or "HEAD")
        base = resolve(repo, args.base) if args.base else None
    head_tree = GitTree(repo, head)
    base_tree = GitTree(repo, base) if base else None
    if staged:
        _staged_index(repo, base_tree, head_tree, had_index)
    return Revisions(repo, base, head, base_tree, head_tree, staged)


def analyze_repository(args: argparse.Namespace) -> CheckOutcome:
    revs = read_revisions(args)
    repo, base, head, base_tree, head_tree = (
        revs.repo,
        revs.base,
        revs.head,
        revs.base_tree,
        revs.head_tree,
    )
    staged = revs.staged
    # A PR must not switch off its own review: the config comes from the base.
    config = _load_config(args, repo, base_tree or head_tree, args.base)
    changes = changed_files(repo, base, head) if base else None
    result = analyze(
        head_tree,
        base_tree,
        changes,
        config,
        report_all=args.all,
        workers=default_workers(),
        self_urls=remote_urls(repo),
        renderer=helm_renderer(),
        # The index is no commit: its history is the base's.
        chart_history=chart_history(repo, base if staged else head),
    )
    notes = list(result.notes)
    below = subdirectory(repo)
    if below:
        # Who applies a file is decided anywhere in the repository (a Flux Kustomization
        # under clusters/ applies apps/), so the whole commit is always analysed; a
        # subdirectory only narrows what is reported, as a linter run on a directory does.
        shown = [f for f in result.findings if f.path.startswith(below)]
        hidden = len(result.findings) - len(shown)
        notes.append(
            f"{repo} is inside a repository: the whole repository is read, and only "
            f"findings under {below} are reported"
            + (f" ({hidden} elsewhere left out)" if hidden else "")
        )
        result = dataclasses.replace(result, findings=shown)
    return CheckOutcome(
        result,
        base,
        head,
        config,
        repository_uri(repo),
        head_is_commit=not staged,
        notes=notes,
    )


def render(
    outcome: CheckOutcome,
    fmt: str,
    *,
    color: bool = False,
    fail_on: Severity | None = Severity.ERROR,
    verbose: bool = False,
) -> str:
    findings = outcome.findings
    if fmt == "json":
        return formats.to_json(
            findings, outcome.base, outcome.head, outcome.impact, outcome.result.diff
        )
    if fmt == "sarif":
        return formats.to_sarif(
            findings,
            outcome.base,
            outcome.head,
            outcome.repository_uri,
            revision=outcome.head_is_commit,
        )
    if fmt == "github":
        return formats.to_github(findings)
    if fmt == "markdown":
        return markdown.job_summary(
            findings,
            base=outcome.base,
            head=outcome.head,
            impact=outcome.impact,
            fail_on=fail_on,
            docs_url=formats.docs_url(),
            rule_errors=outcome.result.errors,
            consumers=outcome.result.consumers,
            diff=outcome.result.diff,
            redactor=outcome.result.redactor,
        )
    text = formats.to_text(findings, color=color, impact=outcome.impact, verbose=verbose)
    if outcome.base is not None and outcome.result.diff:
        text += (
            "\nTo see what this changes, object by object: "
            f"{diff_report.command(outcome.base, outcome.head, not outcome.head_is_commit)}\n"
        )
    return text


def run_check(args: argparse.Namespace) -> int:
    outcome = analyze_repository(args)
    fail_on = fail_on_for(args.fail_on, outcome.config)
    redactor = outcome.result.redactor
    scrub = redactor.scrub if redactor is not None else str
    for note in outcome.notes:
        print(f"flux-review: note: {scrub(note)}", file=sys.stderr)
    for warning in outcome.warnings:
        print(f"flux-review: warning: {scrub(warning)}", file=sys.stderr)
    sys.stdout.write(
        render(
            outcome,
            args.format,
            color=sys.stdout.isatty(),
            fail_on=fail_on,
            verbose=getattr(args, "verbose", False),
        )
    )
    # DESIGN.md's contract: the exit status counts every reported finding, so `--all`
    # fails on an error the change did not introduce (without `--all` every reported
    # finding is introduced, and this is what the check run decides).
    return 1 if fails(outcome.findings, fail_on, introduced_only=False) else 0


def add_check_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="check a local git repository",
        description="Check a commit of a local git repository (read with git, "
        "not from the working tree).",
    )
    p.add_argument(
        "--repo",
        default=".",
        help="repository directory (default: .); a subdirectory reports the findings "
        "below it, from an analysis of the whole repository",
    )
    p.add_argument("--base", help="base revision: report only what the change introduces")
    p.add_argument("--head", help="revision to check (default: HEAD)")
    p.add_argument(
        "--staged",
        action="store_true",
        help="check the staged changes (the index) against --base, default HEAD",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text; json or sarif for tools; github: GitHub Actions annotations; "
        "markdown: a job summary",
    )
    p.add_argument(
        "--all", action="store_true", help="with --base, also report findings that already existed"
    )
    p.add_argument("--config", help="config file (default: .github/flux-review.yml at base)")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="text: each finding's detail (why, through which files) and every related location",
    )
    p.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        help="exit 1 when the change introduces a finding of this severity or higher "
        "(never: always exit 0); default: the config's fail_on, else error",
    )


def check_main(args: argparse.Namespace) -> int:
    try:
        return run_check(args)
    except (UsageError, GitError, ConfigError) as exc:
        print(f"flux-review: {exc}", file=sys.stderr)
        return 2


# --- diff ---------------------------------------------------------------------------

DIFF_FORMATS = ("text", "json", "markdown")
COLORS = ("auto", "always", "never")


def run_diff(args: argparse.Namespace) -> int:
    revs = read_revisions(args)
    if revs.base is None or revs.base_tree is None:
        raise UsageError("diff needs --base: the revision to compare with")
    config = _load_config(args, revs.repo, revs.base_tree, args.base)
    changes = changed_files(revs.repo, revs.base, revs.head)
    result = diff_trees(
        revs.head_tree,
        revs.base_tree,
        changes,
        config,
        self_urls=remote_urls(revs.repo),
        renderer=helm_renderer(),
    )
    clusters = result.clusters
    if args.cluster is not None:
        if args.cluster not in result.names:
            known = ", ".join(result.names) or "none"
            raise UsageError(f"--cluster {args.cluster}: no such cluster (clusters: {known})")
        clusters = [c for c in clusters if c.cluster == args.cluster]
    scrub = result.redactor.scrub
    for note in result.notes:
        print(f"flux-review: note: {scrub(note)}", file=sys.stderr)
    for error in result.errors:
        print(f"flux-review: warning: {scrub(error)}", file=sys.stderr)
    if args.format == "json":
        out = diff_report.to_json(clusters, revs.base, revs.head, result.redactor)
    elif args.format == "markdown":
        out = diff_report.section(
            clusters,
            result.redactor,
            base=revs.base,
            head=revs.head,
            # A file or a terminal has no size limit: everything is shown.
            limit=sys.maxsize,
        )
    else:
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        out = diff_report.to_text(clusters, result.redactor, color=color, cluster=args.cluster)
    sys.stdout.write(out)
    return 0


def add_diff_parser(sub: Any) -> None:
    p = sub.add_parser(
        "diff",
        help="show what a change does to each cluster, object by object",
        description="Show, per cluster and Flux Kustomization, each object a change adds, "
        "removes, changes or moves, as built (read with git, not from the working tree). "
        "Secret values are shown as a salted hash.",
    )
    p.add_argument("--repo", default=".", help="repository directory (default: .)")
    p.add_argument("--base", required=True, help="base revision")
    p.add_argument("--head", help="revision to compare with the base (default: HEAD)")
    p.add_argument(
        "--staged", action="store_true", help="compare the staged changes (the index) instead"
    )
    p.add_argument("--format", choices=DIFF_FORMATS, default="text")
    p.add_argument("--cluster", help="only this cluster (its name as `check` prints it)")
    p.add_argument(
        "--color",
        choices=COLORS,
        default="auto",
        help="color the text output (auto: when stdout is a terminal)",
    )
    p.add_argument("--config", help="config file (default: .github/flux-review.yml at base)")


def diff_main(args: argparse.Namespace) -> int:
    try:
        return run_diff(args)
    except (UsageError, GitError, ConfigError) as exc:
        print(f"flux-review: {exc}", file=sys.stderr)
        return 2
