"""The page inspection itself: a synthetic bad page proves it catches each problem it looks for.

The pages a founder gets are inspected in tests/test_demo.py, on what `make demo` rendered (every
notebook, after every job ran once: the single-run case whose charts used to show millisecond axes),
at 390 px and 1280 px in headless Chromium (tests/support/browser.py).
"""

from __future__ import annotations

import pytest
from support import browser

pytestmark = pytest.mark.skipif(browser.chromium() is None,
                                reason="no Chromium on this machine (CI installs Debian's chromium)")


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
    found = browser.page_problems(page, [])
    assert any(p.startswith("warning output: /x.py:9: Pandas4Warning") for p in found), found
    assert any(p.startswith("traceback:") for p in found), found
    assert sum(p.startswith("past the edge") for p in found) == 1 and "cut cut" in " ".join(found), found
    assert sorted(page.literals) == ["False", "NaT"]
    assert any(p.startswith("local path:") for p in found), found
