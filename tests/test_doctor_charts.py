"""doctor says whether the digest's charts will be PNG photos (kaleido and a Chrome/Chromium found) or fall back
to one HTML document, which nobody would notice on a server otherwise."""

from __future__ import annotations

import shutil
import sys

import pytest

from ops.workbench import doctor


def test_no_browser_is_a_warning_that_names_the_fallback(monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")   # choreographer's override, as charts reads it
    check = doctor.check_charts()
    assert (check.name, check.level) == ("charts", "warn")
    assert "no Chrome/Chromium" in check.message and "HTML document" in check.message
    assert "BROWSER_PATH" in check.message


def test_no_kaleido_is_a_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)     # import kaleido raises ImportError
    check = doctor.check_charts()
    assert check.level == "warn" and "kaleido is not installed" in check.message


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no Chromium on this machine (CI installs Debian's)")
def test_a_browser_and_kaleido_mean_png(monkeypatch):
    path = shutil.which("chromium")
    monkeypatch.setenv("BROWSER_PATH", path)
    check = doctor.check_charts()
    assert check.level == "ok", check.message
    assert path in check.message and "kaleido" in check.message and "PNG" in check.message


def test_doctor_runs_the_charts_check(monkeypatch, pg_home):
    from ops.core.settings import load_settings

    monkeypatch.setenv("OPSBENCH_HOME", str(pg_home))
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    names = [c.name for c in doctor.run_checks(load_settings(_env_file=None))]
    assert "charts" in names
