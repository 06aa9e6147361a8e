"""The Telegram client against a fake Bot API server on 127.0.0.1.

Time is a FakeClock: retry_after, backoff and pacing waits are recorded, not slept.
"""

from __future__ import annotations

import io
import logging
import re
import time
import traceback

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from support.botapi import TOKEN, parse_html, utf16_len

from ops.alerting.telegram import html as messages
from ops.alerting.telegram.client import (
    TelegramChatUnavailable,
    TelegramClient,
    TelegramError,
    TelegramPermanentError,
    TelegramTransientError,
)

NASTY = "error: _*[]()~`>#+-=|{}.! <b>not bold</b> & &amp; <script>x</script> a<b c>d 1 < 2 > 0 *_bold_* [link](x)"


def client_for(api, clock, chat="4242", **kw) -> TelegramClient:
    kw.setdefault("rng", lambda: 0.5)
    return TelegramClient(TOKEN, api.url, chat, clock=clock.monotonic, sleep=clock.sleep, **kw)


# -- escaping and splitting ------------------------------------------------------

@given(st.lists(st.sampled_from(list("_*[]<b>&;#x/ab\n ") + ["&amp;", "<b>", "</b>", "é", "🙂", "&lt;"]),
                max_size=80).map("".join))
def test_escape_roundtrip(text):
    escaped = messages.escape(text)
    assert messages.unescape(escaped) == text
    if text.strip():
        assert parse_html(escaped) == text  # Telegram's parser sees exactly the original


def test_nasty_text_arrives_intact(api, clock):
    client = client_for(api, clock)
    client.send_message(f"<b>Alert</b>\n{messages.escape(NASTY)}")
    (req,) = api.delivered
    assert req.params["parse_mode"] == "HTML"
    assert parse_html(req.params["text"]) == f"Alert\n{NASTY}"


def _long_html(n_blocks: int) -> str:
    blocks = []
    for i in range(n_blocks):
        rows = "\n".join(messages.escape(f"row {j}: user_{j} <x> & {'é🙂' * (j % 3)}") for j in range(i % 7 + 1))
        blocks.append(f"<b>alert {i}</b> · <code>{messages.escape(f'rule_{i}{{p=<a&b>}}')}</code>\n"
                      f"{messages.escape(NASTY)}\n<pre>{rows}</pre>\n<i>job reconcile</i>")
    return "\n\n".join(blocks)


@pytest.mark.parametrize("n_blocks", [1, 40, 120])
def test_split_parts_fit_rejoin_and_parse(n_blocks):
    text = _long_html(n_blocks)
    parts = messages.split_html(text)
    assert _gaps_show_nothing(parts, text, r"\s*")  # only the line breaks at the cuts are dropped
    for part in parts:
        assert utf16_len(part) <= messages.MESSAGE_LIMIT
        parse_html(part)  # raises on a cut tag or entity
    if utf16_len(text) > messages.MESSAGE_LIMIT:
        assert len(parts) > 1


_WORD = st.text(alphabet="ab<>&_* é🙂", min_size=0, max_size=300)
# (opening, closing) pairs as messages use them, attributes with spaces, quotes and entities included
_WRAPS = [("", ""), ("<b>", "</b>"), ("<i>", "</i>"),
          ('<a href="https://example.com/q?a=1&amp;b=2" title="two words">', "</a>"),
          ('<span class="tg-spoiler">', "</span>"), ('<code class="language-python">', "</code>")]


def _segment(pair):
    (opening, closing), word = pair
    return f"{opening}{messages.escape(word)}{closing}"


# a block: one line of (possibly long) tagged segments, or a <pre> over several lines
_BLOCK = st.one_of(
    st.lists(st.tuples(st.sampled_from(_WRAPS), _WORD).map(_segment), max_size=4).map(" ".join),
    st.lists(_WORD, max_size=5).map(lambda ws: "<pre>" + "\n".join(messages.escape(w) for w in ws) + "</pre>"),
)


def _gaps_show_nothing(parts, text, gap):
    """text == g0 + p1 + g1 + ... + pn + gn where every g matches `gap` (shows nothing)."""
    pattern = gap + gap.join(re.escape(p) for p in parts) + gap
    return re.fullmatch(pattern, text, re.DOTALL) is not None


@hsettings(max_examples=150, deadline=None)
@given(st.lists(_BLOCK, min_size=1, max_size=40), st.text(alphabet="\n ", max_size=8),
       st.integers(min_value=120, max_value=500))  # room for the longest opening tag, reopened, plus text
