"""A Rich table for people at a terminal, with the reasons of each finding when verbose.

Eleven columns need room: the first reason is a table column when the console is wide enough, printed
under the table when it is not, and each finding becomes a small stacked block when even the table
without it would fold host names and paths into slivers.

Log content is attacker-controlled: every value goes through `escape.terminal` (ESC, BEL, bidi
overrides shown as \\xNN) and into a `rich.text.Text`, which Rich never parses for markup, so a
command line holding `[red]` or `:skull:` prints as typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from stagehunt.escape import terminal
from stagehunt.findings import Finding
from stagehunt.sinks.base import Sink, scrub

MAX_IPS = 3
MAX_PORTS = 5
WIDE = 200  # width used when writing to a file or pipe, where no terminal says how wide
MIN_REASON = 40  # columns the first reason needs to be worth a table column of its own
# Caps keep long hosts or paths from starving the reason column; what exceeds a cap folds, never truncates.
COLUMNS: list[tuple[str, dict[str, Any]]] = [
    ("#", {"justify": "right", "no_wrap": True}),
    ("score sev/conf", {"no_wrap": True}),
    ("detection", {"max_width": 22}),
    ("host", {"max_width": 28}),
    ("image", {"max_width": 28}),
    ("user", {"max_width": 20}),
    ("#ips", {"justify": "right", "no_wrap": True}),
    ("ips", {"max_width": 39}),
    ("ports", {"max_width": 14}),
    ("window", {"max_width": 25}),
    ("reason", {"ratio": 1, "min_width": 20}),
]
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def safe(value: object) -> Text:
    """Log-derived text as an inert Text: control characters escaped, newlines and tabs made visible."""
    s = terminal(scrub(value) if isinstance(value, str) else value)
    return Text(s.replace("\n", "\\n").replace("\t", "\\t"))


def _name(path: str | None) -> str | None:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] if path else None


def _some(items: list, limit: int) -> list[str]:
    shown = [str(x) for x in items[:limit]]
    return shown + ([f"+{len(items) - limit} more"] if len(items) > limit else [])


def addresses(f: Finding) -> list[str]:
    """The addresses `#ips` counts: `ip_list`, and where the count covers an earlier stage too (a handoff's
    covers both stages' addresses), that stage's others after them, marked."""
    shown = list(f.ip_list)
    if f.unique_external_ips > len(shown):
        shown += [f"{ip} (earlier)" for ip in f.parent_ip_list if ip not in f.ip_list]
    return shown


def lines(items: list, limit: int) -> Text:
    """The first few values, one per line (addresses are easier to read stacked than wrapped)."""
    return Text("\n").join(safe(x) for x in _some(items, limit))


def _when(iso_text: str | None) -> str:
    """'2024-05-01T10:00:00.000Z' -> '2024-05-01 10:00:00'."""
    return (iso_text or "?").replace("T", " ").split(".")[0].rstrip("Z")


def window(first: str | None, last: str | None, sep: str = "\n") -> Text:
    """First and last contact, UTC; the date once when both are on the same day."""
    a, b = _when(first), _when(last)
    if a[:10] == b[:10] and len(b) > 11:
        b = b[11:]
    return Text(terminal(a)).append(f"{sep}– {terminal(b)} UTC")


def _severity(f: Finding, sep: str = "\n") -> Text:
    score = f"{f.score} " if f.score is not None else ""
    return Text(f"{score}{terminal(f.severity)}/{terminal(f.confidence)}" + (f"{sep}strong" if f.strong_indicator
                                                                             else ""),
                style=_SEVERITY_STYLE.get((f.severity or "").lower(), ""))


class OutputConsole(Console):
    """A Rich console for standard output or a file. A closed pipe (`| head`) raises BrokenPipeError, which
    the CLI turns into a quiet exit 0 as Unix tools do; Rich's own handling exits with status 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more from this console
        raise BrokenPipeError("output closed")


class TableSink(Sink):
    """Collects findings and renders them on close (a table needs all its rows to size its columns)."""

    def __init__(self, target: Console | TextIO | str | Path, verbose: bool = False, width: int | None = None):
        if isinstance(target, Console):
            super().__init__(target.file)
            self.console = target
        else:
            super().__init__(target)
            # not a terminal (a file, a pipe): no colour codes, and wide enough for the full table
            self.console = OutputConsole(file=self.stream, highlight=False, emoji=False, markup=False,
                                         width=width or (None if self.stream.isatty() else WIDE))
        self.verbose = verbose
        self.findings: list[Finding] = []

    def write(self, finding: Finding) -> None:
        self.findings.append(finding)

    def finish(self) -> None:
        if not self.findings:
            return
        # Pick the layout the data fits: a table with the first reason as a column, the table with the
        # reasons under it, or (when even that would fold names into slivers) one stacked block per finding.
        width = self.console.width
        unbounded = self.console.options.update_width(1 << 16)  # measure the natural width, not the clamped one
        natural = Measurement.get(self.console, unbounded, self._table(False)).maximum
        if natural > width:
            self.console.print(Text(f"{len(self.findings)} finding(s)", style="bold"))
            for n, f in enumerate(self.findings, 1):
                self._stacked(n, f)
            return
        with_reason = natural + MIN_REASON <= width
        self.console.print(self._table(with_reason))
        for n, f in enumerate(self.findings, 1):
            if self.verbose:
                self._details(n, f)
            elif not with_reason and f.reasons:
                self.console.print(Text(f"#{n} ").append(safe(f.reasons[0])))

    def _table(self, with_reason: bool) -> Table:
        table = Table(title=Text(f"{len(self.findings)} finding(s)"), box=box.SIMPLE_HEAD, highlight=False)
        for header, options in COLUMNS:
            if with_reason or header != "reason":
                table.add_column(header, overflow="fold", **options)
        for n, f in enumerate(self.findings, 1):
            cells = [Text(str(n)), _severity(f), safe(f.detection_type), safe(f.host or "?"),
                     safe(_name(f.image) or "?"), safe(f.user or "?"), Text(str(f.unique_external_ips)),
                     lines(addresses(f), MAX_IPS), safe(", ".join(_some(f.port_list, MAX_PORTS))),
                     window(f.first_contact, f.last_contact)]
            table.add_row(*cells, *([safe(f.reasons[0] if f.reasons else "")] if with_reason else []))
        return table

    def _stacked(self, n: int, f: Finding) -> None:
        head = Text(f"\n#{n} ", style="bold").append(_severity(f, " ")).append("  ").append(safe(f.detection_type))
        self.console.print(head)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        grid.add_row("   host", safe(f.host or "?"))
        grid.add_row("   image", safe(_name(f.image) or "?"))
        grid.add_row("   user", safe(f.user or "?"))
        grid.add_row(f"   ips ({f.unique_external_ips})", safe(", ".join(_some(addresses(f), MAX_IPS))))
        grid.add_row("   ports", safe(", ".join(_some(f.port_list, MAX_PORTS))))
        grid.add_row("   window", window(f.first_contact, f.last_contact, " "))
        for i, reason in enumerate(f.reasons if self.verbose else f.reasons[:1]):
            grid.add_row("   reason" if i == 0 else "", safe(reason))
        if self.verbose and f.evidence:
            grid.add_row("   evidence", safe(", ".join(_some([e.location() for e in f.evidence], 10))))
        self.console.print(grid)

    def _details(self, n: int, f: Finding) -> None:
        head = Text(f"\n#{n} ", style="bold")
        head.append(safe(f"{f.detection_type} {f.image or '?'} on {f.host or '?'} (uid {f.uid})"))
        self.console.print(head)
        rows = [("  -", safe(reason)) for reason in f.reasons]
        if f.evidence:
            rows.append(("  evidence:", safe(", ".join(_some([e.location() for e in f.evidence], 10)))))
        if not self.console.is_terminal:  # a file or pipe: one line per reason, whole, for grep
            for label, text in rows:
                self.console.print(Text(label + " ").append(text), soft_wrap=True)
            return
        for label in dict.fromkeys(label for label, _ in rows):  # a grid per label: its own indent
            grid = Table.grid(padding=(0, 1))  # on a terminal: wrapped lines hang under the text
            grid.add_column(no_wrap=True)
            grid.add_column(overflow="fold")
            for text in (t for lab, t in rows if lab == label):
                grid.add_row(label, text)
            self.console.print(grid)
