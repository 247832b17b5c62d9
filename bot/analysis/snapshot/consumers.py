"""The consumer graph of one commit: for every file, who reads it and how."""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from functools import cached_property

from bot.analysis import templating
from bot.analysis import yamlscan as ys
from bot.analysis.model import (
    KUSTOMIZATION_FILES,
    Consumer,
    FluxObject,
    Reader,
    ReadKind,
    is_yaml_name,
    secure_join,
)
from bot.analysis.snapshot.sources import SourcesIndex


class ConsumersIndex(SourcesIndex):
    """Typed consumer edges for every file, and the facts several rules share."""

    # --- the consumer graph ----------------------------------------------------------

    def flux_raw_walk(self, root: str) -> tuple[list[str], list[str]]:
        """What Flux's generator applies for a spec.path with no kustomization file:
        (plain manifests, kustomization files of subdirectories taken as a whole)."""
        manifests: list[str] = []
        kfiles: list[str] = []
        ignore = self.source_ignore
        stack = [root]
        while stack:
            directory = stack.pop()
            for path in self.children.get(directory, ()):
                if is_yaml_name(path) and not ignore.ignored(path):
                    manifests.append(path)
            for sub in self._subdirs(directory):
                if ignore.ignored(sub + "/") or ignore.ignored(sub + "/x"):
                    continue
                kfile = self.kustomization_in(sub)
                if kfile is not None:
                    kfiles.append(kfile)
                else:
                    stack.append(sub)
        return sorted(manifests), sorted(kfiles)

    @cached_property
    def _subdir_index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = defaultdict(list)
        for d in self.dirs:
            if d:
                index[posixpath.dirname(d)].append(d)
        return index

    def _subdirs(self, directory: str) -> list[str]:
        return sorted(self._subdir_index.get(directory, ()))

    @cached_property
    def flux_roots(self) -> list[tuple[str, Consumer]]:
        """(directory, consumer) for each Flux Kustomization of this repository, and for
        each `raw_paths` entry of the config. The consumer's reader is the entry kind;
        `consumers` turns it into the index kind where Flux generates the index."""
        roots = []
        for obj in self.objects_of("Kustomization"):
            if obj.group != "kustomize.toolkit.fluxcd.io" or not self.is_self_source(obj):
                continue
            path_node = ys.get(obj.node, "spec", "path")
            directory = secure_join(ys.scalar(path_node) or "")
            line = ys.line_of(path_node) if path_node is not None else obj.line
            roots.append((directory, Consumer(Reader.FLUX_ENTRY, obj.path, line, owner=obj)))
        for raw in self.config.raw_paths:
            roots.append(
                (
                    raw,
                    Consumer(Reader.RAW_PATHS_ENTRY, ".github/flux-review.yml", 1, raw_path=raw),
                )
            )
        return roots

    @cached_property
    def consumers(self) -> dict[str, list[Consumer]]:
        graph: dict[str, list[Consumer]] = defaultdict(list)
        for directory, consumer in self.flux_roots:
            if directory and not self.is_dir(directory):
                continue
            entry_point = self.kustomization_in(directory)
            if entry_point is not None:
                graph[entry_point].append(consumer)
                continue
            index = replace(
                consumer,
                reader=Reader.FLUX_INDEX
                if consumer.reader is Reader.FLUX_ENTRY
                else Reader.RAW_PATHS_INDEX,
            )
            manifests, kfiles = self.flux_raw_walk(directory)
            for path in manifests + kfiles:
                graph[path].append(index)
        for kfile in self.kustomizations.values():
            # When Flux sees this kustomization but not what it lists, the build fails
            # (kustomize-missing-resource): the target is never read.
            in_artifact = not self.source_ignore.ignored(kfile.path)
            for entry in kfile.entries:
                if entry.target is None:
                    continue
                reader = (
                    Reader.GENERATOR_DATA
                    if "Generator" in entry.field
                    else Reader.KUSTOMIZATION_ENTRY
                )
                target = entry.target
                if target in self.path_set:
                    if in_artifact and self.source_ignore.ignored(target):
                        continue
                    graph[target].append(Consumer(reader, kfile.path, entry.line))
                elif self.is_dir(target):
                    sub = self.kustomization_in(target)
                    if sub is not None and sub != kfile.path:
                        if in_artifact and self.source_ignore.ignored(sub):
                            continue
                        graph[sub].append(Consumer(reader, kfile.path, entry.line))
        for path in self.paths:
            role = self.chart_role(path)
            if role is None:
                continue
            chart, part = role
            if part == "templates":
                graph[path].append(Consumer(Reader.HELM_TEMPLATE, chart.path, 1, chart=chart))
            elif path.endswith((".yaml", ".yml", ".json")):
                graph[path].append(Consumer(Reader.HELM_CRDS, chart.path, 1, chart=chart))
        return dict(graph)

    def raw_consumers(self, path: str) -> list[Consumer]:
        return [c for c in self.consumers.get(path, ()) if c.how is ReadKind.RAW]

    def template_consumers(self, path: str) -> list[Consumer]:
        return [c for c in self.consumers.get(path, ()) if c.how is ReadKind.TEMPLATE]

    def flux_consumers_reaching(self, path: str) -> list[Consumer]:
        """The Flux Kustomizations (and raw_paths entries) whose build includes `path`,
        through any chain of kustomization files: their root consumer edges."""
        seen: set[str] = set()
        found: dict[Consumer, None] = {}
        stack = [path]
        while stack:
            current = stack.pop()
            for c in self.consumers.get(current, ()):
                if c.reader.is_flux_root:
                    found.setdefault(c, None)
                elif (
                    c.reader is Reader.KUSTOMIZATION_ENTRY
                    and c.source not in seen
                    and posixpath.basename(c.source) in KUSTOMIZATION_FILES
                ):
                    seen.add(c.source)
                    stack.append(c.source)
        return list(found)

    def flux_kustomizations_applying(self, path: str) -> list[FluxObject]:
        """The Flux Kustomization objects whose build includes `path`."""
        owners: dict[int, FluxObject] = {}
        for c in self.flux_consumers_reaching(path):
            if c.owner is not None:
                owners.setdefault(id(c.owner), c.owner)
        return list(owners.values())

    def flux_kustomizations_reaching(self, path: str) -> list[str]:
        """Names of the Flux Kustomizations whose build includes `path`, for messages."""
        return list(
            dict.fromkeys(
                c.description for c in self.flux_consumers_reaching(path) if c.owner is not None
            )
        )

    # --- facts several rules share ----------------------------------------------------

    def raw_template_actions(self, path: str) -> list[templating.Action]:
        """The template actions that break a file read raw (at most one per line): a
        `{{` where YAML expects structure in a file that does not parse, or a Helm
        expression in a value that reaches the API server as text. The root cause of
        whatever else goes wrong on those lines, so every rule reads it from here."""
        # Per snapshot, not per blob: whether a file is read raw depends on the tree.
        cached = self._raw_actions.get(path)
        if cached is not None:
            return cached
        found: list[templating.Action] = []
        if self.raw_consumers(path):
            data = self.data(path)
            text = self.text(path) if data and templating.may_break(data) else None
            if text is not None:
                problem = self.problem(path)
                lines: set[int] = set()
                for action in templating.scan(text):
                    if action.line in lines:
                        continue
                    # A `{{` where YAML expects structure breaks parsing, unless the YAML
                    # is valid after all: then it is a quoted key or a multi-line string,
                    # and only its content matters.
                    if not (action.structural and problem is not None) and (
                        not action.helm_specific
                        or templating.is_payload(action.kind, action.api_version)
                        or templating.PAYLOAD_KEYS.intersection(action.key_path)
                    ):
                        continue
                    lines.add(action.line)
                    found.append(action)
        self._raw_actions[path] = found
        return found

    @cached_property
    def _raw_actions(self) -> dict[str, list[templating.Action]]:
        return {}

    def raw_template_lines(self, path: str) -> frozenset[int]:
        return frozenset(a.line for a in self.raw_template_actions(path))

    def describe(self, consumers: Iterable[Consumer]) -> str:
        return "; ".join(dict.fromkeys(c.description for c in consumers))
