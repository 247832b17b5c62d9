"""`issue_comment`: `/flux-review recheck` and `/flux-review help` on a pull request."""

from __future__ import annotations

from gidgethub import routing, sansio

from bot.server.commands import is_bot, parse_commands
from bot.server.events.context import EventContext, installation_id, repo_of
from bot.server.jobs import CommandJob

router = routing.Router()


async def on_command_comment(event: sansio.Event, ctx: EventContext) -> None:
    data = event.data
    issue = data["issue"]
    comment = data["comment"]
    # Comments on issues arrive here too; only PRs have a `pull_request` key.
    if "pull_request" not in issue:
        return
    # Bots (including this App) never drive the App: no loops, no spoofed commands.
    if is_bot(comment.get("user")):
        return
    commands = parse_commands(comment.get("body"))
    if not commands:
        return
    installation = installation_id(data)
    if installation is None:
        ctx.log.info("command ignored: no installation in the payload")
        return
    await ctx.enqueue(
        CommandJob(
            repo=repo_of(data),
            installation_id=installation,
            number=int(issue["number"]),
            comment_id=int(comment["id"]),
            login=str(comment["user"]["login"]),
            commands=commands,
            delivery_id=ctx.delivery_id,
        )
    )


router.add(on_command_comment, "issue_comment", action="created")
