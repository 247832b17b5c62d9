"""A kustomization file deleted from a path that a Flux Kustomization (or a `raw_paths`
entry) applies: Flux now generates one and applies every YAML file below it.

kustomize-controller builds `spec.path` with the kustomization file it finds there. When
there is none, it generates one that lists every `.yaml`/`.yml` file of the directory
and its subdirectories (a subdirectory with a kustomization file of its own is taken as a
whole). So deleting `kustomization.yaml` does not remove what it listed from the cluster:
it widens the build to every file below the path, including files the kustomization left
out on purpose (chart templates, values files, CI configuration, old manifests), and it
drops what the file itself set: `namespace`, `namePrefix`/`nameSuffix`, labels,
patches, generators.

The finding sits on the deleted file (the left side of the diff) and says how many files
are now applied that were not, and what the deleted file set that is now lost. The files
that become raw get their own findings from the other rules (a Helm template now applied
raw is an introduced `helm-template-in-raw-manifest`). Only reported when a change is
reviewed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Location, Severity, Side
from bot.analysis.model import Reader
from bot.analysis.rules.base import ChangeContext
from bot.analysis.tree import ChangeStatus

ID = "kustomization-removed"
SEVERITY = Severity.WARNING

# What a kustomization file sets for everything it builds, as a reader would name it.
_SETTINGS = (
    ("namespace", "namespace"),
    ("namePrefix", "namePrefix"),
    ("nameSuffix", "nameSuffix"),
    ("commonLabels", "labels"),
    ("labels", "labels"),
    ("commonAnnotations", "annotations"),
    ("patches", "patches"),
    ("patchesStrategicMerge", "patches"),
    ("patchesJson6902", "patches"),
    ("images", "image overrides"),
    ("replicas", "replica overrides"),
    ("configMapGenerator", "generated ConfigMaps"),
    ("secretGenerator", "generated Secrets"),
    ("components", "components"),
)
_ENTRY_READERS = (Reader.FLUX_ENTRY, Reader.RAW_PATHS_ENTRY)


def check_change(ctx: ChangeContext) -> Iterator[Finding]:
    change = ctx.change
    for path in change.kustomizations.before:
        c = change.base_files.get(path)
        if c is None or c.status is not ChangeStatus.REMOVED:
            continue
        directory = posixpath.dirname(path)
        if ctx.head.kustomization_in(directory) is not None:
            continue  # replaced by another spelling (`kustomization.yml`, `Kustomization`)
        roots = [r for r in change.consumers.before.get(path, ()) if r.reader in _ENTRY_READERS]
        labels = {r.applier.label for r in roots if r.applier is not None}
        if not labels:
            continue
        head_kss = [
            k
            for k in ctx.head.build.kustomizations
            if k.label in labels and k.directory == directory
        ]
        if not head_kss:
            continue  # the Flux Kustomization went with it, or points elsewhere now
        listed_before = {
            read.path
            for k in ctx.base.build.kustomizations
            if k.label in labels
            for read in k.reads
        }
        newly = sorted(
            {read.path for k in head_kss for read in k.reads if read.path not in listed_before}
        )
        docs = ctx.base.documents(path)
        root = docs[0] if docs else None
        lost = list(
            dict.fromkeys(label for key, label in _SETTINGS if ys.get(root, key) is not None)
        )
        who = "; ".join(dict.fromkeys(r.description for r in roots))
        sample = ", ".join(f"`{p}`" for p in newly[:3])
        more = f" and {len(newly) - 3} more" if len(newly) > 3 else ""
        applied = (
            f"{len(newly)} file(s) that it did not list are now applied ({sample}{more})"
            if newly
            else "no file is added to the build"
        )
        settings = f"; what it set for the whole build is lost: {', '.join(lost)}" if lost else ""
        related = [
            Location(k.path, k.line, message="the Flux path that applies it")
            for k in head_kss
            if k.res is not None or k.kind == "raw_paths entry"
        ]
        yield ctx.finding(
            ID,
            SEVERITY,
            path,
            1,
            f"This change deletes the kustomization file of a path {sorted(labels)[0]} applies: "
            f"Flux now applies every YAML file below `{directory or '.'}`"
            + (f", {len(newly)} of them new to the build." if newly else "."),
            detail=(
                f"Applied by {who}. Without a kustomization file Flux generates one that "
                f"lists every YAML file below the path: {applied}{settings}."
            ),
            side=Side.BASE,
            related=related,
            key=(path,),
        )
