"""A kustomization entry or a Flux Kustomization `spec.path` that points at nothing.

kustomize fails the whole build when an entry of `resources`, `components`, `patches`,
`patchesStrategicMerge`, `patchesJson6902`, `crds`, `configurations`, `replacements` or a
generator's `files`/`envs` names a file that does not exist, or a directory without a
`kustomization.yaml`. kustomize-controller fails with `kustomization path not found` when
`spec.path` does not exist in the source. A directory that a `clusters` item of the
flux-review config names and the commit does not have is a notice.

Also reported: entries that leave the repository (`../../..` above the root, absolute
paths; Flux builds inside the source artifact and cannot read outside it) and entries or
a `spec.path` that exist in git but are left out of the Flux artifact by `.sourceignore`,
the `flux-system` GitRepository's `spec.ignore` or the default ignore rules (`.github/`,
`*.tar.gz`...). Remote entries (`https://...`,
`github.com/org/repo//path?ref=v1`) are external and never fetched. A missing file that
the repository's `.gitignore` keeps out of git on purpose (a local secret, a generated
file) is not reported in a kustomization that no Flux Kustomization of the repository
builds: people build it by hand, where the file exists.

Files of a git submodule (declared in `.gitmodules`) are not in the repository's tree:
source-controller checks them out only when the GitRepository sets
`spec.recurseSubmodules: true`. Entries into a submodule are reported when the
repository's own GitRepository is known and does not fetch submodules, and are silent
otherwise.

`spec.path` is only checked for Kustomizations whose source is this repository (the
`flux-system` GitRepository that `flux bootstrap` creates, or a GitRepository with this
repository's clone URL that follows the same branch: a tenant kept on another branch of
the same repository is not this content), and not when it holds a `${var}` that a parent
Kustomization's post-build substitution fills in.
"""

from __future__ import annotations

import bisect
import posixpath
from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import KUSTOMIZATION_FILES, SCAFFOLD_SYNTAX, secure_join
from bot.analysis.options import CONFIG_PATH
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot

ID = "kustomize-missing-resource"
SEVERITY = Severity.ERROR
_DIR_FIELDS = ("resources", "bases", "components")


def _kind_of_file_kept(repo: Snapshot, target: str, field: str) -> bool:
    """Whether the tree holds any file with the target's extension.

    Exports of GitOps repositories often keep only the YAML: a generator input like
    `dashboards/cluster.json` is then absent although the real repository has it. A
    missing file is only reported when files of its kind are present at all. A
    `resources` entry is YAML or a directory (`../base/podinfo`, `../base/app.v2`):
    always reported, unless it names a JSON file.
    """
    ext = posixpath.splitext(target)[1]
    if ext in (".yaml", ".yml") or posixpath.basename(target) in KUSTOMIZATION_FILES:
        return True
    if field in _DIR_FIELDS and ext != ".json":
        return True
    return ext in repo.extensions


def _left_out(repo: Snapshot, directory: str) -> bool:
    """Whether no file below `directory` makes it into the Flux artifact."""
    prefix = directory + "/"
    ignore = repo.source_ignore
    paths = repo.paths  # sorted: the files below `directory` are one slice
    for i in range(bisect.bisect_left(paths, prefix), len(paths)):
        if not paths[i].startswith(prefix):
            break
        if not ignore.ignored(paths[i]):
            return False
    return True


def _excluded(ctx: Context, path: str, line: int, where: str) -> Finding:
    return ctx.finding(
        ID,
        SEVERITY,
        path,
        line,
        f"{where} is left out of the Flux source artifact, so the build will not find it.",
        detail="`.sourceignore` or Flux's default ignore rules exclude it from the artifact "
        "source-controller makes.",
    )


def _inside(target: str, submodule: str) -> bool:
    """Whether `target` is the submodule or in it (not a directory above submodules,
    whose content depends on what they hold)."""
    return target == submodule or target.startswith(submodule + "/")


