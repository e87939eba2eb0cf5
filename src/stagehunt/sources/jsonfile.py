"""JSON lines and JSON arrays in any dialect (flat, ECS, Sumo CSE, Azure WindowsEvent).

Fast path: DuckDB reads a clean JSON-lines file directly (row n is line n). Anything else —
malformed lines, blank lines, a JSON array, a record DuckDB rejects — goes the careful path: each
record is checked on its own, bad ones become diagnostics with their line or record number, and the
good ones are loaded with their original positions. Nothing already read is lost.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import duckdb
import orjson

from stagehunt.diagnostics import Diagnostics
from stagehunt.sources.dialects import DIALECTS, canonical_sql, sniff_dialect
from stagehunt.store import FileInfo

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from stagehunt.store import EventStore

CHUNK = 50_000  # records per careful-path batch
_BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark (PowerShell 5 `Out-File -Encoding utf8` writes one)
# Errors that bad *input* causes; anything else (binder, catalog) is our bug and must surface.
DATA_ERRORS = (duckdb.InvalidInputException, duckdb.ConversionException, duckdb.OutOfRangeException)


def first_record(path: Path) -> dict | None:
    """The first JSON record of a file (line or array element), for sniffing; None if none parses.

    With one record per line, the first line that parses as an object: a file whose first line was cut
    (log rotation, `tail -c`, a partial copy) or damaged is still recognised. Pretty-printed objects
    (first line `{` alone) give their first object; a pretty-printed array (first line `[` alone) is parsed
    whole, and line by line only if that fails."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    text = head.removeprefix(_BOM).lstrip(b" \t\r\n")  # the BOM as a sequence, not its bytes
    if _is_pretty_stream(text):
        return next((orjson.loads(r) for r, _, _ in _pretty_records(path, lambda *_: None)), None)
    if text.startswith(b"["):
        text = text[1:].lstrip()
        if (rec := _first_value(text)) is not None:  # an array's first element, without parsing the file
            return rec
    pretty = text.split(b"\n", 1)[0].strip() in (b"{", b"[")
    if not pretty and (rec := _first_object_line(text)) is not None:
        return rec
    try:
        data = orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError):
        return _first_object_line(text) if pretty else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    return data if isinstance(data, dict) else None


def _first_value(text: bytes) -> dict | None:
    """The JSON object `text` starts with, if it is whole in `text` (which may go on, or be cut, after it)."""
    try:
        rec, _ = json.JSONDecoder().raw_decode(text.decode("utf-8", "replace"))
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _first_object_line(text: bytes) -> dict | None:
    for line in _lines(text):
        line = line.strip().rstrip(b",")
        if not line:
            continue
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            return rec
    return None


