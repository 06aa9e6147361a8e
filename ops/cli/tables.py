"""Tables that fit the terminal they are printed on, without cutting what a founder types.

Every table command (`jobs`, `query --list`, `checks list`, `query NAME`, `alerts`, ...)
describes its columns with `Col` and prints through `print_table`:

- a *name* column (job id, query name, check name, alert key) and a *number* or
  *fixed* column (severity, dates, counts) are printed whole, never cut: they are
  what the founder types next or compares;
- a *text* column (description, summary) wraps at word boundaries, down to a
  readable minimum;
- when the columns still do not fit, the least important (highest `priority`)
  are left out, text first, and a line under the table names them and how to see
  them (`--format json`). A priority-0 column is never left out.

On a terminal the width is the terminal's (rich reads COLUMNS, then the tty);
piped, lines are as long as they need, so scripts get whole rows.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass

GAP = 2                  # spaces between columns
TEXT_MIN = 20            # a wrapped text column narrower than this is unreadable: leave it out instead
UNLIMITED = 10_000


@dataclass(frozen=True)
class Col:
    header: str
    kind: str = "text"         # name | number | fixed | text
    priority: int = 1          # 0: never left out; higher: left out sooner


def console_width() -> int:
    """The width to fit: the terminal's (COLUMNS first, as rich reads it), or unlimited when piped.

    Piped output ignores COLUMNS: shells and test runners (pytest-xdist workers) export it without a
    terminal, and a script reading the output wants whole rows.
    """
    from rich.console import Console

    if sys.stdout.isatty():
        return Console().width
    return UNLIMITED


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


def layout(cols: list[Col], rows: list[list[str]], width: int) -> tuple[list[int], list[int]]:
    """(kept column indexes, their widths) so that the table fits `width` where it can.

    Columns that must be whole take their widest value; text columns share what is left,
    at least TEXT_MIN (or their widest value, when narrower).
    """
    whole = [max([_cell_len(c.header)] + [_cell_len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    least = [whole[i] if c.kind != "text" else min(whole[i], max(TEXT_MIN, _cell_len(c.header)))
             for i, c in enumerate(cols)]
    keep = list(range(len(cols)))

    def need(ix: list[int]) -> int:
        return sum(least[i] for i in ix) + GAP * max(0, len(ix) - 1)

    while need(keep) > width:
        droppable = [i for i in keep if cols[i].priority > 0]
        if not droppable:
            break   # only never-cut columns left: printed whole, wider than the terminal
        # the least important first; among equals text before the rest, then the rightmost
        victim = max(droppable, key=lambda i: (cols[i].priority, cols[i].kind == "text", i))
        keep.remove(victim)
    # a narrower, less important column may still fit where a wide one did not: take it back
    for i in sorted(set(range(len(cols))) - set(keep), key=lambda i: (cols[i].priority, i)):
        if need(sorted(keep + [i])) <= width:
            keep = sorted(keep + [i])
    widths = {i: least[i] for i in keep}
    spare = max(0, width - need(keep))
    texts = [i for i in keep if cols[i].kind == "text"]
    while spare and texts:   # share the room left among text columns, up to their whole width
        hungry = [i for i in texts if widths[i] < whole[i]]
        if not hungry:
            break
        share = max(1, spare // len(hungry))
        for i in hungry:
            add = min(share, whole[i] - widths[i], spare)
            widths[i] += add
            spare -= add
    return keep, [widths[i] for i in keep]


def print_records(cols: list[Col], rows: list[list[str]], width: int) -> None:
    """Each row as a block: its short columns and its name on one line, its text wrapped below, indented.

    For lists whose text matters as much as the name (alerts): on a narrow terminal a
    table would have to leave the text out.
    """
    for r in rows:
        head = "  ".join(r[i] for i, c in enumerate(cols) if c.kind != "text" and r[i])
        if _cell_len(head) > width:   # the name on a line of its own, whole; the short columns above it
            print("  ".join(r[i] for i, c in enumerate(cols) if c.kind not in ("text", "name") and r[i]))
            head = "  ".join(r[i] for i, c in enumerate(cols) if c.kind == "name" and r[i])
        print(head)
        for i, c in enumerate(cols):
            if c.kind == "text" and r[i]:
                for part in r[i].splitlines():
                    print(textwrap.fill(part, width, initial_indent="    ", subsequent_indent="    ",
                                        break_on_hyphens=False))
    sys.stdout.flush()


def print_table(cols: list[Col], rows: list[list[str]], *, width: int | None = None, console=None,
                tty_style: bool | None = None, stack: bool = False) -> list[str]:
    """Print the table fitted to the terminal; return the headers left out (already said under the table).

    stack: when a column would be left out, print each row as a block instead (print_records).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    rows = [["" if v is None else str(v) for v in r] for r in rows]
    width = width or console_width()
    keep, widths = layout(cols, rows, width)
    if stack and len(keep) < len(cols):
        print_records(cols, rows, width)
        return []
    tty = sys.stdout.isatty() if tty_style is None else tty_style
    table = Table(box=None, pad_edge=False, padding=(0, GAP, 0, 0), header_style="bold" if tty else "",
                  show_edge=False, expand=False)
    for i, w in zip(keep, widths):
        c = cols[i]
        if c.kind == "text":
            table.add_column(escape(c.header), width=w, overflow="fold")
        else:
            table.add_column(escape(c.header), width=w, no_wrap=True,
                             justify="right" if c.kind == "number" else "left")
    for r in rows:
        table.add_row(*[escape(r[i]) for i in keep])
    # sized to the table itself: rich never squeezes a never-cut column to fit (the layout already did the
    # fitting; a table of never-cut columns wider than the terminal is printed whole)
    total = sum(widths) + GAP * max(0, len(widths) - 1)
    out = console or Console(no_color=not tty, highlight=False)
    out.width = max(total, 1)
    out.print(table)
    left_out = [cols[i].header for i in range(len(cols)) if i not in keep]
    if left_out:
        note = (f"({', '.join(left_out)} left out to fit {width} columns; "
                "a wider terminal or --format json shows them)")
        for line in textwrap.wrap(note, width=max(20, min(width, UNLIMITED))):
            out.print(line, soft_wrap=True, highlight=False, markup=False)
    return left_out
