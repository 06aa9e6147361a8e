"""Report charts end to end: the report job queues text and charts, the outbox delivers them to the local
fake Bot API - PNG photos when a browser is present, one HTML document when not - and a chart that
fails never keeps the text from going out."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from support.botapi import TOKEN, FakeBotApi, parse_html
from support.fixtures import db  # noqa: F401 - the shared module fixture

import queries
from jobs.reports import daily_digest  # noqa: F401 - the spec below names it
from ops.alerting import outbox
from ops.daemon.jobspec import JobSpec
from ops.daemon.runner import Runner
from ops.reports import charts
from ops.reports import figures as report

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

TZ = "America/New_York"


def no_sleep(_seconds: float) -> None:
    """Telegram pacing without waiting (the fake server has no rate limit to respect)."""


@pytest.fixture(scope="module")
def day(db) -> dt.date:
    return pd.Timestamp(db.manifest["anchor"]).tz_convert(TZ).date() - dt.timedelta(days=2)


@pytest.fixture
def tg_settings(db, pg_home, api):
    from conftest import settings_for

    return settings_for(pg_home, db.url, REPORT_TZ=TZ, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID="-100777",
                        TELEGRAM_API_BASE=api.url)


def run_digest(settings, db, day, **args):
    spec = JobSpec(id="daily_digest", callable="jobs.reports:daily_digest", timezone=TZ, cron="0 9 * * *",
                   timeout_s=120, args={"date": day.isoformat(), **args})
    record = Runner(settings, {spec.id: spec}, state_engine=db.writer).run(spec.id, trigger="manual")
    delivered = outbox.drain(settings, db.writer, sleep=no_sleep)
    return record, delivered


def digest_text(api: FakeBotApi) -> str:
    texts = api.texts("sendMessage")
    assert len(texts) == 1, texts
    return texts[0]


def test_png_charts_go_as_one_album_after_the_text(db, day, api, tg_settings):
    if charts.find_browser() is None:
        pytest.skip("no Chrome/Chromium on this machine: kaleido cannot render PNG (CI installs chromium)")
    record, delivered = run_digest(tg_settings, db, day)
    assert record.status == "ok" and "3 PNG chart(s)" in record.summary
    # the text, then the three charts together as one media group with one caption
    assert [r.method for r in api.delivered] == ["sendMessage", "sendMediaGroup"]
    assert delivered == 2
    visible = parse_html(digest_text(api))
    assert f"Daily digest · {day:%a %d %b %Y}" in visible and TZ in visible
    album = api.delivered[1]
    assert album.params.get("disable_notification") is True        # the text already notified
    media = json.loads(album.params["media"])
    assert [m["type"] for m in media] == ["photo"] * 3
    assert [m["media"] for m in media] == [f"attach://photo{i}" for i in range(3)]
    for i in range(3):
        name, data = album.files[f"photo{i}"]
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    names = [album.files[f"photo{i}"][0] for i in range(3)]
    assert [n.split("-")[1] for n in names] == ["revenue", "dau", "error_rate"]
    caption = media[0]["caption"]
    assert media[0]["parse_mode"] == "HTML" and all("caption" not in m for m in media[1:])
    assert len(caption) <= 1024
    shown = parse_html(caption)
    assert "Revenue · Active users · Job error rate with 95% interval" in shown
    assert f"to {day:%a %d %b %Y} ({TZ})" in shown


def test_without_a_browser_the_charts_go_as_one_html_document(db, day, api, tg_settings, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    assert charts.find_browser() is None
    record, _ = run_digest(tg_settings, db, day)
    assert record.status == "ok" and "charts as one HTML document" in record.summary
    assert [r.method for r in api.delivered] == ["sendMessage", "sendDocument"]
    digest_text(api)
    name, data = api.delivered[1].files["document"]
    page = data.decode("utf-8")
    assert name == f"daily-charts-{day.isoformat()}.html"
    assert len(data) < 1_000_000           # small: SVG, not 4.8 MB of plotly.js
    for chart in ("revenue", "dau", "error_rate"):
        assert f'id="chart-{chart}"' in page
    assert "<script" not in page and page.count("<svg") == 3     # opens offline, anywhere
    # every day's value is in the drawing (its tooltip), as the query module returns it
    rev = queries.revenue.daily(db.analytics, start=day - dt.timedelta(days=29), end=day, tz=TZ)
    for d, gross in zip(rev["day"], rev["gross"]):
        if gross:
            assert f"<title>{d.isoformat()} gross: {float(gross):,.2f}</title>" in page
    assert "no Chrome/Chromium found" in parse_html(api.delivered[1].params["caption"])


def test_a_chart_that_raises_still_lets_the_text_and_the_other_charts_through(db, day, api, tg_settings,
                                                                             monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")   # HTML path: fast, same logic

    def broken(_report):
        raise ZeroDivisionError("chart maths went wrong")

    monkeypatch.setitem(charts.BUILDERS, "revenue", broken)
    record, _ = run_digest(tg_settings, db, day)
    assert record.status == "ok"
    assert [r.method for r in api.delivered] == ["sendMessage", "sendDocument"]
    page = api.delivered[1].files["document"][1].decode("utf-8")
    assert 'id="chart-revenue"' not in page and 'id="chart-dau"' in page and 'id="chart-error_rate"' in page
    assert record.metrics["chart_problems"] >= 1


def test_charts_that_blow_up_entirely_still_let_the_text_through(db, day, api, tg_settings, monkeypatch):
    def exploding(*_a, **_k):
        raise RuntimeError("kaleido exploded")

    monkeypatch.setattr(charts, "attachments", exploding)
    record, _ = run_digest(tg_settings, db, day)
    assert record.status == "ok" and "no charts" in record.summary
    assert [r.method for r in api.delivered] == ["sendMessage"]
    assert f"Daily digest · {day:%a %d %b %Y}" in parse_html(digest_text(api))


def test_png_renderer_says_when_there_is_no_browser(monkeypatch, db, day):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    rep = report.build(db.analytics, db.settings, "daily", window=report.Window(day, day, TZ))
    figs, problems = charts.figures(rep)
    assert problems == [] and list(figs) == ["revenue", "dau", "error_rate"]
    with pytest.raises(charts.ChartsUnavailable, match="no Chrome/Chromium"):
        charts.to_png(figs)


def test_figures_draw_the_query_modules_numbers(db, day):
    rep = report.build(db.analytics, db.settings, "daily", window=report.Window(day, day, TZ))
    cw = rep.chart_window
    assert cw.days == 30 and cw.end == day
    args = {"start": cw.start, "end": cw.end, "tz": TZ}
    with db.analytics.connect() as conn:
        rev, act, err = (queries.revenue.daily(conn, **args), queries.activity.daily(conn, **args),
                         queries.errors.daily(conn, **args))
    revenue = charts.revenue_figure(rep)
    assert list(revenue.data[0].y) == list(rev["gross"]) and list(revenue.data[1].y) == list(rev["net"])
    assert list(charts.dau_figure(rep).data[1].y) == list(act["dau"])
    band_high, band_low, rate = charts.error_rate_figure(rep).data
    assert list(band_high.y) == pytest.approx(list(100 * err["wilson_high"]), nan_ok=True)
    assert list(band_low.y) == pytest.approx(list(100 * err["wilson_low"]), nan_ok=True)
    assert list(rate.y) == pytest.approx(list(100 * err["error_rate"]), nan_ok=True)
    assert band_low.fill == "tonexty"      # the interval is drawn as a band


def test_report_cli_send_delivers_text_and_charts(db, day, api, monkeypatch, capsys):
    from ops.cli import main

    for key, value in {"DATABASE_URL": db.url, "OPSBENCH_STATE_URL": db.url, "REPORT_TZ": TZ,
                       "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "-100888", "TELEGRAM_API_BASE": api.url,
                       "BROWSER_PATH": "/nonexistent/chromium"}.items():
        monkeypatch.setenv(key, value)
    # a day of a week that is over whatever the weekday today (--date refuses the current week)
    in_past_week = day - dt.timedelta(days=7)
    assert main(["report", "weekly", "--date", in_past_week.isoformat(), "--send"]) == 0
    assert [r.method for r in api.delivered] == ["sendMessage", "sendDocument"]
    week = report.window_for("weekly", in_past_week, TZ)
    assert f"Weekly report · {week.describe()}" in parse_html(digest_text(api))
    assert "delivered 2, 0 waiting" in capsys.readouterr().out
