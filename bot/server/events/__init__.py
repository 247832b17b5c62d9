"""Webhook events, one router per concern, composed here (gidgethub promises no order
between callbacks, so each trigger has exactly one orchestrating handler).

Where an event lands: `pull_request` -> pull_request.py, `check_suite` and `check_run` ->
checks.py, `issue_comment` -> issue_comment.py.
"""

from gidgethub import routing

from bot.server.events import checks, issue_comment, pull_request
from bot.server.events.context import EventContext

router = routing.Router(pull_request.router, checks.router, issue_comment.router)

__all__ = ["EventContext", "router"]
