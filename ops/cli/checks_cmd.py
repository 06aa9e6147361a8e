"""`opsbench checks list | run NAME | new NAME`: the business invariants, one SQL file each."""

from __future__ import annotations

import typer

from ops.cli import fail

checks_app = typer.Typer(help="Business invariants as SQL files: list them, run one, start a new one.",
                         no_args_is_help=True)

TEMPLATE = """\
-- description: {description}
-- severity: warning
-- offender: user_id
-- requires:
--
-- A check returns the rows that break the rule; no rows means it passes.
-- The header above: severity is critical (pages), warning (look today) or info
-- (the weekly read); offender names the column(s) that identify one offender,
-- shown first in the alert's rows; requires (optional) lists root-cause rules
-- this check waits behind, e.g. negative_balance. Leave it empty or delete it.
-- One SELECT or WITH query; it runs read-only. Try it with
--     opsbench checks run {name}
SELECT u.id AS user_id, u.email, u.credits_remaining
FROM users u
WHERE u.credits_remaining > 100000
ORDER BY u.credits_remaining DESC, u.id
"""


def _catalogue():
    from ops.core.settings import get_settings
    from queries import checkfile

    return checkfile.discover(get_settings().checks_dir)


def list_checks() -> None:
    """Every check (shipped, then yours from OPSBENCH_CHECKS_DIR) and every file that cannot run."""
    import sys

    from ops.cli.tables import Col, print_table

    cat = _catalogue()
    # name and severity whole; what it waits behind and where it comes from before the description
    print_table([Col("check", "name", 0), Col("severity", "fixed", 1), Col("offender", "fixed", 2),
                 Col("requires", "fixed", 3), Col("from", "text", 5), Col("description", "text", 4)],
                [[c.name, c.severity, ", ".join(c.offender), ", ".join(c.requires),
                  "shipped" if c.shipped else str(c.path), c.description] for c in cat.checks.values()])
    for p in cat.problems:
        typer.echo(f"BROKEN {p}", err=True)


def run(name: str = typer.Argument(..., help="the check's name (its file name without .sql)"),
        fmt: str = typer.Option("table", "--format", "-f", help="table | csv | json")) -> int:
    """Run one check read-only and print every offending row; exit 1 when it finds any."""
    import sqlalchemy

    from ops.cli.query_cmd import Format, print_frame
    from ops.data import db
    from queries import checkfile

    try:
        out_format = Format(fmt)
    except ValueError:
        fail(f"--format {fmt!r}: expected table, csv or json")
    cat = _catalogue()
    broken = next((p for p in cat.problems if p.key == name), None)
    if broken is not None:
        fail(f"check {name} is broken: {broken}")
    check = cat.checks.get(name)
    if check is None:
        fail(f"unknown check {name!r} (have: {', '.join(cat.checks)}); see `opsbench checks list`")
    with db.analytics().connect() as raw:
        conn = checkfile.readonly(raw)
        try:
            frame = check.query(conn)
        except sqlalchemy.exc.DBAPIError as e:
            if e.connection_invalidated:
                raise
            fail(f"check {name} is broken: {checkfile.error_line(check, e, wrapped=False)}")
        finally:
            conn.rollback()
    missing = [c for c in check.offender if c not in frame.columns]
    if missing:
        fail(f"check {name} is broken: {check.where()}: offender column {missing[0]!r} is not in the result "
             f"(columns: {', '.join(map(str, frame.columns))})")
    typer.echo(f"{name} ({check.severity}): {check.description}", err=True)
    print_frame(frame, out_format)
    return 1 if len(frame) else 0


def new(name: str = typer.Argument(..., help="the new check's name: lowercase letters, digits and _")) -> None:
    """Write a commented template for a new check into OPSBENCH_CHECKS_DIR (never over an existing file)."""
    from ops.core.settings import get_settings
    from queries import checkfile

    folder = get_settings().checks_dir
    if folder is None:
        fail("OPSBENCH_CHECKS_DIR is not set: point it at the folder for your own checks")
    if not checkfile.valid_name(name):
        fail(f"bad check name {name!r}: use lowercase letters, digits and _, starting with a letter")
    if name in {c.name for c in checkfile.shipped()}:
        fail(f"{name!r} is a shipped check: pick another name")
    folder = folder.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sql"
    try:
        with path.open("x", encoding="utf-8") as f:
            f.write(TEMPLATE.format(name=name, description="Describe, in one line, what a row here means."))
    except FileExistsError:
        fail(f"{path} already exists: not overwritten")
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    checks_app.command("list")(list_checks)
    checks_app.command("run")(run)
    checks_app.command("new")(new)
    app.add_typer(checks_app, name="checks")
