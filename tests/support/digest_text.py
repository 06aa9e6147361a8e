"""A digest's text without what carries the clock, for comparing two digests of the same data."""

from __future__ import annotations

import re


def stable_lines(text: str) -> list[str]:
    """The digest without when it was generated, when reconcile ran, how long an alert has fired, and so
    the message's length: what two builds of one report a minute apart share."""
    return [re.sub(r" · for \S+$", "", ln) for ln in text.splitlines()
            if not ln.startswith(("Generated ", "Note: reconciliation from")) and "characters · preview" not in ln]
