"""A HelmRelease, OCIRepository or umbrella chart asks for a version of an in-repository
chart that the repository's `Chart.yaml` does not have.

When a chart lives in the repository and is published from it, the references that
deploy it must follow its `version`: bump `Chart.yaml` from 1.1.12 to 1.1.13 while a
HelmRelease still pins `version: 1.1.12`, and the new chart is never deployed (or the
release fails once the old version is gone from the registry).

Matched references:

- a HelmRelease whose `spec.chart.spec.chart` is the chart's `name` and whose source is
  a HelmRepository (`spec.chart.spec.version` is a semver range, default `*`);
- an OCIRepository whose URL ends in the chart's name and that serves a Helm chart
  (referenced by a HelmRelease `chartRef`, or with the Helm chart `layerSelector`):
  `ref.tag` (`_` read as `+`) or `ref.semver`;
- an umbrella chart's `dependencies` entry: a `file://` path, or the chart's name with a
  repository alias or with the URL of a registry that the repository's own HelmReleases
  or OCIRepositories deploy its charts from (a dependency on bitnami's `common` is not
  the repository's library chart `common`).

A chart of the same name that is someone else's is not compared: a reference through a
vendor's chart repository (`charts.jetstack.io`, `charts.bitnami.com`...) or another
owner's space on a hosting service (`grafana.github.io`, `ghcr.io/<other owner>`,
`registry-1.docker.io/bitnamicharts`) installs upstream's chart, and a copy kept under
`vendor/`, `third_party/` or `upstream/` is a copy. The repository's owner comes from its
clone URL (on GitHub, GitLab, Codeberg or Bitbucket) or its `flux-system` GitRepository;
a private registry is taken to serve the repository's own charts. A clone of a local
mirror (`/srv/mirrors/acme/platform`, `file://...`) is read through the mirror's own
remotes; when no URL names the owner, no space on a hosting service is taken to be
someone else's, and references are compared as they would be for a private registry.

Versions compare exactly as Helm and Flux do (Masterminds/semver v3): an exact string
match first, then the range (`1.1.x`, `~1.1.0`, `^1.1.0`, `>=1 <2`, `||`, hyphen ranges;
prereleases only match ranges that name a prerelease). Charts from a GitRepository or
Bucket source are not checked here: Flux ignores `version` for them (see
`chart-not-bumped`). Neither are versions that Flux's post-build substitution fills in
(`version: ${PODINFO_VERSION}`): their value is not in the file.

The finding sits on the reference's version line and suggests the chart's version
(spelled with `_` for `+` in an OCI tag).

A version the chart had earlier was published: a reference to it still installs, the
older chart. That is a warning that the reference lags, not an error. Which versions a
chart had comes from the repository's history: the command line reads the `Chart.yaml`'s
past versions with git (`git log`, the last 500 commits that touch it; a shallow clone
knows only the commits it fetched); on a pull request the version the chart has at the
base counts as published too (the App reads no history beyond the base). A version the
chart never had stays an error.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis import semver
from bot.analysis.charts import rewrite_version_line, version_refs
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.lines import split_lines
from bot.analysis.rules.base import Context

ID = "chart-version-mismatch"
SEVERITY = Severity.ERROR


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for ref in version_refs(repo):
        versions = [c.version for c in ref.charts if c.version]
        if ref.exact_tag:
            ok = any(v == ref.constraint or _same(v, ref.constraint) for v in versions)
        else:
            ok = any(semver.matches(ref.constraint, v) for v in versions)
        if ok or not versions:
            continue
        chart = max(ref.charts, key=lambda c: _sort_key(c.version or ""))
        published = sorted(
            {v for c in ref.charts for v in repo.published_versions(c.path)}, key=_sort_key
        )
        if ref.exact_tag:
            had = [v for v in published if v == ref.constraint or _same(v, ref.constraint)]
        else:
            had = [v for v in published if semver.matches(ref.constraint, v)]
        target = chart.version or versions[0]
        if ref.exact_tag:
            # What `helm push` names the tag: OCI tags cannot hold `+`.
            target = target.replace("+", "_")
        suggestion = None
        if ref.has_version_line:
            text = repo.text(ref.path) or ""
            lines = split_lines(text)
            if 0 < ref.line <= len(lines):
                suggestion = rewrite_version_line(lines[ref.line - 1], target)
        have = ", ".join(sorted(set(versions)))
        # The cause may well be the chart's side: a bump of its `version:` line.
        related = [
            Location(c.path, c.version_line, message=f"{c.label} is version {c.version}")
            for c in ref.charts
            if c.version_line is not None
        ]
        earlier = [v for v in published if v not in versions]
        known = (
            f"Earlier versions of the chart known here: {', '.join(earlier)}."
            if earlier
            else "No earlier version of the chart is known here."
        )
        if had:
            yield ctx.finding(
                ID,
                Severity.WARNING,
                ref.path,
                ref.line,
                f"{ref.what} pins chart {chart.name} `{ref.shown}`, an earlier version: "
                f"{chart.path} is now {have}, so the dependency lags; use `{target}`.",
                suggestion=suggestion,
                related=related,
                key=(ref.path, ref.what),
                detail=(
                    f"The chart had version {had[-1]} before, so it was published and the "
                    f"reference still installs that older chart, not the one in this "
                    f"commit. {known}"
                ),
            )
            continue
        yield ctx.finding(
            ID,
            SEVERITY,
            ref.path,
            ref.line,
            f"{ref.what} asks for chart {chart.name} `{ref.shown}`, but {chart.path} is "
            f"{have} and no earlier version matches; use `{target}`.",
            suggestion=suggestion,
            related=related,
            key=(ref.path, ref.what),
            detail=(
                "Flux asks the registry for a version this repository is not known to have "
                "published, so the chart in this repository is not the one that gets "
                f"deployed, and the release fails if the registry has no such version. {known}"
            ),
        )


def _same(a: str, b: str) -> bool:
    """Same version, spelled differently (`v` prefix...). A tag is pulled as written, so
    build metadata must match too, although SemVer precedence ignores it."""
    try:
        va, vb = semver.Version.parse(a), semver.Version.parse(b)
    except ValueError:
        return False
    return va == vb and va.build == vb.build


def _sort_key(version: str) -> tuple[int, object]:
    try:
        return (1, semver.Version.parse(version))
    except ValueError:
        return (0, version)
