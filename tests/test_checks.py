"""Checks as data: check files, broken files, the `opsbench checks` commands and the README's example.

Expected counts and ids come from the generator's manifest (what it planted)
or from pandas over the raw tables, never from the checks under test.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from support.recompute import read_table

from jobs import reconcile
from ops.contract import JobContext, Severity
from ops.core.settings import load_settings
from queries import checkfile

README = Path(__file__).resolve().parents[1] / "README.md"
NOW = dt.datetime(2026, 7, 1, 4, 0, tzinfo=dt.UTC)


def _readme_example() -> tuple[str, str]:
    """(file name, SQL) of the example in the README's "Adding your own check"."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Adding your own check"):]
    section = section[: section.index("\n## ")]
    name = re.search(r"For example, `([a-z0-9_]+\.sql)`:", section).group(1)
    sql = re.search(r"```sql\n(.*?)```", section, re.DOTALL).group(1)
    return name, sql


def _settings(db, checks_dir: Path | None):
    extra = {"OPSBENCH_CHECKS_DIR": str(checks_dir)} if checks_dir else {}
    return load_settings(DATABASE_URL=db.url, OPSBENCH_STATE_URL=db.url,
                         OPSBENCH_HOME=str(db.settings.home), **extra)


def _run_job(db, checks_dir: Path | None, **args):
    ctx = JobContext(settings=_settings(db, checks_dir), job_id="reconcile", run_id="r1", args=args,
                     clock=lambda: NOW)
    return reconcile.reconcile(ctx)


def _cli(monkeypatch, capsys, db, checks_dir, *argv) -> tuple[int, str, str]:
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", db.url)
    if checks_dir is not None:
        monkeypatch.setenv("OPSBENCH_CHECKS_DIR", str(checks_dir))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the shipped checks -------------------------------------------------------------------------------


def test_every_shipped_check_file_is_a_valid_check():
    shipped = checkfile.shipped()
    assert [c.name for c in shipped] == sorted(c.name for c in shipped)
    assert len(shipped) == 11 and all(c.shipped and c.offender for c in shipped)
    by_name = {c.name: c for c in shipped}
    assert by_name["negative_balances"].requires == ("negative_balance",)
    assert {n for n, c in by_name.items() if c.severity == "critical"} == {
        "negative_balances", "purchase_credit_mismatch", "purchase_credited_to_other_user", "iap_refund_mismatch"}


def test_the_reconciliation_subject_still_serves_every_shipped_check(demo_db):
    """Each file in queries/checks is a query of `reconciliation` that returns what the file's own text returns.

    The expected rows come from the file run as it is (psycopg, no loader), and their number from the manifest.
    """
    import pandas as pd
    import psycopg

    import queries

    recon = queries.load("reconciliation")
    files = sorted((Path(queries.__file__).parent / "checks").glob("*.sql"))
    assert len(files) == 11
    for path in files:
        name = path.stem
        assert name in recon.queries, name
        text = path.read_text(encoding="utf-8")
        description = re.search(r"^-- description: (.*)$", text, re.MULTILINE).group(1)
        assert recon.queries[name].description == description, name
        if recon.queries[name].params:
            # negative_model_margin takes the provider costs (OPSBENCH_PROVIDER_COSTS), none here: no rows
            text = text.replace("CAST(:costs AS jsonb)", "CAST(NULL AS jsonb)")
        with psycopg.connect(demo_db.url) as conn, conn.cursor() as cur:
            cur.execute(text)
            want = pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])
        with demo_db.analytics.connect() as conn:
            got = getattr(recon, name)(conn)
        assert len(want) == demo_db.manifest["checks"].get(name, 0), name   # a check needing a costs file: 0 here
        assert len(want) > 0 or recon.queries[name].params, name
        assert list(got.columns) == list(want.columns), name
        assert got.astype(str).values.tolist() == want.astype(str).values.tolist(), name
    assert {"summary", "user_ledger"} <= set(recon.queries)


# -- the README's example, end to end -----------------------------------------------------------------


