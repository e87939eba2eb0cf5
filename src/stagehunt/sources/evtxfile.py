"""Windows EVTX files (Sysmon Operational, Security 4688/5156, any other channel) via the `evtx` package.

Records become rows of the `flat` dialect's mapping; `source_record` is the event's EventRecordID.
Two ways to get there, with the same rows and diagnostics:

- record by record (`load(..., fast=False)`): flatten.py turns each record's JSON into flat JSON,
  loaded through jsonfile.insert_records. The reference, and what small files and batches get.
- in batches (the default): the parser's JSON text goes to DuckDB tens of thousands of records at a
  time (evtxsql.py), which inserts their rows straight into the store, on a thread of its own while the
  parser reads on. A batch that DuckDB might load otherwise than the reference goes record by record
  instead.

Damage costs only what it destroys: the parser raises per bad record or chunk and we carry on, and a
file cut inside a chunk (the parser silently drops incomplete chunks) has that chunk re-read on its own,
zero-padded, so the records before the cut are still loaded. Diagnostics cite the EVTX record header
number, the one `evtx_dump` shows.
"""

from __future__ import annotations

import io
import re
import struct
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from evtx import PyEvtxParser

from stagehunt.diagnostics import Diagnostics, one_line
from stagehunt.sources import evtxsql, flatten
from stagehunt.sources.jsonfile import CHUNK as INSERT_CHUNK
from stagehunt.sources.jsonfile import insert_group, insert_records
from stagehunt.store import FileInfo

if TYPE_CHECKING:
    from stagehunt.store import EventStore

HEADER = 4096  # file header block
CHUNK = 65536
CHUNK_HEADER = 512
BATCH = 32768  # records per DuckDB batch: planning its statement (~30 ms) is then a small part of its cost
MIN_BATCH = 2048  # fewer records (a small file, a file's last batch) load faster record by record
_RECORD_NO = re.compile(r"record number (\d+)")  # only used on the error path

Triple = tuple[bytes, int | None, int | None]


def load(store: EventStore, path: Path, name: str, diag: Diagnostics, *, fast: bool = True) -> FileInfo:
    """Load one EVTX file. Raises ValueError if its file header cannot be read.

    `fast=False` loads record by record, the reference the batched path must equal (and falls back on)."""
    info = store.begin_file(name, "evtx", origin_unit="record")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER)
    parser = _open(str(path), head)
    with _Batches(store, info, diag) if fast else _PerRecord(store, info, diag) as sink:
        _read(parser, path, head, size, info, sink)
    return info


def load_group(store: EventStore, files: list[tuple[Path, str]], diag: Diagnostics) -> list[FileInfo]:
    """Load several small EVTX files ((path, name) each) with one insert for all their records: the same
    rows, files and diagnostics as `load` one by one (which a DuckDB rejection falls back to, per file).
    Planning an insert costs ~10-20 ms, more than reading a small file: 300 files of 2-15 records took
    6.7 s one by one."""
    entries: list[tuple[FileInfo, list[Triple]]] = []
    for path, name in files:
        info = FileInfo(name, "evtx", 0, origin_unit="record")  # the store's once its rows are in
        sink = _Collect(info, diag)
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(HEADER)
            with sink:
                _read(_open(str(path), head), path, head, size, info, sink)
        except (ValueError, OSError) as e:  # as sources.load reports a file `load` cannot read
            diag.add(name, f"cannot read as evtx: {e}")
        entries.append((info, sink.rows))
    return insert_group(store, entries, diag)


class _Sink(Protocol):
    """Where records and problems go, in file order."""

    rejected: int  # records found not to be events so far (exact after settle())
    size: int  # records it would rather take at a time

    def records(self, data: list[str], numbers: list[int | None]) -> None:
        """Records: their records_json() text and record-header numbers (the lists become the sink's)."""

    def problem(self, message: str, record: int | None) -> None:
        """A diagnostic, in its place among the records."""

    def rejected_at_most(self) -> int:
        """`rejected` once all records so far are looked at, or more."""

    def settle(self) -> None:
        """Every record and problem so far is loaded or reported."""

    def __enter__(self) -> _Sink: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


