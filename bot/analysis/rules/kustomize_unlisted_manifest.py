"""A manifest in a kustomize directory that its `kustomization.yaml` does not list.

When a directory has a `kustomization.yaml`, kustomize (and Flux) apply only what it
lists: a manifest added beside it and not registered in `resources` is never applied,
silently. The rule reports Kubernetes manifests (documents with `apiVersion` and `kind`)
in such a directory, or in its subdirectories that have no kustomization file of their
own, that nothing reads: no kustomization file lists them (as a resource, patch,
component or generator input), no Flux Kustomization applies them, and they are not
part of a Helm chart.

Files left out of the Flux artifact by `.sourceignore` are not reported, and neither are
the files beside a kustomization file that does not parse (`yaml-syntax-error`), nor files
named as templates (`job.tmpl.yaml`, `x.tpl.yaml`, `x.template.yaml`): scripts render
those (envsubst, minijinja) and apply the result, which is the point of leaving them out.

A manifest whose entry the kustomization file has commented out (`# - ./grafana.yaml`,
its directory's, or a file's beside it: `# - ./game/ks.yaml` shelves all of `game/`) is
left out on purpose: a notice names the commented line instead.
When a pull request comments out an entry that a pruning Flux Kustomization applied,
`prune-deletes` reports what Flux deletes, and this notice is not repeated.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.lines import split_lines
from bot.analysis.model import KUSTOMIZATION_FILES, is_yaml_name
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot

ID = "kustomize-unlisted-manifest"
SEVERITY = Severity.WARNING
ABOUT_UNAPPLIED_FILES = True
# A list entry behind a comment sign: `# - ./grafana.yaml`, `#- "grafana.yaml"`.
_COMMENTED_ENTRY = re.compile(r"""^\s*#+\s*-\s*["']?([^\s"'#]+?)/?["']?\s*(?:#.*)?$""")
# A file named as a template is an input of a script, not a manifest left out by mistake.
_TEMPLATE_NAME = re.compile(r"\.(?:tmpl|tpl|template)\.ya?ml$", re.I)
_MANIFEST = re.compile(r"^apiVersion:.*$[\s\S]*?^kind:|^kind:.*$[\s\S]*?^apiVersion:", re.M)


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    kdirs = {k.directory: k for k in repo.kustomizations.values()}
    for path in repo.paths:
        if not is_yaml_name(path) or posixpath.basename(path) in KUSTOMIZATION_FILES:
            continue
        if repo.consumers.get(path) or _TEMPLATE_NAME.search(path):
            continue
        directory = posixpath.dirname(path)
        owner = None
        d = directory
        while True:
            if d in kdirs:
                owner = kdirs[d]
                break
            if not d:
                break
            d = posixpath.dirname(d)
        if owner is None or repo.chart_of(path) is not None:
            continue
        if any(e.target == path for e in owner.entries):
            continue  # listed, in a kustomization no build reads (an unused component)
        if repo.problem(owner.path) is not None:
            # What a kustomization file that does not parse lists is unknown; the build
            # fails on it, and yaml-syntax-error reports why.
            continue
        if repo.source_ignore.ignored(path):
            continue
        text = repo.text(path)
        if not text or not _MANIFEST.search(text):
            continue
        rel = path[len(owner.directory) + 1 :] if owner.directory else path
        commented = _commented_entry(repo.text(owner.path) or "", rel)
        if commented is not None:
            if _pruned_by_change(repo, path):
                continue
            line, entry = commented
            yield ctx.finding(
                ID,
                Severity.NOTICE,
                path,
                1,
                f"`{owner.path}` comments out `{entry}` on line {line}, "
                "so kustomize does not apply this manifest.",
                related=[Location(owner.path, line, message=f"`{entry}` commented out")],
                detail=(
                    f"The entry is a comment in {owner.path}, so the file is left out on "
                    "purpose; remove the `#` to apply it again, or delete the file."
                ),
            )
            continue
        yield ctx.finding(
            ID,
            SEVERITY,
            path,
            1,
            f"`{owner.path}` does not list this file, so it is never applied; "
            f"add `- {rel}` to `resources` or delete it.",
            related=[Location(owner.path, 1, message="the kustomization file")],
        )


def _pruned_by_change(repo: Snapshot, path: str) -> bool:
    """Whether the other side of the change applied the file through a Flux
    Kustomization that prunes: commenting out its entry is then the deletion that
    prune-deletes reports, one finding for one edit."""
    other = repo.other
    if other is None:
        return False
    return any(getattr(c.applier, "prune", False) for c in other.consumers.get(path, ()))


def _commented_entry(text: str, rel: str) -> tuple[int, str] | None:
    """The line and text of a commented-out list entry naming the file or a directory
    above it (relative to the kustomization's directory)."""
    for number, line in enumerate(split_lines(text), 1):
        m = _COMMENTED_ENTRY.match(line.rstrip("\r\n"))
        if m is None:
            continue
        entry = posixpath.normpath(m[1])
        if entry == rel or rel.startswith(entry + "/"):
            return number, m[1]
        # `# - ./game/ks.yaml` shelves the app: its directory's other files go with it
        # (home-ops repositories keep an app's Flux Kustomization in `<app>/ks.yaml`).
        shelved = posixpath.dirname(entry)
        if shelved not in ("", ".") and rel.startswith(shelved + "/"):
            return number, m[1]
    return None
