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
from bot.analysis.model import Consumer, Reader
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
    for path, before in change.kustomizations.before.items():
        c = change.base_files.get(path)
        if c is None or c.status is not ChangeStatus.REMOVED:
            continue
        directory = posixpath.dirname(path)
        if ctx.head.kustomization_in(directory) is not None:
            continue  # replaced by another spelling (`kustomization.yml`, `Kustomization`)
        roots = [r for r in change.consumers.before.get(path, ()) if r.reader in _ENTRY_READERS]
        if not roots:
            continue
        head_roots = [
            (d, consumer)
            for d, consumer in ctx.head.flux_roots
            if d == directory and any(_same_root(consumer, r) for r in roots)
        ]
        if not head_roots:
            continue  # the Flux Kustomization went with it, or points elsewhere now
        manifests, kfiles = ctx.head.flux_raw_walk(directory)
        listed_before = _built_by(ctx, before.path)
        newly = [p for p in manifests + kfiles if p not in listed_before]
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
            Location(consumer.source, consumer.line, message="the Flux path that applies it")
            for _, consumer in head_roots
        ]
        yield ctx.finding(
            ID,
            SEVERITY,
            path,
            1,
            f"This change deletes the kustomization file of a path applied by {who}. Flux "
            f"now generates one that applies every YAML file below `{directory or '.'}`: "
            f"{applied}{settings}.",
            side=Side.BASE,
            related=related,
            key=(path,),
        )


def _same_root(head: Consumer, base: Consumer) -> bool:
    if head.owner is not None and base.owner is not None:
        return (head.owner.kind, head.owner.namespace, head.owner.name) == (
            base.owner.kind,
            base.owner.namespace,
            base.owner.name,
        )
    return head.raw_path is not None and head.raw_path == base.raw_path


def _built_by(ctx: ChangeContext, kfile: str) -> set[str]:
    """The files of the base that a kustomization file's build read, at any depth."""
    seen = {kfile}
    stack = [kfile]
    base = ctx.base
    while stack:
        current = stack.pop()
        k = base.kustomizations.get(current)
        if k is None:
            continue
        for entry in k.entries:
            target = entry.target
            if target is None:
                continue
            found = target if target in base.path_set else base.kustomization_in(target)
            if found is not None and found not in seen:
                seen.add(found)
                stack.append(found)
    return seen
