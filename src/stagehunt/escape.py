"""Escaping of attacker-controlled log text for each kind of output."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal(text: object) -> str:
    """Text safe to print on a terminal: control characters (ESC, BEL, bidi overrides...) shown as \\xNN."""
    s = "" if text is None else str(text)
    return _CONTROL.sub(_visible, s)


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def csv_cell(text: object) -> str:
    """A CSV cell that spreadsheets will not run as a formula (OWASP CSV injection advice)."""
    s = "" if text is None else str(text)
    if s and s[0] in "=+-@\t\r|%":
        return "'" + s
    return s
