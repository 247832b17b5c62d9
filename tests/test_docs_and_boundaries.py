"""Project-level promises: the rules' documentation is current, the analysis is pure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from bot.analysis.rules import RULES
from bot.report.rules_doc import render, sync_readme

ROOT = Path(__file__).resolve().parent.parent


def test_rules_doc_is_in_sync_with_the_rules() -> None:
    current = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert current == render(), "run: python scripts/gen_rules_doc.py"


def test_readme_rules_table_is_in_sync_with_the_rules() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme == sync_readme(readme), "run: python scripts/gen_rules_doc.py"
    for rule_id in RULES:
        assert f"| `{rule_id}` |" in readme


def test_every_design_rule_id_has_one_module_and_documentation() -> None:
    design_ids = {
        "helm-template-in-raw-manifest",
        "chart-version-mismatch",
        "chart-not-bumped",
        "kustomize-missing-resource",
        "kustomize-unlisted-manifest",
        "dangling-reference",
        "invalid-image-reference",
        "kustomization-in-chart-templates",
        "yaml-syntax-error",
    }
    assert design_ids <= set(RULES)
    for rule_id, info in RULES.items():
        module = ROOT / "bot" / "analysis" / "rules" / (rule_id.replace("-", "_") + ".py")
        assert module.exists(), rule_id
        assert len(info.doc.split()) > 30, f"{rule_id} needs real documentation"


def test_analysis_imports_no_network_or_github_code() -> None:
    forbidden = {
        "aiohttp",
        "gidgethub",
        "requests",
        "urllib.request",
        "http.client",
        "socket",
        "bot.github",
        "bot.server",
        "bot.review",
        "bot.queue",
        # The Helm SDK renders in a child process, behind bot.analysis.rendering.Renderer.
        "bot.helm",
        "helm_python",
        "subprocess",
    }
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
                    f"{path.relative_to(ROOT)} imports {name}"
                )
    code = (
        "import sys, bot.analysis, bot.analysis.rules; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'aiohttp', 'gidgethub'} or m.startswith(('bot.github', 'bot.server'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_only_the_sdk_adapter_imports_the_helm_sdk() -> None:
    importers = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "helm_python" or n.startswith("helm_python.") for n in names):
                importers.add(path.relative_to(ROOT).as_posix())
    assert importers == {"bot/helm/sdk.py"}


def test_the_renderer_child_loads_nothing_of_the_analysis() -> None:
    # It starts whenever a renderer replaces a child that broke a limit: it should start
    # as fast as loading the SDK allows.
    code = (
        "import sys, bot.helm.child, bot.helm.wire; "
        "print(sorted(m for m in sys.modules if m.startswith('bot.analysis')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


# Imports in the analysis run one way: the snapshot (parsing, indexes, the change) <-
# the rules <- the registry <- the config <- the engine. A module may import its own
# layer and those to its left, never one to its right, not even inside a function.
_LAYERS = {"rules": 1, "registry": 2, "config": 3, "engine": 4}


def _layer(module: str) -> int:
    if module in ("bot.analysis", "bot.analysis.engine"):
        return _LAYERS["engine"]
    if module == "bot.analysis.config":
        return _LAYERS["config"]
    if module == "bot.analysis.rules":
        return _LAYERS["registry"]
    if module.startswith("bot.analysis.rules."):
        return _LAYERS["rules"]
    return 0


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                # `from bot.analysis import yamlscan` imports the module, not the package
                is_module = (ROOT / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    ROOT / Path(*sub.split(".")) / "__init__.py"
                ).exists()
                found.append(sub if is_module else node.module)
    return [name for name in found if name.startswith("bot.analysis")]


def test_analysis_imports_run_one_way() -> None:
    wrong = []
    for path in sorted((ROOT / "bot" / "analysis").rglob("*.py")):
        importer = _module_name(path)
        for imported in _imports(path):
            if _layer(imported) > _layer(importer):
                wrong.append(f"{importer} imports {imported}")
    assert wrong == []


def test_the_import_check_sees_an_upward_import() -> None:
    assert _layer("bot.analysis.model") < _layer("bot.analysis.rules.dangling_reference")
    assert _layer("bot.analysis.rules") > _layer("bot.analysis.rules.base")
    assert _layer("bot.analysis.config") > _layer("bot.analysis.rules")
    imports = _imports(ROOT / "bot" / "analysis" / "config.py")
    assert "bot.analysis.rules" in imports
