"""Sinks: where findings go. Each is a tiny writer — `write(finding)`, `close()`, a context manager —
chosen by name from `SINKS`; add one with a module and a line here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from stagehunt.sinks.base import Sink
from stagehunt.sinks.csv import CsvSink
from stagehunt.sinks.jsonl import JsonlSink
from stagehunt.sinks.ocsf import OcsfSink
from stagehunt.sinks.table import TableSink

SINKS: dict[str, type[Sink]] = {
    "table": TableSink,
    "jsonl": JsonlSink,
    "csv": CsvSink,
    "ocsf": OcsfSink,
}


def open_sink(name: str, stream_or_path: TextIO | str | Path | Console, **options: Any) -> Sink:
    """A sink by name, writing to an open text stream (left open) or a file path (created, closed on close).

    The table sink also takes a rich Console, and the options `verbose` and `width`.
    """
    try:
        cls = SINKS[name]
    except KeyError:
        raise ValueError(f"unknown output {name!r}; choose one of: {', '.join(SINKS)}") from None
    if isinstance(stream_or_path, Console):
        if cls is not TableSink:
            stream_or_path = stream_or_path.file  # a machine format wants the raw stream, not Rich rendering
        return cls(stream_or_path, **options)  # type: ignore[arg-type]
    return cls(stream_or_path, **options)


__all__ = ["SINKS", "CsvSink", "JsonlSink", "OcsfSink", "Sink", "TableSink", "open_sink"]
