"""`pull_request`: review the head whenever it changes or becomes reviewable."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.server.events.context import EventContext, installation_id, repo_of
from bot.server.jobs import ReviewJob

router = routing.Router()

CHANGED = ("opened", "synchronize")
# The same head may have been seen before (a draft skipped, a PR closed and reopened): the
# review runs again even if that head was reviewed a minute ago.
REVIEW_AGAIN = ("reopened", "ready_for_review")


async def on_pull_request_changed(event: sansio.Event, ctx: EventContext) -> None:
    data = event.data
    pull = data["pull_request"]
    installation = installation_id(data)
    if installation is None or pull.get("state") != "open":
        ctx.log.info("pull_request.%s ignored (no installation, or not open)", data["action"])
        return
    await ctx.enqueue(
        ReviewJob(
            repo=repo_of(data),
            installation_id=installation,
            number=int(pull["number"]),
            delivery_id=ctx.delivery_id,
            trigger=f"pull_request.{data['action']}",
            revision=str(pull["head"]["sha"]),
            force=data["action"] in REVIEW_AGAIN,
        )
    )


for _action in CHANGED + REVIEW_AGAIN:
    router.add(on_pull_request_changed, "pull_request", action=_action)