def test_readme_example_runs_through_the_cli_and_the_reconcile_job(demo_db, tmp_path, monkeypatch, capsys):
    file_name, sql = _readme_example()
    checks_dir = tmp_path / "checks"
    checks_dir.mkdir()
    (checks_dir / file_name).write_text(sql, encoding="utf-8")
    name = file_name.removesuffix(".sql")
    # what it must find: users with no signup_bonus row, from the raw tables and the manifest
    users = read_table(demo_db.writer, "users")
    ledger = read_table(demo_db.writer, "quota_log")
    bonus = set(ledger.loc[ledger["reason"] == "signup_bonus", "user_id"])
    expected = sorted(str(u) for u in users.loc[~users["id"].isin(bonus), "id"])
    assert expected == demo_db.manifest["fault_ids"]["no_ledger_user"]

    code, out, err = _cli(monkeypatch, capsys, demo_db, checks_dir, "checks", "run", name, "--format", "json")
    assert code == 1, err  # it found something
    rows = json.loads(out)
    assert sorted(r["user_id"] for r in rows) == expected
    assert "Users who never got their signup bonus" in err

    code, out, err = _cli(monkeypatch, capsys, demo_db, checks_dir, "checks", "list")
    assert code == 0 and name in out and str(checks_dir / file_name) in out and "BROKEN" not in err

    result = _run_job(demo_db, checks_dir, evidence_rows=3)
    assert result.status == "ok"
    by_check = {f.labels["check"]: f for f in result.findings}
    mine = by_check[name]
    assert (mine.rule, mine.severity, mine.evidence_count) == (f"reconcile_{name}", Severity.info, len(expected))
    assert mine.command == f"opsbench checks run {name}"
    assert [r["user_id"] for r in mine.evidence] == [u[:8] for u in expected]
    assert next(iter(mine.evidence[0])) == "user_id" and "email" not in mine.evidence[0]
    assert mine.requires == ("database_unreachable",)
    # the shipped checks are unchanged by it, and it is counted like them
    assert result.metrics == {f"reconcile_{c}": float(n) for c, n in
                              {**demo_db.manifest["checks"], name: len(expected)}.items()}
    assert f"reconcile_{name}" in result.rules

    # the README's word on a typo: the check's own finding, at the file and line it names
    (checks_dir / file_name).write_text(sql.replace("q.reason", "q.reson"), encoding="utf-8")
    typo = {f.labels["check"]: f for f in _run_job(demo_db, checks_dir).findings}[name]
    assert f"{checks_dir / file_name}:10: column q.reson does not exist" in typo.summary


# -- broken check files --------------------------------------------------------------------------------

GOOD = """-- description: Users with more than a million credits.
-- severity: warning
-- offender: user_id
SELECT id AS user_id, credits_remaining FROM users WHERE credits_remaining > 1000000
"""

BROKEN = {
    # an SQL error on the statement's third line (line 6 of the file)
    "sql_error": ("-- description: d\n-- severity: info\n-- offender: user_id\nSELECT id AS user_id\n"
                  "FROM users\nWHERE no_such_column > 0\n", 6, "no_such_column"),
    "no_severity": ("-- description: d\n-- offender: user_id\nSELECT 1 AS user_id\n", 1, "severity"),
    "bad_severity": ("-- description: d\n-- severity: urgent\n-- offender: user_id\nSELECT 1 AS user_id\n", 2,
                     "urgent"),
    "typo_field": ("-- description: d\n-- severty: info\n-- offender: user_id\nSELECT 1 AS user_id\n", 2,
                   "severty"),
    "writes": ("-- description: d\n-- severity: info\n-- offender: id\n\nDELETE FROM users WHERE false\n", 5,
               "DELETE"),
    "writing_cte": ("-- description: d\n-- severity: info\n-- offender: id\nWITH gone AS (\n"
                    "    DELETE FROM users WHERE false RETURNING id\n)\nSELECT id FROM gone\n", 5, "DELETE"),
    "two_statements": ("-- description: d\n-- severity: info\n-- offender: x\nSELECT 1 AS x;\n"
                       "UPDATE users SET credits_remaining = 0\n", 4, "more than one statement"),
    "wrong_offender": ("-- description: d\n-- severity: info\n-- offender: user_id\nSELECT id FROM users\n", 4,
                       "offender column 'user_id'"),
    # found before it ever returns a row
    "wrong_offender_empty": ("-- description: d\n-- severity: info\n-- offender: user_id\n"
                             "SELECT id FROM users WHERE false\n", 4, "offender column 'user_id'"),
    # writes the static reading cannot see: the read-only transaction refuses them
    "sneaky_write": ("-- description: d\n-- severity: info\n-- offender: id\nSELECT nextval('purchases_id_seq') AS id\n",
                     4, "read-only transaction"),
}
CLASH = "balance_vs_ledger"  # a user file named like a shipped check