def test_split_property(blocks, tail, limit):
    """The contract of split_html, as its docstring defines it.

    Every part fits, parses on its own (balanced tags, whole entities) and
    shows text. Rejoined, the parts are the original except for gaps that
    show nothing (whitespace at cuts, empty tags): exactly so on the raw HTML
    when no block had to be cut inside, and on the visible text always (a cut
    inside a block closes and reopens the open tags).
    """
    text = "\n".join(blocks) + tail
    parts = messages.split_html(text, limit)
    for p in parts:
        assert utf16_len(p) <= limit
        assert parse_html(p).strip(), repr(p)  # raises on a cut tag or entity; never blank
    visible = [parse_html(p) for p in parts]
    assert _gaps_show_nothing(visible, parse_html(text), r"\s*")
    if all(utf16_len(b + "\n") <= limit for b in blocks):
        assert _gaps_show_nothing(parts, text, r"(?:\s|<[^<>]*>)*?")
    if utf16_len(text) <= limit and parse_html(text).strip():
        assert parts == [text]


def test_split_drops_blank_parts_and_trailing_newlines():
    assert messages.split_html("x" * 4095 + "\n" * 6) == ["x" * 4095]
    assert messages.split_html("\n" * 10 + "y" * 4095) == ["y" * 4095]
    # a stretch that shows nothing between two full parts is dropped, not sent as a blank message
    assert messages.split_html("a" * 4096 + "\n\n<b> </b>\n" + "c" * 4096) == ["a" * 4096, "c" * 4096]
    assert messages.split_html("a" * 4096 + "\n<b> </b>\nc") == ["a" * 4096, "<b> </b>\nc"]
    assert messages.split_html("") == [] and messages.split_html(" \n\n <b></b>") == []
    body = "<pre>" + "q" * 5000 + "\n" * 20 + "</pre>"
    parts = messages.split_html(body)
    assert all(parse_html(p).strip() for p in parts) and "".join(parse_html(p) for p in parts).rstrip() == "q" * 5000


def test_split_long_block_prefers_line_break_then_space():
    lines = [f"{i:03d} " + " ".join(["word"] * 12) for i in range(120)]  # ~64 chars a line, spaces inside
    text = "<pre>" + "\n".join(lines) + "</pre>"
    parts = messages.split_html(text)
    assert len(parts) > 1
    for p in parts:
        shown = parse_html(p)
        assert shown.split("\n")[0] in lines and shown.split("\n")[-1] in lines  # whole lines, not cut at a space
    one_line = " ".join(["token"] * 2000)
    parts = messages.split_html(one_line)
    assert all(p.startswith("token") and p.endswith("token") for p in parts)


def test_split_never_cuts_inside_a_tag_with_attributes():
    link = '<a href="https://example.com/very/long/path?x=1&amp;y=2" title="a b c d e f g h">see this</a>'
    for filler in range(0, 40, 7):
        text = "x" * filler + " ".join([link] * 200)  # one line, spaces mostly inside the tags
        parts = messages.split_html(text)
        assert len(parts) > 1
        for p in parts:
            assert utf16_len(p) <= messages.MESSAGE_LIMIT
            parse_html(p)
        assert re.sub(r"\s", "", "".join(parse_html(p) for p in parts)) == re.sub(r"\s", "", parse_html(text))


def test_caption_cut_like_messages():
    lines = [f"line {i} " + "w " * 20 for i in range(100)]
    cap = messages.caption("\n".join(lines))
    assert utf16_len(cap) <= messages.CAPTION_LIMIT and cap.endswith("…")
    assert cap[:-1].split("\n")[-1].rstrip() in [ln.rstrip() for ln in lines]  # cut at a line break
    link = '<a href="https://example.com/p" title="one two three">chart</a>'
    for filler in range(0, 30, 3):
        cap = messages.caption("z" * filler + " ".join([link] * 40))
        assert utf16_len(cap) <= messages.CAPTION_LIMIT
        parse_html(cap)
    assert messages.caption(" \n\n ") == ""
    assert messages.caption("<b>short</b>\n") == "<b>short</b>\n"


def test_split_oversized_block_keeps_tags_valid():
    body = "\n".join(messages.escape(f"line {i} <&> {'x' * 50}") for i in range(200))
    text = f"<b>head</b>\n<pre>{body}</pre>"
    parts = messages.split_html(text)
    assert len(parts) > 1
    for part in parts:
        assert utf16_len(part) <= messages.MESSAGE_LIMIT
        parse_html(part)
    assert _gaps_show_nothing([parse_html(p) for p in parts], parse_html(text), r"\s*")