def _lines(text: bytes) -> Iterator[bytes]:
    """The lines of `text` one at a time (the first one is usually all a sniff needs)."""
    start = 0
    while start < len(text):
        end = text.find(b"\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end]
        start = end + 1


def select_sql(dialect: str, layout: str = "newline_delimited") -> str:
    """SELECT of canonical columns from read_json(?) in `dialect` (one parameter: the file path); `layout`
    is DuckDB's format: newline_delimited (JSON lines), array (one JSON array of the records) or
    unstructured (objects one after another, pretty-printed)."""
    d = DIALECTS[dialect]
    return canonical_sql(f"SELECT {d.raw_select_sql()} FROM (SELECT *{d.lets_sql()} FROM read_json(?, "
                         f"format='{layout}', records=true, columns={d.columns_sql()}))")


# A line that does not start with `{`: blank, indented, or no object at all (DuckDB would load a `null`
# line as an empty event instead of rejecting it). A raw newline cannot occur inside a JSON string.
_NOT_ONE_RECORD_PER_LINE = re.compile(rb"\n[^{]")


_WINDOW = 64 << 20  # bytes mapped at a time (a multiple of mmap.ALLOCATIONGRANULARITY)
_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux: map the pages in one go, not one fault per page
# read-only mappings: POSIX flags (with MAP_POPULATE where there is one), or Windows' access mode
_READ_ONLY: dict[str, int] = (dict(flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ)
                              if hasattr(mmap, "MAP_SHARED") else dict(access=mmap.ACCESS_READ))
_SLICE = 4 << 20  # bytes compared at a time: numpy's temporary stays small and in cache


def _mapped(f: BinaryIO, window: int) -> Iterator[memoryview]:
    """The open file's bytes, mapped a window at a time (no copies, and mapped pages never add more than a
    window to the resident set), each window one byte longer than `window` so that a two-byte pattern across
    its edge is seen. Raises OSError or ValueError for a file that cannot be mapped (a pipe, a special file
    system)."""
    size = os.fstat(f.fileno()).st_size
    for off in range(0, size, window):
        with mmap.mmap(f.fileno(), min(window + 1, size - off), offset=off, **_READ_ONLY) as mm, \
                memoryview(mm) as view:
            yield view


def _is_clean_jsonl(path: Path, window: int = _WINDOW) -> bool:
    """True when every line starts a record (no blank, indented or non-object lines), so DuckDB's row
    order gives line numbers. One regex pass over the mapped file (~3 GB/s): the exact check, for files
    whose quick check (`_line_count` and `_all_events`) cannot decide."""
    with open(path, "rb") as f:
        if f.read(1) != b"{":
            return False
        size = os.fstat(f.fileno()).st_size
        f.seek(size - 1)
        end = size - (f.read(1) == b"\n")  # a final newline ends the last line; it does not start a new one
        try:
            for off, view in zip(range(0, end, window), _mapped(f, window), strict=False):
                if _NOT_ONE_RECORD_PER_LINE.search(view, 0, min(len(view), end - off)):
                    return False
        except (OSError, ValueError):  # not mappable: read it carefully
            return False
    return True


def _line_count(path: Path, window: int = _WINDOW) -> int | None:
    """The file's lines (its newlines, and one more for a last line without one), counted by numpy (~10 GB/s,
    a third of the regex check's cost: it runs beside DuckDB's load, on the same two cores); None when the
    file cannot be mapped. DuckDB skips blank and whitespace-only lines, and a line holding anything but
    one JSON value is an error, so a load with as many rows as lines numbered them right, unless a line
    holds a bare `null` (see _all_events)."""
    import numpy as np  # here, beside DuckDB's load: its import (~0.06 s) then costs the run nothing

    lines, last = 0, 10
    with open(path, "rb") as f:
        try:
            for view in _mapped(f, window):
                a = np.frombuffer(view, dtype=np.uint8)[:window]  # the extra byte is the next window's first
                for at in range(0, len(a), _SLICE):
                    lines += int(np.count_nonzero(a[at:at + _SLICE] == 10))
                last = int(a[-1])
                del a  # the mapping cannot close while numpy holds it
        except (OSError, ValueError):
            return None
    return lines + (last != 10)


def _all_events(store: EventStore, base: int, path: Path) -> bool:
    """After a load with as many rows as the file has lines: true unless a line was a bare `null`, which
    DuckDB loads as a row of nothing (no event id, no provider) where the careful path reports an error.
    A row of nothing can also be `{}` or an object without a known key, so only then does the exact
    check decide."""
    return _no_empty_rows(store, base) or _is_clean_jsonl(path)


def load_json(store: EventStore, path: Path, name: str, dialect: str | None, diag: Diagnostics) -> FileInfo:
    """Load one JSON file; returns its FileInfo. Raises ValueError if no dialect fits."""
    if dialect is None:
        dialect = sniff_dialect(first_record(path) or {})
        if dialect is None:
            raise ValueError("JSON records carry none of the keys of a known dialect (EventID, winlog, "
                             "metadata_deviceEventId, EventData)")
    info = store.begin_file(name, dialect)
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.removeprefix(_BOM).lstrip(b" \t\r\n").startswith(b"["):  # DuckDB skips both, as orjson does
        if _fast_array(store, info, path, dialect):
            return info
    elif _is_pretty_stream(head.removeprefix(_BOM)):
        if _fast_pretty(store, info, path, dialect):
            return info
    elif head.removeprefix(_BOM).startswith(b"{"):  # DuckDB skips a BOM
        # a last line cut short (rotation, a copy of a live log) would fail the whole read at its very end
        refused = "" if _last_line_cut(path) else _fast(store, info, path, dialect)
        if refused is None:
            return info
        from stagehunt.sources import damaged_jsonl  # a few bad lines: only they are read record by record

        if damaged_jsonl.load(store, info, path, dialect, diag, refused or None):
            return info
    _careful(store, info, path, dialect, diag)
    return info


def _last_line_cut(path: Path) -> bool:
    """No newline ends the file, and its last line is no whole JSON object (looked at within the last MiB)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - (1 << 20)))
        tail = f.read()
    if not tail or tail.endswith(b"\n"):
        return False
    at = tail.rfind(b"\n")
    if at < 0 and len(tail) < size:
        return False  # a last line longer than we look at: the read decides
    try:
        return not isinstance(orjson.loads(tail[at + 1:]), dict)
    except orjson.JSONDecodeError:
        return True


def _fast(store: EventStore, info: FileInfo, path: Path, dialect: str) -> str | None:
    """Load a clean JSON-lines file in one DuckDB statement; None when it did, else (nothing kept) DuckDB's
    error, or "" when the rows did not match the lines. The lines are counted while DuckDB loads, and the
    load is rolled back unless it gave one event per line, so a clean file costs one pass, not two."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        lines = pool.submit(_line_count, path)
        base = store.next_rowid
        try:
            kept = store.insert_select(info, select_sql(dialect), [str(path)],
                                       keep=lambda n: n == lines.result() and _all_events(store, base, path))
        except DATA_ERRORS as e:
            return str(e)  # nothing inserted
    if kept is None:
        return ""
    if dialect == "flat":
        _fill_5156_pids(store, base, kept, path)
    return None


def _fast_array(store: EventStore, info: FileInfo, path: Path, dialect: str) -> bool:
    """Load a clean JSON array of records (Splunk, Azure and PowerShell exports) in one DuckDB statement,
    element k as record k, without holding the elements as Python objects; False (nothing kept) when the
    careful path must decide: DuckDB rejects the file (damaged, cut short, an element that is no object, a
    repeated key, no closing `]`) or an element read as nothing (`null`, `{}`, no known key), which that
    path reports."""
    if not _ends_array(path):  # DuckDB reads `[{...},` as one element: a cut export must be reported
        return False
    return _insert_whole(store, info, path, dialect, "array", lambda n, base: _no_empty_rows(store, base),
                         by_record=True)


def _insert_whole(store: EventStore, info: FileInfo, path: Path, dialect: str, layout: str,
                  keep: Callable[[int, int], bool], **origins: Any) -> bool:
    """Insert the events of `path` (DuckDB's `layout`) in one statement, kept if keep(rows, first rowid);
    True when they were. `origins` as store.insert_select takes them (`origins=` or `by_record=`)."""
    base = store.next_rowid
    try:
        kept = store.insert_select(info, select_sql(dialect, layout), [str(path)], keep=lambda n: keep(n, base),
                                   **origins)
    except DATA_ERRORS:
        return False
    if kept is None:
        return False
    if dialect == "flat":
        _fill_5156_pids(store, base, kept, path, layout)
    return True


def _fast_pretty(store: EventStore, info: FileInfo, path: Path, dialect: str) -> bool:
    """Load a clean stream of pretty-printed objects (`jq .`) in one DuckDB statement, each object cited by
    the line its `{` is on; False (nothing kept) unless it reads as the careful path reads such a stream
    without a problem: each object opens with `{` and closes with `}` in the first column (so they alternate),
    and DuckDB reads one event per object. (Anything else between objects DuckDB rejects, or reads as one
    more row or as an empty one: text, scalars, arrays, `null`, an indented object.)"""
    import numpy as np

    from stagehunt.sources.lineindex import lines_starting

    try:
        found = lines_starting(path, b"{}\xef")
    except (OSError, ValueError):
        return False
    opens, closes = found[ord("{")], found[ord("}")]
    if len(found[_BOM[0]]) and found[_BOM[0]][0] == 1:  # the BOM, before the first `{` (as the sniff found)
        opens = np.concatenate([[1], opens])
    if len(opens) != len(closes) or not len(opens) or not (
            (opens < closes).all() and (closes[:-1] < opens[1:]).all()):
        return False
    return _insert_whole(store, info, path, dialect, "unstructured",
                         lambda n, base: n == len(opens) and _no_empty_rows(store, base), origins=line_origins(opens))


def line_origins(lines: np.ndarray) -> pa.Table:
    """Origins for store.insert_select: row k is line lines[k] (no record numbers)."""
    import pyarrow as pa

    return pa.table({"line": pa.array(lines, pa.int64()), "record": pa.nulls(len(lines), pa.int64())})


def _ends_array(path: Path) -> bool:
    """The file's last byte other than whitespace is `]`."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(max(0, size - 4096))
        return f.read().rstrip(b" \t\r\n").endswith(b"]")


def _no_empty_rows(store: EventStore, base: int) -> bool:
    """No row from rowid `base` on is one of nothing (no event id, no provider)."""
    return store.con.execute("SELECT 1 FROM events WHERE rowid >= ? AND event_id IS NULL AND provider IS NULL "
                             "LIMIT 1", [base]).fetchone() is None


# Small JSON-lines files are read many to one statement: planning the canonical SELECT costs ~10 ms, which
# for a directory of thousands of small files (per-host exports, rotated logs) was 40x the reading itself.
SMALL_FILE = 4 << 20  # bytes; bigger files are read one per statement (their planning cost is negligible)


def batch_dialect(path: Path, fmt: str) -> str | None:
    """The dialect of a small file that looks like clean JSON lines (`fmt`: "json" or a dialect name), so it
    can share a statement with others; None for anything else, which is read on its own."""
    try:
        if path.stat().st_size >= SMALL_FILE:
            return None
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if not head.startswith(b"{") or head.split(b"\n", 1)[0].strip() == b"{":  # pretty-printed: not one per line
        return None
    if fmt in DIALECTS:
        return fmt
    return sniff_dialect(first_record(path) or {}) if fmt == "json" else None


def load_json_lines_batch(store: EventStore, files: list[tuple[Path, str]], dialect: str) -> list[FileInfo] | None:
    """Load several small JSON-lines files of one dialect ((path, name) each) as one: laid end to end in a
    temporary file (DuckDB's multi-file reader costs ~0.6 ms per file, more than such a file's reading), each
    file's lines numbered from 1 again. None (nothing kept) when any of them is not clean JSON lines or
    DuckDB rejects a record: the caller then reads them one by one, and the careful path finds what is wrong."""
    joined = store.tmpdir / "batch.jsonl"
    try:
        lines = _lay_end_to_end([path for path, _ in files], joined)
    except (OSError, ValueError):
        return None
    infos = [FileInfo(name, dialect, 0, rows=n) for (_, name), n in zip(files, lines, strict=True)]
    # the rows must number the files' lines (insert_files checks), and every file starts with `{`
    # (batch_dialect), so each boundary is a clean line start too
    base = store.next_rowid
    try:
        if not store.insert_files(infos, select_sql(dialect), [str(joined)],
                                  keep=lambda _: _all_events(store, base, joined)):
            return None
    except DATA_ERRORS:
        return None
    if dialect == "flat":  # the joined file's row i is the group's row i
        _fill_5156_pids(store, infos[0].first_rowid, sum(lines), joined)
    return infos


def _lay_end_to_end(paths: list[Path], joined: Path) -> list[int]:
    """Copy the files one after another into `joined`, each ending in a newline (its last line ends there,
    not in the next file's first); the lines of each, counted in the copy. The bytes go file to file in the
    kernel where it can (copy_file_range) and numpy counts: through Python, 5 GB of 2 MB files took 7.5 s."""
    import numpy as np

    spans = []
    with open(joined, "w+b", buffering=0) as out:
        for path in paths:
            start = out.tell()
            with open(path, "rb", buffering=0) as src:
                size = os.fstat(src.fileno()).st_size
                src.seek(max(size - 1, 0))
                ends_line = src.read(1) in (b"\n", b"")
                src.seek(0)
                _copy(src, out, size)
            if not ends_line:
                out.write(b"\n")
            spans.append((start, out.tell()))
        if not out.tell():
            return [0] * len(paths)
        with mmap.mmap(out.fileno(), 0, **_READ_ONLY) as mm:
            a = np.frombuffer(mm, dtype=np.uint8)
            lines = [int(np.count_nonzero(a[start:end] == 10)) for start, end in spans]
            del a  # the mapping cannot close while numpy holds it
    return lines


def _copy(src: BinaryIO, out: BinaryIO, size: int) -> None:
    """`size` bytes from `src` to `out`, at their offsets: in the kernel if it can, else through a buffer."""
    done = 0
    kernel = hasattr(os, "copy_file_range")  # Linux
    while done < size:
        n = 0
        if kernel:
            try:
                n = os.copy_file_range(src.fileno(), out.fileno(), size - done)
            except OSError:  # not between these file systems: copy by hand
                kernel = False
                continue
        else:
            chunk = memoryview(src.read(min(1 << 20, size - done)))
            n = len(chunk)
            while chunk:  # a raw write may take less than it is given
                chunk = chunk[out.write(chunk):]
        if not n:  # the file shrank meanwhile: the line count and DuckDB decide what it holds
            return
        done += n


def _fill_5156_pids(store: EventStore, base: int, n: int, source: Path, layout: str = "newline_delimited") -> None:
    """Security 5156 rows of a flat file (rowids base..base+n-1, row i = record i of `source`) that
    spell their pid `ProcessID` (NXLog) get it. DuckDB matches JSON keys case-sensitively, but the columns
    it is asked for must differ regardless of case, so `ProcessID` cannot be read beside `ProcessId`: a
    second read of that one key, only for files that hold such rows."""
    if store.con.execute("SELECT 1 FROM events WHERE rowid >= ? AND rowid < ? AND event_id = 5156 "
                         "AND provider = 'security' AND pid IS NULL LIMIT 1", [base, base + n]).fetchone() is None:
        return
    # a table keeps the file's order in its rowids (insertion order is preserved): row i = record i
    store.con.execute("CREATE OR REPLACE TEMP TABLE _pids AS SELECT TRY_CAST(\"ProcessID\" AS BIGINT) AS pid "
                      f"FROM read_json(?, format='{layout}', records=true, "
                      "columns={'ProcessID': 'VARCHAR'})", [str(source)])
    store.con.execute("UPDATE events SET pid = p.pid FROM (SELECT rowid + ? AS erow, pid FROM _pids) p "
                      "WHERE events.rowid = p.erow AND events.event_id = 5156 AND events.provider = 'security' "
                      "AND events.pid IS NULL", [base])
    store.con.execute("DROP TABLE _pids")


Triple = tuple[bytes, int | None, int | None]  # (record JSON, line, record number)
Report = Callable[[str, int | None, int | None], None]  # (message, line, record number)


def _records(path: Path, name: str, diag: Diagnostics) -> Iterator[Triple]:
    """(record JSON, line, record index) for each parseable record; bad ones go to diagnostics."""
    def report(message: str, line: int | None, record: int | None) -> None:
        diag.add(name, message, line=line, record=record)

    with open(path, "rb") as f:
        head = f.read(4096).removeprefix(_BOM).lstrip(b" \t\r\n")
    if _is_pretty_stream(head):
        yield from _pretty_records(path, report)
        return
    if not head.startswith(b"["):
        yield from _line_records(path, report)
        return
    if _ends_array(path) and _one_clean_array(path):
        yield from _array_items(_streamed_elements(path, report), report)
    else:
        yield from _careful_array(path, report)


def _careful_array(path: Path, report: Report) -> Iterator[Triple]:
    """A file starting with `[` read whole in Python: a damaged array salvaged up to the damage, or JSON lines
    whose first line is an array."""
    data = path.read_bytes()
    try:
        items = orjson.loads(data)
    except orjson.JSONDecodeError:
        items = None
    if isinstance(items, list):
        yield from _array_items(enumerate(items, 1), report)
        return
    # Damaged: a cut or corrupted array, or JSON lines whose first line is no object. Read it both
    # ways and keep the reading that recovers more records (nothing already read is lost); on a tie,
    # JSON lines if the first line is a whole JSON value by itself (the one-record-per-line shape).
    first_line_whole = _parses(data.split(b"\n", 1)[0])
    readings = []
    for is_lines, read in ((False, lambda r: _salvage_array(data, r)), (True, lambda r: _line_records(path, r))):
        problems: list[tuple[str, int | None, int | None]] = []
        records = list(read(lambda m, ln, rn, p=problems: p.append((m, ln, rn))))
        readings.append(((len(records), is_lines == first_line_whole), records, problems))
    _, records, problems = max(readings, key=lambda x: x[0])
    for p in problems:
        report(*p)
    yield from records


# DuckDB hands over a JSON array's elements as their own text a batch at a time: the careful path's
# orjson.loads of the whole file held every row as Python objects, ~7x the file (1.1 GB for a 168 MB Azure
# Syslog export).
_ELEMENTS = "SELECT json FROM read_json_objects(?, format='array')"


def _array_connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET memory_limit = '512MB'")
    con.execute("SET preserve_insertion_order = true")  # element k is record k
    return con


def _one_clean_array(path: Path) -> bool:
    """DuckDB reads the whole file as one JSON array (a damaged one is left to the careful path)."""
    con = _array_connection()
    try:
        con.execute(f"SELECT count(*) FROM ({_ELEMENTS})", [str(path)]).fetchone()
    except duckdb.InterruptException:
        raise
    except duckdb.Error:
        return False
    finally:
        con.close()
    return True


def _streamed_elements(path: Path, report: Report) -> Iterator[tuple[int, Any]]:
    """(index, element) of a clean JSON array, a batch of elements at a time."""
    con = _array_connection()
    try:
        cur = con.execute(_ELEMENTS, [str(path)])
        k = 0
        while batch := cur.fetchmany(4096):
            for (text,) in batch:
                k += 1
                try:
                    yield k, orjson.loads(text)
                except orjson.JSONDecodeError as e:  # refused by orjson, not DuckDB: an integer past 64 bits
                    report(f"array element cannot be read: {e}", None, k)
    finally:
        con.close()


def objects(path: Path, name: str, diag: Diagnostics) -> Iterator[tuple[dict, int | None, int | None]]:
    """(object, line, record index) of each JSON object in any of the layouts the careful path reads (JSON
    lines, an array, pretty-printed objects; damaged ones salvaged), for readers that take the rows apart
    in Python (Azure Syslog rows); bad ones go to diagnostics."""
    for raw, ln, rn in _records(path, name, diag):
        yield orjson.loads(raw), ln, rn


def _parses(text: bytes) -> bool:
    try:
        orjson.loads(text.strip().removeprefix(_BOM))
    except orjson.JSONDecodeError:
        return False
    return True


def _line_records(path: Path, report: Report) -> Iterator[Triple]:
    with open(path, "rb") as f:
        for ln, raw in enumerate(f, 1):
            record, problem = read_line(raw, ln)
            if record is not None:
                yield record, ln, None
            elif problem is not None:
                report(problem, ln, None)


def read_line(raw: bytes, ln: int) -> tuple[bytes | None, str | None]:
    """The careful reading of line `ln` of JSON lines: (the record, re-serialised, None), (None, the problem),
    or (None, None) for a blank line."""
    line = raw.strip()
    if ln == 1 and line.startswith(_BOM):
        line = line[len(_BOM):].strip()
    if not line:
        return None, None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return None, f"malformed JSON: {e}"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    return orjson.dumps(rec), None


def _is_pretty_stream(head: bytes) -> bool:
    """Pretty-printed objects, one after another (`jq .`, `ConvertTo-Json`, `json.dump(indent=...)`):
    the first line holds nothing but the `{` that opens the first object."""
    return head.split(b"\n", 1)[0].strip() == b"{"


def _pretty_records(path: Path, report: Report) -> Iterator[Triple]:
    """Each top-level object of a pretty-printed stream, numbered by the line it starts on. A top-level
    object opens with `{` in the first column and closes with `}` in the first column (its content is
    indented); one that does not parse, or is cut by the next one or by the end of the file, is reported
    with its first line, and the objects around it are kept."""
    start: int | None = None
    buf: list[bytes] = []

    def finish() -> Iterator[Triple]:
        try:
            rec = orjson.loads(b"\n".join(buf))
        except orjson.JSONDecodeError as e:
            report(f"malformed JSON object: {e}", start, None)
            return
        if isinstance(rec, dict):
            yield orjson.dumps(rec), start, None
        else:
            report("not a JSON object", start, None)

    with open(path, "rb") as f:
        for ln, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            if ln == 1:
                line = line.removeprefix(_BOM)
            if line.startswith(b"{"):
                if start is not None:
                    report("JSON object is not closed before the next one starts", start, None)
                start, buf = ln, [line]
                if line.rstrip().endswith(b"}") and _parses(line):  # a whole object on its line
                    yield from finish()
                    start = None
            elif start is not None:
                buf.append(line)
                if line.startswith(b"}"):
                    yield from finish()
                    start = None
            elif line.strip():
                report("text outside any JSON object", ln, None)
    if start is not None:
        report("JSON object is not closed at the end of the file (file truncated?)", start, None)


def _array_items(items: Iterable[tuple[int, Any]], report: Report) -> Iterator[Triple]:
    for i, item in items:
        if not isinstance(item, dict):
            report("array element is not a JSON object", None, i)
            continue
        try:
            yield orjson.dumps(item), None, i
        except orjson.JSONEncodeError:  # salvaged text with invalid UTF-8 (kept as surrogate escapes)
            report("array element is not valid UTF-8", None, i)


_WS = re.compile(r"[ \t\r\n]*")


def _salvage_array(data: bytes, report: Report) -> Iterator[Triple]:
    """The elements of a damaged JSON array up to the damage, one by one; the damage is reported."""
    # invalid UTF-8 survives as surrogate escapes; _array_items reports the elements holding any
    text = data.decode("utf-8", "surrogateescape").lstrip("\ufeff \t\r\n")[1:]  # past the `[`
    yield from _array_items(_salvaged_elements(text, report), report)


def _salvaged_elements(text: str, report: Report) -> Iterator[tuple[int, Any]]:
    decoder, n, i = json.JSONDecoder(), len(text), 1
    pos = _WS.match(text).end()
    if not text.startswith("]", pos):
        while True:
            if pos >= n:
                report(f"JSON array ends before element {i} (file truncated?)", None, i)
                return
            try:
                item, pos = decoder.raw_decode(text, pos)
            except (json.JSONDecodeError, RecursionError) as e:
                reason = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
                report(f"not valid JSON from array element {i} on ({reason}); the rest is skipped", None, i)
                return
            yield i, item
            pos = _WS.match(text, pos).end()
            if not text.startswith(",", pos):
                break
            pos = _WS.match(text, pos + 1).end()
            i += 1
        if pos >= n:
            report(f"JSON array ends after element {i} without ']' (file truncated?)", None, None)
            return
        if not text.startswith("]", pos):
            report(f"expected ',' or ']' after array element {i}; the rest is skipped", None, i + 1)
            return
    if _WS.match(text, pos + 1).end() < n:
        report("data after the end of the JSON array is skipped", None, None)


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


def _staged(path: Path, rows: list[Triple]) -> pa.Table:
    """Write the records of `rows` to `path`, one per line; their origins (line, record) for the store."""
    import pyarrow as pa  # the careful path's: clean files load without it

    path.write_bytes(b"\n".join(r for r, _, _ in rows) + b"\n")
    return pa.table({"line": pa.array([ln for _, ln, _ in rows], pa.int64()),
                     "record": pa.array([rn for _, _, rn in rows], pa.int64())})


def insert_group(store: EventStore, entries: list[tuple[FileInfo, list[Triple]]], diag: Diagnostics) -> list[FileInfo]:
    """Load several small files' records, already read in the `flat` dialect ((file, its (record, line,
    record number) triples) each; the files not yet the store's), with one insert: planning one costs
    ~10-20 ms, more than reading a small file. The same rows and files as insert_records file by file,
    which a record DuckDB rejects falls back to (and which then reports it)."""
    infos = [info for info, _ in entries]
    rows = [t for _, triples in entries for t in triples]
    if rows:
        joined = store.tmpdir / "group.jsonl"
        origins = _staged(joined, rows)
        for info, triples in entries:
            info.rows = len(triples)
        base = store.next_rowid
        try:
            kept = store.insert_files(infos, select_sql("flat"), [str(joined)], origins=origins)
        except DATA_ERRORS:
            kept = False
        if kept:
            _fill_5156_pids(store, base, len(rows), joined)
            return infos
    for info, triples in entries:
        info.first_rowid, info.rows = store.next_rowid, 0
        store.files.append(info)
        if triples:
            insert_records(store, info, iter(triples), "flat", diag)
    return infos


def _insert_chunk(store: EventStore, info: FileInfo, chunk: list, dialect: str, diag: Diagnostics) -> None:
    tmp = store.tmpdir / "chunk.jsonl"
    origins = _staged(tmp, chunk)
    base = store.next_rowid
    try:
        store.insert_select(info, select_sql(dialect), [str(tmp)], origins)
        if dialect == "flat":
            _fill_5156_pids(store, base, len(chunk), tmp)
    except DATA_ERRORS as e:
        if len(chunk) == 1:
            _, ln, rn = chunk[0]
            # DuckDB names our temporary chunk file and its line; the diagnostic cites the user's own
            reason = DUCKDB_WHERE.sub("", str(e).splitlines()[0])
            diag.add(info.name, f"record does not fit the {dialect} format: {reason}",
                     line=ln, record=rn)
            return
        mid = len(chunk) // 2
        _insert_chunk(store, info, chunk[:mid], dialect, diag)
        _insert_chunk(store, info, chunk[mid:], dialect, diag)


DUCKDB_WHERE = re.compile(r' in file "[^"]*", in line \d+')


def _careful(store: EventStore, info: FileInfo, path: Path, dialect: str, diag: Diagnostics) -> None:
    insert_records(store, info, _records(path, info.name, diag), dialect, diag)
