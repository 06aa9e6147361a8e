"""`opsbench maintenance add|list|remove`: planned windows during which alerts are held."""

from __future__ import annotations

import getpass

import typer

from ops.cli import current_settings as get_settings
from ops.cli import fail
from ops.core.clock import utc_now

maintenance_app = typer.Typer(help="Maintenance windows: hold alerts during a planned change, then summarise.",
                              no_args_is_help=True)


def _state_engine():
    from ops.data.state import state_engine

    return state_engine(get_settings())


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is no reason to refuse
        return None


@maintenance_app.command("add")
def add_cmd(
    when: str = typer.Argument(..., help="'30m' from now, 'Sun 02:00-03:00', 'Mon-Fri 12:00-12:15', "
                                         "'daily 03:00-03:30' or '2026-12-10 02:00-03:00' (times in REPORT_TZ)"),
    reason: str = typer.Option(..., "--reason", help="why (shown with the window and in its summary)"),
    rules: str = typer.Option("", "--rules", help="comma-separated alert key or rule patterns to hold "
                                                  "(default: every alert below critical)"),
) -> None:
    """Hold alerts during a planned change; one summary when each window closes."""
    from ops.alerting import maintenance_store

    settings = get_settings()
    now = utc_now()
    patterns = [p for p in rules.split(",") if p.strip()]
    try:
        wid, window = maintenance_store.add(_state_engine(), when, reason, settings.tz, now, patterns, _user())
    except ValueError as err:
        fail(f"WHEN: {err}" if "reason" not in str(err) else f"--reason: {err}")
    nxt = window.schedule.next_after(now, settings.tz)
    starts = "in force now" if nxt and nxt[0] <= now else (
        f"next {nxt[0].astimezone(settings.tz):%a %Y-%m-%d %H:%M}" if nxt else "")
    typer.echo(f"maintenance #{wid}: {window.schedule.describe(settings.tz)}, holds {window.scope} "
               f"({reason.strip()}); {starts}")


@maintenance_app.command("list")
def list_cmd() -> None:
    """Windows that are planned or in force."""
    from ops.alerting import maintenance_store
    from ops.cli.tables import Col, print_table

    settings = get_settings()
    now = utc_now()
    windows = maintenance_store.active(_state_engine())
    typer.echo(f"Maintenance windows ({len(windows)}):")
    rows = []
    for w in windows:
        nxt = w.schedule.next_after(now, settings.tz)
        if nxt is None:
            when = "ended"
        elif nxt[0] <= now:
            when = f"in force until {nxt[1].astimezone(settings.tz):%H:%M}"
        else:
            when = f"next {nxt[0].astimezone(settings.tz):%a %m-%d %H:%M}"
        rows.append([f"#{w.id}", w.schedule.describe(settings.tz), when, w.scope, w.reason])
    if rows:
        print_table([Col("id", "number", 0), Col("schedule", "name", 0), Col("when", "fixed", 1),
                     Col("holds", "text", 2), Col("reason", "text", 3)], rows)


@maintenance_app.command("remove")
def remove_cmd(window_id: int = typer.Argument(..., help="window id from `opsbench maintenance list`")) -> None:
    """End a window now (its alerts are announced at their next evaluation if still bad)."""
    from ops.alerting import maintenance_store

    if not maintenance_store.cancel(_state_engine(), window_id, utc_now()):
        fail(f"no maintenance window #{window_id} (see `opsbench maintenance list`)")
    typer.echo(f"maintenance #{window_id} removed")


def register(app: typer.Typer) -> None:
    app.add_typer(maintenance_app, name="maintenance")
