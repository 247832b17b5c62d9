"""`check_suite` and `check_run`: GitHub asking for checks on a push, or a Re-run click."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gidgethub import routing, sansio

from bot.report.checkrun import CHECK_NAME
from bot.server.events.context import EventContext, installation_id, repo_of
from bot.server.jobs import CommitJob, ReviewJob

router = routing.Router()


async def _review_commit(
    ctx: EventContext,
    data: Mapping[str, Any],
    head_sha: str,
    pull_requests: Iterable[Mapping[str, Any]],
    trigger: str,
    force: bool,
) -> None:
    installation = installation_id(data)
    if installation is None:
        ctx.log.info("%s ignored: no installation in the payload", trigger)
        return
    repo = repo_of(data)
    repo_id = data["repository"].get("id")
    numbers = [
        int(pr["number"])
        for pr in pull_requests
        # The list can name PRs of other repositories whose head is this commit.
        if pr.get("base", {}).get("repo", {}).get("id", repo_id) == repo_id
    ]
    if not numbers:
        # GitHub leaves `pull_requests` empty when the head branch is in a fork; the
        # commit's PRs are looked up in the worker.
        await ctx.enqueue(
            CommitJob(
                repo=repo,
                installation_id=installation,
                sha=head_sha,
                delivery_id=ctx.delivery_id,
                trigger=trigger,
                force=force,
            )
        )
        return
    for number in numbers:
        await ctx.enqueue(
            ReviewJob(
                repo=repo,
                installation_id=installation,
                number=number,
                delivery_id=ctx.delivery_id,
                trigger=trigger,
                revision=head_sha,
                force=force,
            )
        )


async def on_check_suite_requested(event: sansio.Event, ctx: EventContext) -> None:
    suite = event.data["check_suite"]
    action = event.data["action"]
    await _review_commit(
        ctx,
        event.data,
        str(suite["head_sha"]),
        suite.get("pull_requests") or (),
        trigger=f"check_suite.{action}",
        force=action == "rerequested",
    )


async def on_check_run_rerequested(event: sansio.Event, ctx: EventContext) -> None:
    run = event.data["check_run"]
    if run.get("name") != CHECK_NAME:
        ctx.log.info("check_run.rerequested for %r ignored", run.get("name"))
        return
    await _review_commit(
        ctx,
        event.data,
        str(run["head_sha"]),
        run.get("pull_requests") or (),
        trigger="check_run.rerequested",
        force=True,
    )


router.add(on_check_suite_requested, "check_suite", action="requested")
router.add(on_check_suite_requested, "check_suite", action="rerequested")
router.add(on_check_run_rerequested, "check_run", action="rerequested")