def _flat(data: str, number: int | None, name: str, diag: Diagnostics) -> Triple | None:
    """A record as the `flat` dialect's JSON, or None (reported) when it is not an event."""
    try:
        flat, rid = flatten.from_evtx_json(data)
    except (ValueError, TypeError, KeyError) as e:
        diag.add(name, f"EVTX record is not an event: {one_line(e)}", record=number)
        return None
    return flat, None, rid if rid is not None else number


class _PerRecord:
    """Record by record: flattened in Python, loaded in jsonfile's chunks."""

    size = 4096  # any: records are flattened as they come

    def __init__(self, store: EventStore, info: FileInfo, diag: Diagnostics):
        self.store, self.info, self.diag = store, info, diag
        self.rejected = 0
        self._chunk: list[Triple] = []

    def records(self, data: list[str], numbers: list[int | None]) -> None:
        for text, number in zip(data, numbers, strict=True):
            triple = _flat(text, number, self.info.name, self.diag)
            if triple is None:
                self.rejected += 1
                continue
            self._chunk.append(triple)
            if len(self._chunk) >= INSERT_CHUNK:
                self._insert()

    def problem(self, message: str, record: int | None) -> None:
        self.diag.add(self.info.name, message, record=record)

    def rejected_at_most(self) -> int:
        return self.rejected

    def settle(self) -> None:
        pass  # counts are exact as records come; rows go in by the chunk, as jsonfile's reader does

    def _insert(self) -> None:
        chunk, self._chunk = self._chunk, []
        insert_records(self.store, self.info, iter(chunk), "flat", self.diag)

    def __enter__(self) -> _PerRecord:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None and self._chunk:
            self._insert()


class _Collect(_PerRecord):
    """Record by record as _PerRecord, the rows kept for one insert with other files' (load_group)."""

    def __init__(self, info: FileInfo, diag: Diagnostics):
        super().__init__(None, info, diag)  # type: ignore[arg-type]  # never inserts, needs no store
        self.rows: list[Triple] = []

    def _insert(self) -> None:
        self.rows += self._chunk
        self._chunk = []


class _Batches:
    """Records gathered into batches for evtxsql, loaded in a pipeline beside the parser: one thread writes
    each batch's text out, another has DuckDB insert its canonical rows straight into the store (DuckDB
    releases the GIL, so the parser and the writer go on meanwhile). The storing thread takes the batches in
    file order; problems wait with their batch, so diagnostics keep file order too; a batch evtxsql refuses
    is loaded record by record, which reports whatever was wrong with it."""

    QUEUED = 2  # batches handed on but not yet in the store: the parser is at most this far ahead

    def __init__(self, store: EventStore, info: FileInfo, diag: Diagnostics):
        self.store, self.info, self.diag, self.size = store, info, diag, BATCH
        self.rejected = 0  # updated by the storing thread; read after settle()
        self._data: list[str] = []
        self._numbers: list[int | None] = []
        self._problems: list[tuple[int, str, int | None]] = []  # (records before it in the batch, ...)
        self._queue: deque[tuple[Future[None], int]] = deque()  # (storing, records) in file order
        self._batches = 0
        self._writing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stagehunt-evtx-write")
        self._storing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stagehunt-evtx-store")

    def records(self, data: list[str], numbers: list[int | None]) -> None:
        if self._data:
            self._data += data
            self._numbers += numbers
        else:  # the usual case: the parser hands over a whole batch
            self._data, self._numbers = data, numbers
        if len(self._data) >= self.size:
            self._submit()

    def problem(self, message: str, record: int | None) -> None:
        self._problems.append((len(self._data), message, record))

    def rejected_at_most(self) -> int:
        return self.rejected + sum(n for _, n in self._queue) + len(self._data)

    def settle(self) -> None:
        self._submit()
        while self._queue:
            self._queue.popleft()[0].result()

    def _submit(self) -> None:
        if not self._data and not self._problems:
            return
        data, numbers, problems = self._data, self._numbers, self._problems
        self._data, self._numbers, self._problems = [], [], []
        while len(self._queue) >= self.QUEUED:  # the parser is ahead: let the storing catch up
            self._queue.popleft()[0].result()
        # at most QUEUED batches between writing and stored, so QUEUED + 1 scratch files never collide
        work = self.store.tmpdir / f"evtx-batch-{self._batches % (self.QUEUED + 1)}.jsonl"
        self._batches += 1
        # too few records to be worth a statement: record by record
        written = self._writing.submit(evtxsql.prepare, data, work) if len(data) >= MIN_BATCH else None
        self._queue.append((self._storing.submit(self._store, written, work, data, numbers, problems), len(data)))

    def _store(self, written: Future[str | None] | None, work: Path, data: list[str], numbers: list[int | None],
               problems: list[tuple[int, str, int | None]]) -> None:
        if written is None or not self._insert(written, work, len(data)):
            self._per_record(data, numbers, problems)
            return
        for _, message, record in problems:
            self.diag.add(self.info.name, message, record=record)

    def _insert(self, written: Future[str | None], work: Path, count: int) -> bool:
        """The written batch's rows into the store through DuckDB; False (nothing inserted) if it must go
        record by record."""
        if written.result() is not None:  # why evtxsql would not read it
            return False
        try:
            evtxsql.insert(self.store, self.info, work, count)
        except evtxsql.Refused:
            return False
        return True

    def _per_record(self, data: list[str], numbers: list[int | None],
                    problems: list[tuple[int, str, int | None]]) -> None:
        done = 0
        with _PerRecord(self.store, self.info, self.diag) as ref:
            for at, message, record in problems:
                ref.records(data[done:at], numbers[done:at])
                ref.problem(message, record)
                done = max(done, at)
            ref.records(data[done:], numbers[done:])
        self.rejected += ref.rejected

    def __enter__(self) -> _Batches:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self.settle()
        finally:
            # on an error, let the threads finish with their files and the database first
            self._writing.shutdown(wait=True)
            self._storing.shutdown(wait=True)


