"""docs/rules.md, rendered from the rules' own docstrings."""

from __future__ import annotations

from bot.analysis.rules import RULES


def render() -> str:
    out = [
        "# flux-review rules",
        "",
        "Generated from the rules' docstrings by `python scripts/gen_rules_doc.py`; do not "
        "edit by hand.",
        "",
        "Severities can be changed, or a rule switched `off`, in `.github/flux-review.yml`:",
        "",
        "```yaml",
        "rules:",
        "  kustomize-unlisted-manifest: error",
        "  chart-not-bumped: off",
        "```",
        "",
        "A single finding is silenced with a comment on its line or the line above:",
        "`# flux-review: ignore RULE-ID -- reason` (the reason is required).",
        "",
        "| rule | default severity | what it catches |",
        "|---|---|---|",
    ]
    for info in RULES.values():
        out.append(f"| [`{info.id}`](#{info.id}) | {info.default_severity.value} | "
                   f"{info.summary} |")
    for info in RULES.values():
        body = info.doc.split("\n\n", 1)[1].strip() if "\n\n" in info.doc else ""
        out += ["", f"## {info.id}", "", f"Default severity: **{info.default_severity.value}**.",
                "", info.summary]
        if body:
            out += ["", body]
    return "\n".join(out) + "\n"
