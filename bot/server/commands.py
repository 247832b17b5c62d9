"""`/flux-review recheck` and `/flux-review help` in pull request comments."""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import gidgethub

from bot.analysis import CONFIG_PATH
from bot.github.client import GitHubClient
from bot.github.repo import RepoRef

Log = logging.LoggerAdapter[logging.Logger]

COMMAND_PREFIX = "/flux-review"
NO_PERMISSION_MARKER = "<!-- flux-review:recheck-needs-write -->"
HELP_MARKER = "<!-- flux-review:help -->"
# Roles that may trigger a recheck; GitHub maps `maintain` to `write` in this field.
ALLOWED_PERMISSIONS = frozenset({"admin", "write"})

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class Command(enum.StrEnum):
    RECHECK = "recheck"
    HELP = "help"


def parse_commands(body: str | None) -> tuple[Command, ...]:
    """Commands on lines of their own, outside fenced or indented code and quotes.

    Someone quoting or documenting the command must not trigger it.
    """
    found: list[Command] = []
    fence: str | None = None
    for raw in (body or "").splitlines():
        opening = _FENCE.match(raw)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening.group(1)
            continue
        if raw.startswith(("    ", "\t")):
            continue
        words = raw.strip().split()
        if len(words) == 2 and words[0].lower() == COMMAND_PREFIX:
            try:
                command = Command(words[1].lower())
            except ValueError:
                continue
            if command not in found:
                found.append(command)
    return tuple(found)


def is_bot(user: Mapping[str, Any] | None) -> bool:
    if not user:
        return True
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


HELP_TEXT = f"""\
flux-review reads this pull request the way Flux, Helm and Kustomize will read it on the
cluster, and reports what would break in the `flux-review` check, with a comment on the line.

- `/flux-review recheck` reviews the current head again (needs write access).
- `/flux-review help` shows this message.

The review follows `{CONFIG_PATH}` on the default branch. To silence one finding, add
`# flux-review: ignore RULE-ID -- reason` on the line or the line above.
{HELP_MARKER}"""


def no_permission_text(login: str) -> str:
    return (
        f"Thanks @{login}! Only people with write access to this repository can ask "
        "flux-review to re-check a pull request. A maintainer can comment "
        "`/flux-review recheck`, and every new push is reviewed anyway.\n"
        f"{NO_PERMISSION_MARKER}"
    )


async def permission_of(gh: GitHubClient, repo: RepoRef, login: str) -> str:
    # `author_association` in the payload is unreliable (private org members show up as
    # CONTRIBUTOR), so ask GitHub for the commenter's permission on the repository.
    try:
        data = await gh.getitem(
            "/repos/{owner}/{repo}/collaborators/{username}/permission",
            repo.vars(username=login),
        )
    except gidgethub.BadRequest as exc:
        if int(exc.status_code) == 404:  # not a collaborator at all
            return "none"
        raise
    return str(data.get("permission") or "none")


async def _bot_comment_with(gh: GitHubClient, repo: RepoRef, number: int, needle: str) -> bool:
    async for comment in gh.getiter(
        "/repos/{owner}/{repo}/issues/{issue_number}/comments{?per_page}",
        repo.vars(issue_number=number, per_page=100),
    ):
        if is_bot(comment.get("user")) and needle in str(comment.get("body") or ""):
            return True
    return False


async def _react(gh: GitHubClient, repo: RepoRef, comment_id: int, content: str) -> None:
    await gh.post(
        "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
        repo.vars(comment_id=comment_id),
        data={"content": content},
    )


async def _reply(gh: GitHubClient, repo: RepoRef, number: int, body: str) -> None:
    await gh.post(
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        repo.vars(issue_number=number),
        data={"body": body},
    )


async def handle_commands(
    gh: GitHubClient,
    repo: RepoRef,
    number: int,
    comment_id: int,
    login: str,
    commands: Iterable[Command],
    *,
    recheck: Callable[[], Awaitable[bool]],
    log: Log,
    once: Callable[[str], Awaitable[bool]] | None = None,
) -> None:
    """`once(name)`: False when this command's answer was given already (the job runs again
    after its worker died, or on another replica)."""
    for command in commands:
        answered = f"answer:{repo.full_name.lower()}:{comment_id}:{command.value}"
        if once is not None and not await once(answered):
            log.info("%s of comment %d was answered already", command.value, comment_id)
            continue
        if command is Command.HELP:
            await _reply(gh, repo, number, HELP_TEXT)
            log.info("help requested by %s", login)
            continue
        permission = await permission_of(gh, repo, login)
        if permission in ALLOWED_PERMISSIONS:
            queued = await recheck()
            await _react(gh, repo, comment_id, "+1" if queued else "confused")
            log.info(
                "recheck requested by %s (%s): %s",
                login,
                permission,
                "queued" if queued else "not queued",
            )
            continue
        log.info("recheck by %s ignored: permission %s", login, permission)
        # One polite reply per PR, not one per attempt.
        if not await _bot_comment_with(gh, repo, number, NO_PERMISSION_MARKER):
            await _reply(gh, repo, number, no_permission_text(login))
