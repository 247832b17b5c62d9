"""A pull request is reviewed against the commit it branched from, not the base branch's tip.

GitHub's "Files changed" and the PR files list compare the head with the merge base. When
the base branch moves on after the branch point (it fixes a problem the branch still has,
or gains one the branch never saw), only what the PR itself changed may be reported. The
merge base comes from GitHub's compare endpoint, which the fake answers from its git
repository with `git merge-base`.
"""

# ruff: noqa: F811

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.report.review import MARKER_PREFIX
from tests.fakegithub import FakeGitHub, GitRepo
from tests.fakegithub.fixtures import OWNER, REPO

# The end-to-end harness's fixtures (`app`, `start_app`, and the autouse `log_guard` that
# fails a test whose logs hold a secret); tests name them as parameters, hence F811 above.
from tests.test_app_e2e import (  # noqa: F401
    DEPLOYMENT,
    IMAGE_LINE,
    RULE,
    SYNC,
    TEMPLATED,
    App,
    Starter,
    app,
    deployment,
    flux_kustomization,
    incident_repo,
    log_guard,
    only,
    start_app,
)

WORKER = "apps/podinfo/worker.yaml"
CRON = "apps/podinfo/cron.yaml"
COMPARE = r"/compare/"
GOOD = "ghcr.io/stefanprodan/podinfo:6.5.0"


def cluster(git: GitRepo, *, podinfo: str, worker: str) -> None:
    """main: a Flux Kustomization applying apps/podinfo raw, with two Deployments."""
    git.commit(
        "cluster",
        {
            "clusters/prod/flux-system/gotk-sync.yaml": SYNC,
            "clusters/prod/apps.yaml": flux_kustomization("./apps/podinfo"),
            DEPLOYMENT: deployment(podinfo),
            WORKER: deployment(worker, "worker"),
        },
    )


def main_fixes_what_the_branch_still_has(git: GitRepo) -> str:
    """The branch is cut while podinfo's image is a Helm expression; the branch breaks the
    worker the same way; then main fixes podinfo. Returns the merge base."""
    cluster(git, podinfo=TEMPLATED, worker="ghcr.io/example/worker:1.0")
    branch_point = git.head()
    git.branch("feature")
    git.commit("template the worker too", {WORKER: deployment(TEMPLATED, "worker")})
    git.checkout("main")
    git.commit("fix podinfo's image", {DEPLOYMENT: deployment(GOOD)})
    return branch_point


def runs_of(app: App) -> list[Any]:
    return app.fake.check_runs_named("flux-review")


def annotated(run: Any) -> list[tuple[str, int]]:
    return sorted((a["path"], a["start_line"]) for a in run.annotations)


async def test_a_problem_main_fixed_after_the_branch_point_is_not_the_prs(
    app: App, git_repo: GitRepo
) -> None:
    merge_base = main_fixes_what_the_branch_still_has(git_repo)
    pr = app.fake.add_pull("feature")
    assert app.fake.base_sha(pr) != merge_base  # main moved on
    await app.deliver("pull_request.opened")
    await app.idle()

    run = only(runs_of(app))
    assert (run.status, run.conclusion, run.title) == ("completed", "failure", "1 error")
    # Only the worker, which the PR broke; podinfo is as broken as where the branch started.
    assert annotated(run) == [(WORKER, IMAGE_LINE)]
    assert DEPLOYMENT not in run.summary and "**Note:**" not in run.summary
    comment = only(app.fake.comments_on(pr.number))
    assert (comment.path, comment.line) == (WORKER, IMAGE_LINE)
    assert RULE in comment.body and MARKER_PREFIX in comment.body

    compare = only(app.fake.requests_to("GET", COMPARE))
    assert compare.path.endswith(f"/compare/{app.fake.base_sha(pr)}...{app.fake.head_sha(pr)}")
    assert compare.query == {"per_page": "1"}
    answer = only(app.fake.compare_answers)
    assert answer["merge_base_commit"]["sha"] == merge_base
    assert len(answer["commits"]) == 1 and answer["ahead_by"] == 1
    # The analysis read the merge base, not the base branch's tip.
    tarballs = {r.path.rsplit("/", 1)[1] for r in app.fake.requests_to("GET", r"/tarball/")}
    assert tarballs == {merge_base, app.fake.head_sha(pr)}


