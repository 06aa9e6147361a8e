"""Every error opsbench raises on purpose, under one root.

    OpsbenchError
    ├── UserError                 the user can fix it; the CLI prints one line, exit 2
    │   ├── SettingsError         an environment variable or .env value
    │   │   └── JobSpecError      the jobs file (a job's id, schedule, timeout, callable)
    │   ├── JobArgError           a job's `args` in the jobs file
    │   ├── QueryError            a named query or one of its parameters
    │   ├── SeedError             the demo data generator's options
    │   └── RenderError           a notebook to render or its parameters
    ├── DeliveryError             a message did not reach its destination; `outcome` says what next
    │   └── (TelegramError and its kinds, in ops.alerting.telegram.client; SMTP failures in ops.alerting.email)
    └── ChartsUnavailable         no browser to turn a chart into an image

User errors also derive from ValueError, so code that validates input with
`except ValueError` keeps working. A DeliveryError carries one `Outcome`;
the outbox matches on it once, and no layer translates it into another class.
"""

from __future__ import annotations

from enum import StrEnum


class OpsbenchError(Exception):
    """The root: anything opsbench raises on purpose. `str()` is safe to show."""


class UserError(OpsbenchError, ValueError):
    """Bad input from the user (settings, jobs file, arguments): one line, exit code 2."""


class SettingsError(UserError):
    """A setting is missing or malformed. The message names the variable."""


class JobSpecError(SettingsError):
    """The jobs file is malformed. The message names the file, the job and the key."""


class JobArgError(UserError):
    """A job argument in the jobs file is unusable. The message names the key."""


class QueryError(UserError):
    """A query call that cannot run: unknown query or parameter, malformed value."""


class SeedError(UserError):
    """The demo data generator was asked for something it cannot make."""


class RenderError(UserError):
    """A notebook cannot be rendered as asked (unknown notebook or parameter)."""


class Outcome(StrEnum):
    """What to do with a message whose delivery failed."""

    retry_later = "retry later"              # transient (network, 5xx): back off and try again
    retry_after = "retry after"              # the destination said when (429 retry_after), or the budget ran out
    never = "never"                          # this message will never be accepted as it is
    refused = "destination refuses"          # the destination refuses every message for now (blocked, bad token)


class DeliveryError(OpsbenchError):
    """A message was not delivered. `outcome` says what the outbox does next.

    `retry_after` is in seconds from when the answer arrived; `attempted` is
    False when nothing was sent at all (the caller's time budget ran out
    first), which is not a failed attempt.
    """

    outcome: Outcome = Outcome.retry_later

    def __init__(self, message: str, *, outcome: Outcome | None = None, retry_after: float | None = None,
                 attempted: bool = True):
        super().__init__(message)
        if outcome is not None:
            self.outcome = outcome
        elif retry_after is not None and self.outcome is Outcome.retry_later:
            self.outcome = Outcome.retry_after
        self.retry_after = retry_after
        self.attempted = attempted


class ChartsUnavailable(OpsbenchError, RuntimeError):
    """Charts cannot be drawn as images here (no Chrome/Chromium for kaleido)."""
