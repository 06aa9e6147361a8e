"""The notebooks: executed with a real kernel against the seeded demo database.

One module-scoped pass runs every notebook (nbclient, ipykernel on this venv's
Python) with the demo database's URL in the kernel's environment, on a small
window that ends the day before the generator's anchor and contains its planted
error spike. Then each notebook must have produced its figures, and a number in
each is checked against the generator's manifest or the query module called
directly from here.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import os
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from support import browser
from support.recompute import read_table

import queries
from ops.notebook import PLOTLY_MIMETYPE
from ops.workbench import notebooks as render
from ops.core.clock import utc_now

NOTEBOOKS_DIR = render.NOTEBOOKS_DIR
# notebook -> figures it must draw on the demo data
EXPECTED_FIGURES = {"overview": 3, "revenue": 4, "activity": 4, "errors": 5, "reconciliation": 2, "economics": 4,
                    # the state store here has no opsbench tables: "no runs yet", no figures.
                    # Its figures on real job runs: tests/test_operations_notebook.py
                    "operations": 0}
WINDOW_DAYS = 14


# -- helpers -----------------------------------------------------------------

def _date(value) -> dt.date:
    return pd.Timestamp(str(value)).date()


def _figures(nb) -> list[dict]:
    return [out["data"][PLOTLY_MIMETYPE]
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if PLOTLY_MIMETYPE in out.get("data", {})]


def _title(fig: dict) -> str:
    title = fig.get("layout", {}).get("title", {})
    return title.get("text", "") if isinstance(title, dict) else str(title)


def _figure(nb, title_start: str) -> dict:
    found = [f for f in _figures(nb) if _title(f).startswith(title_start)]
    assert found, f"no figure titled {title_start!r}: {[_title(f) for f in _figures(nb)]}"
    return found[0]


def _values(arr) -> list:
    """Plotly JSON arrays may be plain lists or base64 typed arrays {'dtype', 'bdata'}."""
    if isinstance(arr, dict) and "bdata" in arr:
        a = np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
        return a.reshape(arr["shape"]).tolist() if "shape" in arr else a.tolist()
    return list(arr)


def _trace(fig: dict, name: str) -> dict:
    found = [t for t in fig["data"] if t.get("name") == name]
    assert found, f"no trace {name!r} in {_title(fig)!r}: {[t.get('name') for t in fig['data']]}"
    return found[0]


def _stdout(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


# Ways to run SQL a notebook must not use (the SQL belongs in queries/*.sql), case-insensitive.
_SQL_RUNNERS = [re.compile(p, re.IGNORECASE) for p in (
    r"\bread_sql", r"\bexec_driver_sql\b", r"\btext\s*\(", r"\bexecute\s*\(", r"\bsa\.text\b")]
# A string literal that starts like a statement is SQL text, whatever follows.
_SQL_START = re.compile(r"\s*\(?\s*(SELECT|WITH|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def _string_literals(source: str) -> list[str]:
    """Every string constant of a cell, f-strings' literal parts included."""
    tree = ast.parse(source)
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_the_sql_checks_catch_sql():
    """The clean-notebook checks below would catch SQL in any casing or form."""
    caught = [
        'df = pd.read_sql("select 1", engine)',
        'conn.exec_driver_sql(q)',
        'rows = conn.execute(sa.TEXT(q))',
        'q = text ("x")',
    ]
    for src in caught:
        assert any(w.search(src) for w in _SQL_RUNNERS), src
    for src in ('q = """\n  select day, sum(x) from t group by 1"""', "q = 'With w AS (VALUES (1)) TABLE w'",
                'q = f"delete from {t}"', "q = ('update t ' 'set a = 1')", 'x = ("  Insert into t values (1)")'):
        assert [s for s in _string_literals(src) if _SQL_START.match(s)], src
    for src in ('print("selected days: 3")', 'title = "withdrawals"', 'fig.update_layout(title="Daily revenue")',
                'fig.add_scatter(text=["a"], textposition="top center")'):
        assert not [s for s in _string_literals(src) if _SQL_START.match(s)], src
        assert not any(w.search(src) for w in _SQL_RUNNERS), src


