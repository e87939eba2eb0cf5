"""A Rich table for people at a terminal, with the reasons of each finding when verbose.

Log content is attacker-controlled: every value goes through `escape.terminal` (ESC, BEL, bidi
overrides shown as \\xNN) and into a `rich.text.Text`, which Rich never parses for markup, so a
command line holding `[red]` or `:skull:` prints as typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stagehunt.escape import terminal
from stagehunt.findings import Finding
from stagehunt.sinks.base import Sink, scrub

MAX_IPS = 3
MAX_PORTS = 5
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def safe(value: object) -> Text:
    """Log-derived text as an inert Text: control characters escaped, newlines and tabs made visible."""
    s = terminal(scrub(value) if isinstance(value, str) else value)
    return Text(s.replace("\n", "\\n").replace("\t", "\\t"))


def _name(path: str | None) -> str | None:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] if path else None


def _some(items: list, limit: int) -> str:
    shown = ", ".join(str(x) for x in items[:limit])
    return shown + (f" +{len(items) - limit} more" if len(items) > limit else "")


def _when(iso_text: str | None) -> str:
    """'2024-05-01T10:00:00.000Z' -> '2024-05-01 10:00:00'."""
    return (iso_text or "?").replace("T", " ").split(".")[0].rstrip("Z")


def window(first: str | None, last: str | None) -> str:
    a, b = _when(first), _when(last)
    if a[:10] == b[:10] and len(b) > 11:  # same day: the date once
        b = b[11:]
    return f"{a} – {b} UTC"


class TableSink(Sink):
    """Collects findings and renders one table on close (a table needs all its rows to size its columns)."""

    def __init__(self, target: Console | TextIO | str | Path, verbose: bool = False, width: int | None = None):
        if isinstance(target, Console):
            super().__init__(target.file)
            self.console = target
        else:
            super().__init__(target)
            # not a terminal (a file, a pipe): no colour codes, and wide enough that rows are not folded to bits
            self.console = Console(file=self.stream, highlight=False, emoji=False, markup=False,
                                   width=width or (None if self.stream.isatty() else 160))
        self.verbose = verbose
        self.findings: list[Finding] = []

    def write(self, finding: Finding) -> None:
        self.findings.append(finding)

    def finish(self) -> None:
        if not self.findings:
            return
        table = Table(title=Text(f"{len(self.findings)} finding(s)"), show_lines=False, highlight=False)
        for header in ("#", "sev/conf", "detection", "host", "image", "user", "#ips", "ips", "ports", "window",
                       "reason"):
            table.add_column(header, overflow="fold", justify="right" if header in ("#", "#ips") else "left")
        for n, f in enumerate(self.findings, 1):
            sev = Text(f"{terminal(f.severity)}/{terminal(f.confidence)}" + (" strong" if f.strong_indicator else ""),
                       style=_SEVERITY_STYLE.get((f.severity or "").lower(), ""))
            table.add_row(Text(str(n)), sev, safe(f.detection_type), safe(f.host or "?"), safe(_name(f.image) or "?"),
                          safe(f.user or "?"), Text(str(f.unique_external_ips)), safe(_some(f.ip_list, MAX_IPS)),
                          safe(_some(f.port_list, MAX_PORTS)), safe(window(f.first_contact, f.last_contact)),
                          safe(f.reasons[0] if f.reasons else ""))
        self.console.print(table)
        if self.verbose:
            for n, f in enumerate(self.findings, 1):
                self._details(n, f)

    def _details(self, n: int, f: Finding) -> None:
        head = Text(f"\n#{n} ", style="bold")
        head.append(safe(f"{f.detection_type} {f.image or '?'} on {f.host or '?'} (uid {f.uid})"))
        self.console.print(head)
        for reason in f.reasons:
            self.console.print(Text("  - ").append(safe(reason)))
        if f.evidence:
            self.console.print(Text("  evidence: ").append(safe(_some([e.location() for e in f.evidence], 10))))