def _open(src: str | io.BytesIO, head: bytes) -> PyEvtxParser:
    if not head.startswith(b"ElfFile\x00"):
        raise ValueError("not an EVTX file: it does not start with the 'ElfFile' signature")
    if len(head) < HEADER:
        raise ValueError(f"EVTX file header truncated: {len(head)} of {HEADER} bytes")
    try:
        return PyEvtxParser(src)
    except (RuntimeError, OSError, ValueError) as e:
        raise ValueError(f"unreadable EVTX file header: {one_line(e)}") from None


def _read(parser: PyEvtxParser, path: Path, head: bytes, size: int, info: FileInfo, sink: _Sink) -> None:
    read, failed = _parse(parser, size, sink)
    # a damaged record can make the parser skip the rest of its chunk without a word: count against the headers
    missing = _promised(path, (size - HEADER) // CHUNK) - read - failed
    for _ in range(missing):
        sink.problem("record missing: the chunk headers list more records than could be read (damaged chunk?)", None)
    _truncated_tail(path, head, size, info, sink)


def _promised(path: Path, chunks: int) -> int:
    """Records the headers of the first `chunks` chunks say they hold (implausible headers count 0)."""
    total = 0
    with open(path, "rb") as f:
        for k in range(chunks):
            f.seek(HEADER + k * CHUNK)
            h = f.read(24)
            if len(h) == 24 and h.startswith(b"ElfChnk\x00"):
                first, last = struct.unpack_from("<QQ", h, 8)
                if 0 <= last - first < CHUNK // 28:  # a record takes at least 28 bytes
                    total += last - first + 1
    return total


def _parse(parser: PyEvtxParser, size: int, sink: _Sink) -> tuple[int, int]:
    """Hand the parser's records to `sink`; returns (records read, parse errors)."""
    it = parser.records_json()
    read = failed = 0
    sink.settle()
    rejected = sink.rejected  # before this parser's records
    max_errors = size // 24 + 16  # more errors than possible records: the parser is not advancing
    data: list[str] = []
    numbers: list[int | None] = []
    handover = sink.size
    while True:
        try:
            # the parser's own pace: nothing per record but two appends (the loop resumes after an error)
            for rec in it:
                data.append(rec["data"])
                numbers.append(rec.get("event_record_id"))
                if len(data) >= handover:
                    break
            else:
                break
        except Exception as e:  # the native iterator raises RuntimeError (and maybe others) per bad record/chunk
            read += len(data)
            sink.records(data, numbers)  # the records before the error go first
            data, numbers = [], []
            failed += 1
            msg = one_line(e)
            m = _RECORD_NO.search(msg)
            sink.problem(f"cannot parse EVTX record: {msg}", int(m.group(1)) if m else None)
            # errors and records that are no event, as the limit always counted; a batch still in the
            # works is settled only when it could tip the count
            if failed + sink.rejected_at_most() - rejected > max_errors:
                sink.settle()
                if failed + sink.rejected - rejected > max_errors:
                    sink.problem("too many EVTX parse errors; giving up on this file", None)
                    break
            continue
        read += len(data)
        sink.records(data, numbers)
        data, numbers = [], []
    if data:
        read += len(data)
        sink.records(data, numbers)
    return read, failed


def _truncated_tail(path: Path, head: bytes, size: int, info: FileInfo, sink: _Sink) -> None:
    """Records of a last chunk cut short, and diagnostics for what the cut lost."""
    full, part = divmod(size - HEADER, CHUNK)
    declared = struct.unpack_from("<H", head, 42)[0]  # chunk count in the file header
    present = full + (1 if part else 0)
    if declared > present:
        sink.problem(f"file truncated: header lists {declared} chunks, file holds {present}; "
                     "records of the missing chunks are lost", None)
    if not part:
        return
    with open(path, "rb") as f:
        f.seek(HEADER + full * CHUNK)
        tail = f.read(part)
    if not tail.strip(b"\x00"):
        return  # unused, zero-filled space: nothing was there to lose
    if part < CHUNK_HEADER or not tail.startswith(b"ElfChnk\x00"):
        sink.problem(f"file truncated: the last {part} bytes are not a complete chunk header; "
                     "their records are lost", None)
        return
    first, last = struct.unpack_from("<QQ", tail, 8)  # record numbers the chunk header promises
    read = failed = 0
    sink.settle()
    rejected = sink.rejected
    body, n = _complete_records(tail)
    if n:
        try:
            parser = _open(io.BytesIO(head + body + bytes(CHUNK - len(body))), head)
        except ValueError as e:
            sink.problem(f"file truncated inside chunk {full}: {e}", None)
            return
        read, failed = _parse(parser, CHUNK, sink)
    promised = last - first + 1 if 0 <= last - first < CHUNK // 28 else None
    if promised is None:
        sink.settle()
        sink.problem(f"file truncated inside chunk {full}; {read - (sink.rejected - rejected)} of its records "
                     "recovered", None)
    elif promised > read + failed:
        for k in range(last - (promised - read - failed) + 1, last + 1):
            sink.problem(f"record lost: file truncated inside chunk {full}", k)
    else:
        info.notes.append(f"file truncated inside chunk {full}, after its last record; nothing lost")


def _complete_records(tail: bytes) -> tuple[bytes, int]:
    """The part of a cut chunk holding only whole records, its header patched to end there, and their count.

    Zero-padding a cut record is not enough: the parser then reads zeros as end-of-data tokens and
    returns a silently truncated event, so only records whose full size fits before the cut are kept.
    """
    off, n, last_id, last_off = CHUNK_HEADER, 0, 0, 0
    while off + 24 <= len(tail) and tail[off:off + 4] == b"**\x00\x00":
        size = struct.unpack_from("<I", tail, off + 4)[0]
        if size < 28 or off + size > len(tail):
            break
        last_id, last_off = struct.unpack_from("<Q", tail, off + 8)[0], off
        off, n = off + size, n + 1
    body = bytearray(tail[:off])
    if n:
        struct.pack_into("<Q", body, 16, last_id)  # last event record number
        struct.pack_into("<Q", body, 32, last_id)  # last event record identifier
        struct.pack_into("<II", body, 44, last_off, off)  # last record offset, free space offset
    return bytes(body), n
