"""Commands that read derived state bind the state store to DATABASE_URL's backend first.

A backend other than the one the state describes switches the state (ops/alerting/rebind.py):
the old backend's alerts close as "backend changed", its rollups are forgotten, one message
says so. `report`, `status`, `alerts` and `rollups rebuild` call this before they read, so none
of them shows the old backend's alerts or numbers, daemon or not.
"""

from __future__ import annotations

import logging

import typer

log = logging.getLogger(__name__)


def bind_backend(settings, state) -> None:
    """Switch when the backend changed; say so on stderr. Never raises: an unreachable database is
    reported by the command's own reads."""
    from ops.alerting import rebind
    from ops.data import db

    try:
        switched = rebind.ensure(db.analytics(settings), state)
    except Exception as e:
        log.debug("backend not checked: %s", e)
        return
    if switched is not None:
        typer.echo(f"note: {switched.text}", err=True)
