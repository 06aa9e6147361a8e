"""`opsbench db up | down | url | seed` for the embedded server."""

from __future__ import annotations

from enum import Enum

import typer

from ops.cli import current_settings as get_settings

db_app = typer.Typer(help="The embedded PostgreSQL used by the demo and the tests.", no_args_is_help=True)


class Scale(str, Enum):
    small = "small"
    medium = "medium"
    large = "large"


@db_app.command("up")
def up() -> None:
    """Start the embedded server (data under .opsbench/pg) and print its URL."""
    from ops.data import embedded

    url = embedded.start(get_settings())
    typer.echo(url)


@db_app.command("down")
def down() -> None:
    """Stop the embedded server; its data stays for the next `db up`."""
    from ops.data import embedded

    stopped = embedded.stop(get_settings())
    typer.echo("stopped" if stopped else "not running")


@db_app.command("url")
def url() -> None:
    """Print the analytics DSN in use (password masked)."""
    from ops.data.db import Role, resolve

    s = get_settings()
    for role in Role:
        r = resolve(role, s)
        typer.echo(f"{role.value:<12} {r.masked()}{'  (embedded)' if r.embedded else ''}")


@db_app.command("seed")
def seed(
    scale: Scale = typer.Option(Scale.small, help="small ~10k users, medium ~100k, large ~1M"),
    seed_value: int = typer.Option(1, "--seed", help="generator seed; same seed, same data"),
    force: bool = typer.Option(False, help="replace existing demo data"),
) -> None:
    """Fill the embedded demo database with generated data and planted faults."""
    from ops.data.seed import manifest_path, seed_embedded

    settings = get_settings()
    manifest = seed_embedded(settings, scale=scale.value, seed=seed_value, force=force)  # SeedError: main() says it
    if manifest.get("reused"):
        typer.echo(f"already seeded: scale={manifest['scale']} seed={manifest['seed']} anchor={manifest['anchor']} "
                   "(use --force to replace it)")
        return
    typer.echo(f"seeded scale={manifest['scale']} seed={manifest['seed']} in {manifest['seconds']:.1f}s: "
               f"{manifest['users']} users, {manifest['video_jobs']} jobs, {manifest['ledger_rows']} ledger rows, "
               f"{manifest['purchases']} purchases; manifest {manifest_path(settings)}")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
