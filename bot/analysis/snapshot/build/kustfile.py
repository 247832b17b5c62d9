"""A kustomization file, read into the fields the build uses.

kustomize decodes a kustomization with Go's encoding/json (through sigs.k8s.io/yaml),
which matches a key to a field ignoring case (`NamePrefix` is `namePrefix`) and lets a
later key overwrite an earlier one. Whether the file is valid is
kustomize-invalid-kustomization's question; the build reads what it can.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace

from yaml import nodes as ynodes

from bot.analysis.snapshot.build import nodes as yn


@dataclass(frozen=True, slots=True)
class Entry:
    """A `resources` or `components` entry."""

    value: str
    line: int
    file: str  # the file it is written in
    directory: str  # what it is relative to


@dataclass(frozen=True, slots=True)
class PatchEntry:
    """One patch, from `patches`, `patchesStrategicMerge` or `patchesJson6902` (or added by
    Flux from a Flux Kustomization's `spec.patches`)."""

    field: str  # "patches", "patchesStrategicMerge" or "patchesJson6902"
    line: int
    file: str  # where the patch is written (the kustomization file, or the Flux object's)
    directory: str  # what `path` is relative to
    path: str | None = None  # a patch file, relative to `directory`
    inline: ynodes.ScalarNode | None = None  # the `patch:` text
    target: ynodes.Node | None = None  # the selector
    options: ynodes.Node | None = None


@dataclass(slots=True)
class KustFile:
    path: str  # the kustomization file ("" for the index Flux generates)
    directory: str
    root: ynodes.MappingNode | None
    kind: str = "Kustomization"
    resources: list[Entry] = field(default_factory=list)
    components: list[Entry] = field(default_factory=list)
    patches: list[PatchEntry] = field(default_factory=list)
    namespace: tuple[str, int, str] | None = None  # (value, line, file)
    name_prefix: tuple[str, int, str] | None = None
    name_suffix: tuple[str, int, str] | None = None
    # (node, the file it is written in): labels written by Flux's commonMetadata come
    # from the Flux Kustomization's file
    common_labels: list[tuple[ynodes.Node, str]] = field(default_factory=list)
    labels: list[tuple[ynodes.Node, str]] = field(default_factory=list)
    common_annotations: list[tuple[ynodes.Node, str]] = field(default_factory=list)
    images: list[tuple[ynodes.Node, str]] = field(default_factory=list)
    replicas: list[tuple[ynodes.Node, str]] = field(default_factory=list)
    replacements: list[ynodes.Node] = field(default_factory=list)
    configurations: list[Entry] = field(default_factory=list)
    config_maps: list[ynodes.Node] = field(default_factory=list)
    secrets: list[ynodes.Node] = field(default_factory=list)
    generator_options: ynodes.Node | None = None
    # Fields whose effect the build does not follow: the build is then not fully known.
    unsupported: list[str] = field(default_factory=list)

    @property
    def is_component(self) -> bool:
        return self.kind == "Component"

    def copy(self) -> KustFile:
        return replace(
            self,
            resources=list(self.resources),
            components=list(self.components),
            patches=list(self.patches),
            common_labels=list(self.common_labels),
            labels=list(self.labels),
            common_annotations=list(self.common_annotations),
            images=list(self.images),
            replicas=list(self.replicas),
            unsupported=list(self.unsupported),
        )


def fields(root: ynodes.Node | None) -> dict[str, ynodes.Node]:
    """A kustomization's fields by lower-case name, the last one of a name winning."""
    if not isinstance(root, ynodes.MappingNode):
        return {}
    return {k.value.lower(): v for k, v in root.value if isinstance(k, ynodes.ScalarNode)}


def _items(node: ynodes.Node | None) -> list[ynodes.Node]:
    return list(node.value) if isinstance(node, ynodes.SequenceNode) else []


def _line(node: ynodes.Node) -> int:
    return int(node.start_mark.line) + 1


# Fields whose effect the build does not emulate (plugins, Helm, vars, custom
# transformer configurations): a build that uses one is not fully known.
_UNSUPPORTED = (
    ("helmcharts", "helmCharts"),
    ("helmchartinflationgenerator", "helmChartInflationGenerator"),
    ("generators", "generators"),
    ("transformers", "transformers"),
    ("validators", "validators"),
    ("vars", "vars"),
    ("crds", "crds"),
    ("openapi", "openapi"),
)


def read(path: str, root: ynodes.Node | None, directory: str | None = None) -> KustFile:
    """`path` is the file in the repository; `directory` where it sits in the artifact
    it is built from (what its entries are relative to), when that differs."""
    if directory is None:
        directory = posixpath.dirname(path)
    kf = KustFile(path, directory, root if isinstance(root, ynodes.MappingNode) else None)
    f = fields(root)
    kf.kind = yn.text(f.get("kind")) or "Kustomization"

    def entries(name: str) -> list[Entry]:
        out = []
        for item in _items(f.get(name)):
            value = yn.text(item)
            if value is not None:
                out.append(Entry(value, _line(item), path, directory))
        return out

    # kustomize appends the deprecated `bases` to `resources`.
    kf.resources = entries("resources") + entries("bases")
    kf.components = entries("components")
    kf.configurations = entries("configurations")
    for item in _items(f.get("patchesstrategicmerge")):
        value = yn.text(item)
        if value is None:
            continue
        if ("\n" in value or ": " in value) and isinstance(item, ynodes.ScalarNode):
            kf.patches.append(
                PatchEntry("patchesStrategicMerge", _line(item), path, directory, inline=item)
            )
        else:
            kf.patches.append(
                PatchEntry("patchesStrategicMerge", _line(item), path, directory, path=value)
            )
    for name, fieldname in (("patches", "patches"), ("patchesjson6902", "patchesJson6902")):
        for item in _items(f.get(name)):
            pf = fields(item)
            patch_node = pf.get("patch")
            kf.patches.append(
                PatchEntry(
                    fieldname,
                    _line(item),
                    path,
                    directory,
                    path=yn.text(pf.get("path")),
                    inline=patch_node
                    if isinstance(patch_node, ynodes.ScalarNode) and yn.text(patch_node)
                    else None,
                    target=pf.get("target"),
                    options=pf.get("options"),
                )
            )
    for name, attr in (
        ("namespace", "namespace"),
        ("nameprefix", "name_prefix"),
        ("namesuffix", "name_suffix"),
    ):
        node = f.get(name)
        value = yn.text(node)
        if node is not None and value:
            setattr(kf, attr, (value, _line(node), path))
    if f.get("commonlabels") is not None:
        kf.common_labels.append((f["commonlabels"], path))
    kf.labels = [(item, path) for item in _items(f.get("labels"))]
    if f.get("commonannotations") is not None:
        kf.common_annotations.append((f["commonannotations"], path))
    kf.images = [(item, path) for item in _items(f.get("images"))]
    kf.replicas = [(item, path) for item in _items(f.get("replicas"))]
    kf.replacements = _items(f.get("replacements"))
    kf.config_maps = _items(f.get("configmapgenerator"))
    kf.secrets = _items(f.get("secretgenerator"))
    kf.generator_options = f.get("generatoroptions")
    for key, name in _UNSUPPORTED:
        node = f.get(key)
        if node is not None and (
            not isinstance(node, ynodes.SequenceNode | ynodes.MappingNode) or node.value
        ):
            kf.unsupported.append(name)
    return kf
