"""What one review costs in GitHub API calls: GitHub's limits are per installation and
hour, and every call is latency before the check run completes."""

from __future__ import annotations

from typing import Any

from tests.fakegithub import GitRepo
from tests.test_app_e2e import App, incident_repo
from tests.test_app_e2e import app as app
from tests.test_app_e2e import log_guard as log_guard
from tests.test_app_e2e import start_app as start_app


def calls(app: App) -> list[str]:
    return [f"{r.method} {r.path}" for r in app.api_calls()]


def counted(app: App) -> list[str]:
    """The calls the budget counts: not the file list's pages nor the archives."""
    return [
        c
        for c in calls(app)
        if "/tarball" not in c and not c.endswith("/files") and "/_codeload" not in c
    ]


async def review(app: App, git_repo: GitRepo, **kwargs: Any) -> list[str]:
    incident_repo(git_repo, **kwargs)
    app.fake.add_pull("feature")
    response = await app.deliver("pull_request.opened")
    assert response.status == 202
    await app.idle()
    return calls(app)


async def test_a_pr_with_findings_costs_at_most_eight_calls_and_reads_the_pr_once(
    app: App, git_repo: GitRepo
) -> None:
    made = await review(app, git_repo, second_file=True)
    runs = app.runs()
    assert len(runs) == 1 and runs[0].conclusion == "failure"
    assert len(app.fake.comments_on(1)) == 2
    assert len(counted(app)) <= 8, "\n".join(made)
    assert sum(1 for c in made if c.startswith("GET") and c.endswith("/pulls/1")) == 1, made
