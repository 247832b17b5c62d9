"""The Flux objects of one commit."""

from __future__ import annotations

import re
from functools import cached_property

from bot.analysis import yamlscan as ys
from bot.analysis.model import (
    FLUX_GROUPS,
    FluxObject,
)
from bot.analysis.snapshot.charts import ChartsIndex
from bot.analysis.snapshot.files import FilesIndex
from bot.analysis.snapshot.kustomize import KustomizeIndex


class FluxIndex:
    """Flux objects (Kustomizations, HelmReleases, sources...) with the line of their name."""

    def __init__(self, files: FilesIndex, charts: ChartsIndex, kustomize: KustomizeIndex) -> None:
        self.files = files
        self.charts = charts
        self.kustomize = kustomize

    # --- Flux objects ------------------------------------------------------------

    @cached_property
    def _listed_json(self) -> frozenset[str]:
        """JSON files that a kustomization lists as resources: kustomize reads them like
        YAML, while Flux's generated kustomization.yaml never picks up a `.json` file."""
        return frozenset(
            e.target
            for k in self.kustomize.kustomizations.values()
            for e in k.entries
            if e.target and e.field == "resources" and e.target.endswith(".json")
        )

    def _may_hold_objects(self, path: str) -> bool:
        if not (path.endswith((".yaml", ".yml", ".YAML", ".YML"))) and (
            path not in self._listed_json
        ):
            return False
        role = self.charts.chart_role(path)
        return role is None or role[1] != "templates"

    @cached_property
    def flux_objects(self) -> list[FluxObject]:
        objects = []
        for path in self.files.paths:
            if self._may_hold_objects(path):
                objects.extend(self.files.of_file("flux-objects", path, self._objects_in))
        return objects

    def _objects_in(self, path: str) -> list[FluxObject]:
        objects: list[FluxObject] = []
        data = self.files.data(path)
        if not data or b"toolkit.fluxcd.io" not in data:
            return objects
        for doc in self.files.documents(path):
            api = ys.scalar(ys.get(doc, "apiVersion")) or ""
            group, _, version = api.partition("/")
            if group not in FLUX_GROUPS:
                continue
            kind = ys.scalar(ys.get(doc, "kind"))
            name_node = ys.get(doc, "metadata", "name")
            name = ys.scalar(name_node)
            if not kind or not name or name_node is None:
                continue
            objects.append(
                FluxObject(
                    kind=kind,
                    group=group,
                    version=version,
                    name=name,
                    namespace=ys.scalar(ys.get(doc, "metadata", "namespace")),
                    path=path,
                    line=ys.line_of(name_node),
                    node=doc,
                )
            )
        return objects

    def objects_of(self, kind: str) -> list[FluxObject]:
        return self._objects_by_kind.get(kind, [])

    @cached_property
    def _objects_by_kind(self) -> dict[str, list[FluxObject]]:
        by_kind: dict[str, list[FluxObject]] = {}
        for obj in self.flux_objects:
            by_kind.setdefault(obj.kind, []).append(obj)
        return by_kind

    @cached_property
    def templated_kinds(self) -> set[str]:
        """Flux kinds that some chart template creates: their names are not knowable."""
        return set(self.templated_kind_paths)

    @cached_property
    def templated_kind_paths(self) -> dict[str, set[str]]:
        """The same, each with the templates that create it (a template whose renders
        are all known says which names it makes)."""
        kinds: dict[str, set[str]] = {}
        for path in self.files.paths:
            role = self.charts.chart_role(path)
            if role is None or role[1] != "templates":
                continue
            data = self.files.data(path)
            if not data or b"toolkit.fluxcd.io" not in data:
                continue
            text = ys.decode(data) or ""
            for m in re.finditer(r"^\s*kind:\s*['\"]?(\w+)", text, re.M):
                kinds.setdefault(m.group(1), set()).add(path)
        return kinds

    @cached_property
    def generated_objects(self) -> tuple[set[tuple[str, str]], set[str]]:
        """Objects that a Flux Operator `ResourceSet` creates in the cluster: (kind, name)
        of those with a literal name, and the kinds of those whose name is a template
        (`<< inputs.name >>`) or that come from `resourcesTemplate`."""
        named: set[tuple[str, str]] = set()
        templated: set[str] = set()
        for path in self.files.paths:
            if not path.endswith((".yaml", ".yml")):
                continue
            data = self.files.data(path)
            if not data or b"ResourceSet" not in data:
                continue
            for doc in self.files.documents(path):
                if ys.scalar(ys.get(doc, "kind")) != "ResourceSet":
                    continue
                for item in ys.items(ys.get(doc, "spec", "resources")):
                    kind = ys.scalar(ys.get(item, "kind"))
                    name = ys.scalar(ys.get(item, "metadata", "name"))
                    if not kind:
                        continue
                    if name and "<<" not in name:
                        named.add((kind, name))
                    else:
                        templated.add(kind)
                template = ys.scalar(ys.get(doc, "spec", "resourcesTemplate")) or ""
                templated.update(re.findall(r"^\s*kind:\s*['\"]?(\w+)", template, re.M))
        return named, templated
