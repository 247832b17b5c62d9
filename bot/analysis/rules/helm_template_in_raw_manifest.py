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
Alertmanager rules, HelmRelease `values` (charts may `tpl` them), GitHub workflow
`${{ }}` expressions.

A file that is both a chart template and applied raw (for example a chart's `templates/`
directory that a Flux Kustomization also points at) is what this rule exists for: Helm
renders it correctly for one consumer while kustomize applies the raw copy for the other.
The message names both.

Fix: keep raw-applied paths free of templates (move the chart out of the Kustomization's
`spec.path`, or list only the raw manifests in its `kustomization.yaml`), or use Flux's
`${VAR}` post-build substitution, which kustomize-controller does apply.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis import templating
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import Consumer, Repository
from bot.analysis.rules.base import Context

ID = "helm-template-in-raw-manifest"
SEVERITY = Severity.ERROR


def raw_description(repo: Repository, path: str, raw: list[Consumer]) -> str:
    text = repo.describe(raw)
    flux = [f for f in repo.flux_kustomizations_reaching(path) if f not in text]
    if flux:
        text += f", built by {'; '.join(flux)}"
    return text


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for path in repo.paths:
        raw = repo.raw_consumers(path)
        if not raw:
            continue
        data = repo.data(path)
        if not data or b"{{" not in data:
            continue
        text = repo.text(path)
        if text is None:
            continue
        actions = list(templating.scan(text))
        if not actions:
            continue
        problem = repo.problem(path)
        complex_keys = (
            templating.complex_key_lines(repo.documents(path)) if problem is None else set()
        )
        helm = repo.template_consumers(path)
        raw_text = raw_description(repo, path, raw)
        reported: set[int] = set()
        for action in actions:
            if action.line in reported:
                continue
            if action.structural:
                # Valid YAML with a `{{` at a structural spot is a multi-line string,
                # unless it parsed as a mapping used as a key (`- {{ .x }}`).
                if problem is None and action.line not in complex_keys:
                    continue
                effect = (
                    "kustomize cannot parse the file (it is not valid YAML until Helm "
                    "renders it), so the whole build fails"
                )
            else:
                if not action.helm_specific or action.kind in templating.PAYLOAD_KINDS:
                    continue
                if templating.PAYLOAD_KEYS.intersection(action.key_path):
                    continue
                field = f"`{action.key}`" if action.key else "this field"
                effect = (
                    f"the API server receives the literal text in {field}, which "
                    "Helm was meant to fill in"
                )
            reported.add(action.line)
            message = (
                f"Helm template `{_short(action.expression)}` in a file applied without "
                f"rendering by {raw_text}: {effect}."
            )
            if helm:
                message += (
                    f" The file is also read by {repo.describe(helm)}; Helm renders "
                    "that copy, but the raw copy breaks."
                )
            ctx.template_lines.setdefault(path, set()).add(action.line)
            yield ctx.finding(ID, SEVERITY, path, action.line, message)


def _short(expression: str, limit: int = 80) -> str:
    return expression if len(expression) <= limit else expression[: limit - 1] + "…"
