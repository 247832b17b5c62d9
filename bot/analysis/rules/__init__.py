"""The rules: one module each, named after its id. A module's docstring is its user
documentation (rendered into docs/rules.md); `check` maps the repository to findings."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from bot.analysis.findings import Finding, Severity
from bot.analysis.rules import (
    chart_not_bumped,
    chart_version_mismatch,
    dangling_reference,
    flux_schema,
    helm_template_in_raw_manifest,
    invalid_image_reference,
    invalid_suppression,
    kustomization_in_chart_templates,
    kustomize_missing_resource,
    kustomize_unlisted_manifest,
    yaml_syntax_error,
)
from bot.analysis.rules.base import Context


@dataclass(frozen=True)
class RuleInfo:
    id: str
    default_severity: Severity
    summary: str
    doc: str
    check: Callable[[Context], Iterable[Finding]]


def _info(module: ModuleType) -> RuleInfo:
    doc = inspect.cleandoc(module.__doc__ or "")
    return RuleInfo(
        id=module.ID,
        default_severity=module.SEVERITY,
        summary=" ".join(doc.split("\n\n", 1)[0].split()) if doc else module.ID,
        doc=doc,
        check=module.check,
    )


RULES: dict[str, RuleInfo] = {
    info.id: info
    for info in map(
        _info,
        (
            helm_template_in_raw_manifest,
            chart_version_mismatch,
            chart_not_bumped,
            kustomize_missing_resource,
            kustomize_unlisted_manifest,
            dangling_reference,
            invalid_image_reference,
            kustomization_in_chart_templates,
            yaml_syntax_error,
            invalid_suppression,
            flux_schema,
        ),
    )
}