@pytest.fixture()
def broken_dir(tmp_path) -> Path:
    d = tmp_path / "mine"
    d.mkdir()
    (d / "big_balances.sql").write_text(GOOD, encoding="utf-8")
    for name, (text, _, _) in BROKEN.items():
        (d / f"{name}.sql").write_text(text, encoding="utf-8")
    # runs first (alphabetically): tries to switch the session to read-write for the checks after it
    (d / "a_unlock.sql").write_text("-- description: d\n-- severity: info\n-- offender: x\n"
                                    "SELECT set_config('default_transaction_read_only', 'off', false) AS x\n",
                                    encoding="utf-8")
    (d / "Bad-Name.sql").write_text(GOOD, encoding="utf-8")
    (d / f"{CLASH}.sql").write_text(GOOD, encoding="utf-8")
    return d


def test_each_broken_file_is_its_own_finding_with_file_and_line_and_the_others_run(demo_db, broken_dir):
    purchases_before = len(read_table(demo_db.writer, "purchases"))
    result = _run_job(demo_db, broken_dir)
    assert result.status == "ok"
    by_check = {f.labels["check"]: f for f in result.findings}
    for name, (_, line, words) in BROKEN.items():
        f = by_check[name]
        assert f.rule == f"reconcile_{name}" and "the check is broken" in f.summary, f.summary
        assert f"{broken_dir / name}.sql:{line}:" in f.summary, (name, f.summary)
        assert words in f.summary, (name, f.summary)
        assert f.command == f"opsbench checks run {name}" and f.evidence == []
    assert "bad_name" in by_check and "bad check name" in by_check["bad_name"].summary
    # the clash is reported under its own name; the shipped check keeps its alert and its rows
    clash = by_check[f"{CLASH}_duplicate_name"]
    assert "taken by a shipped check" in clash.summary and f"{broken_dir / CLASH}.sql:1:" in clash.summary
    # every runnable check ran: the shipped ones with the planted counts, and the user's good ones
    assert result.metrics == {**{f"reconcile_{c}": float(n) for c, n in demo_db.manifest["checks"].items()},
                              "reconcile_big_balances": 0.0, "reconcile_a_unlock": 1.0}
    assert by_check["balance_vs_ledger"].evidence_count == demo_db.manifest["checks"]["balance_vs_ledger"]
    assert "BROKEN sql_error" in result.summary
    assert set(result.not_run) == set(BROKEN) | {"bad_name", f"{CLASH}_duplicate_name"}, result.not_run
    assert len(read_table(demo_db.writer, "purchases")) == purchases_before


def test_broken_files_on_the_cli(demo_db, broken_dir, monkeypatch, capsys):
    code, out, err = _cli(monkeypatch, capsys, demo_db, broken_dir, "checks", "list")
    assert code == 0 and "big_balances" in out
    assert f"BROKEN {broken_dir / 'writes.sql'}:5:" in err
    code, out, err = _cli(monkeypatch, capsys, demo_db, broken_dir, "checks", "run", "sql_error")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{broken_dir / 'sql_error.sql'}:6:" in err and "no_such_column" in err
    code, out, err = _cli(monkeypatch, capsys, demo_db, broken_dir, "checks", "run", "writes")
    assert code == 2 and "DELETE" in err
    code, out, err = _cli(monkeypatch, capsys, demo_db, broken_dir, "checks", "run", "big_balances")
    assert code == 0 and "(0 rows)" in err