def test_long_message_sent_in_valid_parts(api, clock):
    text = _long_html(120)
    client = client_for(api, clock)
    sent = client.send_message(text)
    assert len(sent) == len(api.delivered) > 1
    assert _gaps_show_nothing([r.params["text"] for r in api.delivered], text, r"\s*")


def test_caption_within_limit(api, clock):
    cap = "<b>Daily report</b>\n" + messages.escape(NASTY * 40)
    short = messages.caption(cap)
    assert utf16_len(short) <= messages.CAPTION_LIMIT
    parse_html(short)
    client = client_for(api, clock)
    client.send_photo(b"\x89PNG fake", cap)
    client.send_document(b"<html>report</html>", "daily.html", cap)
    photo, doc = api.delivered
    assert photo.method == "sendPhoto" and photo.files["photo"][1] == b"\x89PNG fake"
    assert doc.method == "sendDocument" and doc.files["document"] == ("daily.html", b"<html>report</html>")
    assert utf16_len(photo.params["caption"]) <= 1024


def test_media_group_is_one_album_with_one_caption(api, clock):
    """Charts go as one sendMediaGroup: each photo attached by name, the caption (<= 1,024) on the first only;
    a caption Telegram cannot parse is sent again as plain text; one photo alone goes as sendPhoto."""
    import json

    cap = "<b>Daily digest charts</b>: Revenue · DAU\n" + messages.escape(NASTY * 40)
    photos = [("daily-revenue.png", b"\x89PNG one"), ("daily-dau.png", b"\x89PNG two")]
    client = client_for(api, clock)
    client.send_media_group(photos, cap, disable_notification=True)
    (album,) = api.delivered
    media = json.loads(album.params["media"])
    assert album.method == "sendMediaGroup" and album.params["disable_notification"] is True
    assert [m["media"] for m in media] == ["attach://photo0", "attach://photo1"]
    assert album.files == {"photo0": photos[0], "photo1": photos[1]}
    assert media[0]["parse_mode"] == "HTML" and utf16_len(media[0]["caption"]) <= 1024
    parse_html(media[0]["caption"])
    assert "caption" not in media[1]
    api.delivered.clear()
    api.requests.clear()
    api.fail("parse")
    client.send_media_group(photos, "<b>Revenue</b> &amp; DAU")
    assert [r.answered for r in api.requests] == [400, 200]
    assert json.loads(api.delivered[-1].params["media"])[0] == {"type": "photo", "media": "attach://photo0",
                                                                 "caption": "Revenue & DAU"}
    api.delivered.clear()
    client.send_media_group(photos[:1], "one chart")
    assert [r.method for r in api.delivered] == ["sendPhoto"]


# -- failures and retries ----------------------------------------------------------

def test_retry_after_respected(api, clock):
    api.fail("429", retry_after=37)
    times: list[float] = []
    api_answer = api.answer
    api.answer = lambda req: (times.append(clock.monotonic()), api_answer(req))[1]
    started = time.monotonic()
    client_for(api, clock).send_message("hello")
    assert [r.answered for r in api.requests] == [429, 200]
    assert times[1] - times[0] >= 37
    assert 37 in clock.sleeps
    assert time.monotonic() - started < 30  # no real sleeping (that would be 37 s)


def test_long_retry_after_gives_up_with_hint(api, clock):
    api.fail("429", retry_after=3600)
    with pytest.raises(TelegramTransientError) as err:
        client_for(api, clock).send_message("hello")
    assert err.value.retry_after == 3600
    assert len(api.requests) == 1


def test_5xx_retried_with_bounded_jittered_backoff(api, clock):
    api.fail("500", times=2)
    api.fail("502")
    rolls = iter([0.0, 1.0, 0.5])
    client = client_for(api, clock, chat="77", rng=lambda: next(rolls), backoff_base=2.0, max_attempts=4)
    client.send_message("x")
    assert [r.answered for r in api.requests] == [500, 500, 502, 200]
    # base * 2^i scaled by the 50..100 % jitter: 2*0.5, 4*1.0, 8*0.75 (pacing needs no extra wait)
    assert clock.sleeps == [1.0, 4.0, 6.0]


def test_backoff_is_capped(api, clock):
    api.fail("503", times=5)
    client = client_for(api, clock, chat="78", rng=lambda: 1.0, backoff_base=4.0, backoff_cap=10.0, max_attempts=6)
    client.send_message("x")
    assert clock.sleeps == [4.0, 8.0, 10.0, 10.0, 10.0]


