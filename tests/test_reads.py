"""What the analysis says it reads is all it needs: every repository of the rule tests
and the scenarios, read through a sparse tree that holds only the files `is_read`
accepts (what the App downloads when it falls back to GitHub's Git database API), gives
the same findings as the whole tree."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bot.analysis import Config, DictTree, Finding, analyze, is_read
from bot.github.gitdata import SparseTree
from tests import analysis_helpers as helpers

Files = Mapping[str, str | bytes]
Case = tuple[Files, Files | None, Config | str | None]

TESTS = Path(__file__).parent
_OTHERS = (
    "test_precision",
    "test_consumers",
    "test_introduced",
    "test_line_breaks",
    "test_suppression",
    "test_config",
    "test_scenarios",
)
MODULES = sorted(
    p.stem for p in TESTS.glob("test_*.py") if p.stem.startswith("test_rule_") or p.stem in _OTHERS
)


class _Recorded(Exception):
    """Stops a scenario once its repositories are known: the CLI run is not needed."""


def _param_sets(func: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    marks = [m for m in getattr(func, "pytestmark", []) if m.name == "parametrize"]
    choices = []
    for mark in marks:
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        rows = []
        for value in mark.args[1]:
            values = value.values if hasattr(value, "values") and hasattr(value, "marks") else value
            rows.append(dict(zip(names, values if len(names) > 1 else (values,), strict=True)))
        choices.append(rows)
    for combo in itertools.product(*choices):
        merged: dict[str, Any] = {}
        for part in combo:
            merged.update(part)
        yield merged


def _cases(module: ModuleType, tmp: Path) -> list[Case]:
    cases: list[Case] = []
    patched: dict[str, Any] = {}

    def recording(real: Callable[..., Any]) -> Callable[..., Any]:
        def record(
            head: Files, base: Files | None = None, config: Any = None, report_all: bool = False
        ) -> Any:
            cases.append((dict(head), dict(base) if base is not None else None, config))
            return real(head, base, config, report_all)

        return record

    def record_analyze(head: Any, base: Any = None, *args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("config", args[1] if len(args) > 1 else None)
        if isinstance(head, DictTree) and (base is None or isinstance(base, DictTree)):
            cases.append((_files(head), _files(base) if base is not None else None, config))
        return analyze(head, base, *args, **kwargs)

    if getattr(module, "analyze", None) is analyze:
        patched["analyze"] = record_analyze
    for name in ("run", "analyze_files"):
        if getattr(module, name, None) is getattr(helpers, name):
            patched[name] = recording(getattr(helpers, name))
    if module.__name__.endswith("test_scenarios"):
        patched["scenario"] = _scenario_recorder(module, cases)
        cases.append((module.platform(), None, None))
    saved = {name: getattr(module, name) for name in patched}
    try:
        for name, fake in patched.items():
            setattr(module, name, fake)
        for number, (name, func) in enumerate(sorted(vars(module).items())):
            if not name.startswith("test_") or not inspect.isfunction(func):
                continue
            wanted = set(inspect.signature(func).parameters)
            for index, params in enumerate(_param_sets(func)):
                if not wanted <= set(params) | {"tmp_path"}:
                    continue
                if "tmp_path" in wanted:
                    params = {**params, "tmp_path": tmp / f"{number}-{index}"}
                    params["tmp_path"].mkdir(parents=True)
                # The test's own assertions do not matter here, only the repositories.
                with contextlib.suppress(Exception, pytest.skip.Exception, pytest.fail.Exception):
                    func(**{k: v for k, v in params.items() if k in wanted})
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
    return cases


def _scenario_recorder(module: ModuleType, cases: list[Case]) -> Callable[..., Any]:
    def scenario(
        tmp_path: Path,
        change: Any = None,
        *,
        renames: Any = (),
        before: Any = None,
        extra_args: Any = (),
    ) -> Any:
        files = module.platform()
        module._apply(files, before or {})
        base = dict(files)
        for old, new in renames:
            for path in [p for p in files if p == old or p.startswith(old + "/")]:
                files[new + path[len(old) :]] = files.pop(path)
        module._apply(files, change or {})
        cases.append((files, base, None))
        raise _Recorded

    return scenario


def _files(tree: DictTree) -> dict[str, bytes]:
    return {p: tree.read(p) or b"" for p in tree.paths()}


def _sparse(files: Files) -> SparseTree:
    full = helpers.tree(files)
    ids = {p: full.blob_id(p) or "" for p in full.paths()}
    return SparseTree({p: full.read(p) or b"" for p in full.paths() if is_read(p)}, ids)


def _findings(head: Any, base: Any, config: Config | str | None) -> list[tuple[Finding, str]]:
    cfg = helpers.config_from(config) if isinstance(config, str) else config
    result = analyze(head, base, config=cfg, report_all=True)
    assert not result.errors, result.errors
    return [(f, f.anchor) for f in result.findings]


@pytest.mark.parametrize("module_name", MODULES)
def test_the_sparse_tree_gives_the_same_findings(module_name: str, tmp_path: Path) -> None:
    module = importlib.import_module(f"tests.{module_name}")
    cases = _cases(module, tmp_path)
    assert len(cases) >= 3, "no repositories were recorded"
    differ = []
    for head, base, config in cases:
        full = _findings(helpers.tree(head), helpers.tree(base) if base else None, config)
        sparse = _findings(_sparse(head), _sparse(base) if base else None, config)
        if full != sparse:
            differ.append(
                {
                    "files": sorted(p for p in head if not is_read(p)),
                    "only_full": [f for f in full if f not in sparse],
                    "only_sparse": [f for f in sparse if f not in full],
                }
            )
    assert differ == [], f"{len(differ)} of {len(cases)} repositories differ"


@pytest.mark.parametrize(
    ("path", "read"),
    [
        ("apps/podinfo/deployment.yaml", True),
        ("apps/podinfo/Deployment.YML", True),
        ("apps/podinfo/kustomization.yaml", True),
        ("apps/podinfo/Kustomization", True),
        ("apps/podinfo/configmap.json", True),
        (".gitmodules", True),
        ("apps/.gitignore", True),
        (".sourceignore", True),
        ("charts/podinfo/.helmignore", True),
        ("charts/podinfo/templates/_helpers.tpl", True),
        ("charts/podinfo/templates/NOTES.txt", True),
        ("charts/podinfo/crds/crd.json", True),
        (".github/flux-review.yml", True),
        ("README.md", False),
        ("charts/podinfo/README.md", False),
        ("scripts/deploy.sh", False),
        ("docs/logo.png", False),
        ("templates.md", False),
    ],
)
def test_which_paths_the_analysis_reads(path: str, read: bool) -> None:
    assert is_read(path) is read
