"""The `opsbench` command line.

Each command group lives in its own module with a `register(app)` function.
`main()` turns every user error (bad setting, unknown query, malformed
argument) into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import re
import sys

import click
import typer

from ops.core.errors import UserError
from ops.core.redact import redact

app = typer.Typer(
    name="opsbench",
    help="Operations and analytics workbench: queries, notebooks, alerts and the daemon.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
)


def _version(value: bool) -> None:
    if value:
        from ops import __version__

        typer.echo(f"opsbench {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Operations and analytics workbench: queries, notebooks, alerts and the daemon."""


def current_settings():
    """The settings, loaded on first use: pydantic costs ~50 ms that `opsbench --help` need not pay."""
    from ops.core.settings import get_settings

    return get_settings()


def fail(message: str) -> None:
    raise UserError(message)


_registered = False


def _register() -> None:
    # each command module adds its commands to `app`; they import their heavy
    # dependencies inside the commands, so `opsbench --help` stays fast. Once per
    # process: `main()` called again (tests, scripts) must not stack copies of every
    # command, which made each later call slower than the one before.
    global _registered
    if _registered:
        return
    _registered = True
    from ops.cli import (
        alerts_cmd,
        backtest_cmd,
        checks_cmd,
        daemon_cmd,
        db_cmd,
        demo_cmd,
        maintenance_cmd,
        notebooks_cmd,
        query_cmd,
        report_cmd,
        state_cmd,
    )

    for module in (db_cmd, query_cmd, checks_cmd, demo_cmd, notebooks_cmd, daemon_cmd, alerts_cmd, report_cmd,
                   state_cmd, backtest_cmd, maintenance_cmd):
        module.register(app)


_SUGGESTION = re.compile(r"\s*\(?Did you mean [^?]*\?\)?")


def _one_suggestion(message: str) -> str:
    """Typer and click both suggest a command for a typo ("Did you mean 'status', 'state'? (Did you mean
    one of: 'state', 'status'?)"): keep the first suggestion only."""
    found = list(_SUGGESTION.finditer(message))
    if len(found) < 2:
        return message
    first = found[0]
    rest = _SUGGESTION.sub("", message[first.end():])
    return message[:first.end()] + rest


def _err(message: str) -> None:
    click.echo(f"opsbench: error: {redact(message)}", err=True)


_CONNECTIONS = (  # settings attribute, what to call it
    ("database_url", "backend (DATABASE_URL)"),
    ("maintenance_database_url", "maintenance (MAINTENANCE_DATABASE_URL)"),
    ("state_url", "state store (OPSBENCH_STATE_URL)"),
)
_SERVER_AT = re.compile(r'connection to server at "(?P<host>[^"]*)"(?: \([^)]*\))?, port (?P<port>\d+)')
_SERVER_SOCKET = re.compile(r'connection to server on socket "(?P<sock>[^"]*)"')
_DATABASE = re.compile(r'database "(?P<db>[^"]+)" does not exist')
_RELATION = re.compile(r'relation "(?P<rel>[^"]+)" does not exist')


def _which_connection(message: str) -> str | None:
    """Which configured connection an error message is about, when the message says (host, port, database)."""
    try:
        from sqlalchemy.engine import make_url

        from ops.core.settings import get_settings

        settings = get_settings()
    except Exception:  # noqa: BLE001 — naming the connection is a courtesy, never a second failure
        return None
    at, sock, db = _SERVER_AT.search(message), _SERVER_SOCKET.search(message), _DATABASE.search(message)
    names = []
    for attr, label in _CONNECTIONS:
        dsn = getattr(settings, attr)
        if not dsn:
            continue
        try:
            url = make_url(dsn)
        except Exception:  # noqa: BLE001
            continue
        host = url.host or str(url.query.get("host") or "")
        if at and not (host == at["host"] and int(url.port or 5432) == int(at["port"])):
            continue
        if sock and not (host and sock["sock"].startswith(host.rstrip("/") + "/")):
            continue
        if db and url.database != db["db"]:
            continue
        if at or sock or db:
            names.append(label)
    # several connections on one server and database: name them all rather than guess
    return " or ".join(names) or None


def _database_error(e: BaseException) -> str | None:
    """One line for a database that is down, refuses us or lacks a table; None for anything else."""
    module = type(e).__module__ or ""
    if not module.startswith(("sqlalchemy", "psycopg")):
        return None
    cause = getattr(e, "orig", None) or e
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    missing = _RELATION.search(first)
    if missing:
        table = missing["rel"]
        if table.startswith("opsbench."):
            return f"the state store has no table {table} (opsbench migrates it on first use): {first}"
        return f"the backend database has no table {table} (see queries/schema.sql): {first}"
    where = _which_connection(first)
    return f"database error: {where}: {first}" if where else f"database error: {first}"


def main(argv: list[str] | None = None) -> int:
    _register()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="opsbench", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.UsageError as e:
        msg = e.format_message().strip().splitlines()
        _err(_one_suggestion(" ".join(line.strip() for line in msg)))
        code = 2
    except click.exceptions.Abort:
        _err("aborted")
        code = 130
    except UserError as e:  # settings, jobs file, job arguments, query parameters, seed, render
        _err(str(e))
        code = 2
    except KeyboardInterrupt:
        code = 130
    except OSError as e:  # a path that cannot be written or read, whichever command met it: one line
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        if type(e).__name__ == "ShellDetectionFailure":  # shellingham (completion): no shell among our parents
            _err("could not tell which shell runs opsbench; run it from bash, zsh or fish (or set SHELL)")
        else:
            _err(f"{where}{e.strerror or e or type(e).__name__}")
        code = 1
    except Exception as e:
        line = _database_error(e)
        if line is None:
            raise
        _err(line)
        code = 1
    else:
        code = rv if isinstance(rv, int) else 0
    if argv is None:
        sys.exit(code)
    return code
