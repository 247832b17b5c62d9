"""Sessions for working on flux-review: `nox -s tests`, `nox -s lint`, `nox -s docs`.

`pip install -e '.[dev]'` brings nox; `nox -R` reuses the sessions' environments. CI runs
README's test command (`.ci/run`), which the `tests` session runs too.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "docs", "tests"]
nox.options.default_venv_backend = "venv"

LINTED = ("bot", "tests", "bench", "examples", "scripts")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite; extra arguments go to pytest (`nox -s tests -- -m 'not slow'`)."""
    session.install("-e", ".[test,helm]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (format and check) and mypy, as tests/test_lint.py runs them."""
    session.install("-e", ".[test,helm]")
    session.run("ruff", "format", "--check", *LINTED)
    session.run("ruff", "check", *LINTED)
    session.run("mypy", "--strict", "bot")
    # The rest under pyproject.toml's settings: tests may go unannotated.
    session.run("mypy", "tests", "bench", "examples", "scripts", "noxfile.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Regenerate docs/rules.md from the rules' docstrings; fails when it was stale."""
    session.install("-e", ".")
    session.run("python", "scripts/gen_rules_doc.py")
    session.run("git", "diff", "--exit-code", "--", "docs/rules.md", external=True)
