"""JSON lines and JSON arrays in any dialect (flat, ECS, Sumo CSE, Azure WindowsEvent).

Fast path: DuckDB reads a clean JSON-lines file directly (row n is line n). Anything else —
malformed lines, blank lines, a JSON array, a record DuckDB rejects — goes the careful path: each
record is checked on its own, bad ones become diagnostics with their line or record number, and the
good ones are loaded with their original positions. Nothing already read is lost.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import orjson
import pyarrow as pa

from stagehunt.diagnostics import Diagnostics
from stagehunt.sources.dialects import DIALECTS, canonical_select_sql, sniff_dialect

if TYPE_CHECKING:
    from stagehunt.store import EventStore, FileInfo

CHUNK = 50_000  # records per careful-path batch
BLOCK = 16 << 20
# Errors that bad *input* causes; anything else (binder, catalog) is our bug and must surface.
DATA_ERRORS = (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.OutOfRangeException)


def first_record(path: Path) -> dict | None:
    """The first JSON record of a file (line or array element), for sniffing; None if none parses."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"["):
        text = text[1:].lstrip()
        # the first element ends at the first "}," or "}]" at depth 0; parse greedily by trying lines
    for line in text.splitlines():
        line = line.strip().rstrip(b",")
        if not line:
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            break
        return rec if isinstance(rec, dict) else None
    try:
        data = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError):
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return data if isinstance(data, dict) else None


def select_sql(dialect: str) -> str:
    """SELECT of canonical columns from read_json(?) in `dialect` (one parameter: the file path)."""
    d = DIALECTS[dialect]
    return (f"SELECT {canonical_select_sql()} FROM (SELECT {d.raw_select_sql()} FROM (SELECT *{d.lets_sql()} "
            f"FROM read_json(?, format='newline_delimited', columns={d.columns_sql()}, "
            f"maximum_object_size=67108864)))")


_NOT_ONE_RECORD_PER_LINE = re.compile(rb"\n[\n\r \t]")


def _is_clean_jsonl(path: Path) -> bool:
    """True when every line is one record (no blank or indented lines), so DuckDB's row order gives
    line numbers. One regex pass per block: several bytes.find passes cost four times more."""
    with open(path, "rb") as f:
        if f.read(1) != b"{":
            return False
        f.seek(0)
        prev = b""
        while blk := f.read(BLOCK):
            if _NOT_ONE_RECORD_PER_LINE.search(prev + blk[:1]) or _NOT_ONE_RECORD_PER_LINE.search(blk):
                return False
            prev = blk[-1:]
    return True


def load_json(store: EventStore, path: Path, name: str, dialect: str | None, diag: Diagnostics) -> FileInfo:
    """Load one JSON file; returns its FileInfo. Raises ValueError if no dialect fits."""
    if dialect is None:
        dialect = sniff_dialect(first_record(path) or {})
        if dialect is None:
            raise ValueError("JSON records carry none of the keys of a known dialect (EventID, winlog, "
                             "metadata_deviceEventId, EventData)")
    info = store.begin_file(name, dialect)
    if _is_clean_jsonl(path):
        try:
            store.insert_select(info, select_sql(dialect), [str(path)])
            return info
        except DATA_ERRORS:
            pass  # fall through: find the bad records one by one, keep the good ones
    _careful(store, info, path, dialect, diag)
    return info


def _records(path: Path, name: str, diag: Diagnostics) -> Iterator[tuple[bytes, int | None, int | None]]:
    """(record JSON, line, record index) for each parseable record; bad ones go to diagnostics."""
    data = path.read_bytes() if path.stat().st_size < (256 << 20) else None
    if data is None:
        with open(path, "rb") as f:
            head = f.read(4096)
    else:
        head = data[:4096]
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        try:
            items = orjson.loads(data if data is not None else path.read_bytes())
        except orjson.JSONDecodeError as e:
            diag.add(name, f"not valid JSON: {e}")
            return
        for i, item in enumerate(items, 1):
            if isinstance(item, dict):
                yield orjson.dumps(item), None, i
            else:
                diag.add(name, "array element is not a JSON object", record=i)
        return
    with open(path, "rb") as f:
        for ln, raw in enumerate(f, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                diag.add(name, f"malformed JSON: {e}", line=ln)
                continue
            if not isinstance(rec, dict):
                diag.add(name, "not a JSON object", line=ln)
                continue
            yield orjson.dumps(rec), ln, None


def insert_records(store: EventStore, info: FileInfo, records: Iterator[tuple[bytes, int | None, int | None]],
                   dialect: str, diag: Diagnostics) -> None:
    """Load (record, line, record number) triples in chunks; a chunk DuckDB rejects is split until the
    offending record is alone, which is then reported and skipped."""
    chunk: list[tuple[bytes, int | None, int | None]] = []
    for rec in records:
        chunk.append(rec)
        if len(chunk) >= CHUNK:
            _insert_chunk(store, info, chunk, dialect, diag)
            chunk = []
    if chunk:
        _insert_chunk(store, info, chunk, dialect, diag)


def _insert_chunk(store: EventStore, info: FileInfo, chunk: list, dialect: str, diag: Diagnostics) -> None:
    tmp = store.tmpdir / "chunk.jsonl"
    tmp.write_bytes(b"\n".join(r for r, _, _ in chunk) + b"\n")
    origins = pa.table({"line": pa.array([ln for _, ln, _ in chunk], pa.int64()),
                        "record": pa.array([rn for _, _, rn in chunk], pa.int64())})
    try:
        store.insert_select(info, select_sql(dialect), [str(tmp)], origins)
    except DATA_ERRORS as e:
        if len(chunk) == 1:
            _, ln, rn = chunk[0]
            diag.add(info.name, f"record does not fit the {dialect} format: {str(e).splitlines()[0]}",
                     line=ln, record=rn)
            return
        mid = len(chunk) // 2
        _insert_chunk(store, info, chunk[:mid], dialect, diag)
        _insert_chunk(store, info, chunk[mid:], dialect, diag)


def _careful(store: EventStore, info: FileInfo, path: Path, dialect: str, diag: Diagnostics) -> None:
    insert_records(store, info, _records(path, info.name, diag), dialect, diag)
