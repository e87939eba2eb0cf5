"""Escaping of attacker-controlled log text for each kind of output."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal(text: object) -> str:
    """Text safe to print on a terminal: control characters (ESC, BEL, bidi overrides...) shown as \\xNN."""
    s = "" if text is None else str(text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", s)


def csv_cell(text: object) -> str:
    """A CSV cell that spreadsheets will not run as a formula (OWASP CSV injection advice)."""
    s = "" if text is None else str(text)
    if s and s[0] in "=+-@\t\r|%":
        return "'" + s
    return s