# -- the committed notebooks ---------------------------------------------------

def test_the_five_notebooks_exist():
    assert {p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")} == set(EXPECTED_FIGURES)


@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_committed_notebook_is_clean(name):
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "opsbench"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [], f"{name}: cell {cell.id} has outputs"
        assert cell.execution_count is None, f"{name}: cell {cell.id} has an execution count"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert "tz" in render.parameter_names(nb)
    # thin: no SQL text, the data comes from queries/ through the read-only helper
    source = "\n".join(c.source for c in code)
    assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b[\s\S]*?\b(FROM|INTO|SET)\b", source, re.IGNORECASE)
    for cell in code:
        for word in _SQL_RUNNERS:
            assert not word.search(cell.source), f"{name}: cell {cell.id} calls {word.pattern}"
        sql = [s for s in _string_literals(cell.source) if _SQL_START.match(s)]
        assert sql == [], f"{name}: cell {cell.id} holds SQL text {sql}"
    # (operations reads the daemon's state store, through its own read-only helper)
    assert ("nb.state()" if name == "operations" else "nb.connect()") in source and "queries." in source
    # daily series go through the rollup-aware helpers (closed days from the rollups when the daemon keeps them)
    for subject in ("revenue", "activity", "errors"):
        assert f"queries.{subject}.daily(" not in source, f"{name}: use nb.{subject}_series"
    # stable cell ids keep diffs small
    assert all(re.fullmatch(rf"{name}-\d\d", c.id) for c in nb.cells)


# -- executing them ---------------------------------------------------------------

@pytest.fixture(scope="module")
def window(demo_db) -> dict:
    end = _date(demo_db.manifest["anchor"]) - dt.timedelta(days=1)
    return {"end": end, "start": end - dt.timedelta(days=WINDOW_DAYS - 1), "tz": "UTC"}


@pytest.fixture(scope="module")
def executed(demo_db, window, pg_home) -> dict:
    """Every notebook run once, with the demo DB handed to the kernel through the environment."""
    params = {"end": window["end"].isoformat(), "days": WINDOW_DAYS, "tz": window["tz"]}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", demo_db.url)
        mp.setenv("OPSBENCH_STATE_URL", demo_db.url)
        mp.setenv("OPSBENCH_HOME", str(pg_home))
        mp.setenv("REPORT_TZ", "UTC")
        # as `opsbench notebooks render` runs them: the pages load one shared plotly.js beside them
        return {name: render.execute(NOTEBOOKS_DIR / f"{name}.ipynb", params, timeout=180, ignore_unknown=True,
                                     plotlyjs_src=render.PLOTLYJS_FILE)
                for name in EXPECTED_FIGURES}


@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_notebook_runs_and_draws_its_figures(executed, name):
    nb = executed[name]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    figures = _figures(nb)
    assert len(figures) >= EXPECTED_FIGURES[name], [_title(f) for f in figures]
    assert all(f["data"] for f in figures), "a figure without traces"
    # each figure also carries HTML, so an exported notebook keeps it
    html = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if PLOTLY_MIMETYPE in o.get("data", {}) and "plotly-graph-div" in o["data"].get("text/html", "")]
    assert len(html) == len(figures)
    # the notebook read the database it was given, not the embedded default
    given = "OPSBENCH_STATE_URL" if name == "operations" else "DATABASE_URL"
    assert f"{given} (read-only session)" in _stdout(nb)


def test_revenue_daily_net_matches_the_query(executed, demo_db, window):
    fig = _figure(executed["revenue"], "Daily revenue (USD)")
    expected = queries.revenue.daily.raw(demo_db.analytics, start=window["start"], end=window["end"], tz="UTC")
    net = _trace(fig, "net")
    assert [str(x)[:10] for x in _values(net["x"])] == [d.isoformat() for d in expected["day"]]
    assert _values(net["y"]) == pytest.approx(expected["net"].tolist())
    assert expected["net"].sum() > 0  # the window is not empty


