"""The kustomization files of one commit and their entries."""

from __future__ import annotations

import posixpath
from functools import cached_property

import yaml

from bot.analysis import yamlscan as ys
from bot.analysis.model import (
    _REMOTE,
    KUSTOMIZATION_FILES,
    KustomizationFile,
    KustomizeEntry,
    _join,
)
from bot.analysis.snapshot.files import FilesIndex


class KustomizeIndex:
    """Kustomization files by path, with every entry that names a file or directory."""

    def __init__(self, files: FilesIndex) -> None:
        self.files = files

    # --- kustomizations ----------------------------------------------------------

    @cached_property
    def kustomizations(self) -> dict[str, KustomizationFile]:
        result = {}
        for path in self.files.paths:
            if (
                path.endswith(KUSTOMIZATION_FILES)
                and posixpath.basename(path) in KUSTOMIZATION_FILES
            ):
                result[path] = self.files.of_file(
                    "kustomization-file", path, self._read_kustomization
                )
        return result

    def _read_kustomization(self, path: str) -> KustomizationFile:
        directory = posixpath.dirname(path)
        docs = self.files.documents(path)
        root = docs[0] if docs else None
        entries: list[KustomizeEntry] = []

        def add(fieldname: str, node: ys.Node | None) -> None:
            value = ys.scalar(node)
            if node is None or value is None:
                return
            if _REMOTE.search(value):
                entries.append(
                    KustomizeEntry(fieldname, value, ys.line_of(node), None, remote=True)
                )
                return
            target, escapes = _join(directory, value)
            entries.append(
                KustomizeEntry(fieldname, value, ys.line_of(node), target, escapes=escapes)
            )

        for fieldname in (
            "resources",
            "bases",
            "components",
            "crds",
            "configurations",
            "transformers",
            "generators",
            "validators",
        ):
            for item in ys.items(ys.get(root, fieldname)):
                if isinstance(item, yaml.ScalarNode):
                    value = item.value
                    # generators/transformers may hold inline YAML instead of a path
                    if "\n" not in value and not value.lstrip().startswith(("apiVersion", "{")):
                        add(fieldname, item)
        for item in ys.items(ys.get(root, "patchesStrategicMerge")):
            if (
                isinstance(item, yaml.ScalarNode)
                and "\n" not in item.value
                and ": " not in item.value
            ):
                add("patchesStrategicMerge", item)
        for fieldname in ("patches", "patchesJson6902", "replacements"):
            for item in ys.items(ys.get(root, fieldname)):
                add(fieldname, ys.get(item, "path"))
        for fieldname in ("configMapGenerator", "secretGenerator"):
            for item in ys.items(ys.get(root, fieldname)):
                for f in ys.items(ys.get(item, "files")):
                    value = ys.scalar(f)
                    if value is None:
                        continue
                    # `key=path`: only the part after the first `=` is a file
                    if "=" in value:
                        f = yaml.ScalarNode(
                            f.tag, value.split("=", 1)[1].strip(), f.start_mark, f.end_mark
                        )
                    add(fieldname + ".files", f)
                for e in ys.items(ys.get(item, "envs")):
                    add(fieldname + ".envs", e)
                add(fieldname + ".env", ys.get(item, "env"))
        kind = ys.scalar(ys.get(root, "kind"))
        return KustomizationFile(
            path=path,
            directory=directory,
            entries=entries,
            namespace=ys.scalar(ys.get(root, "namespace")),
            is_component=kind == "Component",
            renames=self._renames(path, root),
        )

    def _renames(self, path: str, root: ys.Node | None) -> bool:
        data = self.files.data(path) or b""
        if b"namePrefix" not in data and b"nameSuffix" not in data:
            return False
        return bool(ys.scalar(ys.get(root, "namePrefix")) or ys.scalar(ys.get(root, "nameSuffix")))
