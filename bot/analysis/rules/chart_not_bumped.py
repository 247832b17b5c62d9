"""Chart content changed but `Chart.yaml` `version` did not, for a chart deployed by
version.

Charts are released by version. When a chart is published and referenced by a
HelmRelease, an OCIRepository or an umbrella chart, a change under the chart that keeps
the old version either never ships or overwrites a version that clusters already run.
For a chart that a HelmRelease builds from a GitRepository or Bucket with the default
`reconcileStrategy: ChartVersion`, source-controller builds a new artifact only when the
version changes: nothing rolls out until it is bumped. (A GitRepository defined here with
the URL of another repository, or with this repository's URL but another branch, a tag
or a commit, is that revision's chart, not this one's.)

Only changes to files that Helm packages count (`.helmignore` is honoured). The finding
sits on the `version` line of `Chart.yaml` and suggests the next patch version. Only
reported when a change is reviewed (with a base revision).
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis import semver
from bot.analysis.charts import git_deployed_charts, rewrite_version_line, version_refs
from bot.analysis.findings import Finding, Severity
from bot.analysis.lines import split_lines
from bot.analysis.rules.base import ChangeContext

ID = "chart-not-bumped"
SEVERITY = Severity.WARNING


def check_change(ctx: ChangeContext) -> Iterator[Finding]:
    repo, change = ctx.head, ctx.change
    if not change.files:
        return
    deployed: dict[str, str] = {}
    for ref in version_refs(repo):
        for c in ref.charts:
            deployed.setdefault(c.directory, ref.what)
    for directory, what in git_deployed_charts(repo).items():
        deployed.setdefault(directory, what)
    for directory, before, chart in change.charts.pairs():
        if chart is None or directory not in deployed or chart.version_line is None:
            continue
        if before is None or before.version != chart.version or not chart.version:
            continue
        # Removed files count too (their path is the one they had), and a file renamed
        # out of the chart changes the package as much as one renamed into it.
        changed = sorted(
            {
                p
                for c in change.files.values()
                for p in (c.path, c.previous_path)
                if p and chart.contains(p) and not chart.helmignore.ignored(chart.rel(p))
            }
        )
        if not changed:
            continue
        suggestion = None
        bumped = _next_patch(chart.version)
        if bumped:
            lines = split_lines(repo.text(chart.path) or "")
            if 0 < chart.version_line <= len(lines):
                suggestion = rewrite_version_line(lines[chart.version_line - 1], bumped)
        sample = ", ".join(f"`{chart.rel(p)}`" for p in sorted(changed)[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        yield ctx.finding(
            ID,
            SEVERITY,
            chart.path,
            chart.version_line,
            f"Chart {chart.name} changed but its version is still {chart.version}, so "
            "the change does not roll out where it is deployed by version; bump it"
            + (f" to {bumped}." if bumped else "."),
            detail=(
                f"Changed in {chart.label}: {sample}{more}. {deployed[chart.directory]} "
                "deploys it by version, and Flux fetches a chart version again only when "
                "it changes."
            ),
            suggestion=suggestion,
            key=(chart.directory,),
        )


def _next_patch(version: str) -> str | None:
    try:
        v = semver.Version.parse(version)
    except ValueError:
        return None
    prefix = "v" if version.startswith("v") else ""
    if v.prerelease:
        return f"{prefix}{v.major}.{v.minor}.{v.patch}"
    return f"{prefix}{v.major}.{v.minor}.{v.patch + 1}"
