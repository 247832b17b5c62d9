"""A kustomize `kustomization.yaml` under a chart's `templates/`.

Helm renders every file in `templates/` (except `_` partials, `NOTES.txt` and what
`.helmignore` excludes) and installs the output as resources. A kustomize Kustomization
(`kustomize.config.k8s.io`) is not a cluster resource: the release fails with
`no matches for kind "Kustomization"`. It usually appears when someone makes a chart's
templates also buildable by kustomize, which is the raw-and-rendered trap
`helm-template-in-raw-manifest` describes.

Fix: add `templates/kustomization.yaml` to the chart's `.helmignore`, or move the
kustomize entry point out of the chart. A Flux `Kustomization` custom resource
(`kustomize.toolkit.fluxcd.io`) in templates is a real resource and is not reported.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import KUSTOMIZATION_FILES
from bot.analysis.rules.base import Context

ID = "kustomization-in-chart-templates"
SEVERITY = Severity.ERROR


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for path in repo.kustomizations:
        if posixpath.basename(path) not in KUSTOMIZATION_FILES:
            continue
        role = repo.chart_role(path)
        if role is None or role[1] != "templates":
            continue
        chart = role[0]
        docs = repo.documents(path)
        if docs:
            api = ys.scalar(ys.get(docs[0], "apiVersion"))
        else:
            # Not YAML until Helm renders it: a template, so read its apiVersion as text.
            api = next(
                (d.api_version for d in ys.split_documents(repo.text(path) or "") if d.api_version),
                None,
            )
        if api is not None and not api.startswith("kustomize.config.k8s.io"):
            continue
        line = 1
        if docs:
            kind_node = ys.get(docs[0], "kind")
            line = ys.line_of(kind_node) if kind_node is not None else ys.line_of(docs[0])
        ignore_path = f"{chart.directory}/.helmignore" if chart.directory else ".helmignore"
        yield ctx.finding(
            ID,
            SEVERITY,
            path,
            line,
            f"Helm renders this kustomize file as a resource of chart {chart.name}, and the "
            f"release fails; add `{chart.rel(path)}` to `{ignore_path}` or move it out of "
            "`templates/`.",
            detail=(
                f"Everything under the `templates/` of {chart.label} that `.helmignore` "
                "does not exclude is rendered and applied; the cluster has no kind "
                "Kustomization of kustomize.config.k8s.io."
            ),
        )
