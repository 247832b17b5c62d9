"""The Helm charts of one commit, and which part of a chart each file is."""

from __future__ import annotations

import posixpath
from functools import cached_property

from bot.analysis import yamlscan as ys
from bot.analysis.ignorefiles import HelmIgnore
from bot.analysis.model import (
    Chart,
    ChartDependency,
)
from bot.analysis.snapshot.files import FilesIndex


class ChartsIndex:
    """Charts (`Chart.yaml` and its directory) and the role of each file in one."""

    def __init__(self, files: FilesIndex) -> None:
        self.files = files

    # --- charts ------------------------------------------------------------------

    @cached_property
    def charts(self) -> list[Chart]:
        charts = []
        for path in self.files.paths:
            if not path.endswith("Chart.yaml") or posixpath.basename(path) != "Chart.yaml":
                continue
            directory = posixpath.dirname(path)
            ignore_path = f"{directory}/.helmignore" if directory else ".helmignore"
            ignore_text = (
                self.files.text(ignore_path) if ignore_path in self.files.path_set else None
            )
            chart = Chart(directory, path, None, None, None, [], HelmIgnore(ignore_text or ""))
            docs = self.files.helm_documents(path)
            if docs:
                root = docs[0]
                chart.name = ys.scalar(ys.get(root, "name"))
                version = ys.get(root, "version")
                chart.version = ys.scalar(version)
                chart.version_line = ys.line_of(version) if version is not None else None
                for dep in ys.items(ys.get(root, "dependencies")):
                    name = ys.scalar(ys.get(dep, "name"))
                    if not name:
                        continue
                    vnode = ys.get(dep, "version")
                    chart.dependencies.append(
                        ChartDependency(
                            name=name,
                            version=ys.scalar(vnode),
                            version_line=ys.line_of(vnode) if vnode is not None else None,
                            repository=ys.scalar(ys.get(dep, "repository")),
                            line=ys.line_of(dep),
                            alias=ys.scalar(ys.get(dep, "alias")),
                        )
                    )
            charts.append(chart)
        # Deepest first, so that a subchart's files belong to the subchart.
        charts.sort(key=lambda c: -c.directory.count("/") - (1 if c.directory else 0))
        return charts

    @cached_property
    def _chart_dirs(self) -> dict[str, Chart]:
        return {c.directory: c for c in self.charts}

    def chart_of(self, path: str) -> Chart | None:
        """The innermost chart a file belongs to (a subchart's files are its own)."""
        charts = self._chart_dirs
        if not charts:
            return None
        directory = posixpath.dirname(path)
        while True:
            chart = charts.get(directory)
            if chart is not None:
                return chart
            if not directory:
                return None
            directory = posixpath.dirname(directory)

    def chart_role(self, path: str) -> tuple[Chart, str] | None:
        """(chart, "templates"|"crds") when Helm reads this file as part of a chart."""
        if not self.charts:
            return None
        roles = self._chart_roles
        if path not in roles:
            roles[path] = self._chart_role(path)
        return roles[path]

    @cached_property
    def _chart_roles(self) -> dict[str, tuple[Chart, str] | None]:
        return {}

    def _chart_role(self, path: str) -> tuple[Chart, str] | None:
        chart = self.chart_of(path)
        if chart is None:
            return None
        rel = chart.rel(path)
        top = rel.split("/", 1)[0]
        if top not in ("templates", "crds") or "/" not in rel:
            return None
        if chart.helmignore.ignored(rel):
            return None
        return chart, top
