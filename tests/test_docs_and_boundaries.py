"""Project-level promises: the rules' documentation is current, the analysis is pure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from bot.analysis.rules import RULES
from bot.report.rules_doc import render

ROOT = Path(__file__).resolve().parent.parent


def test_rules_doc_is_in_sync_with_the_rules() -> None:
    current = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert current == render(), "run: python scripts/gen_rules_doc.py"


def test_every_design_rule_id_has_one_module_and_documentation() -> None:
    design_ids = {
        "helm-template-in-raw-manifest", "chart-version-mismatch", "chart-not-bumped",
        "kustomize-missing-resource", "kustomize-unlisted-manifest", "dangling-reference",
        "invalid-image-reference", "kustomization-in-chart-templates", "yaml-syntax-error",
    }
    assert design_ids <= set(RULES)
    for rule_id, info in RULES.items():
        module = ROOT / "bot" / "analysis" / "rules" / (rule_id.replace("-", "_") + ".py")
        assert module.exists(), rule_id
        assert len(info.doc.split()) > 30, f"{rule_id} needs real documentation"


def test_analysis_imports_no_network_or_github_code() -> None:
    forbidden = {"aiohttp", "gidgethub", "requests", "urllib.request", "http.client", "socket",
                 "bot.github", "bot.server", "bot.review", "bot.queue"}
    for path in (ROOT / "bot" / "analysis").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), (
                    f"{path.relative_to(ROOT)} imports {name}")
    code = ("import sys, bot.analysis, bot.analysis.rules; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'aiohttp', 'gidgethub'} or m.startswith(('bot.github', 'bot.server'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