def test_deadline_no_wait_crosses_it(api, clock):
    from ops.alerting.telegram.client import TelegramOutOfTime

    client = client_for(api, clock)
    client.deadline = clock.monotonic() + 5
    api.fail("500", times=4)  # backoffs 0.75 s and 1.5 s fit; the third (3 s) would end past it
    with pytest.raises(TelegramTransientError) as err:
        client.send_message("x")
    assert not isinstance(err.value, TelegramOutOfTime) and clock.elapsed <= 5
    assert len(api.requests) == 3 and sum(clock.sleeps) <= 5
    api.plan.clear()
    client.send_message("fits")  # pacing 1 s, still inside
    clock.advance(5)
    with pytest.raises(TelegramOutOfTime):  # past the deadline: no request starts
        client.send_message("late")
    assert len(api.requests) == 4 and api.texts() == ["fits"]
    client.deadline = None
    client.send_message("late")
    assert api.texts() == ["fits", "late"]


def test_gives_up_after_bounded_attempts_when_down(api, clock):
    api.down()
    client = client_for(api, clock, max_attempts=3, backoff_cap=5)
    with pytest.raises(TelegramTransientError) as err:
        client.send_message("x")
    assert "connection failed" in str(err.value)
    assert len(clock.sleeps) >= 2 and max(clock.sleeps) <= 5


def test_timeout_retried(api, clock):
    api.fail("hang")
    client = client_for(api, clock, timeout=0.3)
    client.send_message("after a hang")
    assert api.texts() == ["after a hang"]
    api.release.set()


def test_dropped_connection_retried(api, clock):
    api.fail("drop")
    client_for(api, clock).send_message("again")
    assert api.texts() == ["again"]


def test_parse_error_falls_back_to_plain_text(api, clock):
    api.fail("parse")
    client_for(api, clock).send_message("<b>Disk</b> at 95% &amp; rising")
    first, second = api.requests
    assert first.params["parse_mode"] == "HTML" and first.answered == 400
    assert "parse_mode" not in second.params
    assert second.params["text"] == "Disk at 95% & rising"


def test_real_parse_error_from_bad_html_falls_back(api, clock):
    client_for(api, clock).send_message("<b>unclosed & raw")
    assert api.requests[0].answered == 400
    assert api.delivered[0].params["text"] == "unclosed & raw"


@pytest.mark.parametrize("method, send", [
    ("sendPhoto", lambda c, cap: c.send_photo(b"\x89PNG fake", cap)),
    ("sendDocument", lambda c, cap: c.send_document(b"<html>r</html>", "r.html", cap)),
])
def test_caption_parse_error_falls_back_to_plain_text(api, clock, method, send):
    api.fail("parse")  # Telegram answers "can't parse entities" to the captioned upload
    send(client_for(api, clock), "<b>Revenue</b> 30 days &amp; refunds")
    first, second = api.requests
    assert first.method == second.method == method
    assert first.params["parse_mode"] == "HTML" and first.answered == 400
    assert "parse_mode" not in second.params and second.answered == 200
    assert second.params["caption"] == "Revenue 30 days & refunds"
    field = "photo" if method == "sendPhoto" else "document"
    assert second.files[field] == first.files[field]  # the same file again
    # and a caption Telegram's own parser refuses (unclosed tag, bare &) goes out the same way
    api.requests.clear()
    send(client_for(api, clock), "<b>unclosed & raw")
    assert [r.answered for r in api.requests] == [400, 200]
    assert api.delivered[-1].params["caption"] == "unclosed & raw"


def test_logs_configure_keeps_http_loggers_at_warning(api, clock):
    from ops.core import logs

    root = logging.getLogger()
    old_level, old_handlers = root.level, list(root.handlers)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # as if something had turned them up
    buf = io.StringIO()
    try:
        handler = logs.configure(level=logging.DEBUG, json_lines=False, stream=buf)
        assert logging.getLogger("httpx").level == logging.WARNING
        assert logging.getLogger("httpcore").level == logging.WARNING
        assert root.level == logging.DEBUG
        client_for(api, clock).send_message("hello")
        logging.getLogger("opsbench.test").debug("still logging at debug")
    finally:
        root.removeHandler(handler)
        for h in old_handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(old_level)
    out = buf.getvalue()
    assert "still logging at debug" in out
    assert "HTTP Request" not in out  # httpx logs every request at INFO; at WARNING it stays quiet


