"""`opsbench demo`: the embedded database, seeded if empty, and yesterday's numbers."""

from __future__ import annotations

import datetime as dt

import typer


def demo(
    scale: str = typer.Option("small", help="demo data size when seeding: small, medium or large"),
    seed: int = typer.Option(1, help="generator seed used when seeding"),
) -> None:
    """Start the embedded PostgreSQL, seed it if empty, print yesterday's numbers."""
    from rich.console import Console

    from ops import db, yesterday
    from ops.cli import fail
    from ops.seed import seed_embedded
    from ops.settings import get_settings

    if scale not in ("small", "medium", "large"):
        fail(f"--scale: expected small, medium or large, got {scale!r}")
    settings = get_settings()
    console = Console()
    if settings.uses_embedded:
        manifest = seed_embedded(settings, scale=scale, seed=seed)
        console.print(f"[dim]embedded PostgreSQL under {settings.home}/pg, demo data scale={manifest['scale']} "
                      f"seed={manifest['seed']} generated at {manifest['anchor']}[/dim]")
    else:
        console.print(f"[dim]DATABASE_URL is set: reading {db.resolve('analytics', settings).masked()}[/dim]")
    today = dt.datetime.now(settings.tz).date()
    numbers = yesterday.collect(db.analytics(settings), today - dt.timedelta(days=1), settings.report_tz)
    yesterday.render(console, numbers)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
