"""A `# flux-review: ignore` comment without a rule id or a reason.

A finding is silenced by a comment on its line or on the line above:

    # flux-review: ignore helm-template-in-raw-manifest -- rendered by our CI before apply

The rule id and the reason after `--` are both required, so that whoever reads the file
later knows why the check was switched off. A suppression without them silences nothing
and is reported here.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.analysis.findings import Finding, Severity
from bot.analysis.rules.base import Context
from bot.analysis.suppress import suppressions

ID = "invalid-suppression"
SEVERITY = Severity.NOTICE


def check(ctx: Context) -> Iterator[Finding]:
    repo = ctx.repo
    for path in repo.paths:
        data = repo.data(path) if path.endswith((".yaml", ".yml", "Kustomization")) else None
        if not data or b"flux-review:" not in data:
            continue
        for s in suppressions(repo.text(path) or "", ctx.rule_ids):
            if s.error:
                yield ctx.finding(ID, SEVERITY, path, s.line, s.error)
