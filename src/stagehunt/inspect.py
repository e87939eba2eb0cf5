"""`stagehunt inspect`: what each input file is, what it holds, and what could not be read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from stagehunt.diagnostics import Diagnostics
from stagehunt.store import EventStore


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
            first_event=first.isoformat() + "Z" if first else None, last_event=last.isoformat() + "Z" if last else None,
            hosts=hosts or [], error_count=diag.counts.get(info.name, 0),
            errors=[{"line": p.line, "record": p.record, "message": p.message} for p in problems],
            notes=list(info.notes),
        ))
    return reports
