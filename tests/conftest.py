import os
from collections import Counter
from typing import Any

from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

pytest_plugins = ["tests.fakegithub.fixtures", "tests.redis_server"]

# The suite's runs are reproducible: the same examples every time, so a red CI run means
# the change broke something. `HYPOTHESIS_PROFILE=explore` searches afresh, at length.
settings.register_profile("default", derandomize=True, database=None)
settings.register_profile(
    "explore",
    max_examples=2000,
    derandomize=False,
    # A failure found there is replayed first on the next explore run.
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# What a skipped suite needs, by the words of its skip reason: a run on a machine without
# them passes, so its last lines must say what it did not test.
_NEEDS = (
    ("redis-server", "install redis-server, or set REDIS_URL"),
    ("kubectl", "install kubectl"),
    ("helm-python-sdk", "pip install '.[test,helm]'"),
    ("pre-commit", "pip install '.[test]'"),
    ("ruff", "pip install '.[test]'"),
    ("mypy", "pip install '.[test]'"),
)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Name the suites a run skipped (and the `slow` tests `-m 'not slow'` left out) just
    above the final counts, without `-rs`: a green run that did not test the shared queue
    or the kustomize comparison must not look like one that did."""
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        reasons[str(reason).removeprefix("Skipped: ")] += 1
    deselected = terminalreporter.stats.get("deselected", [])
    slow = sum(1 for item in deselected if item.get_closest_marker("slow") is not None)
    if not reasons and not slow:
        return
    terminalreporter.section("not tested in this run", sep="-")
    for reason, count in sorted(reasons.items(), key=lambda rc: (-rc[1], rc[0])):
        hint = next((h for word, h in _NEEDS if word in reason), "")
        terminalreporter.write_line(
            f"{count} skipped: {reason or 'no reason given'}" + (f" ({hint})" if hint else "")
        )
    if slow:
        terminalreporter.write_line(
            f"{slow} slow test(s) deselected: the Action and the pre-commit hook, installed "
            "with pip (run them with -m slow)"
        )
