"""`stagehunt inspect`: what each input file is, what it holds, and what could not be read."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import TextIO

from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from stagehunt.diagnostics import Diagnostics
from stagehunt.findings import iso
from stagehunt.sinks.table import WIDE, OutputConsole, safe
from stagehunt.store import EventStore

MAX_HOSTS = 5


@dataclass
class FileReport:
    file: str
    format: str
    events: int
    by_event_id: dict[str, dict[str, int]]  # provider -> event id -> count
    first_event: str | None
    last_event: str | None
    hosts: list[str]
    error_count: int
    errors: list[dict] = field(default_factory=list)  # the first few, with line or record
    notes: list[str] = field(default_factory=list)  # what the reader skipped on purpose, and why

    def to_dict(self) -> dict:
        return asdict(self)


def file_reports(store: EventStore, diag: Diagnostics) -> list[FileReport]:
    """One report per input file, in input order, from the loaded store and the diagnostics."""
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for file, provider, eid, n in store.con.execute(
        "SELECT source_file, provider, event_id, count(*) FROM events GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        counts.setdefault(file, {}).setdefault(provider or "unknown", {})[str(eid)] = n
    spans = {f: (a, b, h) for f, a, b, h in store.con.execute(
        "SELECT source_file, min(time), max(time), list(DISTINCT host ORDER BY host) FILTER (host IS NOT NULL) "
        "FROM events GROUP BY source_file").fetchall()}
    reports = []
    for info in store.files:
        first, last, hosts = spans.get(info.name, (None, None, []))
        problems = diag.for_file(info.name)
        reports.append(FileReport(
            file=info.name, format=info.format, events=info.rows, by_event_id=counts.get(info.name, {}),
            first_event=iso(first), last_event=iso(last),  # as findings print times: one width, milliseconds
            hosts=hosts or [], error_count=diag.counts.get(info.name, 0),
            errors=[{"line": p.line, "record": p.record, "message": p.message} for p in problems],
            notes=list(info.notes),
        ))
    return reports


def _ids(r: FileReport) -> str:
    """'sysmon 1:3, 3:12; security 4688:2': counts by event id, numerically, per provider."""
    def order(item: tuple[str, int]) -> int:
        return int(item[0]) if item[0].isdigit() else 0
    return "; ".join(f"{prov} " + ", ".join(f"{k}:{v}" for k, v in sorted(c.items(), key=order))
                     for prov, c in r.by_event_id.items())


def _hosts(r: FileReport) -> str:
    more = f" (+{len(r.hosts) - MAX_HOSTS})" if len(r.hosts) > MAX_HOSTS else ""
    return ", ".join(r.hosts[:MAX_HOSTS]) + more


def render(reports: list[FileReport], stream: TextIO | None = None) -> None:
    """The reports for people: a table when the console is wide enough for it, else one block per file (a
    table squeezed into 80 columns folds paths into slivers of a few characters). A pipe or file gets the
    table at WIDE columns, as the hunt's table. File content and names are attacker-controlled: every value
    goes through the table sink's `safe` (control characters escaped, newlines shown as \\n)."""
    console = OutputConsole(file=stream, highlight=False, markup=False, emoji=False,
                      width=None if (stream or sys.stdout).isatty() else WIDE)
    table = Table(title="stagehunt inspect")
    for col in ("file", "format", "events", "by event id", "first (UTC)", "last (UTC)", "hosts", "errors"):
        table.add_column(col, overflow="fold")
    for r in reports:
        table.add_row(*(safe(v) for v in (r.file, r.format, str(r.events), _ids(r), r.first_event or "-",
                                          r.last_event or "-", _hosts(r), str(r.error_count))))
    unbounded = console.options.update_width(1 << 16)
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
        for r in reports:
            for note in r.notes:
                console.print(Text("note: ").append(safe(r.file)).append(": ").append(safe(note)), soft_wrap=True)
        return
    for r in reports:
        name = safe(r.file)
        name.stylize("bold")
        console.print(name, soft_wrap=True)  # the path whole, to copy
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        rows = [("format", r.format)]
        if r.events or r.error_count or not r.notes:  # a file skipped or empty, with a note why: that is all
            rows += [("events", str(r.events)), ("by event id", _ids(r) or "-"), ("first (UTC)", r.first_event or "-"),
                     ("last (UTC)", r.last_event or "-"), ("hosts", _hosts(r) or "-"), ("errors", str(r.error_count))]
        rows += [("note", note) for note in r.notes]  # beside its file, not after all the blocks
        for label, value in rows:
            grid.add_row(f"  {label}", safe(value))
        console.print(grid)
