"""SQL query modules: `queries.<subject>.<name>(conn, **params) -> DataFrame`.

The SQL lives in `queries/<subject>.sql`; see `queries.loader` for the format.
"""

from __future__ import annotations

from queries.loader import NamedQuery, QueryError, Subject, all_queries, get, load, script, subjects

__all__ = ["NamedQuery", "QueryError", "Subject", "all_queries", "get", "load", "script", "subjects"]


def __getattr__(name: str) -> Subject:
    if name in subjects():
        return load(name)
    raise AttributeError(f"module 'queries' has no attribute {name!r}")
