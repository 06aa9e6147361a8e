"""Shared SQL definitions (queries/shared/): each metric written once, pasted by the loader."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from queries import loader

REPO = Path(__file__).resolve().parents[1]


def test_the_wilson_z_is_written_once_and_python_reads_the_same_number():
    from jobs import metrics

    written = [p.relative_to(REPO).as_posix() for p in (REPO / "queries").rglob("*.sql")
               if "1.959964" in p.read_text(encoding="utf-8")]
    assert written == ["queries/shared/wilson.sql"]
    assert loader.constant("wilson_z") == metrics.WILSON_Z == 1.959964
    for name in ("daily", "by_provider", "by_model", "window", "window_by_provider"):
        assert "CAST(1.959964 AS float8) AS z" in loader.load("errors").queries[name].sql
    assert "CAST(1.959964 AS float8) AS z" in loader.load("state/rollups").queries["errors_series"].sql


def test_raw_and_rollup_extraction_paste_the_same_definition():
    raw, extract = loader.load("errors").queries, loader.load("rollups").queries
    for q in (raw["daily"], raw["by_provider"], extract["jobs_days"]):
        assert "-- shared/job_days.sql" in q.sql
    assert "-- shared/revenue_rows.sql" in loader.load("revenue").queries["daily"].sql
    assert "-- shared/revenue_rows.sql" in extract["revenue_days"].sql
    assert "-- shared/active_days.sql" in loader.load("activity").queries["daily"].sql
    assert "-- shared/active_days.sql" in extract["user_days"].sql


def test_an_include_pastes_the_text_with_a_comma_when_asked(tmp_path):
    f = tmp_path / "x.sql"
    f.write_text("-- name: q\n-- A query.\n-- :param start date  first\n-- :param end date  last\n"
                 "-- :param tz tz = UTC  zone\nWITH\n-- include: local_days,\nz AS (SELECT 1 AS one)\n"
                 "SELECT d.day FROM days d, z\n", encoding="utf-8")
    sql = loader.parse_sql_file(f)["q"].sql
    assert re.search(r"\)\s*,\s*\nz AS", sql)          # the comma after the pasted CTEs
    assert "win AS NOT MATERIALIZED" in sql and "-- include" not in sql


def test_an_unknown_include_is_refused_naming_it(tmp_path):
    f = tmp_path / "y.sql"
    f.write_text("-- name: q\n-- A query.\nWITH\n-- include: no_such_metric\nSELECT 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no_such_metric"):
        loader.parse_sql_file(f)


def test_every_query_still_loads():
    assert len(loader.all_queries()) > 40
    for subject in ("state/rollups",):
        assert loader.load(subject).queries


def test_a_metric_rule_is_one_function_and_its_registration():
    from jobs import metrics

    @metrics.metric_rule(limit=metrics.number(3))
    def demo_rule(ctx, conn, a):
        return metrics.CheckOutput(metrics={"limit": a["limit"]})

    try:
        assert demo_rule.__name__ == "demo_rule" and "demo_rule" in metrics.RULES
        metrics.validate_args({"limit": 5, "checks": ["demo_rule"]})     # its key and its name are known
        with pytest.raises(metrics.JobArgError, match="args.limit: expected a number"):
            metrics.validate_args({"limit": "many"})
        assert metrics._parsed(metrics.RULES["demo_rule"], {}) == {"limit": 3}
    finally:
        del metrics.RULES["demo_rule"]
    with pytest.raises(metrics.JobArgError, match="args.limit: unknown key"):
        metrics.validate_args({"limit": 5})
