"""How the time between SIGTERM and the platform's SIGKILL is spent.

`SHUTDOWN_GRACE` is the whole of it, counted from SIGTERM. A check run left `in_progress`
blocks a required check for good, and a SIGKILL mid-review leaves exactly that, so work
may start only while there is still time to conclude it if it has to be stopped:

    0 ............ drain ............ cancel wait ...... not started .. margin | grace
    pending reviews   running reviews are   jobs that never started
    still start       cancelled; each       get a `cancelled` check run
                      concludes its check

Webhook requests in flight when the listener closes are answered in parallel, 503: the
queue takes no more work.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import MIN_SHUTDOWN_GRACE, Settings

# Longest wait for cancelled reviews to conclude their check runs: one write each, behind
# the installation's write throttle (GITHUB_WRITE_INTERVAL between writes), so a few
# reviews in one installation take a few seconds, more when GitHub answers slowly.
CANCEL_WAIT = 10.0
# Longest time to give the commits of jobs that never started their `cancelled` check run.
NOT_STARTED_BUDGET = 5.0
# Left at the end to stop the posts that did not make it and close the HTTP session.
MARGIN = 1.0
# aiohttp rounds a shutdown deadline longer than 5 s up to the next whole second.
_AIOHTTP_ROUNDING = 1.0


@dataclass(frozen=True)
class ShutdownPlan:
    """Seconds for each phase; drain + cancel_wait + not_started + margin == grace."""

    grace: float
    drain: float
    cancel_wait: float
    not_started: float
    margin: float
    # aiohttp's `shutdown_timeout`: how long it waits for the webhook requests in flight
    # when the listener closed, in parallel with the phases above.
    webhooks: float

    @classmethod
    def of(cls, settings: Settings) -> ShutdownPlan:
        # Settings built in code skip the environment's validation.
        grace = max(settings.shutdown_grace, MIN_SHUTDOWN_GRACE)
        margin = min(MARGIN, grace / 5)
        usable = grace - margin
        reserve = CANCEL_WAIT + NOT_STARTED_BUDGET
        if usable >= reserve:
            cancel_wait, not_started = CANCEL_WAIT, NOT_STARTED_BUDGET
            drain = usable - reserve
        else:
            # Too short to let anything new start: what runs is stopped at once, and the
            # time is shared in proportion to the full budgets.
            cancel_wait = usable * CANCEL_WAIT / reserve
            not_started = usable - cancel_wait
            drain = 0.0
        return cls(
            grace=grace,
            drain=drain,
            cancel_wait=cancel_wait,
            not_started=not_started,
            margin=margin,
            # As long as a request may take to read its body, but within the grace. None
            # should need it: aiohttp stops reading from a connection once the listener
            # has closed, so a body still arriving then is answered 503 at once.
            webhooks=min(settings.webhook_read_timeout, grace - _AIOHTTP_ROUNDING),
        )
