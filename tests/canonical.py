"""Load one file through the real readers and return its canonical rows, for the reader tests."""

from __future__ import annotations

from pathlib import Path

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.schema import COLUMN_NAMES
from stagehunt.store import EventStore


def load_rows(path: Path, fmt: str = "auto", order: str = "rowid") -> tuple[list[dict], Diagnostics, list]:
    """(rows as column dicts in `order`, diagnostics, FileInfos) of `path` read as `fmt`."""
    diag = Diagnostics()
    with EventStore() as store:
        sources.load(store, [sources.Input(path.name, path)], fmt, diag)
        rows = [dict(zip(COLUMN_NAMES, r, strict=True))
                for r in store.con.execute(f"SELECT * FROM events ORDER BY {order}").fetchall()]
        return rows, diag, store.files