def test_activity_dau_matches_the_query(executed, demo_db, window):
    fig = _figure(executed["activity"], "Daily, weekly and monthly active users")
    expected = queries.activity.daily.raw(demo_db.analytics, start=window["start"], end=window["end"], tz="UTC")
    assert _values(_trace(fig, "dau")["y"]) == expected["dau"].tolist()
    assert expected["dau"].min() > 0


def test_errors_notebook_marks_the_planted_spike(executed, demo_db):
    spike_day = str(demo_db.manifest["spike"]["local_date"])[:10]
    fig = _figure(executed["errors"], "Daily job error rate")
    worst = _trace(fig, "worst day")
    assert str(_values(worst["x"])[0])[:10] == spike_day
    band = [t for t in fig["data"] if t.get("fill") == "tonexty"]
    assert band, "no confidence band"
    # the spike day is shaded as a spike (its Wilson lower bound is above the window's rate)
    noon = pd.Timestamp(spike_day) + pd.Timedelta(hours=12)
    shaded = [(pd.Timestamp(s["x0"]), pd.Timestamp(s["x1"])) for s in fig["layout"].get("shapes", [])
              if s.get("type") == "rect"]
    assert any(lo <= noon <= hi for lo, hi in shaded), shaded
    assert f"spike days: {spike_day}" in _stdout(executed["errors"])


def test_reconciliation_counts_match_the_manifest(executed, demo_db):
    fig = _figure(executed["reconciliation"], "Reconciliation checks")
    counts: dict[str, int] = {}
    for trace in fig["data"]:
        counts.update(zip(_values(trace["x"]), _values(trace["y"])))
    # (reconciliation.summary: the checks that need no settings, not negative_model_margin: provider costs)
    assert counts == {c: n for c, n in demo_db.manifest["checks"].items() if c != "negative_model_margin"}


def test_the_drill_down_defaults_to_the_flagged_user_with_the_most_to_show(executed, demo_db):
    """Of every user a check flags: the one flagged by the most checks, then one whose balance drifts from its
    ledger, then the one with the most ledger rows, purchases and jobs (drift and rows counted here from the raw
    tables), drawn on a time axis and said why: never a user with nothing to draw, picked without a word."""
    flagged: dict[str, set] = {}
    for name in queries.reconciliation.summary(demo_db.analytics)["check"]:
        rows = getattr(queries.reconciliation, name)(demo_db.analytics)
        if "user_id" in rows.columns:
            for u in rows["user_id"].dropna().astype(str):
                flagged.setdefault(u, set()).add(name)
    assert flagged
    counts = {u: 0 for u in flagged}
    for table in ("quota_log", "purchases", "video_jobs"):
        for user, n in read_table(demo_db.analytics, table)["user_id"].astype(str).value_counts().items():
            if user in counts:
                counts[user] += int(n)
    ledger_sum = read_table(demo_db.analytics, "quota_log").assign(
        user_id=lambda d: d["user_id"].astype(str)).groupby("user_id")["change"].sum()
    users = read_table(demo_db.analytics, "users").assign(id=lambda d: d["id"].astype(str)).set_index("id")
    drifts = {u: int(users.loc[u, "credits_remaining"]) != int(ledger_sum.get(u, 0)) for u in flagged}
    best = sorted(flagged, key=lambda u: (-len(flagged[u]), not drifts[u], -counts[u], u))[0]
    assert counts[best] > 0
    said = "".join(o.get("data", {}).get("text/markdown", "") for c in executed["reconciliation"].cells
                   if c.cell_type == "code" for o in c.outputs)
    assert f"**Why this user:** of the {len(flagged)} users the checks flag, `{best}`" in said
    assert all(f"`{name}`" in said.split("**Why this user:**")[1].split("\n")[0] for name in flagged[best])
    drill = _figure(executed["reconciliation"], "User ")
    assert _title(drill) == f"User {best}"
    axes = [v for k, v in drill["layout"].items() if k.startswith("xaxis")]
    assert axes and all(a.get("type") == "date" for a in axes)
    ledger_rows = int((read_table(demo_db.analytics, "quota_log")["user_id"].astype(str) == best).sum())
    x = _values(_trace(drill, "ledger running balance")["x"])
    assert len(x) == min(ledger_rows, 1000) > 0          # users.ledger shows the latest 1000
    assert all(re.match(r"20\d\d-\d\d-\d\d", str(v)) for v in x)   # times on the axis, not 0..n


