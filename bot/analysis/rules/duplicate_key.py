"""A key defined twice in a chart's `values.yaml` or `Chart.yaml`.

Helm reads these files with non-strict `sigs.k8s.io/yaml`: when a mapping holds a key
twice, the last value wins and nothing fails, so the first value is silently dropped
(helm/helm#4107, #31102). In `values.yaml` that is configuration lost without a trace
(two `resources:` blocks, an `image.tag` set twice, a merge conflict resolved by keeping
both sides); in `Chart.yaml` a second `version:` or `dependencies:` is the one Helm
uses. The finding sits on the second definition, the one Helm keeps, and names the line
of the first.

Only files that Helm alone reads are checked here: a `values.yaml` or `Chart.yaml` that a
Flux Kustomization or kustomize also applies as a manifest fails that build, which
`yaml-syntax-error` reports as an error, as it does for a duplicate key in any other file
kustomize or Flux read. A file that does not parse for another reason is left to
`yaml-syntax-error` too.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot

ID = "duplicate-key"
SEVERITY = Severity.WARNING


def _helm_read(repo: Snapshot) -> Iterator[str]:
    """Each chart's Chart.yaml and values.yaml that nothing but Helm reads."""
    for chart in repo.charts:
        for name in ("Chart.yaml", "values.yaml"):
            path = posixpath.join(chart.directory, name)
            if path in repo.path_set and not repo.raw_consumers(path):
                yield path


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for path in _helm_read(repo):
        problem = repo.problem(path)
        if problem is None or problem.duplicate_of is None:
            continue
        data = repo.data(path)
        if data is None or ys.scan(data, duplicate_keys_allowed=True).problem is not None:
            continue
        name = posixpath.basename(path)
        for dup in ys.duplicate_keys(data):
            yield ctx.finding(
                ID,
                SEVERITY,
                path,
                dup.line,
                f"`{dup.key}` is defined twice in this {name}: Helm keeps this value and "
                f"silently drops the one on line {dup.first_line}; remove the one not meant.",
                related=[Location(path, dup.first_line, message=f"`{dup.key}` first defined")],
                key=(path, dup.key),
            )
