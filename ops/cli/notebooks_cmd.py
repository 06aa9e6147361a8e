"""`opsbench notebooks list | render [--out DIR] [-p key=value ...] [--only NAME ...]`."""

from __future__ import annotations

from pathlib import Path

import typer

from ops.cli import fail

notebooks_app = typer.Typer(help="The Jupyter notebooks: list them, or execute and share them as HTML.",
                            no_args_is_help=True)


def _params(pairs: list[str]) -> dict:
    from ops.workbench.notebooks import parse_value

    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"parameter {pair!r}: expected key=value")
        out[key.strip()] = parse_value(value)
    return out


@notebooks_app.command("list")
def list_() -> None:
    """Notebooks and the parameters each one takes."""
    from ops.workbench.notebooks import notebook_paths, parameter_names, read

    for path in notebook_paths():
        typer.echo(f"{path.stem:<16} {' '.join(parameter_names(read(path)))}")


@notebooks_app.command("render")
def render(
    out: Path = typer.Option(Path("build/notebooks"), "--out", "-o", help="directory for the HTML files"),
    param: list[str] = typer.Option([], "--param", "-p",
                                    help="key=value for the notebooks' parameters cell, repeatable"),
    only: list[str] = typer.Option([], "--only", help="render just this notebook (name), repeatable"),
    timeout: int = typer.Option(300, min=1, help="seconds one cell may run"),
) -> None:
    """Execute the notebooks and write self-contained HTML with interactive charts."""
    from ops.core.redact import redact
    from ops.workbench.notebooks import notebook_paths
    from ops.workbench.notebooks import render as render_all

    params = _params(param)
    _check_out_dir(out)
    paths = notebook_paths(only=only or None)  # RenderError, like every UserError, is main()'s one line, exit 2
    if not paths:
        fail("no notebooks found")
    results = render_all(paths, out, params, timeout=timeout)
    failed = 0
    for r in results:
        if r.ok:
            typer.echo(f"{r.name:<16} {r.html}  ({r.seconds:.1f} s)")
        else:
            failed += 1
            # one line per notebook: the error's first line (the SQL and the cell's traceback are in the HTML
            # when it was written, and a re-run with the notebook open shows them)
            first = (str(r.error or "").strip().splitlines() or ["failed"])[0]
            typer.echo(f"{r.name:<16} FAILED: {redact(first)[:300]}", err=True)
    if failed:
        raise typer.Exit(1)


def _check_out_dir(out: Path) -> None:
    """--out must be a directory we can create and write: one line now, not a traceback after the kernels ran."""
    import tempfile

    if out.exists() and not out.is_dir():
        fail(f"--out: {out} is a file; give a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".opsbench-", suffix=".probe"):
            pass
    except OSError as e:
        fail(f"--out: cannot write to {out}: {e.strerror or type(e).__name__}")


def register(app: typer.Typer) -> None:
    app.add_typer(notebooks_app, name="notebooks")
