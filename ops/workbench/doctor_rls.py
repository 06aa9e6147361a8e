"""Doctor's row level security checks: what the analytics and maintenance roles can actually see.

Kept apart from ops/workbench/doctor.py, which calls `row_visibility()` with the verdict it read
on its own connection (ops/data/visibility.py: one catalog query and one EXISTS probe).
Advice here is advice that works for the owner found: a GRANT by a role that does not own the
table grants nothing ("WARNING: no privileges were granted"), so the owner is always named.
"""

from __future__ import annotations

from ops.data.visibility import TableView, Verdict

NAME = "row visibility"


def _fmt_rows(n: int) -> str:
    return f"~{n:,} rows" if n >= 0 else "rows not yet counted (never analyzed)"


def row_visibility(verdict: Verdict, role_label: str = "analytics") -> tuple[str, str]:
    """(level, message) for the role's tables: fail while row security hides rows, ok with the evidence."""
    hidden = verdict.hidden
    if hidden:
        more = [t.table for t in hidden[1:]]
        tail = f" (also {', '.join(dict.fromkeys(more))})" if more else ""
        return "fail", hidden[0].reason(verdict.role) + tail
    visible = [t for t in verdict.tables if t.exists and t.can_select and t.base_table]
    if not visible:
        return "warn", f"{verdict.role} can read none of the tables the {role_label} queries read (see the privileges line)"
    with_rls = [t for t in visible if t.rls]
    if not with_rls:
        return "ok", f"no row level security on the {len(visible)} table(s) {verdict.role} reads: it sees every row"
    how = sorted({_how(t) for t in with_rls})
    return "ok", (f"row level security is on for {len(with_rls)} of {len(visible)} table(s) and hides nothing "
                  f"from {verdict.role}: {'; '.join(how)}")


def _how(t: TableView) -> str:
    who = t.reader or "?"
    if t.reader_bypasses:
        why = f"{who} has BYPASSRLS"
    elif t.reader_owns and not t.force_rls:
        why = f"{who} owns the tables"
    else:
        why = "a policy USING (true) applies"
    return f"read through views owned by {who}, and {why}" if t.is_view else why


def grant_advice(user: str, tables: list[str], verdict: Verdict | None, privilege: str = "SELECT") -> str:
    """The GRANT that works for `tables`, run by whom: their owner (or a superuser), never just any admin."""
    by_owner: dict[str, list[str]] = {}
    rls = False
    for t in (verdict.tables if verdict else ()):
        if t.table in tables:
            by_owner.setdefault(t.owner or "?", []).append(t.base_table or t.table)
            rls = rls or t.rls
    if not by_owner:
        return f"GRANT {privilege} ON {', '.join(tables)} TO {user}, as the tables' owner"
    grants = "; ".join(f"as {owner}: GRANT {privilege} ON {', '.join(dict.fromkeys(names))} TO {user}"
                       for owner, names in by_owner.items())
    note = (" (a role that does not own a table grants nothing on it: 'no privileges were granted')")
    if rls:
        return (f"row level security is on: run deploy/roles.sql as postgres, which reads through views "
                f"(README: Supabase), or {grants}{note} and add a policy for {user}")
    return grants + note
