"""Reading the small files a founder keeps (FX rates, store commission, provider costs).

Each file is read the same way: it must exist and be UTF-8 text, and an error
says what was expected, never what the file holds (it may sit next to secrets).
"""

from __future__ import annotations

from pathlib import Path


def read_text(path: Path, expected: str, *, label: str = "") -> tuple[str, str]:
    """(text, lower-case suffix) of a founder's file. ValueError: one line, prefixed with `label`."""
    path = Path(path).expanduser()
    prefix = f"{label}: " if label else ""
    if not path.is_file():
        raise ValueError(f"{prefix}no such file; {expected}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{prefix}cannot read the file ({type(e).__name__}); {expected}") from None
    return text, path.suffix.lower()
