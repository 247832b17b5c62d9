"""The rules, discovered: every module of this package that defines `ID` is one rule
(see `base` for the contract). A module's docstring is its user documentation, rendered
into docs/rules.md and the README's rule table."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType

from bot.analysis.findings import Finding, Severity
from bot.analysis.rules.base import ChangeContext, Context, Scope

_NOT_RULES = {"base"}


@dataclass(frozen=True)
class RuleInfo:
    id: str
    default_severity: Severity
    summary: str
    doc: str
    check: Callable[[Context], Iterable[Finding]] | None
    check_change: Callable[[ChangeContext], Iterable[Finding]] | None
    # Its findings are about files nothing applies (an unlisted manifest): they keep
    # their severity where the engine makes other errors in such files notices.
    about_unapplied_files: bool = False

    @property
    def scopes(self) -> frozenset[Scope]:
        return frozenset(
            scope
            for scope, fn in ((Scope.SNAPSHOT, self.check), (Scope.CHANGE, self.check_change))
            if fn is not None
        )


def _info(module: ModuleType) -> RuleInfo:
    doc = inspect.cleandoc(module.__doc__ or "")
    info = RuleInfo(
        id=module.ID,
        default_severity=module.SEVERITY,
        summary=" ".join(doc.split("\n\n", 1)[0].split()) if doc else module.ID,
        doc=doc,
        check=getattr(module, "check", None),
        check_change=getattr(module, "check_change", None),
        about_unapplied_files=bool(getattr(module, "ABOUT_UNAPPLIED_FILES", False)),
    )
    expected = module.__name__.rsplit(".", 1)[1].replace("_", "-")
    if info.id != expected or not info.scopes:
        raise TypeError(
            f"{module.__name__}: a rule module is named after its ID ({expected!r}) and "
            "defines check() and/or check_change()"
        )
    return info


def _discover() -> dict[str, RuleInfo]:
    rules: dict[str, RuleInfo] = {}
    for entry in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if entry.name in _NOT_RULES or entry.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{entry.name}")
        if hasattr(module, "ID"):
            info = _info(module)
            rules[info.id] = info
    return rules


RULES: dict[str, RuleInfo] = _discover()
