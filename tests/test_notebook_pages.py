"""Every rendered notebook page looks finished, on a phone and on a laptop.

The pages are made the way a founder makes them, `opsbench notebooks render` in its own process, against
the seeded demo database and a state store holding real job runs (one reconciliation, one probe, one
cleanup: the single-run case whose charts used to show millisecond axes). Then each page is opened in
headless Chromium (Debian's, over the DevTools protocol: tests/support/browser.py) at 390 px and at
1280 px, and must show no warning, no traceback, no text past the screen's edge outside a box that
scrolls sideways, no Python literal (True, False, None, NaN, NaT) in a table and no local path or
connection string. A synthetic bad page first proves the inspection catches each of those.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys

import pytest
from support import browser
from support.clock import clock_env, test_now

from ops.core.settings import PROJECT_ROOT
from ops.daemon.jobspec import load_jobs
from ops.daemon.runner import Runner
from ops.data.state import migrate
from ops.workbench import notebooks as render

pytestmark = pytest.mark.skipif(browser.chromium() is None,
                                reason="no Chromium on this machine (CI installs Debian's chromium)")

# a path on this machine, a connection string: what a shared page must never show
LOCAL = re.compile(r"postgres(ql)?://|host=/|file://|(?<![\w.])/(tmp|home|root|Users|work|var|opt|srv|mnt|run)/")


def _problems(page: browser.Inspection, forbidden: list[str]) -> list[str]:
    out = [f"warning output: {w}" for w in page.warnings] + [f"traceback: {t}" for t in page.traces]
    out += [f"script error: {e}" for e in page.console_errors]
    out += [f"past the edge, not in a scrolling box: {o}" for o in page.overflow]
    out += [f"Python literal in a table: {v}" for v in page.literals]
    if page.document_width > page.width:
        out.append(f"page {page.document_width} px wide")
    if re.search(r"Traceback \(most recent call last\)|\b\w+Warning\b:", page.text):
        out.append("a warning or traceback in the text")
    local = LOCAL.search(page.text)
    if local:
        out.append(f"local path: {page.text[max(0, local.start() - 40): local.end() + 40]!r}")
    out += [f"names {f!r}" for f in forbidden if f in page.text]
    return out


def test_the_inspection_catches_each_problem(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("""<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width"></head><body>
<div data-mime-type="application/vnd.jupyter.stderr">/x.py:9: Pandas4Warning: Timestamp is not supported</div>
<div data-mime-type="application/vnd.jupyter.error">Traceback (most recent call last): ValueError</div>
<div style="width:300px;overflow:hidden"><p style="white-space:nowrap">a long line """ + "cut " * 80 + """</p></div>
<div style="width:300px;overflow-x:auto"><p style="white-space:nowrap">""" + "scrolls " * 80 + """</p></div>
<table><tr><td>False</td><td>NaT</td><td>yes</td></tr></table>
<p>reading the database in /tmp/x/pg</p></body></html>""", encoding="utf-8")
    page, = browser.inspect_pages([bad], widths=(browser.PHONE,), settle_s=0.2)
    found = _problems(page, [])
    assert any(p.startswith("warning output: /x.py:9: Pandas4Warning") for p in found), found
    assert any(p.startswith("traceback:") for p in found), found
    assert sum(p.startswith("past the edge") for p in found) == 1 and "cut cut" in " ".join(found), found
    assert sorted(page.literals) == ["False", "NaT"]
    assert any(p.startswith("local path:") for p in found), found


@pytest.fixture(scope="module")
def pages(demo_db, pg_home, tmp_path_factory) -> dict:
    """The state store gets one run of a few real jobs; then the CLI renders every notebook."""
    migrate(demo_db.writer)
    now = test_now()
    specs = {s.id: s for s in load_jobs(demo_db.settings)}
    runner = Runner(demo_db.settings, specs, state_engine=demo_db.writer, clock=lambda: now)
    for job in ("reconcile", "postgres_probe", "cleanup"):
        record = runner.run(job, trigger="manual")
        assert record.status == "ok", (job, record.summary, record.error)
    out = tmp_path_factory.mktemp("pages")
    end = dt.date.fromisoformat(str(demo_db.manifest["anchor"])[:10]) - dt.timedelta(days=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBENCH_", "TELEGRAM_", "DATABASE_URL"))}
    env.update(DATABASE_URL=demo_db.url, OPSBENCH_STATE_URL=demo_db.url, OPSBENCH_HOME=str(pg_home),
               REPORT_TZ="UTC", **clock_env())
    done = subprocess.run([sys.executable, "-m", "ops", "notebooks", "render", "--out", str(out),
                           "-p", f"end={end}", "-p", "days=14", "-p", f"until={now.date()}", "-p", "tz=UTC"],
                          env=env, capture_output=True, text=True, timeout=900, cwd=str(PROJECT_ROOT))
    assert done.returncode == 0, done.stderr
    # the render itself warns about nothing (a kernel left to notice its parent exit said
    # "[IPKernelApp] WARNING | Parent appears to have exited")
    assert not re.search(r"warning|traceback", done.stderr, re.IGNORECASE), done.stderr
    paths = [out / f"{p.stem}.html" for p in render.notebook_paths()] + [out / "index.html"]
    assert all(p.exists() for p in paths)
    return {"paths": paths, "out": out,
            "forbidden": [str(pg_home), str(out), str(PROJECT_ROOT), demo_db.url.split("?")[0]]}


@pytest.fixture(scope="module")
def inspected(pages) -> list[browser.Inspection]:
    return browser.inspect_pages(pages["paths"])


def test_every_page_is_finished_at_390_and_1280_px(pages, inspected):
    assert {(p.path.name, p.width) for p in inspected} == {(p.name, w) for p in pages["paths"]
                                                            for w in (browser.PHONE, browser.LAPTOP)}
    failures = {f"{p.path.name} @ {p.width} px": _problems(p, pages["forbidden"]) for p in inspected}
    assert {k: v for k, v in failures.items() if v} == {}


def _page(inspected, name: str, width: int) -> browser.Inspection:
    return next(p for p in inspected if p.path.stem == name and p.width == width)


def test_wide_tables_say_they_scroll_on_a_phone(inspected):
    # the reconciliation tables (uuids side by side) do not fit 390 px: the page says to swipe them
    phone = _page(inspected, "reconciliation", browser.PHONE)
    assert phone.scroll_hints > 0 and "swipe sideways for more columns" in phone.text
    assert _page(inspected, "index", browser.LAPTOP).scroll_hints == 0


def test_operations_page_tells_firing_from_resolved(inspected, demo_db):
    text = _page(inspected, "operations", browser.LAPTOP).text
    assert "lasted - at the median" not in text
    m = re.search(r"(\d+) alert episodes\*?\*?, (\d+) still firing; (none has resolved yet|the \d+ resolved lasted)",
                  text)
    assert m, text[:2000]
    assert int(m.group(2)) > 0 and "still firing" in text.split("Alert history")[-1]


def test_the_drill_down_says_why_its_user(inspected):
    text = _page(inspected, "reconciliation", browser.LAPTOP).text
    assert "Why this user:" in text and "Set user_id to look at another" in text
