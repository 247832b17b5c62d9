"""Runs the rules over a snapshot, or over a change, and decides what is new.

"Introduced" means: a CHANGE rule's finding; or a SNAPSHOT finding whose line, or one of
whose related lines (its causes), the change wrote or deleted; or one whose key (chosen
by the rule, else its line followed through the diff) the same rule did not report at
the base. The base is analysed only for the rules that need a baseline: those with
head findings the change did not touch.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from bot.analysis.change import Change, changed_files
from bot.analysis.config import Config
from bot.analysis.diff import ClusterDiff, Redactor, change_diff
from bot.analysis.findings import Finding, Severity, Side
from bot.analysis.impact import ClusterImpact, cluster_impact, pairings
from bot.analysis.kubeobjects import Peer
from bot.analysis.lines import split_lines
from bot.analysis.model import AnalysisCancelled, ChartHistory, StopSignal
from bot.analysis.rendering import Renderer, RendererUnavailable
from bot.analysis.rules import RULES, RuleInfo
from bot.analysis.rules.base import ChangeContext, Context
from bot.analysis.snapshot import Snapshot
from bot.analysis.snapshot.build.helm import ChangeScope, HelmOptions
from bot.analysis.suppress import suppressed_lines
from bot.analysis.tree import ChangedFile, Tree

log = logging.getLogger(__name__)

__all__ = ["AnalysisResult", "analyze", "changed_files"]

_RULE_IDS = frozenset(RULES)


@dataclass
class AnalysisResult:
    findings: list[Finding]
    # path -> who reads the file at head, for the files that have findings
    consumers: dict[str, list[str]] = field(default_factory=dict)
    # rules that failed on this repository (a bug in flux-review, never the user's)
    errors: list[str] = field(default_factory=list)
    # rules that failed on the base only: their untouched findings could not be compared
    # with the base, so only those on lines the change touched are reported
    base_errors: list[str] = field(default_factory=list)
    # With a base: per cluster, what the change adds to, changes in and removes from
    # each Flux Kustomization (empty when no cluster is affected)
    impact: list[ClusterImpact] | None = None
    # What the user should know about what was analysed (once each): HelmReleases that
    # were not rendered, and why
    notes: list[str] = field(default_factory=list)
    # With a base: per cluster and Flux Kustomization, each object the change adds,
    # removes, changes or moves, its secret values replaced
    diff: list[ClusterDiff] | None = None
    # What replaced the secret values (and finds them in any other text of this run);
    # salted per run, so it is no part of what two analyses compare on
    redactor: Redactor | None = field(default=None, compare=False)


def _run(
    info: RuleInfo,
    fn: Callable[[], Iterable[Finding]],
    repo: Snapshot,
    errors: list[str],
) -> list[Finding] | None:
    """A rule's findings, or None when it failed (logged and recorded: one broken rule
    must not hide the others' findings)."""
    repo.checkpoint()
    try:
        return list(fn())
    except AnalysisCancelled:
        raise
    except Exception as exc:
        log.exception("rule %s failed", info.id)
        errors.append(f"rule {info.id} failed: {type(exc).__name__}: {exc}")
        return None


def _anchor(repo: Snapshot, f: Finding) -> Finding:
    """Clamp the finding's line into its file and record the line's text."""
    text = repo.text(f.path)
    if text is None:  # not text at all: count raw lines, anchor on the bytes
        data = repo.data(f.path) or b""
        line = min(f.line, data.count(b"\n") + 1)
        raw = data.split(b"\n")[line - 1] if data else b""
        anchor = raw.decode("utf-8", "replace").strip()
    else:
        lines = split_lines(text)
        line = min(f.line, max(1, len(lines)))
        anchor = lines[line - 1].strip() if lines else ""
    return replace(f, line=line, anchor=anchor)


def _snapshot_findings(
    repo: Snapshot, rules: list[RuleInfo], errors: list[str]
) -> dict[str, list[Finding] | None]:
    ctx = Context(repo=repo, rule_ids=_RULE_IDS)
    found: dict[str, list[Finding] | None] = {}
    for info in rules:
        check = info.check
        if check is None:
            continue
        result = _run(info, partial(check, ctx), repo, errors)
        found[info.id] = [_anchor(repo, f) for f in result] if result is not None else None
    return found


