"""Finding Helm template actions in YAML text without parsing it.

A raw manifest with `{{ }}` is usually fine: alert rules, ExternalSecret templates and
HelmRelease values all carry Go templates for someone else to render. What breaks is a
template action that makes the YAML invalid or structural (`{{- if }}` lines, keys,
unquoted values), or a Helm built-in (`.Values`, `include`...) in a field the API server
takes literally.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from bot.analysis import yamlscan as ys
from bot.analysis.lines import split_lines

HELM_REF = re.compile(
    r"\.(?:Values|Release|Chart|Capabilities|Files|Template)\b"
    r"|\b(?:include|tpl|toYaml|toJson|required|nindent|lookup)\b"
)
# Kinds whose string fields are payloads that another program renders or stores.
PAYLOAD_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "ExternalSecret",
        "ClusterExternalSecret",
        "PushSecret",
        "PrometheusRule",
        "Alertmanager",
        "AlertmanagerConfig",
        "Probe",
        "HelmRelease",
        "CustomResourceDefinition",
        "HelmChart",
        "HelmChartConfig",
        "Application",
        "ApplicationSet",
        "GrafanaDashboard",
        "GrafanaAlertRuleGroup",
        "GrafanaContactPoint",
        "GrafanaNotificationTemplate",
        "Template",
        "VMRule",
        "VMAlertmanagerConfig",
        "ResourceSet",
        "ImageUpdateAutomation",
        "Composition",
        # Argo Workflows, Events and Rollouts analysis: `{{inputs.parameters.x}}`,
        # `{{=toJson(...)}}` expressions.
        "Workflow",
        "WorkflowTemplate",
        "ClusterWorkflowTemplate",
        "CronWorkflow",
        "Sensor",
        "EventSource",
        "AnalysisTemplate",
        "ClusterAnalysisTemplate",
    }
)
# API groups whose objects carry templates for their own controller: Kyverno policies
# (`{{ request.object... }}`, JMESPath functions such as `lookup`), External Secrets,
# the Grafana operator, Flux Operator, Flux image automation, Crossplane, Gatekeeper.
PAYLOAD_GROUPS = (
    "kyverno.io",
    "external-secrets.io",
    "grafana.integreatly.org",
    "fluxcd.controlplane.io",
    "image.toolkit.fluxcd.io",
    "crossplane.io",
    "gatekeeper.sh",
)
PAYLOAD_KEYS = frozenset(
    {
        "annotations",
        "values",
        "valuesContent",
        "valuesInline",  # kustomize helmCharts
        "valuesObject",  # Argo CD
        "data",
        "stringData",
        "literals",  # kustomize configMapGenerator / secretGenerator
    }
)


def is_payload(kind: str | None, api_version: str | None) -> bool:
    """Whether a document's strings are payloads rendered or stored by someone else."""
    if kind in PAYLOAD_KINDS:
        return True
    group = (api_version or "").partition("/")[0] if "/" in (api_version or "") else ""
    return group.endswith(PAYLOAD_GROUPS)


_BLOCK_START = re.compile(r"(?:^|[\s:-])[|>][0-9+-]*\s*$")
_KEY = re.compile(r"""^(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s:#'"{}\[\],][^:#]*?)\s*:(?=\s|$)""")


@dataclass(frozen=True, slots=True)
class Action:
    line: int  # 1-based
    column: int  # 0-based, of the `{{`
    expression: str  # the `{{ ... }}` text
    structural: bool  # the action stands where YAML expects structure
    key: str | None  # the mapping key of the line, when there is one
    key_path: tuple[str, ...]  # enclosing keys, outermost first
    kind: str | None  # kind of the enclosing document
    api_version: str | None = None  # apiVersion of the enclosing document

    @property
    def helm_specific(self) -> bool:
        return bool(HELM_REF.search(self.expression))


