"""A kustomization entry or a Flux Kustomization `spec.path` that points at nothing.

kustomize fails the whole build when an entry of `resources`, `components`, `patches`,
`patchesStrategicMerge`, `patchesJson6902`, `crds`, `configurations`, `replacements` or a
generator's `files`/`envs` names a file that does not exist, or a directory without a
`kustomization.yaml`. kustomize-controller fails with `kustomization path not found` when
`spec.path` does not exist in the source.

Also reported: entries that leave the repository (`../../..` above the root, absolute
paths; Flux builds inside the source artifact and cannot read outside it) and entries
that exist in git but are left out of the Flux artifact by `.sourceignore` or the
default ignore rules (`.github/`, `*.tar.gz`...). Remote entries (`https://...`,
`github.com/org/repo//path?ref=v1`) are external and never fetched.

`spec.path` is only checked for Kustomizations whose source is this repository (the
`flux-system` GitRepository that `flux bootstrap` creates).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import KUSTOMIZATION_FILES, Repository, secure_join
from bot.analysis.rules.base import Context

ID = "kustomize-missing-resource"
SEVERITY = Severity.ERROR
_DIR_FIELDS = ("resources", "bases", "components")


def _kind_of_file_kept(repo: Repository, target: str) -> bool:
    """Whether the tree holds any file with the target's extension.

    Exports of GitOps repositories often keep only the YAML: a generator input like
    `dashboards/cluster.json` is then absent although the real repository has it. A
    missing file is only reported when files of its kind are present at all.
    """
    ext = posixpath.splitext(target)[1]
    if ext in (".yaml", ".yml") or posixpath.basename(target) in KUSTOMIZATION_FILES:
        return True
    return ext in repo.extensions


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for kfile in repo.kustomizations.values():
        if repo.problem(kfile.path) is not None:
            continue
        for entry in kfile.entries:
            if entry.remote:
                continue
            where = f"`{entry.value}` in `{entry.field}`"
            if entry.escapes or entry.target is None:
                yield ctx.finding(
                    ID,
                    SEVERITY,
                    kfile.path,
                    entry.line,
                    f"{where} points outside the repository; Flux builds inside "
                    "the source artifact and cannot read it.",
                )
                continue
            target = entry.target
            if target in repo.path_set:
                if repo.source_ignore.ignored(target):
                    yield ctx.finding(
                        ID,
                        SEVERITY,
                        kfile.path,
                        entry.line,
                        f"{where} is excluded from the Flux source artifact by "
                        "`.sourceignore` or Flux's default ignore rules, so "
                        "the build will not find it.",
                    )
                continue
            if repo.is_dir(target):
                if entry.field in _DIR_FIELDS and repo.kustomization_in(target) is None:
                    yield ctx.finding(
                        ID,
                        SEVERITY,
                        kfile.path,
                        entry.line,
                        f"{where} is a directory without a kustomization file "
                        f"({', '.join(KUSTOMIZATION_FILES)}); kustomize "
                        "cannot build it.",
                    )
                elif entry.field not in _DIR_FIELDS:
                    yield ctx.finding(
                        ID,
                        SEVERITY,
                        kfile.path,
                        entry.line,
                        f"{where} is a directory, but kustomize expects a file.",
                    )
                continue
            if not _kind_of_file_kept(repo, target):
                continue
            yield ctx.finding(
                ID,
                SEVERITY,
                kfile.path,
                entry.line,
                f"{where} does not exist: `{target}` is not in the repository, "
                "so the kustomize build fails.",
            )
    for obj in repo.objects_of("Kustomization"):
        if obj.group != "kustomize.toolkit.fluxcd.io" or not repo.is_self_source(obj):
            continue
        node = ys.get(obj.node, "spec", "path")
        value = ys.scalar(node)
        if node is None or value is None:
            continue
        directory = secure_join(value)
        if directory and not repo.is_dir(directory):
            yield ctx.finding(
                ID,
                SEVERITY,
                obj.path,
                ys.line_of(node),
                f"spec.path `{value}` of Flux Kustomization {obj.name} does not "
                "exist in the repository: kustomize-controller fails with "
                "`kustomization path not found`.",
            )