def test_a_reconcile_run_with_a_broken_check_is_not_a_pass_on_the_cli(demo_db, broken_dir, monkeypatch, capsys):
    # the job itself is ok (the daemon keeps running it), but `opsbench run` must not exit 0 on a check that did not run
    code, out, err = _cli(monkeypatch, capsys, demo_db, broken_dir, "run", "reconcile")
    assert code == 1, (out, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("opsbench: error: reconcile: could not run ") and "sql_error" in last, err
    code, out, err = _cli(monkeypatch, capsys, demo_db, broken_dir, "checks", "run", "bad_name")  # its alert's command
    assert code == 2 and "bad check name 'Bad-Name'" in err
    code, out, err = _cli(monkeypatch, capsys, demo_db, broken_dir, "checks", "run", "nope")
    assert code == 2 and "unknown check 'nope'" in err


def test_new_writes_a_template_that_is_a_valid_check_and_never_overwrites(demo_db, tmp_path, monkeypatch, capsys):
    d = tmp_path / "own"
    code, out, err = _cli(monkeypatch, capsys, demo_db, d, "checks", "new", "rich_users")
    assert code == 0 and out.strip() == str(d / "rich_users.sql")
    check = checkfile.parse(d / "rich_users.sql")
    assert isinstance(check, checkfile.Check), check
    assert (check.severity, check.offender, check.requires) == ("warning", ("user_id",), ())
    code, out, err = _cli(monkeypatch, capsys, demo_db, d, "checks", "run", "rich_users")
    assert code == 0, err
    (d / "rich_users.sql").write_text(GOOD, encoding="utf-8")
    code, out, err = _cli(monkeypatch, capsys, demo_db, d, "checks", "new", "rich_users")
    assert code == 2 and "already exists" in err
    assert (d / "rich_users.sql").read_text(encoding="utf-8") == GOOD
    for bad, words in (("Rich", "bad check name"), ("negative_balances", "shipped check")):
        code, out, err = _cli(monkeypatch, capsys, demo_db, d, "checks", "new", bad)
        assert code == 2 and words in err


def test_new_without_a_checks_dir_says_which_setting(demo_db, monkeypatch, capsys):
    code, _, err = _cli(monkeypatch, capsys, demo_db, None, "checks", "new", "x")
    assert code == 2 and "OPSBENCH_CHECKS_DIR" in err


def test_a_missing_checks_dir_is_reported_not_fatal(demo_db, tmp_path):
    result = _run_job(demo_db, tmp_path / "absent")
    assert any("not a folder" in f.summary for f in result.findings)
    assert result.metrics == {f"reconcile_{c}": float(n) for c, n in demo_db.manifest["checks"].items()}


def test_jobs_file_args_may_name_the_founders_checks(tmp_path, monkeypatch):
    from ops.core.errors import JobArgError
    from ops.core.settings import reset_settings_cache

    (tmp_path / "big_balances.sql").write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("OPSBENCH_CHECKS_DIR", str(tmp_path))
    reset_settings_cache()
    reconcile.validate_args({"checks": ["big_balances", "negative_balances"], "severity": {"big_balances": "info"}})
    with pytest.raises(JobArgError, match="no such check"):
        reconcile.validate_args({"severity": {"nope": "info"}})


def test_doctor_counts_the_checks_and_names_a_broken_file(demo_db, broken_dir, tmp_path):
    from ops.workbench.doctor import check_check_files

    ok = check_check_files(_settings(demo_db, None))
    assert (ok.level, ok.message) == ("ok", "11 shipped, OPSBENCH_CHECKS_DIR not set")
    broken = check_check_files(_settings(demo_db, broken_dir))
    assert broken.level == "warn" and f"{broken_dir / 'Bad-Name.sql'}:1:" in broken.message
