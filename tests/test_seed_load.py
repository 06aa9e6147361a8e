"""The generator's fast load (keys, indexes and foreign keys built after the rows are in) gives the same
rows and the same manifest as loading into the indexed, constrained tables, and leaves the schema as it was."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

import queries
from ops.core.settings import load_settings
from ops.data import db as ops_db
from ops.data.embedded import ensure_database
from ops.data.seed import seed_database


def _checksums(engine) -> dict[str, tuple[int, str]]:
    df = queries.load("seed/verify").checksums(engine)
    return {t: (int(n), s) for t, n, s in zip(df["table_name"], df["row_count"], df["checksum"])}


def _definitions(engine) -> list[tuple]:
    return [tuple(r) for r in queries.load("seed/verify").definitions(engine).itertuples(index=False)]


@pytest.fixture(scope="module")
def reference(pg_server, schema_template, tmp_path_factory, demo_db):
    """small, seed 1, at the demo's anchor, loaded the slow way (keys in place while rows go in)."""
    name = f"seed_ref_{uuid.uuid4().hex[:10]}"
    ensure_database(pg_server.admin_url, name, template=schema_template)
    url = pg_server.url(name)
    settings = load_settings(DATABASE_URL=url, OPSBENCH_STATE_URL=url,
                             OPSBENCH_HOME=str(tmp_path_factory.mktemp("home")))
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    manifest = seed_database(url, scale="small", seed=1, anchor=anchor, keys_during_load=True)
    return manifest, ops_db.engine("analytics", settings)


def test_fast_load_gives_the_same_rows_and_manifest(reference, demo_db):
    manifest, engine = reference
    fast = _checksums(demo_db.writer)  # the demo template was seeded the default (fast) way
    assert fast == _checksums(engine)
    assert fast["quota_log"][0] == demo_db.manifest["ledger_rows"] > 0
    strip = lambda m: {k: v for k, v in m.items() if k != "seconds"}  # noqa: E731
    assert strip(manifest) == strip(demo_db.manifest)


def test_fast_load_leaves_every_key_index_and_foreign_key_as_the_schema_made_it(reference, demo_db, empty_db):
    schema = _definitions(empty_db.writer)
    assert {kind for _, kind, _, _ in schema} == {"constraint", "index"}
    assert any("FOREIGN KEY" in d for *_, d in schema) and any("PRIMARY KEY" in d for *_, d in schema)
    assert _definitions(demo_db.writer) == schema
    assert _definitions(reference[1]) == schema
