import os

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


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.helm_support import SKIP_REASON

    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if SKIP_REASON in str(getattr(report, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} Helm rendering tests skipped: {SKIP_REASON}", yellow=True
        )
