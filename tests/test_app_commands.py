"""Parsing `/flux-review` commands out of comments."""

from __future__ import annotations

from bot.server.commands import Command, is_bot, parse_commands


def test_command_on_its_own_line() -> None:
    assert parse_commands("/flux-review recheck") == (Command.RECHECK,)
    assert parse_commands("Thanks!\n\n  /flux-review recheck  \nplease") == (Command.RECHECK,)
    assert parse_commands("/Flux-Review HELP\n/flux-review recheck\n/flux-review help") == (
        Command.HELP,
        Command.RECHECK,
    )


def test_not_a_command() -> None:
    assert parse_commands(None) == ()
    assert parse_commands("please /flux-review recheck") == ()
    assert parse_commands("/flux-review recheck now") == ()
    assert parse_commands("/flux-review rerun") == ()
    assert parse_commands("/flux-reviewer recheck") == ()


def test_code_and_quotes_do_not_trigger() -> None:
    assert parse_commands("```\n/flux-review recheck\n```") == ()
    assert parse_commands("~~~md\n/flux-review recheck\n~~~") == ()
    assert parse_commands("````\n```\n/flux-review recheck\n```\n````") == ()
    assert parse_commands("> /flux-review recheck") == ()
    assert parse_commands("text\n\n    /flux-review recheck") == ()
    # After a closed fence, commands count again.
    assert parse_commands("```\ncode\n```\n/flux-review recheck") == (Command.RECHECK,)
    # An unclosed fence runs to the end.
    assert parse_commands("```\n/flux-review recheck") == ()


def test_bots() -> None:
    assert is_bot({"login": "dependabot[bot]", "type": "Bot"})
    assert is_bot({"login": "renovate[bot]", "type": "User"})
    assert is_bot({"login": "ci", "type": "Bot"})
    assert not is_bot({"login": "octocat", "type": "User"})
