"""Render the daily digest as it looks in Telegram, for the README: docs/digest.png.

    .venv/bin/python docs/make_digest_image.py [--out docs/digest.png]

Builds the digest from the database in the environment (the embedded demo
database by default, after `make demo`), puts the exact Telegram HTML of the
message into a chat bubble styled like Telegram's light theme, adds the error
rate chart as the photo that follows it, and screenshots the page with
headless Chromium (the browser kaleido uses). Needs Chrome/Chromium.
"""

from __future__ import annotations

import argparse
import base64
import html
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDTH = 390   # a phone: the digest is read there first

_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body{{margin:0;background:#c6d7b5;font:15px/1.38 -apple-system,"Segoe UI",Roboto,"Liberation Sans","DejaVu Sans",sans-serif,"Noto Color Emoji"}}
.chat{{padding:14px 14px 10px}}
.bubble{{background:#fff;border-radius:12px;padding:8px 11px 6px;margin:0 0 8px;max-width:{w}px;
        box-shadow:0 1px 1px rgba(0,0,0,.15);white-space:pre-wrap;word-wrap:break-word;color:#000}}
.bubble pre,.bubble code{{font:13px/1.35 "DejaVu Sans Mono",Menlo,monospace}}
.bubble pre{{margin:2px 0;white-space:pre;display:inline-block;vertical-align:top}}
.bubble code{{color:#c3372b}}
.photo{{padding:3px;max-width:{w}px}}.photo img{{width:100%;border-radius:9px;display:block}}
.caption{{padding:5px 8px 2px;font-size:14px}}
.meta{{text-align:right;color:#7f9f6a;font-size:12px}}
</style></head><body><div class="chat" id="chat">
<div class="bubble">{message}<div class="meta">{time}</div></div>
<div class="bubble photo"><img src="data:image/png;base64,{png}"><div class="caption">{caption}</div></div>
</div>
<script>document.body.setAttribute("data-height", document.getElementById("chat").scrollHeight)</script>
</body></html>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    from ops.reports.charts import find_browser

    browser = find_browser()
    if browser is None:
        sys.exit("no Chrome/Chromium found; install chromium or set BROWSER_PATH")
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "digest.png")
    opts = parser.parse_args()

    from ops.reports import charts
    from ops.data import db
    from ops.reports import figures as report
    from ops.reports import message as report_message
    from ops.core.settings import get_settings
    from ops.data.state import migrate

    settings = get_settings()
    if settings.uses_embedded:
        from ops.data.seed import seed_embedded

        seed_embedded(settings)
    state = db.engine("state", settings)
    migrate(state)
    rep = report.build(db.analytics(settings), settings, "daily", state=state)
    message = report_message.telegram_message(rep)
    figs, _ = charts.figures(rep)
    png = charts.to_png({"error_rate": figs["error_rate"]})["error_rate"]
    if not isinstance(png, bytes):
        sys.exit(f"chart rendering failed: {png}")
    page = _PAGE.format(w=WIDTH, message=message.strip(), time=rep.local_generated_at().strftime("%H:%M"), png=base64.b64encode(png).decode(),
                        caption=report_message.chart_caption(rep, "error_rate"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digest.html"
        path.write_text(page, encoding="utf-8")
        dom = _chromium("--dump-dom", path.as_uri()).stdout
        height = int(re.search(r'data-height="(\d+)"', dom).group(1)) + 4
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        _chromium(f"--screenshot={opts.out}", f"--window-size={WIDTH + 60},{height}", path.as_uri())
    print(f"wrote {opts.out} ({html.escape(rep.window.describe())}, {height}px high)")


if __name__ == "__main__":
    main()