def test_overview_yesterday_revenue_matches_the_query(executed, demo_db, window):
    fig = _figure(executed["overview"], "Up to ")
    tile = _trace(fig, "net revenue / yesterday")
    day = window["end"]
    expected = queries.revenue.summary(demo_db.analytics, start=day, end=day, tz="UTC")
    before = queries.revenue.summary(demo_db.analytics, start=day - dt.timedelta(days=1),
                                     end=day - dt.timedelta(days=1), tz="UTC")
    assert tile["value"] == pytest.approx(float(expected["net"].iloc[0]))
    assert tile["delta"]["reference"] == pytest.approx(float(before["net"].iloc[0]))
    status = _figure(executed["overview"], "Reconciliation")
    assert sum(sum(_values(t["y"])) for t in status["data"]) == sum(demo_db.manifest["checks"].values())


def test_operations_on_a_state_store_without_tables_says_no_runs_yet(executed):
    nb = executed["operations"]
    shown = "".join(o.get("data", {}).get("text/markdown", "") for c in nb.cells if c.cell_type == "code"
                    for o in c.outputs)
    assert "**No runs yet.** The state store has no `opsbench` tables (job_runs," in shown
    assert _figures(nb) == []


# -- parameters -----------------------------------------------------------------------

def test_injected_parameters_follow_the_parameters_cell():
    nb = render.read(NOTEBOOKS_DIR / "errors.ipynb")
    at = render.parameters_cell(nb)
    render.inject_parameters(nb, {"end": dt.date(2026, 11, 20), "days": 7})
    cell = nb.cells[at + 1]
    assert cell.metadata["tags"] == [render.INJECTED_TAG]
    assert "end = '2026-11-20'" in cell.source and "days = 7" in cell.source
    with pytest.raises(render.RenderError, match="unknown parameter 'nope'"):
        render.inject_parameters(render.read(NOTEBOOKS_DIR / "errors.ipynb"), {"nope": 1})


def test_cli_values_are_literals_or_text():
    assert render.parse_value("14") == 14
    assert render.parse_value("None") is None
    assert render.parse_value("2026-11-20") == "2026-11-20"
    assert render.parse_value("Europe/Istanbul") == "Europe/Istanbul"


# -- the helper outside a kernel ----------------------------------------------------

def test_window_defaults_to_yesterday_in_the_report_zone(monkeypatch, demo_db):
    import ops.notebook as nb

    monkeypatch.setenv("DATABASE_URL", demo_db.url)
    monkeypatch.setenv("REPORT_TZ", "Pacific/Kiritimati")  # UTC+14: often a different date from UTC
    monkeypatch.setattr(nb, "_settings", None)
    from zoneinfo import ZoneInfo

    start, end, tz = nb.window(days=7)
    assert tz == "Pacific/Kiritimati"
    assert end == utc_now().astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=1)
    assert (end - start).days == 6
    assert nb.window("2026-11-01", "2026-11-03", tz="UTC") == (dt.date(2026, 11, 1), dt.date(2026, 11, 3), "UTC")
    with pytest.raises(ValueError, match="after end"):
        nb.window("2026-11-05", "2026-11-03")


def test_connect_is_read_only(monkeypatch, demo_db):
    import ops.notebook as nb

    monkeypatch.setenv("DATABASE_URL", demo_db.url)
    monkeypatch.setattr(nb, "_settings", None)
    engine = nb.connect()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW default_transaction_read_only").scalar() == "on"
        with pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.exec_driver_sql("DELETE FROM error_log")


