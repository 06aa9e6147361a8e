"""How an alert reads in a short line: cut between words, and never the key's words twice.

A check's summary often starts by naming what the key already names:

    reconcile_iap_refund_mismatch{check=iap_refund_mismatch}  reconciliation iap_refund_mismatch: 3 row(s) - ...

On a phone that is half a screen line said twice. `short_key` drops a label whose value the rule's
name already carries (`reconcile_iap_refund_mismatch`), `news` drops a summary's "head: " when every
word of it is in the key, and `clip` shortens at a word boundary with an ellipsis, never mid-word.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"
_WORD = re.compile(r"[a-z0-9]+")
_STEM = 7    # "reconciliation" and "reconcile" are the same word to a reader


def clip(text: object, limit: int) -> str:
    """`text` on one line, at most `limit` characters, cut after a whole word (then "…")."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    room = text[: max(1, limit - 1)]
    cut = room.rfind(" ")
    if cut > 0:
        room = room[:cut]
    # no dangling separator before the ellipsis
    return room.rstrip(" ,;:-–(") + ELLIPSIS


def _labels(key: str) -> tuple[str, list[tuple[str, str]]]:
    rule, _, rest = key.partition("{")
    pairs = []
    for part in rest.rstrip("}").split(","):
        name, sep, value = part.partition("=")
        if sep:
            pairs.append((name.strip(), value.strip()))
    return rule, pairs


def short_key(key: str) -> str:
    """The key without the labels its rule's name already says: `reconcile_x{check=x}` -> `reconcile_x`."""
    rule, pairs = _labels(key)
    if "{" not in key:
        return key
    kept = [(k, v) for k, v in pairs if v.lower() not in rule.lower()]
    return rule + ("{" + ",".join(f"{k}={v}" for k, v in kept) + "}" if kept else "")


def _covered(word: str, key_words: set[str], key: str) -> bool:
    if word in key:
        return True
    return len(word) >= _STEM and any(len(k) >= _STEM and k[:_STEM] == word[:_STEM] for k in key_words)


def news(key: str, summary: object) -> str:
    """The summary without a leading "words: " that only repeats the key (the rest is what is new)."""
    text = " ".join(str(summary).split())
    head, sep, rest = text.partition(": ")
    if not sep or not rest:
        return text
    low_key = key.lower()
    key_words = set(_WORD.findall(low_key))
    words = re.findall(r"[a-z0-9_]+", head.lower())
    if words and all(_covered(w, key_words, low_key) for w in words):
        return rest
    return text


def line(key: str, summary: object, limit: int) -> tuple[str, str]:
    """(key as shown, summary as shown) for one short alert line."""
    return short_key(key), clip(news(key, summary), limit)