def _strip_comment(line: str) -> str:
    if "#" not in line:
        return line  # most lines: nothing to find, and quotes only matter for a `#`
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (i == 0 or line[i - 1] in " \t:-[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def comment_start(line: str) -> int:
    """Column where a line's YAML comment starts; len(line) when it has none."""
    return len(_strip_comment(line))


def _content_start(line: str) -> tuple[int, bool]:
    """Column where a line's node starts after indentation and `- ` markers, and
    whether it stood after at least one `- `."""
    i = 0
    dashed = False
    n = len(line)
    while i < n:
        if line[i] == " ":
            i += 1
        elif line[i] == "-" and (i + 1 == n or line[i + 1] in " \t"):
            dashed = True
            i += 1
        else:
            break
    return i, dashed


_MAY_BREAK = re.compile(
    rb"^[ \t-]*\{\{"  # a line that is a template action
    rb"|:[ \t]+\{\{"  # an unquoted value that starts with one
    rb"|\}\}[^\n'\"]*:(?:[ \t]|\r?$)"  # a templated key
    rb"|\.(?:Values|Release|Chart|Capabilities|Files|Template)\b"
    rb"|\b(?:include|tpl|toYaml|toJson|required|nindent|lookup)\b",
    re.M,
)


def may_break(data: bytes) -> bool:
    """Cheap test on the raw bytes: can any `{{` of this file be one that `scan` keeps?"""
    return b"{{" in data and _MAY_BREAK.search(data) is not None


def scan(text: str) -> Iterator[Action]:
    """Every `{{` template action outside comments and block scalars."""
    if "{{" not in text:
        return
    kinds: list[tuple[int, str | None, str | None]] = [
        (d.start_line, d.kind, d.api_version) for d in ys.split_documents(text)
    ]
    block_indent: int | None = None
    keys: list[tuple[int, str]] = []
    doc_index = 0
    for number, raw in enumerate(split_lines(text), start=1):
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip(" "))
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue
            block_indent = None
        if stripped.startswith(("---", "...")) and indent == 0:
            keys = []
            continue
        if not stripped or stripped.startswith("#"):
            continue
        line = _strip_comment(raw)
        start, dashed = _content_start(line)
        body = line[start:]
        key_match = _KEY.match(body)
        key = key_match.group(0)[:-1].strip().strip("\"'") if key_match else None
        if key is not None:
            while keys and keys[-1][0] >= start:
                keys.pop()
            path = tuple(k for _, k in keys)
            keys.append((start, key))
        else:
            while keys and keys[-1][0] >= start:
                keys.pop()
            path = tuple(k for _, k in keys)
        if _BLOCK_START.search(line.rstrip()):
            # Block content must be indented deeper than the node that owns it: the key,
            # or the `-` of a sequence item.
            if key is not None:
                block_indent = start
            elif dashed:
                block_indent = line.rfind("-", 0, start)
            else:
                block_indent = indent
        if "{{" not in line:
            continue
        while doc_index + 1 < len(kinds) and kinds[doc_index + 1][0] <= number:
            doc_index += 1
        kind = kinds[doc_index][1] if kinds else None
        api_version = kinds[doc_index][2] if kinds else None
        pos = line.find("{{")
        while pos != -1:
            if pos > 0 and line[pos - 1] == "$":
                pos = line.find("{{", pos + 2)
                continue
            end = line.find("}}", pos)
            expression = line[pos : end + 2] if end != -1 else line[pos:].rstrip()
            # At the start of the node, inside the key, or the first thing of a value.
            structural = pos == start or (
                key_match is not None
                and (
                    pos < start + key_match.end()
                    or body[key_match.end() :].lstrip().startswith("{{")
                )
            )
            yield Action(number, pos, expression.strip(), structural, key, path, kind, api_version)
            pos = line.find("{{", (end + 2) if end != -1 else len(line))


def mask(text: str, lines: Collection[int]) -> str:
    """The text with the template actions of `lines` neutralised, to see whether the
    file has a YAML problem of its own."""
    out = []
    for number, line in enumerate(split_lines(text, keepends=True), start=1):
        if number in lines:
            start, _ = _content_start(line)
            if line[start:].startswith("{{"):
                line = line[:start] + "#" + line[start:]
            else:
                line = re.sub(r"\{\{.*?(\}\}|$)", lambda m: "x" * len(m.group(0)), line)
        out.append(line)
    return "".join(out)
