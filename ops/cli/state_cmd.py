"""`opsbench state reset` and `opsbench rollups rebuild`: what a backend change does, by hand."""

from __future__ import annotations

import typer

from ops.cli import current_settings as get_settings
from ops.cli import fail

state_app = typer.Typer(help="The state store (schema opsbench): bind it to the backend anew.", no_args_is_help=True)
rollups_app = typer.Typer(help="The daily rollups in the state store.", no_args_is_help=True)


@state_app.command("reset")
def reset(yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation")) -> None:
    """Close every open alert (no RESOLVED page), forget every rollup, bind the state to DATABASE_URL's backend."""
    from ops.alerting import rebind
    from ops.data import backend, db
    from ops.data.state import state_engine

    settings = get_settings()
    analytics, state = db.analytics(settings), state_engine(settings)
    live = backend.current(analytics)
    if not yes:
        typer.confirm(f"close every open alert and forget every rollup, then bind the state store to {live}?",
                      abort=True)
    result = rebind.reset(analytics, state)
    typer.echo(f"state bound to {live}: {result.alerts_closed} alerts closed, "
               f"{result.rows_forgotten} rollup rows forgotten ({', '.join(result.zones_forgotten) or 'no zones'}); "
               "the next rollups run rebuilds them")


@rollups_app.command("rebuild")
def rebuild(
    tz: str = typer.Option(None, "--tz", help="IANA zone to rebuild (default REPORT_TZ)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Forget a zone's rollups and backfill them from the raw tables now."""
    from ops.core.clock import parse_zone
    from ops.data import db, rollups
    from ops.data.state import state_engine

    settings = get_settings()
    try:
        zone = parse_zone(tz or settings.report_tz).key
    except Exception:
        fail(f"--tz: expected an IANA time zone name such as Europe/Istanbul or UTC, got {tz!r}")
    if not yes:
        typer.confirm(f"forget the {zone} rollups and rebuild them from the raw tables?", abort=True)
    from ops.cli.backend_binding import bind_backend

    state = state_engine(settings)
    bind_backend(settings, state)          # another backend's rollups of the other zones go too
    forgotten = rollups.forget(state, zone)
    result = rollups.refresh(db.analytics(settings), state, zone)
    typer.echo(f"{forgotten} rollup rows forgotten; {result.summary}")


def register(app: typer.Typer) -> None:
    app.add_typer(state_app, name="state")
    app.add_typer(rollups_app, name="rollups")