def _in_submodule(
    ctx: Context, path: str, line: int, where: str, target: str, submodule: str
) -> Finding | None:
    """An entry into a git submodule: its files exist in the artifact only when the
    GitRepository fetches submodules; unknown (no GitRepository here for this
    repository) or fetched means nothing to say."""
    if ctx.repo.fetches_submodules is not False or not _inside(target, submodule):
        return None
    return ctx.finding(
        ID,
        SEVERITY,
        path,
        line,
        f"{where} is in the git submodule `{submodule}`, which source-controller does not "
        "check out, so the kustomize build fails.",
        detail="source-controller checks submodules out only when the GitRepository sets "
        "`spec.recurseSubmodules: true`.",
    )


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for kfile in repo.kustomizations.values():
        if repo.problem(kfile.path) is not None:
            continue
        # Whether Flux sees this file at all: if not, what it lists being left out of
        # the artifact too is a consequence, not a problem of its own.
        in_artifact = not repo.source_ignore.ignored(kfile.path)
        for entry in kfile.entries:
            if entry.remote or SCAFFOLD_SYNTAX.search(entry.value):
                # A template placeholder (`{{ app }}.yaml`): rendered by someone else.
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
                if in_artifact and repo.source_ignore.ignored(target):
                    yield _excluded(ctx, kfile.path, entry.line, where)
                continue
            submodule = repo.submodule_of(target)
            if submodule is not None and not repo.is_dir(target):
                # The submodule's files are not in this repository's tree: whether they
                # exist depends on what the GitRepository fetches.
                finding = _in_submodule(ctx, kfile.path, entry.line, where, target, submodule)
                if finding is not None:
                    yield finding
                continue
            if repo.is_dir(target):
                sub = repo.kustomization_in(target)
                if (
                    entry.field in _DIR_FIELDS
                    and sub is not None
                    and in_artifact
                    and repo.source_ignore.ignored(sub)
                ):
                    yield _excluded(ctx, kfile.path, entry.line, where)
                elif entry.field in _DIR_FIELDS and sub is None:
                    yield ctx.finding(
                        ID,
                        SEVERITY,
                        kfile.path,
                        entry.line,
                        f"{where} is a directory without a kustomization file, "
                        "so kustomize cannot build it.",
                        detail=f"kustomize looks for {', '.join(KUSTOMIZATION_FILES)}.",
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
            if not _kind_of_file_kept(repo, target, entry.field):
                continue
            if repo.git_ignore.ignored(target) and not repo.flux_kustomizations_reaching(
                kfile.path
            ):
                # Kept out of git on purpose (a local secret, a generated file) by a
                # kustomization that people build by hand, not Flux.
                continue
            yield ctx.finding(
                ID,
                SEVERITY,
                kfile.path,
                entry.line,
                f"{where} does not exist, so the kustomize build fails.",
                detail=f"`{target}` is not in the repository.",
            )
    for obj in repo.objects_of("Kustomization"):
        if obj.group != "kustomize.toolkit.fluxcd.io" or not repo.is_self_source(obj):
            continue
        node = ys.get(obj.node, "spec", "path")
        value = ys.scalar(node)
        if node is None or value is None or "${" in value:
            # `${var}` is filled in by a parent Kustomization's post-build substitution.
            continue
        directory = secure_join(value)
        if directory and repo.is_dir(directory) and _left_out(repo, directory):
            yield ctx.finding(
                ID,
                SEVERITY,
                obj.path,
                ys.line_of(node),
                f"spec.path `{value}` of Flux Kustomization {obj.name} is left out of the "
                "Flux source artifact: kustomize-controller fails with "
                "`kustomization path not found`.",
                detail="`.sourceignore`, the GitRepository's `spec.ignore` or Flux's default "
                "ignore rules exclude it from the artifact source-controller makes.",
            )
        elif (
            directory
            and not repo.is_dir(directory)
            and ((submodule := repo.submodule_of(directory)) is not None)
        ):
            if repo.fetches_submodules is False and _inside(directory, submodule):
                yield ctx.finding(
                    ID,
                    SEVERITY,
                    obj.path,
                    ys.line_of(node),
                    f"spec.path `{value}` of Flux Kustomization {obj.name} is in the git "
                    f"submodule `{submodule}`, which source-controller does not check out.",
                    detail="source-controller checks submodules out only when the "
                    "GitRepository sets `spec.recurseSubmodules: true`; without them "
                    "kustomize-controller finds no manifests there.",
                )
        elif directory and not repo.is_dir(directory):
            yield ctx.finding(
                ID,
                SEVERITY,
                obj.path,
                ys.line_of(node),
                f"spec.path `{value}` of Flux Kustomization {obj.name} does not "
                "exist in the repository: kustomize-controller fails with "
                "`kustomization path not found`.",
            )
    for cluster in repo.config.clusters:
        for directory in cluster.paths:
            if directory and not repo.is_dir(directory):
                # The config is read from the default branch: a cluster it names may
                # not exist yet in this commit, or the config is out of date.
                yield ctx.finding(
                    ID,
                    Severity.NOTICE,
                    CONFIG_PATH,
                    cluster.line,
                    f"Cluster {cluster.name} of the flux-review config applies `{directory}`, "
                    "which is not a directory of this commit: nothing is checked for it.",
                )
