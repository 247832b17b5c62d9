"""Helm template syntax in a file that is applied without Helm rendering it.

kustomize-controller, `kustomize build` and Helm's `crds/` directory read files as plain
YAML: a `{{ .Values.x }}` there is never rendered. Depending on where it stands, the
build fails (`yaml: line N: did not find expected key`, `invalid map key`) or, worse, the
API server receives the literal text: a Deployment whose image is
`{{ .Values.global.imageRegistry }}/app` gets Pods stuck in `InvalidImageName`.

The rule reports a template action when it

- stands where YAML expects structure: a line that is a template action
  (`{{- if .Values.enabled }}`, `{{ include "x" . | nindent 4 }}`), a key, or an
  unquoted value that starts with `{{`;
- or uses Helm's own objects and functions (`.Values`, `.Release`, `.Chart`,
  `.Capabilities`, `.Files`, `.Template`, `include`, `tpl`, `toYaml`, `required`,
  `nindent`...) in a field that the API server takes literally.

Go templates meant for someone else are left alone: text in block scalars (`|`, `>`),
annotations, ConfigMap and Secret data, ExternalSecret templates, Prometheus and
Alertmanager rules, HelmRelease `values` and kustomize `helmCharts` `valuesInline`
(charts may `tpl` them), generator `literals`, Kyverno policies (`{{ request.object }}`,
JMESPath functions such as `lookup`), Argo Workflows and Rollouts analysis templates,
Grafana operator and Flux image automation templates, GitHub workflow `${{ }}`
expressions. Unless they break the YAML: an unquoted
`summary: {{ $labels.pod }} is down` is a parse error whoever the template is for; the
finding then suggests quoting the value.

A file that is both a chart template and applied raw (for example a chart's `templates/`
directory that a Flux Kustomization also points at) is what this rule exists for: Helm
renders it correctly for one consumer while kustomize applies the raw copy for the other.
The message names both.

Fix: keep raw-applied paths free of templates (move the chart out of the Kustomization's
`spec.path`, or list only the raw manifests in its `kustomization.yaml`), or use Flux's
`${VAR}` post-build substitution, which kustomize-controller does apply.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from bot.analysis import templating
from bot.analysis.findings import Finding, Location, Severity
from bot.analysis.lines import split_lines
from bot.analysis.model import Consumer
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot

ID = "helm-template-in-raw-manifest"
SEVERITY = Severity.ERROR


def raw_description(repo: Snapshot, path: str, raw: list[Consumer]) -> str:
    text = repo.describe(raw)
    flux = [f for f in repo.flux_kustomizations_reaching(path) if f not in text]
    if flux:
        text += f", built by {'; '.join(flux)}"
    return text


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for path in repo.paths:
        actions = repo.raw_template_actions(path)
        if not actions:
            continue
        raw = repo.raw_consumers(path)
        helm = repo.template_consumers(path)
        raw_text = raw_description(repo, path, raw)
        problem = repo.problem(path)
        lines = split_lines(repo.text(path) or "")
        applier = _applier(repo, path, raw)
        # Both consumers in the message: the one that renders the file is why it looks
        # right to whoever wrote it.
        charts = list(dict.fromkeys(c.chart.name or "?" for c in helm if c.chart is not None))
        renders = f" and rendered by chart {charts[0]}" if charts else ""
        related = [Location(c.source, c.line, message=c.description) for c in (*raw, *helm)]
        chain = f"Read without rendering by {raw_text}."
        if helm:
            chain += (
                f" The file is also read by {repo.describe(helm)}; Helm renders that copy, "
                "but the raw copy breaks."
            )
        for action in actions:
            suggestion = None
            detail = chain
            if action.structural and problem is not None:
                effect = f"{_parser(raw)} cannot parse it, so {_failure(raw)}"
                detail = f"The file is not valid YAML until Helm renders it. {chain}"
                if not action.helm_specific and action.key is not None:
                    detail += (
                        " If the template is meant for another program, quote the value so "
                        "that it stays a string."
                    )
                    suggestion = _quoted(lines[action.line - 1], action)
            else:
                field = f"`{action.key}`" if action.key else "this field"
                effect = f"the API server gets the literal text in {field}"
            what = "Helm template" if action.helm_specific else "Template action"
            message = (
                f"{what} `{_short(action.expression)}` is applied raw by {applier}"
                f"{renders}: {effect}."
            )
            yield ctx.finding(
                ID,
                SEVERITY,
                path,
                action.line,
                message,
                suggestion=suggestion,
                related=related,
                detail=detail,
            )


def _applier(repo: Snapshot, path: str, raw: list[Consumer]) -> str:
    """Who applies the file raw, in a few words: the Flux Kustomization whose build reads
    it (the kustomization files between them are in the detail)."""
    labels = list(dict.fromkeys(str(k.label) for k in repo.build.appliers(path)))
    kind = "Flux Kustomization "
    if len(labels) == 2 and all(label.startswith(kind) for label in labels):
        return f"Flux Kustomizations {labels[0][len(kind) :]} and {labels[1][len(kind) :]}"
    if len(labels) > 1:
        return f"{labels[0]} and {len(labels) - 1} more"
    if labels:
        return labels[0]
    return "Helm" if _helm_crds_only(raw) else "kustomize"


def _helm_crds_only(raw: list[Consumer]) -> bool:
    return all(posixpath.basename(c.source) == "Chart.yaml" for c in raw)


def _parser(raw: list[Consumer]) -> str:
    return "Helm" if _helm_crds_only(raw) else "kustomize"


def _failure(raw: list[Consumer]) -> str:
    if _helm_crds_only(raw):
        return "installing the chart fails"
    return "the build fails"


_VALUE_LINE = re.compile(r"""^(\s*(?:-\s+)?[^\s#'"{][^:#]*?:[ \t]+)(\{\{[^"'\\#]*?)\s*$""")


def _quoted(line: str, action: templating.Action) -> str | None:
    """The line with its unquoted templated value in double quotes, when that is safe."""
    m = _VALUE_LINE.match(line.rstrip("\r\n"))
    if m is None or action.column != len(m.group(1)):
        return None
    return f'{m.group(1)}"{m.group(2)}"'


def _short(expression: str, limit: int = 40) -> str:
    return expression if len(expression) <= limit else expression[: limit - 1] + "…"