def test_chat_migration_followed(api, clock, caplog):
    api.migrations["-4001"] = -1004001
    moved = []
    client = client_for(api, clock, chat="-4001", on_migrate=lambda old, new: moved.append((old, new)))
    with caplog.at_level(logging.WARNING, logger="opsbench.telegram"):
        client.send_message("one")
        client.send_message("two")
    assert moved == [("-4001", "-1004001")]
    assert [r.params["chat_id"] for r in api.requests] == ["-4001", "-1004001", "-1004001"]
    assert api.texts() == ["one", "two"]
    assert any("upgraded to a supergroup" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("setup, exc", [
    (lambda api: api.blocked.add("555"), TelegramChatUnavailable),
    (lambda api: api.unknown.add("555"), TelegramChatUnavailable),
])
def test_permanent_errors_not_retried(api, clock, setup, exc):
    setup(api)
    with pytest.raises(exc):
        client_for(api, clock, chat="555").send_message("x")
    assert len(api.requests) == 1


def test_bad_request_is_permanent_not_chat_level(api, clock):
    api.fail("400", description="Bad Request: message text is empty")
    with pytest.raises(TelegramPermanentError) as err:
        client_for(api, clock).send_message("x")
    assert not isinstance(err.value, TelegramChatUnavailable)
    assert len(api.requests) == 1


def test_wrong_token_is_chat_unavailable(api, clock):
    client = TelegramClient("987654321:WRONGwrongWRONGwrongWRONGwrong12345", api.url, "1",
                            clock=clock.monotonic, sleep=clock.sleep)
    with pytest.raises(TelegramChatUnavailable) as err:
        client.get_me()
    assert "401" in str(err.value)
    assert "WRONGwrong" not in str(err.value)


# -- pacing and delivery options -------------------------------------------------------

def _stamp(api, clock) -> list[float]:
    times: list[float] = []
    answer = api.answer
    api.answer = lambda req: (times.append(clock.monotonic()), answer(req))[1]
    return times


def test_private_chat_paced_one_per_second(api, clock):
    times = _stamp(api, clock)
    client = client_for(api, clock, chat="31337")
    for i in range(5):
        client.send_message(f"m{i}")
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 1.0 for g in gaps)
    assert times[-1] - times[0] < 5  # not slower than needed


def test_group_chat_at_most_20_a_minute(api, clock):
    times = _stamp(api, clock)
    client = client_for(api, clock, chat="-100999")
    for i in range(45):
        client.send_message(f"m{i}")
    assert len(times) == 45
    for i, t in enumerate(times):
        in_window = [u for u in times[i:] if u < t + 60]
        assert len(in_window) <= 20
    assert api.texts() == [f"m{i}" for i in range(45)]


def test_thread_id_and_silent_sent(api, clock):
    client = client_for(api, clock, chat="-100777", thread_id=42)
    client.send_message("quiet", disable_notification=True)
    client.send_photo(b"img", "c", disable_notification=True)
    msg, photo = api.delivered
    assert msg.params["message_thread_id"] == 42 and msg.params["disable_notification"] is True
    assert photo.params["message_thread_id"] == "42" and photo.params["disable_notification"] is True
    client.send_message("loud")
    assert "disable_notification" not in api.delivered[-1].params


# -- secrets ---------------------------------------------------------------------------

def test_no_token_in_logs_or_exceptions(api, clock):
    secret = TOKEN.split(":", 1)[1]
    buf = io.StringIO()
    raw = logging.StreamHandler(buf)  # deliberately NOT redacting: the client must not leak
    raw.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(raw)
    root.setLevel(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    texts = []
    try:
        client = client_for(api, clock, chat="-100123", max_attempts=2)
        client.get_me()
        client.send_message("hello")
        api.fail("500", times=2)
        api.fail("parse")
        for failing in (lambda: client.send_message("x"), lambda: client.send_message("y")):
            try:
                failing()
            except TelegramError as e:
                texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
        api.blocked.add("-100123")
        try:
            client.send_message("z")
        except TelegramError as e:
            texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
        api.down()
        try:
            client.send_message("down")
        except TelegramError as e:
            texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
    finally:
        root.removeHandler(raw)
        root.setLevel(old_level)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    logged = buf.getvalue()
    assert "HTTP Request" in logged  # httpx did log the requests at DEBUG ...
    assert secret not in logged      # ... without the token
    assert len(texts) >= 6
    for t in texts:
        assert secret not in t
    assert secret not in repr(client)
