"""Checks as data: one business invariant per `.sql` file.

A check is one read-only query that returns the offending rows (no rows =
pass). Its header, in SQL comments before the statement, says what it is::

    -- description: Users whose stored balance differs from the sum of their ledger.
    -- severity: warning              critical | warning | info
    -- offender: user_id               the column(s) that name one offender, comma-separated
    -- requires: negative_balance      optional: root-cause rule(s) it waits behind
    --
    -- :param costs costs = PROVIDER_COSTS   optional: a parameter with a default the settings give
    --                                       (queries/loader.py), e.g. the provider price list
    -- Any other comment is a note for the reader.
    SELECT ...

The file's name is the check's name (`queries/checks/balance_vs_ledger.sql` is
`balance_vs_ledger`). Shipped checks live in `queries/checks/`, the founder's
own in the folder `OPSBENCH_CHECKS_DIR` names. A file that cannot be a check
(bad header, not one SELECT/WITH statement, a name taken by a shipped check)
is returned as a `Problem` naming the file and line, never raised, so one
broken file cannot stop the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queries.loader import _PARAM, HEAD_PREFIX, QUERIES_DIR, NamedQuery, Param, _quiet_comment, _type

SHIPPED_DIR = QUERIES_DIR / "checks"
SEVERITIES = ("critical", "warning", "info")
FIELDS = ("description", "severity", "offender", "requires")

_CHECK_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELD = re.compile(r"^--\s*(?P<key>[a-z_]+)\s*:\s*(?P<value>.*?)\s*$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
# data-modifying CTE: WITH x AS (DELETE ...), also AS MATERIALIZED / NOT MATERIALIZED
_WRITING_CTE = re.compile(r"\bas\s*(?:not\s+)?(?:materialized\s*)?\(\s*(insert|update|delete|merge)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    name: str
    path: Path
    description: str
    severity: str
    offender: tuple[str, ...]
    requires: tuple[str, ...]
    line: int                       # first line of the statement in the file
    sql: str = field(repr=False)    # the statement as the loader binds it
    shipped: bool = False
    params: tuple[Param, ...] = ()  # each with a default: a check runs with no values given

    @property
    def query(self) -> NamedQuery:
        return NamedQuery("checks", self.name, self.description, self.params, self.sql)

    def where(self, line: int | None = None) -> str:
        return f"{self.path}:{line or self.line}"


@dataclass(frozen=True)
class Problem:
    """A check file that cannot run as a check, or a check that failed when run."""

    name: str
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    @property
    def key(self) -> str:
        """The name its alert goes by (a file name that is not a valid check name, made into one)."""
        return re.sub(r"[^a-z0-9_]+", "_", self.name.lower()).strip("_") or "check"


def _strip_code(sql: str) -> str:
    """The statement with comments and quoted text blanked (newlines kept), for the lexical checks."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", sql[i:j]))
            i = j
        elif c in "'\"":
            j = i + 1
            while j < n and not (sql[j] == c and not sql.startswith(c * 2, j)):
                j += 2 if sql.startswith(c * 2, j) else 1
            out.append(re.sub(r"[^\n]", " ", sql[i:j + 1]))
            i = j + 1
        elif c == "$" and (m := re.match(r"\$[a-zA-Z_0-9]*\$", sql[i:])):
            tag = m.group(0)
            j = sql.find(tag, i + len(tag))
            j = n if j < 0 else j + len(tag)
            out.append(re.sub(r"[^\n]", " ", sql[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def valid_name(name: str) -> bool:
    return bool(_CHECK_NAME.match(name))


def parse(path: Path, *, shipped: bool = False) -> Check | Problem:
    """One check file -> a Check, or the Problem that keeps it from being one."""
    name = path.stem
    if not _CHECK_NAME.match(name):
        return Problem(name, path, 1, f"bad check name {name!r}: use lowercase letters, digits and _ "
                                      "(the file name is the check's name)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return Problem(name, path, 1, f"cannot read the file: {e}")
    meta: dict[str, tuple[str, int]] = {}
    params: list[Param] = []
    start = None
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if not s:
            continue
        if not s.startswith("--"):
            start = i
            break
        p = _PARAM.match(s)
        if p:
            if _type(p["type"]) is None or p["default"] is None:
                return Problem(name, path, i, f"parameter {p['name']!r}: a check's parameter needs a known type "
                                              "and a default (`-- :param costs costs = PROVIDER_COSTS`)")
            params.append(Param(p["name"], p["type"], p["default"], p["doc"].strip()))
            continue
        m = _FIELD.match(s)
        if m:
            key = m["key"]
            if key not in FIELDS:
                return Problem(name, path, i, f"unknown header field {key!r} (expected: {', '.join(FIELDS)})")
            if key in meta:
                return Problem(name, path, i, f"header field {key!r} given twice")
            meta[key] = (m["value"], i)
    for key in ("description", "severity", "offender"):
        if not meta.get(key, ("", 0))[0]:
            at = meta.get(key, ("", 1))[1]
            return Problem(name, path, at, f"the header needs `-- {key}: ...`"
                           + (f" ({' | '.join(SEVERITIES)})" if key == "severity" else ""))
    severity, at = meta["severity"]
    if severity not in SEVERITIES:
        return Problem(name, path, at, f"severity {severity!r}: expected {' | '.join(SEVERITIES)}")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("offender", "requires"):
        value, at = meta.get(key, ("", 0))
        items = tuple(x.strip() for x in value.split(",") if x.strip())
        bad = [x for x in items if not _IDENT.match(x)]
        if bad:
            return Problem(name, path, at, f"{key}: {bad[0]!r} is not a column/rule name (comma-separated names)")
        lists[key] = items
    if start is None:
        return Problem(name, path, max(len(lines), 1), "no SQL statement after the header")
    body = "\n".join(lines[start - 1:])
    code = _strip_code(body)
    stripped = code.rstrip().rstrip(";")
    if ";" in stripped:
        semi = stripped.index(";")
        return Problem(name, path, start + code.count("\n", 0, semi),
                       "more than one statement: a check is one SELECT or WITH query")
    first = re.match(r"\s*(\w+)", code)
    keyword = first.group(1).upper() if first else ""
    if keyword not in ("SELECT", "WITH"):
        return Problem(name, path, start, f"the statement starts with {keyword or '?'}: a check is one SELECT or "
                                          "WITH query that only reads (it returns the offending rows)")
    writing = _WRITING_CTE.search(code)
    if writing:
        return Problem(name, path, start + code.count("\n", 0, writing.start(1)),
                       f"the WITH query runs {writing.group(1).upper()}: a check only reads")
    into = re.search(r"\binto\b", code, re.IGNORECASE)
    if into:
        return Problem(name, path, start + code.count("\n", 0, into.start()),
                       "SELECT ... INTO creates a table: a check only reads")
    sql = "\n".join(_quiet_comment(x) if x.strip().startswith("--") else x for x in lines[start - 1:])
    sql = sql.strip().rstrip(";").strip()
    return Check(name, path, meta["description"][0], severity, lists["offender"], lists["requires"], start, sql,
                 shipped, tuple(params))


@dataclass
class Catalogue:
    checks: dict[str, Check]
    problems: list[Problem]

    def names(self) -> list[str]:
        return list(self.checks)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.sql") if p.is_file())


def shipped() -> list[Check]:
    """The checks that come with opsbench, by name. A broken shipped file is a bug: it raises."""
    out = []
    for path in _files(SHIPPED_DIR):
        c = parse(path, shipped=True)
        if isinstance(c, Problem):
            raise ValueError(str(c))  # noqa: TRY004 - a malformed file, not a wrong type
        out.append(c)
    return out


def discover(checks_dir: Path | None) -> Catalogue:
    """The shipped checks, then the founder's own from `checks_dir` (None: none), each sorted by name."""
    checks = {c.name: c for c in shipped()}
    problems: list[Problem] = []
    if checks_dir is None:
        return Catalogue(checks, problems)
    folder = Path(checks_dir).expanduser()
    if not folder.is_dir():
        problems.append(Problem("(folder)", folder, 0, "OPSBENCH_CHECKS_DIR is not a folder"))
        return Catalogue(checks, problems)
    for path in _files(folder):
        c = parse(path)
        if isinstance(c, Problem):
            problems.append(c)
        elif c.name in checks:
            # reported under a name of its own: the shipped check's alert stays the shipped check's
            problems.append(Problem(f"{c.name}_duplicate_name", path, 1, f"the name {c.name!r} is taken by "
                                    f"{'a shipped check' if checks[c.name].shipped else checks[c.name].path}: "
                                    "rename the file"))
        else:
            checks[c.name] = c
    return Catalogue(checks, problems)


def settings_dir() -> Path | None:
    from ops.core.settings import get_settings

    return get_settings().checks_dir


# -- running ---------------------------------------------------------------------------------------


def readonly(conn):
    """The connection with every transaction begun READ ONLY (on top of the analytics role's own default)."""
    return conn.execution_options(postgresql_readonly=True)


def error_line(check: Check, exc: BaseException, *, wrapped: bool = True) -> Problem:
    """A failed run as a Problem at the line PostgreSQL points at (or the statement's first line)."""
    orig = getattr(exc, "orig", None) or exc
    text = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    line = check.line
    diag = getattr(orig, "diag", None)
    pos = getattr(diag, "statement_position", None) if diag is not None else None
    if pos:
        # run() sends the check wrapped by count_and_head (`wrapped`), lines before the check's own SQL
        prefix = HEAD_PREFIX if wrapped else ""
        server_text = prefix + check.sql.replace("\\:", ":")
        try:
            line = check.line + server_text[: int(pos) - 1].count("\n") - prefix.count("\n")
        except (ValueError, TypeError):
            pass
    from ops.core.redact import redact

    return Problem(check.name, check.path, max(line, check.line), redact(text)[:300])


def run(conn, check: Check, keep: int) -> tuple[int, list[dict[str, Any]]]:
    """(offending rows, the first `keep` of them with the offender columns first), one plain statement.

    Raises what the database raises; the caller rolls back. A result that lacks
    an offender column raises ValueError naming it, whether or not it has rows.
    """
    total, first, columns = check.query.count_head_and_columns(conn, max(keep, 1))
    missing = [c for c in check.offender if c not in columns]
    if missing:  # checked on every run, not only once rows turn up
        raise ValueError(f"offender column {missing[0]!r} is not in the result (columns: {', '.join(columns)})")
    first = [{**{c: r[c] for c in check.offender}, **r} for r in first]
    return total, first[:keep]
