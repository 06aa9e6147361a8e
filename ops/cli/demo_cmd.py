"""`opsbench demo`: the whole system once on demo data (see ops/workbench/demo.py for the steps)."""

from __future__ import annotations

import logging
import sys

import typer


def demo(
    scale: str = typer.Option("small", help="demo data size when seeding: small, medium or large"),
    seed: int = typer.Option(1, help="generator seed used when seeding"),
    notebooks: bool = typer.Option(True, "--notebooks/--no-notebooks", help="render the notebooks to HTML"),
) -> None:
    """Seed the embedded DB if empty, run every job once, show what would be sent, write the HTML outputs."""
    from ops.cli import fail
    from ops.core import logs
    from ops.core.settings import get_settings
    from ops.data import db
    from ops.data.seed import seed_embedded
    from ops.workbench.demo import Demo

    if scale not in ("small", "medium", "large"):
        fail(f"--scale: expected small, medium or large, got {scale!r}")
    settings = get_settings()
    # job warnings go to stderr, one line each; the story goes to stdout
    logs.configure(level=logging.WARNING, json_lines=False, environment=settings.environment, stream=sys.stderr)
    if settings.uses_embedded:
        manifest = seed_embedded(settings, scale=scale, seed=seed)
        how = "reused" if manifest.get("reused") else f"seeded in {manifest.get('seconds', 0):.1f} s"
        typer.echo(f"embedded PostgreSQL under {settings.home}/pg; demo data scale={manifest['scale']} "
                   f"seed={manifest['seed']} generated at {manifest['anchor']} ({how})")
    else:
        # the demo runs every job, cleanup (deletes) included: never against a real backend by surprise
        fail(f"DATABASE_URL is set ({db.resolve('analytics', settings).masked()}): the demo runs every job, cleanup "
             "included, and is only for the embedded demo database; unset it, or use `opsbench run JOB` / "
             "`opsbench daemon` against a real backend")
    result = Demo(settings, notebooks=notebooks).run()
    failed_notebooks = [r for r in result.notebooks if not r.ok]
    if result.report_html is None or failed_notebooks:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
