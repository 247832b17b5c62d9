"""Runs every rule over the repository model and decides what is new."""

from __future__ import annotations

import difflib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.analysis.config import Config
from bot.analysis.findings import Finding
from bot.analysis.lines import split_lines
from bot.analysis.model import AnalysisCancelled, Repository, StopSignal
from bot.analysis.rules import RULES
from bot.analysis.rules.base import Context
from bot.analysis.suppress import suppressed_lines
from bot.analysis.tree import ChangedFile, ChangeStatus, Tree

log = logging.getLogger(__name__)


@dataclass
class AnalysisResult:
    findings: list[Finding]
    # path -> who reads the file at head, for the files that have findings
    consumers: dict[str, list[str]] = field(default_factory=dict)
    # rules that failed on this repository (a bug in flux-review, never the user's)
    errors: list[str] = field(default_factory=list)


def changed_files(head: Tree, base: Tree) -> list[ChangedFile]:
    """What changed between two trees, by content (no rename detection)."""
    head_paths = set(head.paths())
    base_paths = set(base.paths())
    changes = [ChangedFile(p, ChangeStatus.ADDED) for p in head_paths - base_paths]
    changes += [ChangedFile(p, ChangeStatus.REMOVED) for p in base_paths - head_paths]
    changes += [
        ChangedFile(p, ChangeStatus.MODIFIED)
        for p in head_paths & base_paths
        if head.blob_id(p) != base.blob_id(p)
    ]
    return sorted(changes, key=lambda c: c.path)


def _run_rules(
    repo: Repository,
    base: Repository | None,
    changed: dict[str, ChangedFile],
    config: Config,
    errors: list[str],
) -> list[Finding]:
    ctx = Context(repo=repo, base=base, changed=changed)
    findings: list[Finding] = []
    for info in RULES.values():
        if config.severity_for(info.id, info.default_severity) is None:
            continue
        repo.checkpoint()
        try:
            findings.extend(info.check(ctx))
        except AnalysisCancelled:
            raise
        except Exception as exc:  # one broken rule must not hide the others' findings
            log.exception("rule %s failed", info.id)
            errors.append(f"rule {info.id} failed: {type(exc).__name__}: {exc}")
    anchored = []
    for f in findings:
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
        anchored.append(replace(f, line=line, anchor=anchor))
    return anchored


def _lines(repo: Repository, path: str) -> list[str]:
    text = repo.text(path)
    if text is not None:
        return split_lines(text)
    data = repo.data(path) or b""
    return data.decode("utf-8", "replace").split("\n")


def _line_map(old: list[str], new: list[str]) -> dict[int, int]:
    """Head line -> base line, for the lines a change left as they were."""
    mapping: dict[int, int] = {}
    matcher = difflib.SequenceMatcher(None, old, new)
    for tag, i1, i2, j1, _ in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                mapping[j1 + k + 1] = i1 + k + 1
    return mapping


def _mark_introduced(
    repo: Repository,
    base_repo: Repository,
    findings: list[Finding],
    base_findings: list[Finding],
    changed: dict[str, ChangedFile],
) -> list[Finding]:
    """A finding is new when the change touched its line, or when its line is untouched
    but the same rule said nothing there at the base (the change broke it from
    elsewhere: a chart bump makes an untouched HelmRelease wrong)."""
    before = Counter((f.rule, f.path, f.line) for f in base_findings)
    maps: dict[str, dict[int, int] | None] = {}
    marked = []
    for f in findings:
        change = changed.get(f.path)
        base_path = f.path
        base_line: int | None = f.line
        if change is not None:
            if change.status is ChangeStatus.ADDED:
                base_line = None
            else:
                if change.status is ChangeStatus.RENAMED and change.previous_path:
                    base_path = change.previous_path
                if f.path not in maps:
                    repo.checkpoint()
                    maps[f.path] = _line_map(_lines(base_repo, base_path), _lines(repo, f.path))
                line_map = maps[f.path]
                base_line = line_map.get(f.line) if line_map is not None else None
        if base_line is not None and before[(f.rule, base_path, base_line)] > 0:
            before[(f.rule, base_path, base_line)] -= 1
            marked.append(replace(f, introduced=False))
        else:
            marked.append(replace(f, introduced=True))
    return marked


def analyze(
    head: Tree,
    base: Tree | None = None,
    changed: Sequence[ChangedFile] | None = None,
    config: Config | None = None,
    report_all: bool = False,
    workers: int = 1,
    self_urls: Sequence[str] = (),
    cancel: StopSignal | None = None,
) -> AnalysisResult:
    """Findings at `head`, each marked `introduced` relative to `base`.

    Without `base` every finding is reported and counts as introduced. With `base`, only
    introduced findings are returned unless `report_all`. `changed` (paths changed between
    base and head, with renames) is computed from the trees when not given. `workers` > 1
    forks processes for the YAML checks of large trees: only for a caller that owns its
    process. `self_urls` are this repository's clone URLs: a Flux GitRepository with one
    of them is this repository too (besides the bootstrap `flux-system`). Once `cancel`
    is set, the analysis raises `AnalysisCancelled` at its next file or rule.
    """
    config = config or Config()
    cache: dict[object, object] = {}
    errors: list[str] = []
    repo = Repository(head, config, cache, self_urls, cancel)
    base_repo = Repository(base, config, cache, self_urls, cancel) if base is not None else None
    if workers > 1:
        repo.warm_yaml(workers)
        if base_repo is not None:
            base_repo.warm_yaml(workers)
    if base is not None and changed is None:
        changed = changed_files(head, base)
    by_path = {c.path: c for c in changed or ()}
    findings = sorted(_run_rules(repo, base_repo, by_path, config, errors), key=Finding.sort_key)

    if base_repo is not None:
        base_findings = sorted(
            _run_rules(base_repo, None, {}, config, errors), key=Finding.sort_key
        )
        findings = _mark_introduced(repo, base_repo, findings, base_findings, by_path)

    findings = _apply_config_and_suppressions(repo, findings, config)
    if base_repo is not None and not report_all:
        findings = [f for f in findings if f.introduced]
    consumers = {f.path: [c.description for c in repo.consumers.get(f.path, ())] for f in findings}
    return AnalysisResult(findings=findings, consumers=consumers, errors=errors)


def _apply_config_and_suppressions(
    repo: Repository, findings: list[Finding], config: Config
) -> list[Finding]:
    silenced: dict[str, dict[int, frozenset[str]]] = {}
    kept = []
    for f in findings:
        if config.is_ignored(f.path):
            continue
        severity = config.severity_for(f.rule, RULES[f.rule].default_severity)
        if severity is None:
            continue
        if f.path not in silenced:
            data = repo.data(f.path) or b""
            silenced[f.path] = (
                suppressed_lines(repo.text(f.path) or "") if b"flux-review:" in data else {}
            )
        if f.rule in silenced[f.path].get(f.line, ()):
            continue
        kept.append(f if f.severity == severity else replace(f, severity=severity))
    return kept