def test_connect_without_database_url_seeds_the_embedded_demo(monkeypatch, pg_server, pg_home):
    """No DATABASE_URL: the embedded server's demo database, seeded when empty (same server as the tests)."""
    import ops.notebook as nb
    from ops.data.seed import load_manifest

    monkeypatch.setenv("OPSBENCH_HOME", str(pg_home))
    monkeypatch.setattr(nb, "_settings", None)
    s = nb.settings()
    assert s.uses_embedded
    engine = nb.connect()
    manifest = load_manifest(s)
    assert manifest is not None
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT current_database()").scalar() == "opsbench"
        assert conn.exec_driver_sql("SELECT count(*) FROM users").scalar() == manifest["users"]
    assert "embedded demo database" in nb.describe(s)


# -- opsbench notebooks render ----------------------------------------------------------

def test_render_writes_offline_html_with_interactive_charts(monkeypatch, demo_db, window, tmp_path, capsys):
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", demo_db.url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", demo_db.url)
    out = tmp_path / "html"
    code = main(["notebooks", "render", "--out", str(out), "--only", "errors",
                 "-p", f"end={window['end']}", "-p", "days=7", "-p", "tz=UTC"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["errors.html", "index.html", "plotly.min.js"]
    html = (out / "errors.html").read_text(encoding="utf-8")
    # one copy of plotly.js beside the pages, loaded by a relative path: the folder opens offline
    assert re.search(r"plotly\.js v\d", (out / "plotly.min.js").read_text(encoding="utf-8"))
    assert not re.search(r"plotly\.js v\d", html)
    assert re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html) == ["plotly.min.js"]
    assert (out / "errors.html").stat().st_size < 500_000
    assert html.count("Plotly.newPlot") >= EXPECTED_FIGURES["errors"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="errors.html">errors</a>' in index and "days=7" in index and "tz=UTC" in index
    assert re.search(r"ran \d{4}-\d\d-\d\d \d\d:\d\d UTC", index)
    # (long titles are cut into lines for phones: "<br>", escaped in the page's JSON)
    assert "Daily job error rate with 95 % confidence band" in html.replace("\\u003cbr\\u003e", " ")
    spike_day = str(demo_db.manifest["spike"]["local_date"])[:10]
    assert f"spike days: {spike_day}" in html
    # offline: no script is fetched from anywhere else
    assert not re.search(r"<script[^>]*\ssrc=\"(https?:)?//", html)
    # the report shows the story and the charts, not the code
    assert "queries.errors.daily(" not in html and "nb.errors_series(" not in html
    # its kernel is stopped once the page is written, not left to notice this process exit
    # ("[IPKernelApp] WARNING | Parent appears to have exited" after `make demo`)
    assert _kernels_of(os.getpid()) == []


def _kernels_of(pid: int) -> list[int]:
    """Live ipykernel processes whose parent is `pid` (read from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z" and "ipykernel" in cmdline:
            out.append(int(entry.name))
    return out


def test_render_rejects_an_unknown_parameter(capsys):
    from ops.cli import main

    assert main(["notebooks", "render", "--only", "errors", "-p", "colour=red"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("opsbench: error: unknown parameter 'colour'") and "\n" not in err
    assert main(["notebooks", "render", "--only", "nosuch"]) == 2
    assert "no notebook 'nosuch'" in capsys.readouterr().err


def test_render_reports_a_failing_notebook(monkeypatch, demo_db, tmp_path, capsys):
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", demo_db.url)
    code = main(["notebooks", "render", "--out", str(tmp_path), "--only", "errors", "-p", "end=not-a-date"])
    assert code == 1
    err = capsys.readouterr().err
    assert "errors" in err and "FAILED" in err and "expected a date YYYY-MM-DD" in err
    assert not (tmp_path / "errors.html").exists()


# -- queries/users.sql: the drill-down ----------------------------------------------------

def test_user_drill_down_queries(demo_db):
    eng = demo_db.analytics
    # the planted user with a balance and no ledger rows
    lonely = demo_db.manifest["fault_ids"]["no_ledger_user"][0]
    p = queries.users.profile(eng, user_id=lonely).iloc[0]
    assert (p["ledger_rows"], p["ledger_sum"]) == (0, 0)
    assert p["drift"] == p["credits_remaining"] != 0
    assert queries.users.ledger(eng, user_id=lonely).empty

    # a drifted user: running balance and drift recomputed from raw ledger rows
    user = demo_db.manifest["fault_ids"]["balance_drift_users"][0]
    with eng.connect() as conn:
        raw = pd.DataFrame(conn.exec_driver_sql(
            "SELECT change, created_at, id FROM quota_log WHERE user_id = %(u)s", {"u": user}).fetchall(),
            columns=["change", "created_at", "id"]).sort_values(["created_at", "id"])
        balance = conn.exec_driver_sql("SELECT credits_remaining FROM users WHERE id = %(u)s", {"u": user}).scalar()
    ledger = queries.users.ledger(eng, user_id=user)
    assert ledger["running_balance"].tolist() == raw["change"].cumsum().tolist()
    p = queries.users.profile(eng, user_id=user).iloc[0]
    assert p["ledger_sum"] == raw["change"].sum() and p["drift"] == balance - raw["change"].sum() != 0

    # a planted failed job that charged credits and was never refunded
    job = demo_db.manifest["fault_ids"]["failed_without_refund_jobs"][0]
    with eng.connect() as conn:
        owner = str(conn.exec_driver_sql("SELECT user_id FROM video_jobs WHERE id = %(j)s", {"j": job}).scalar())
    jobs = queries.users.jobs(eng, user_id=owner)
    row = jobs[jobs["id"].astype(str) == job].iloc[0]
    assert row["status"] == "failed" and row["charged"] < 0 and row["refunded"] == 0

    # a planted purchase whose credit never reached the ledger
    txn = demo_db.manifest["fault_ids"]["missing_credit_transaction_ids"][0]
    with eng.connect() as conn:
        buyer = str(conn.exec_driver_sql("SELECT user_id FROM purchases WHERE transaction_id = %(t)s",
                                         {"t": txn}).scalar())
    purchases = queries.users.purchases(eng, user_id=buyer)
    assert purchases.loc[purchases["transaction_id"] == txn, "ledger_credits"].tolist() == [0]


@pytest.mark.skipif(browser.chromium() is None, reason="no Chromium on this machine (CI installs Debian's chromium)")
def test_every_page_reads_on_a_phone_in_headless_chromium(executed, demo_db, window, tmp_path):
    """The report page and every rendered notebook, opened offline in real Chromium at 390 px: every chart
    drawn from the one shared plotly.js, no console error, no failed request, nothing wider than the phone."""
    from ops.reports import figures as report
    from ops.reports import page as report_page

    out = tmp_path / "html"
    out.mkdir()
    render._write_plotlyjs(out)
    pages = []
    for name in render.ORDER + tuple(sorted(set(EXPECTED_FIGURES) - set(render.ORDER))):
        path = out / f"{name}.html"
        path.write_text(render.to_html(executed[name], title=f"opsbench · {name}"), encoding="utf-8")
        pages.append(path)
    pages.append(render.write_index(out, [render.Rendered(p.stem, p, ran_at=utc_now())
                                          for p in pages]))
    day = window["end"]
    rep = report.build(demo_db.analytics, demo_db.settings, "daily", window=report.Window(day, day, "UTC"))
    pages.append(report_page.write(rep, out / "report.html"))
    checked = browser.check_pages(pages)
    assert [c.path.name for c in checked] == [p.name for p in pages]
    for c in checked:
        assert c.problems == [], (c.path.name, c.problems)
        assert c.document_width <= browser.WIDTH, c.path.name
        want = EXPECTED_FIGURES.get(c.path.stem, 3 if c.path.stem == "report" else 0)
        assert c.charts >= want, (c.path.name, c.charts)


@pytest.mark.parametrize("name", sorted(EXPECTED_FIGURES))
def test_an_executed_notebook_shows_no_warning_or_error(executed, name):
    """A shared page must look finished: no traceback, no stderr, no pandas/Python warning box."""
    stderr = [o.get("text", "") for c in executed[name].cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "stream" and o.get("name") == "stderr"]
    assert stderr == [], f"{name}: {stderr[:2]}"
    texts = [o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for c in executed[name].cells
             if c.cell_type == "code" for o in c.outputs]
    assert not any(re.search(r"\b\w*Warning\b:", t) for t in texts), name
