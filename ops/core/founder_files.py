"""Reading the small files a founder keeps (FX rates, store commission, provider costs).

Each file is read the same way: it must exist and be UTF-8 text, and an error
says what was expected, never what the file holds (it may sit next to secrets).
"""

from __future__ import annotations

from pathlib import Path

from ops.core.clock import parse_date


def read_text(path: Path, expected: str, *, label: str = "") -> tuple[str, str]:
    """(text, lower-case suffix) of a founder's file. ValueError: one line, prefixed with `label`."""
    path = Path(path).expanduser()
    prefix = f"{label}: " if label else ""
    if not path.is_file():
        raise ValueError(f"{prefix}no such file; {expected}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{prefix}cannot read the file ({type(e).__name__}); {expected}") from None
    return text, path.suffix.lower()


def number(value: object):
    """A finite Decimal from a number or its text, or None (a bool is not a number)."""
    from decimal import Decimal, InvalidOperation

    try:
        n = None if isinstance(value, bool) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return n if n is not None and n.is_finite() else None


def dated_conflict(rows: list, scope) -> tuple[str, object, object | None] | None:
    """The first problem with rows that carry effective dates (`.start`, `.until`: None = open):
    ("reversed", row, None) when a row's 'from' is not before its 'until', ("overlap", row, earlier row)
    when two rows of the same `scope(row)` cover one day; None when the dates are sound."""
    import datetime as dt

    lo, hi = dt.date.min, dt.date.max
    for i, a in enumerate(rows):
        if a.start and a.until and a.start >= a.until:
            return "reversed", a, None
        for b in rows[:i]:
            if scope(a) == scope(b) and (a.start or lo) < (b.until or hi) and (b.start or lo) < (a.until or hi):
                return "overlap", a, b
    return None


def day(value: object, where: str, fail: type[ValueError] = ValueError):
    """A calendar day from a founder's file (a TOML date or ISO text; empty: None), or `fail` with
    "<where> must be a date such as 2026-03-01"."""
    try:
        return parse_date(value)
    except ValueError:
        raise fail(f"{where} must be a date such as 2026-03-01") from None
