"""The `opsbench` command line.

Each command group lives in its own module with a `register(app)` function.
`main()` turns every user error (bad setting, unknown query, malformed
argument) into one line on stderr and exit code 2, never a traceback.

The command tree is declared here (COMMANDS: name, module, one-line help) so
`opsbench --help` lists every command without importing any command module, and
`opsbench query ...` imports only the module of `query`. Help is click's plain
text: typer's rich help imports rich and markdown-it, which alone took longer
than Python's own start.
"""

from __future__ import annotations

import re
import sys

import click
import typer
import typer.core

from ops.core.errors import UserError
from ops.core.redact import redact

# name -> (module under ops.cli that registers it, its help line), in the order `--help` lists them.
# tests/test_cli_start.py checks these against the commands the modules really register.
COMMANDS: dict[str, tuple[str, str]] = {
    "query": ("query_cmd", "Run a named query against the analytics (read-only) connection."),
    "demo": ("demo_cmd", "Seed the embedded DB if empty, run every job once, show what would be sent, write the "
                         "HTML outputs."),
    "daemon": ("daemon_cmd", "Run the scheduler in the foreground (for systemd or a terminal); SIGTERM stops it "
                             "cleanly."),
    "jobs": ("daemon_cmd", "Every job: schedule in words, next fire time, last result."),
    "run": ("daemon_cmd", "Run one job now, in this process (recorded in the job history unless --dry-run)."),
    "status": ("daemon_cmd", "Which daemon leads, its last heartbeat, firing alerts and the outbox depth."),
    "doctor": ("daemon_cmd", "Check settings, jobs file, each database and its privileges, Telegram, Sentry; say "
                             "what is wrong."),
    "silence": ("alerts_cmd", "Hold back messages for matching alerts until the silence ends."),
    "unsilence": ("alerts_cmd", "End a silence now."),
    "report": ("report_cmd", "Preview a report in the terminal, send it to Telegram, or write it as HTML."),
    "backtest": ("backtest_cmd", "Replay the metric probes and reconciliation checks over a past window, through "
                                 "the real alert manager in a scratch database, and print what the founder would "
                                 "have received."),
    "db": ("db_cmd", "The embedded PostgreSQL used by the demo and the tests."),
    "checks": ("checks_cmd", "Business invariants as SQL files: list them, run one, start a new one."),
    "notebooks": ("notebooks_cmd", "The Jupyter notebooks: list them, or execute and share them as HTML."),
    "alerts": ("alerts_cmd", "Firing alerts, active silences, outbox backlog and recent alert history."),
    "telegram": ("alerts_cmd", "Telegram delivery: check the bot, send what is waiting."),
    "state": ("state_cmd", "The state store (schema opsbench): bind it to the backend anew."),
    "rollups": ("state_cmd", "The daily rollups in the state store."),
    "maintenance": ("maintenance_cmd", "Maintenance windows: hold alerts during a planned change, then summarise."),
}
_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))
_APP_SETTINGS = {
    "no_args_is_help": True,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,  # plain click help: no rich import (see the module docstring)
}
_loaded: dict[str, dict[str, click.Command]] = {}  # module -> its click commands, built once per process


def module_commands(module: str) -> dict[str, click.Command]:
    """The click commands `ops.cli.<module>` registers, by name (the module is imported on first use)."""
    if module not in _loaded:
        scratch = typer.Typer(**_APP_SETTINGS)
        _command_module(module).register(scratch)
        _loaded[module] = dict(typer.main.get_group(scratch).commands)
    return _loaded[module]


def _command_module(module: str):
    # plain imports, each only when its command is used (tests/test_architecture.py reads them: no importlib)
    match module:
        case "query_cmd":
            from ops.cli import query_cmd as m
        case "demo_cmd":
            from ops.cli import demo_cmd as m
        case "daemon_cmd":
            from ops.cli import daemon_cmd as m
        case "alerts_cmd":
            from ops.cli import alerts_cmd as m
        case "report_cmd":
            from ops.cli import report_cmd as m
        case "backtest_cmd":
            from ops.cli import backtest_cmd as m
        case "db_cmd":
            from ops.cli import db_cmd as m
        case "checks_cmd":
            from ops.cli import checks_cmd as m
        case "notebooks_cmd":
            from ops.cli import notebooks_cmd as m
        case "state_cmd":
            from ops.cli import state_cmd as m
        case "maintenance_cmd":
            from ops.cli import maintenance_cmd as m
        case _:
            raise KeyError(module)
    return m


class _LazyGroup(typer.core.TyperGroup):
    """The root group: every command in COMMANDS is listed, and built from its module only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(dict.fromkeys([*COMMANDS, *self.commands]))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            return module_commands(COMMANDS[cmd_name][0]).get(cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the declared help lines, as click would shorten them, without building the commands
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, self.commands[n].get_short_help_str(limit) if n in self.commands
                 else click.utils.make_default_short_help(COMMANDS[n][1], limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            # click and typer suggest from the commands built so far: suggest from the whole tree
            from difflib import get_close_matches

            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches and "Did you mean" not in e.message:
                e.message = f"{e.message.rstrip('.')}. Did you mean {', '.join(repr(m) for m in matches)}?"
            raise


app = typer.Typer(
    name="opsbench",
    help="Operations and analytics workbench: queries, notebooks, alerts and the daemon.",
    cls=_LazyGroup,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every subcommand
    **_APP_SETTINGS,
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
    """Add every command module's commands to `app` itself (the whole tree, as tests walk it).

    `main()` does not need this: the root group builds a command from its module when it is
    used. Once per process, so calling it again does not stack copies of every command.
    """
    global _registered
    if _registered:
        return
    _registered = True
    for module in _MODULES:
        _command_module(module).register(app)


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