def _baseline_key(f: Finding, change: Change | None) -> tuple[str, ...] | None:
    """What a head finding is called at the base; None when it cannot have been there."""
    if f.key is not None:
        return f.key
    if change is None:
        return ("@", f.path, str(f.line))
    base_path = change.base_path(f.path)
    base_line = change.base_line(f.path, f.line)
    if base_path is None or base_line is None:
        return None
    return ("@", base_path, str(base_line))


def _mark_introduced(
    change: Change,
    head: dict[str, list[Finding] | None],
    rules: dict[str, RuleInfo],
    base_errors: list[str],
) -> list[Finding]:
    marked: list[Finding] = []
    untouched: dict[str, list[Finding]] = defaultdict(list)
    for findings in head.values():
        for f in findings or ():
            if change.touched(f.location) or any(change.touched(r) for r in f.related):
                marked.append(replace(f, introduced=True))
            else:
                untouched[f.rule].append(f)
    if not untouched:
        return marked
    failed: list[str] = []
    base = _snapshot_findings(change.base, [rules[r] for r in untouched], failed)
    for rule, findings in untouched.items():
        base_findings = base.get(rule)
        if base_findings is None:
            # Without a baseline an untouched finding is taken as pre-existing: a rule
            # that breaks on the base alone must not fail the check on lines nobody
            # changed.
            marked.extend(replace(f, introduced=False) for f in findings)
            continue
        before = Counter(
            f.key if f.key is not None else ("@", f.path, str(f.line)) for f in base_findings
        )
        for f in findings:
            key = _baseline_key(f, change)
            if key is not None and before[key] > 0:
                before[key] -= 1
                marked.append(replace(f, introduced=False))
            else:
                marked.append(replace(f, introduced=True))
    base_errors.extend(failed)
    return marked


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_thresholds: tuple[int, int, int] = (700, 10, 10)
# While an analysis runs: young collections every 50,000 allocations (not 700), older
# ones after 25 million (a safety valve for analyses that overlap in threads without end).
ANALYSIS_GC_THRESHOLDS = (50_000, 500, 100)


