"""A file that a controller must parse is not valid YAML.

Checked for every file that is read as YAML by some controller: manifests that a Flux
Kustomization or a `kustomization.yaml` applies, `kustomization.yaml` files themselves,
a chart's `Chart.yaml`, `values.yaml` and `crds/`. One bad file fails the whole Flux
Kustomization (`failed to decode Kubernetes YAML from <path>`), so the finding points at
the line the parser stopped at; for a quoted value, a flow collection (`[...`, `{...`) or
a key that is never closed, at the line where it starts (the parser only gives up at the
end of the file or on a later line).

Beyond syntax errors the rule reports what Kubernetes' YAML decoder (go-yaml v3) refuses
although plain YAML parsers accept it: duplicate mapping keys (the message names the
line of the first definition), alias bombs ("excessive aliasing"), nesting deeper than
10,000 levels, and text that is not UTF-8 (or UTF-16 with a byte-order mark). A chart's
`values.yaml` or `Chart.yaml` that only Helm reads may hold a key twice: Helm keeps the
last value without failing, which `duplicate-key` reports as a warning. A manifest
applied raw whose documents lack `apiVersion`, `kind` or `metadata.name` is reported
too: kustomize-controller fails with
`failed to decode Kubernetes apiVersion, kind and name`.

Chart `templates/` are not checked: they are not YAML until Helm renders them. When the
error comes from a Helm template action it is reported once, as
`helm-template-in-raw-manifest`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from bot.analysis import templating
from bot.analysis import yamlscan as ys
from bot.analysis.findings import Finding, Severity
from bot.analysis.model import KUSTOMIZATION_FILES, SCAFFOLD_SYNTAX, ReadKind
from bot.analysis.rules.base import Context
from bot.analysis.snapshot import Snapshot

ID = "yaml-syntax-error"
SEVERITY = Severity.ERROR
HELM = "Helm"


def parsed_paths(ctx: Context) -> Iterator[tuple[str, str, bool]]:
    """(path, who parses it, whether its documents must be Kubernetes objects)."""
    repo = ctx.repo
    for path in repo.paths:
        base = posixpath.basename(path)
        consumers = repo.consumers.get(path, ())
        raw = [c for c in consumers if c.how is ReadKind.RAW]
        if base in KUSTOMIZATION_FILES:
            role = repo.chart_role(path)
            if role is not None and role[1] == "templates" and not raw:
                # A chart template that happens to be named kustomization.yaml (see
                # kustomization-in-chart-templates): only Helm reads it, rendered.
                continue
            if not consumers and _scaffold_template(repo, path):
                # Nothing in the repository builds it, and it holds Jinja or Go template
                # syntax: the input of a scaffolding tool, not a kustomization yet.
                continue
            yield path, "kustomize", False
        elif (
            base in ("Chart.yaml", "values.yaml")
            and not raw
            and any(
                c.path == posixpath.join(posixpath.dirname(path), "Chart.yaml") for c in repo.charts
            )
        ):
            yield path, HELM, False
        elif raw:
            # Also a chart's Chart.yaml or values.yaml under a Flux Kustomization's
            # spec.path: Flux applies them as manifests, which they are not.
            objects = any(c.reader.is_flux_root or _is_resource(ctx, path, c.source) for c in raw)
            yield path, repo.describe(raw), objects


def _scaffold_template(repo: Snapshot, path: str) -> bool:
    data = repo.data(path)
    return bool(data) and SCAFFOLD_SYNTAX.search(repo.text(path) or "") is not None


def _is_resource(ctx: Context, path: str, kfile: str) -> bool:
    k = ctx.repo.kustomizations.get(kfile)
    return k is not None and any(
        e.target == path and e.field in ("resources", "bases") for e in k.entries
    )


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for path, reader, objects in parsed_paths(ctx):
        problem = repo.problem(path)
        if problem is not None and problem.duplicate_of is not None and reader == HELM:
            # Helm reads values.yaml and Chart.yaml with non-strict sigs.k8s.io/yaml: the
            # last value wins and nothing fails (duplicate-key warns). What else the file
            # may hold still fails the release.
            data = repo.data(path)
            problem = ys.scan(data, duplicate_keys_allowed=True).problem if data else None
        if problem is not None:
            template_lines = repo.raw_template_lines(path)
            if template_lines:
                text = repo.text(path)
                if text is None:
                    continue
                problem = ys.check(templating.mask(text, template_lines))
                if problem is None:
                    continue
            yield ctx.finding(
                ID,
                SEVERITY,
                path,
                problem.line,
                f"{problem.message}; {_short(reader)} cannot read this file.",
                detail=f"Read by {reader}.",
            )
            continue
        if objects:
            yield from _not_objects(ctx, path, reader)


def _not_objects(ctx: Context, path: str, reader: str) -> Iterator[Finding]:
    for doc in ctx.repo.yaml_info(path).docs:
        if doc.root == "empty" or doc.empty_mapping:
            continue
        if doc.root != "mapping":
            yield ctx.finding(
                ID,
                SEVERITY,
                path,
                doc.line,
                f"this document is not a Kubernetes object; {_short(reader)} fails with "
                "`failed to decode Kubernetes YAML`.",
                detail=f"Applied as a manifest by {reader}.",
            )
            continue
        if doc.kind and doc.kind.endswith("List") and doc.has_items:
            continue
        missing = [
            k
            for k, present in (
                ("apiVersion", doc.api_version is not None),
                ("kind", doc.kind is not None),
                ("metadata.name", doc.has_name),
            )
            if not present
        ]
        if missing and not (missing == ["metadata.name"] and doc.has_generate_name):
            yield ctx.finding(
                ID,
                SEVERITY,
                path,
                doc.line,
                f"this document has no {', '.join(missing)}, so {_short(reader)} cannot decode "
                "it as a Kubernetes object.",
                detail=f"Applied as a manifest by {reader}.",
            )


def _short(reader: str) -> str:
    """The first reader of a file, without the file it is defined in: the message names
    who fails, the detail every reader and where."""
    first = reader.split("; ", 1)[0]
    return re.sub(r" \([^()]*\)", "", first)