async def test_a_problem_main_gained_after_the_branch_point_is_not_the_prs(
    app: App, git_repo: GitRepo
) -> None:
    # The worker's templated image predates the branch (known, not this PR's business).
    cluster(git_repo, podinfo=GOOD, worker=TEMPLATED)
    git_repo.branch("feature")
    git_repo.commit("use the global registry", {DEPLOYMENT: deployment(TEMPLATED)})
    git_repo.checkout("main")
    # Main gains problems the PR never touches: a new broken file, and a broken Deployment
    # above the worker's, which moves the worker's old problem down the file.
    git_repo.commit(
        "add cron jobs",
        {
            CRON: deployment(TEMPLATED, "cron"),
            WORKER: "# jobs\n"
            + deployment(TEMPLATED, "sidecar")
            + "---\n"
            + deployment(TEMPLATED, "worker"),
        },
    )
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()

    run = only(runs_of(app))
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert annotated(run) == [(DEPLOYMENT, IMAGE_LINE)]
    assert WORKER not in run.summary and CRON not in run.summary
    comment = only(app.fake.comments_on(pr.number))
    assert (comment.path, comment.line) == (DEPLOYMENT, IMAGE_LINE)


async def test_a_branch_up_to_date_with_main_compares_with_main(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    run = only(runs_of(app))
    assert (run.conclusion, run.title) == ("failure", "1 error")
    assert "**Note:**" not in run.summary
    assert only(app.fake.compare_answers)["merge_base_commit"]["sha"] == app.fake.base_sha(pr)
    # Two commits, two tarballs: the merge base is the base tip, read once.
    assert len(app.fake.requests_to("GET", r"/tarball/")) == 2


async def test_no_common_ancestor_falls_back_to_the_base_tip_and_says_so(
    app: App, git_repo: GitRepo
) -> None:
    main_fixes_what_the_branch_still_has(git_repo)
    pr = app.fake.add_pull("feature")
    base_tip = app.fake.base_sha(pr)
    # GitHub's answer when a force-push left the branch without history in common with main.
    app.fake.fail_forever(
        "GET",
        COMPARE,
        404,
        body={
            "message": "No common ancestor between main and feature.",
            "documentation_url": "https://docs.github.com/rest/commits/commits#compare-two-commits",
            "status": "404",
        },
    )
    await app.deliver("pull_request.opened")
    await app.idle()

    run = only(runs_of(app))
    assert run.status == "completed"
    assert run.summary.startswith("> **Note:** ")
    note = run.summary.split("\n\n", 1)[0]
    assert "GitHub answered 404" in note and f"`{base_tip[:12]}`" in note
    assert "tip of the base branch" in note
    # The review still ran, against the base tip: podinfo, fixed on main since, now counts
    # as this PR's, exactly what the note warns about.
    assert annotated(run) == [(DEPLOYMENT, IMAGE_LINE), (WORKER, IMAGE_LINE)]
    assert run.conclusion == "failure" and run.title == "2 errors"
    tarballs = {r.path.rsplit("/", 1)[1] for r in app.fake.requests_to("GET", r"/tarball/")}
    assert tarballs == {base_tip, app.fake.head_sha(pr)}
    # A 404 is an answer, not a hiccup: asked once.
    assert len(app.fake.requests_to("GET", COMPARE)) == 1


async def test_compare_failing_after_the_retries_falls_back_and_the_review_completes(
    app: App, git_repo: GitRepo
) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    app.fake.fail_forever("GET", COMPARE, 502)
    await app.deliver("pull_request.opened")
    await app.idle()

    run = only(runs_of(app))
    assert (run.status, run.conclusion, run.title) == ("completed", "failure", "1 error")
    assert annotated(run) == [(DEPLOYMENT, IMAGE_LINE)]
    assert "> **Note:** " in run.summary and "GitHub answered 502" in run.summary
    assert only(app.fake.comments_on(pr.number)).path == DEPLOYMENT
    assert len(app.fake.requests_to("GET", COMPARE)) == 4  # the client's own attempts


async def test_the_merge_base_is_asked_once_per_base_and_head(app: App, git_repo: GitRepo) -> None:
    incident_repo(git_repo)
    pr = app.fake.add_pull("feature")
    await app.deliver("pull_request.opened")
    await app.idle()
    app.fake.set_permission("maintainer", "write")
    command = app.fake.add_issue_comment(pr.number, "/flux-review recheck", user="maintainer")
    await app.deliver("issue_comment.created", comment=command)
    await app.idle()
    assert len(runs_of(app)) == 2
    assert len(app.fake.requests_to("GET", COMPARE)) == 1

    # A new head is a new question.
    git_repo.checkout("feature")
    git_repo.commit("docs", {"README.md": "docs\n"})
    git_repo.checkout("main")
    await app.deliver("pull_request.synchronize")
    await app.idle()
    assert len(runs_of(app)) == 3
    assert len(app.fake.requests_to("GET", COMPARE)) == 2
    assert all(run.title == "1 error" for run in runs_of(app))


# -- the fake's compare endpoint ---------------------------------------------------------------


@pytest.fixture
async def call(fake_github: FakeGitHub) -> AsyncIterator[Any]:
    token = fake_github.create_token()
    async with aiohttp.ClientSession() as session:

        async def get(path: str) -> tuple[int, Any, Any]:
            headers = {
                "User-Agent": "merge-base-tests",
                "Accept": "application/vnd.github+json",
                "Authorization": f"token {token}",
            }
            async with session.get(fake_github.url + path, headers=headers) as resp:
                return resp.status, resp.headers, await resp.json()

        yield get


async def test_fake_compare_answers_from_git(
    fake_github: FakeGitHub, git_repo: GitRepo, call: Any
) -> None:
    merge_base = main_fixes_what_the_branch_still_has(git_repo)
    git_repo.checkout("feature")
    second = git_repo.commit("more", {"README.md": "x\n"})
    git_repo.checkout("main")
    base = git_repo.rev_parse("main")
    repo = f"/repos/{OWNER}/{REPO}"

    status, headers, body = await call(f"{repo}/compare/{base}...{second}?per_page=1")
    assert status == 200
    assert body["merge_base_commit"]["sha"] == merge_base
    assert body["base_commit"]["sha"] == base
    assert (body["status"], body["ahead_by"], body["behind_by"]) == ("diverged", 2, 1)
    assert [c["sha"] for c in body["commits"]] == [git_repo.rev_parse("feature~1")]
    assert sorted(f["filename"] for f in body["files"]) == ["README.md", WORKER]
    assert 'rel="next"' in headers["Link"]
    # Files come with the first page only.
    status, _, page2 = await call(f"{repo}/compare/{base}...{second}?per_page=1&page=2")
    assert status == 200 and "files" not in page2
    assert [c["sha"] for c in page2["commits"]] == [second]

    # Branch names work too; unpaged, every commit comes, oldest first.
    status, _, named = await call(f"{repo}/compare/main...feature")
    assert named["merge_base_commit"]["sha"] == merge_base
    assert [c["sha"] for c in named["commits"]][-1] == second
    status, _, same = await call(f"{repo}/compare/main...main")
    assert (same["status"], same["ahead_by"], same["commits"]) == ("identical", 0, [])
    status, _, behind = await call(f"{repo}/compare/main...{merge_base}")
    assert (behind["status"], behind["behind_by"]) == ("behind", 1)


async def test_fake_compare_of_unrelated_histories_is_404(
    fake_github: FakeGitHub, git_repo: GitRepo, call: Any
) -> None:
    cluster(git_repo, podinfo=GOOD, worker=GOOD)
    git_repo.git("checkout", "--quiet", "--orphan", "rewritten")
    git_repo.commit("start over", {"README.md": "new\n"})
    git_repo.checkout("main")
    repo = f"/repos/{OWNER}/{REPO}"
    status, _, body = await call(f"{repo}/compare/main...rewritten?per_page=1")
    assert status == 404
    assert body["message"] == "No common ancestor between main and rewritten."
    status, _, body = await call(f"{repo}/compare/main...{'0' * 40}")
    assert (status, body["message"]) == (404, "Not Found")
    status, _, body = await call(f"{repo}/compare/main..rewritten")
    assert status == 404