@contextlib.contextmanager
def _gc_paused(keeps: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Python's cyclic collector nearly idle while an analysis runs. An analysis allocates
    millions of small objects (YAML nodes, built objects) that live until it ends, and
    the default thresholds walked them again and again: with thousands of files that
    took about 40% of the analysis. Young garbage is still collected. An older
    collection walks every object alive since the last one: run within an analysis,
    it walked all the analysis had built so far (a quarter of a whole-tree check), so it
    runs once the last analysis has ended and released its snapshots, when what is
    left is the garbage to free and what the caller keeps. Analyses in other threads
    share the setting; the process's own is back when the last one ends."""
    global _gc_pauses, _gc_thresholds
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_thresholds = gc.get_threshold()
            gc.set_threshold(*ANALYSIS_GC_THRESHOLDS)
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                # What a caller keeps (`keeps()`: the worker's cache of the analysis) is
                # all that is left; walking it frees nothing, and the caller decides
                # what the collector does with it (bot/analysis/cache.py, settle_heap).
                if not keeps():
                    gc.collect(1)
                gc.set_threshold(*_gc_thresholds)


def analyze(
    head: Tree,
    base: Tree | None = None,
    changed: Sequence[ChangedFile] | None = None,
    config: Config | None = None,
    report_all: bool = False,
    workers: int = 1,
    self_urls: Sequence[str] = (),
    cancel: StopSignal | None = None,
    renderer: Renderer | RendererUnavailable | None = None,
    chart_history: ChartHistory | None = None,
    cache: dict[object, object] | None = None,
    incremental: bool = True,
) -> AnalysisResult:
    """Findings at `head`, each marked `introduced` relative to `base`.

    Without `base` every finding is reported and counts as introduced. With `base`, only
    introduced findings are returned unless `report_all`. `changed` (paths changed between
    base and head, with renames) is computed from the trees when not given. `workers` > 1
    forks processes for the YAML checks of large trees: only for a caller that owns its
    process. `self_urls` are this repository's clone URLs: a Flux GitRepository with one
    of them is this repository too (besides the bootstrap `flux-system`). Once `cancel`
    is set, the analysis raises `AnalysisCancelled` at its next file or rule. With a
    `renderer`, HelmReleases of in-repository charts are rendered (with a base, only
    those whose chart, values or valuesFrom sources the change touches); with
    `RendererUnavailable`, the result's notes say once that they were not.
    `chart_history` gives the versions each chart's Chart.yaml had before `head` (the CLI
    reads them from git); with a `base`, the base's versions count as published too, so
    the App, which reads no history, knows at least those. `cache` is
    what the caller keeps of earlier analyses of the same repository (`RepositoryCaches`):
    parses and builds are taken from it where their inputs are the same, and added to it.
    With `incremental` false, base and head share nothing and `cache` is not used: each
    is analysed as if alone (the findings must be the same; tests compare).
    """
    made: list[Snapshot | dict[object, object]] = []
    with _gc_paused(lambda: cache is not None and incremental):
        try:
            return _analyze(
                made,
                head,
                base,
                changed,
                config,
                report_all,
                workers,
                self_urls,
                cancel,
                renderer,
                chart_history,
                cache,
                incremental,
            )
        finally:
            # Before the collector's thresholds are back: what the snapshots derived,
            # and the cache the caller does not keep, are freed here by reference
            # counting instead of walked by the collector.
            while made:
                # Popped, not iterated: a loop variable would keep the last snapshot,
                # and all it shares, alive into the collection below.
                made_here = made.pop()
                if isinstance(made_here, dict):
                    made_here.clear()
                else:
                    made_here.release()
                del made_here


def _made(
    cache: dict[object, object], made: list[Snapshot | dict[object, object]]
) -> dict[object, object]:
    made.append(cache)
    return cache


def _analyze(
    made: list[Snapshot | dict[object, object]],
    head: Tree,
    base: Tree | None,
    changed: Sequence[ChangedFile] | None,
    config: Config | None,
    report_all: bool,
    workers: int,
    self_urls: Sequence[str],
    cancel: StopSignal | None,
    renderer: Renderer | RendererUnavailable | None,
    chart_history: ChartHistory | None,
    cache: dict[object, object] | None,
    incremental: bool,
) -> AnalysisResult:
    config = config or Config()
    # Shared by both snapshots: every parse is keyed by blob id and every build by what it
    # read, so the base costs only what the change touched.
    shared: dict[object, object] = cache if cache is not None and incremental else {}
    if shared is not cache:
        made.append(shared)
    errors: list[str] = []
    base_errors: list[str] = []
    scope = ChangeScope() if base is not None and renderer is not None else None
    repo = Snapshot(head, config, shared, self_urls, cancel, HelmOptions(renderer, scope, "head"))
    made.append(repo)
    base_repo: Snapshot | None = None
    if base is not None:
        base_repo = Snapshot(
            base,
            config,
            shared if incremental else _made({}, made),
            self_urls,
            cancel,
            HelmOptions(renderer, scope, "base"),
        )
        made.append(base_repo)
    repo.chart_history = _published(chart_history, base_repo)
    if base_repo is not None:
        base_repo.chart_history = chart_history
        repo.other, base_repo.other = base_repo, repo
    if scope is not None and base_repo is not None:
        scope.bind("head", repo)
        scope.bind("base", base_repo)
    if base is not None and base_repo is not None and changed is None:
        changed = changed_files(head, base)
    if base_repo is not None and changed is not None and not report_all:
        # Only what the change introduces is reported: rules that judge objects one by
        # one (kubernetes-schema) leave out, on both sides, those the change left as
        # they were, whose findings cannot be introduced.
        touched = frozenset(p for c in changed for p in (c.path, c.previous_path) if p is not None)
        repo.peer = Peer(base_repo, touched)
        base_repo.peer = Peer(repo, touched)
    if workers > 1:
        repo.warm_yaml(workers)
    rules = {
        info.id: info
        for info in RULES.values()
        if config.severity_for(info.id, info.default_severity) is not None
    }
    snapshot = _snapshot_findings(repo, list(rules.values()), errors)

    impact: list[ClusterImpact] | None = None
    diff: list[ClusterDiff] | None = None
    redactor = Redactor()
    if base is None or base_repo is None:
        findings = [f for fs in snapshot.values() for f in fs or ()]
    else:
        change = Change(
            base_repo, repo, changed if changed is not None else changed_files(head, base)
        )
        findings = _mark_introduced(change, snapshot, rules, base_errors)
        cctx = ChangeContext(change=change, rule_ids=_RULE_IDS)
        for info in rules.values():
            check_change = info.check_change
            if check_change is None:
                continue
            result = _run(info, partial(check_change, cctx), repo, errors)
            for f in result or ():
                side_repo = base_repo if f.side is Side.BASE else repo
                findings.append(replace(_anchor(side_repo, f), introduced=True))
        impact, diff = _impact_and_diff(change, redactor, errors)

    findings = _apply_config_and_suppressions(repo, base_repo, findings, config)
    findings = [_scrubbed(f, redactor) for f in findings]
    findings = _outside_clusters(repo, findings)
    findings.sort(key=Finding.sort_key)
    if base_repo is not None and not report_all:
        findings = [f for f in findings if f.introduced]
    consumers = {
        f.path: [c.description for c in repo.consumers.get(f.path, ())]
        for f in findings
        if f.side is Side.HEAD
    }
    return AnalysisResult(
        findings=findings,
        consumers=consumers,
        errors=errors,
        base_errors=base_errors,
        impact=impact,
        notes=_helm_notes(repo, errors) + _kube_notes(repo),
        diff=diff,
        redactor=redactor,
    )


# Stands for a Secret's value in a finding: unsalted, since a finding's wording is part of
# its identity across reviews (the same finding is never posted twice).
SECRET_IN_FINDING = "<secret>"


def _scrubbed(f: Finding, redactor: Redactor) -> Finding:
    """The finding without any value of a Secret the diff has seen (a rule may quote a
    value that substitution or a replacement took from one)."""
    message = redactor.scrub(f.message, SECRET_IN_FINDING)
    detail = redactor.scrub(f.detail, SECRET_IN_FINDING)
    related = tuple(
        replace(r, message=redactor.scrub(r.message, SECRET_IN_FINDING)) for r in f.related
    )
    if message == f.message and detail == f.detail and related == f.related:
        return f
    return replace(f, message=message, detail=detail, related=related)


def _impact_and_diff(
    change: Change, redactor: Redactor, errors: list[str]
) -> tuple[list[ClusterImpact] | None, list[ClusterDiff] | None]:
    """The change summary and the diff, from one pairing of the two sides' builds; a
    failure of either costs only itself."""
    impact: list[ClusterImpact] | None = None
    diff: list[ClusterDiff] | None = None
    try:
        paired = pairings(change)
        impact = cluster_impact(change, paired)
    except AnalysisCancelled:
        raise
    except Exception as exc:
        log.exception("the change summary failed")
        errors.append(f"the change summary failed: {type(exc).__name__}: {exc}")
        return None, None
    try:
        diff = change_diff(change, redactor, paired)
    except AnalysisCancelled:
        raise
    except Exception as exc:
        log.exception("the diff failed")
        errors.append(f"the diff failed: {type(exc).__name__}: {exc}")
    return impact, diff


@dataclass
class DiffResult:
    clusters: list[ClusterDiff]
    redactor: Redactor
    # Every cluster of either side, changed or not.
    names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def diff_trees(
    head: Tree,
    base: Tree,
    changed: Sequence[ChangedFile] | None = None,
    config: Config | None = None,
    self_urls: Sequence[str] = (),
    renderer: Renderer | RendererUnavailable | None = None,
    redactor: Redactor | None = None,
) -> DiffResult:
    """What the change from `base` to `head` does to each cluster, object by object,
    without running the rules."""
    config = config or Config()
    cache: dict[object, object] = {}
    scope = ChangeScope() if renderer is not None else None
    repo = Snapshot(head, config, cache, self_urls, None, HelmOptions(renderer, scope, "head"))
    base_repo = Snapshot(base, config, cache, self_urls, None, HelmOptions(renderer, scope, "base"))
    if scope is not None:
        scope.bind("head", repo)
        scope.bind("base", base_repo)
    change = Change(base_repo, repo, changed if changed is not None else changed_files(head, base))
    redactor = redactor or Redactor()
    errors: list[str] = []
    diff = change_diff(change, redactor)
    names = sorted({c.name for snap in (base_repo, repo) for c in snap.build.clusters})
    return DiffResult(diff, redactor, names, _helm_notes(repo, errors), errors)


def _published(given: ChartHistory | None, base: Snapshot | None) -> ChartHistory | None:
    """The versions a chart had before the head: those `given` knows, and the one it has
    at the base (a version a merged commit had, published when the repository publishes
    on merge)."""
    if base is None:
        return given

    def versions(chart_path: str) -> frozenset[str]:
        out = set(given(chart_path)) if given is not None else set()
        out.update(c.version for c in base.charts if c.path == chart_path and c.version)
        return frozenset(out)

    return versions


def _helm_notes(repo: Snapshot, errors: list[str]) -> list[str]:
    """What rendering the head's HelmReleases said, once each."""
    if repo.helm_options is None or repo.helm_options.renderer is None:
        return []
    repo.build.clusters  # noqa: B018 (the render happens with the build)
    helm = repo.build.helm
    if helm.error is not None:
        errors.append(helm.error)
    return list(dict.fromkeys(helm.notes))


def _kube_notes(repo: Snapshot) -> list[str]:
    """Which Kubernetes the objects were checked against, where nothing said it."""
    note = repo.kube.versions.note() if "kube" in repo.__dict__ else None
    return [note] if note is not None else []


_NOT_APPLIED = " No cluster applies this file yet."
_NOT_APPLIED_DETAIL = (
    "Nothing in this repository applies this file: no cluster's Flux Kustomizations reach "
    "it, so it breaks nothing yet; it would once something applies it."
)


def _outside_clusters(repo: Snapshot, findings: list[Finding]) -> list[Finding]:
    """A file that no cluster reaches (an `.archive/` of old apps, a directory its parent
    no longer lists) breaks nothing on a cluster: its errors and warnings are notices
    (unless the rule is about unapplied files). Only when the
    repository's clusters are known; Helm's files are read through HelmReleases, which
    the inventory does not follow, and keep their severity."""
    build = repo.build
    if not build.has_clusters:
        return findings
    out = []
    for f in findings:
        if (
            f.severity in (Severity.ERROR, Severity.WARNING)
            and f.side is Side.HEAD
            and not RULES[f.rule].about_unapplied_files
            and not build.applied(f.path)
            and repo.chart_of(f.path) is None
        ):
            f = replace(
                f,
                severity=Severity.NOTICE,
                message=f.message + _NOT_APPLIED,
                detail="\n".join(d for d in (f.detail, _NOT_APPLIED_DETAIL) if d),
            )
        out.append(f)
    return out


def _apply_config_and_suppressions(
    repo: Snapshot, base: Snapshot | None, findings: list[Finding], config: Config
) -> list[Finding]:
    silenced: dict[tuple[Side, str], dict[int, frozenset[str]]] = {}
    kept = []
    for f in findings:
        if config.is_ignored(f.path):
            continue
        # A rule may give a finding another severity than its default (prune-deletes
        # warns for a PVC); the config, when it names the rule, decides for all of them.
        severity = config.severity_for(f.rule, f.severity)
        if severity is None:
            continue
        side_repo = base if f.side is Side.BASE and base is not None else repo
        where = (f.side, f.path)
        if where not in silenced:
            data = side_repo.data(f.path) or b""
            silenced[where] = (
                suppressed_lines(side_repo.text(f.path) or "", _RULE_IDS)
                if b"flux-review:" in data
                else {}
            )
        if f.rule in silenced[where].get(f.line, ()):
            continue
        kept.append(f if f.severity == severity else replace(f, severity=severity))
    return kept
