"""Windows EVTX files (Sysmon Operational, Security 4688/5156, any other channel) via the `evtx` package.

Records are flattened to the `flat` dialect (see flatten.py) and loaded through jsonfile.insert_records;
`source_record` is the event's EventRecordID. Damage costs only what it destroys: the parser raises per
bad record or chunk and we carry on, and a file cut inside a chunk (the parser silently drops incomplete
chunks) has that chunk re-read on its own, zero-padded, so the records before the cut are still loaded.
Diagnostics cite the EVTX record header number, the one `evtx_dump` shows.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

from evtx import PyEvtxParser

from stagehunt.diagnostics import Diagnostics
from stagehunt.sources import flatten
from stagehunt.sources.jsonfile import insert_records

if TYPE_CHECKING:
    from stagehunt.store import EventStore, FileInfo

HEADER = 4096  # file header block
CHUNK = 65536
CHUNK_HEADER = 512
_RECORD_NO = re.compile(r"record number (\d+)")  # only used on the error path

Triple = tuple[bytes, int | None, int | None]


def load(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
    """Load one EVTX file. Raises ValueError if its file header cannot be read."""
    info = store.begin_file(name, "evtx", origin_unit="record")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER)
    parser = _open(str(path), head)
    insert_records(store, info, _records(parser, path, head, size, info, diag), "flat", diag)
    return info


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def _open(src: str | io.BytesIO, head: bytes) -> PyEvtxParser:
    if not head.startswith(b"ElfFile\x00"):
        raise ValueError("not an EVTX file: it does not start with the 'ElfFile' signature")
    if len(head) < HEADER:
        raise ValueError(f"EVTX file header truncated: {len(head)} of {HEADER} bytes")
    try:
        return PyEvtxParser(src)
    except (RuntimeError, OSError, ValueError) as e:
        raise ValueError(f"unreadable EVTX file header: {_one_line(e)}") from None


def _records(parser: PyEvtxParser, path: Path, head: bytes, size: int, info: FileInfo,
             diag: Diagnostics) -> Generator[Triple, None, None]:
    good, bad = yield from _parse(parser, info.name, size, diag)
    # a damaged record can make the parser skip the rest of its chunk without a word: count against the headers
    missing = _promised(path, (size - HEADER) // CHUNK) - good - bad
    for _ in range(missing):
        diag.add(info.name, "record missing: the chunk headers list more records than could be read (damaged chunk?)")
    yield from _truncated_tail(path, head, size, info, diag)


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


def _parse(parser: PyEvtxParser, name: str, size: int, diag: Diagnostics) -> Generator[Triple, None, tuple[int, int]]:
    """Records of one parser as (flat JSON, None, EventRecordID); returns (records read, records failed)."""
    it = parser.records_json()
    good = bad = 0
    max_errors = size // 24 + 16  # more errors than possible records: the parser is not advancing
    while True:
        try:
            rec = next(it)
        except StopIteration:
            break
        except Exception as e:  # the native iterator raises RuntimeError (and maybe others) per bad record/chunk
            bad += 1
            msg = _one_line(e)
            m = _RECORD_NO.search(msg)
            diag.add(name, f"cannot parse EVTX record: {msg}", record=int(m.group(1)) if m else None)
            if bad > max_errors:
                diag.add(name, "too many EVTX parse errors; giving up on this file")
                break
            continue
        try:
            flat, rid = flatten.from_evtx_json(rec["data"])
        except (ValueError, TypeError, KeyError) as e:
            bad += 1
            diag.add(name, f"EVTX record is not an event: {_one_line(e)}", record=rec.get("event_record_id"))
            continue
        good += 1
        yield flat, None, rid if rid is not None else rec.get("event_record_id")
    return good, bad


def _truncated_tail(path: Path, head: bytes, size: int, info: FileInfo,
                    diag: Diagnostics) -> Generator[Triple, None, None]:
    """Records of a last chunk cut short, and diagnostics for what the cut lost."""
    full, part = divmod(size - HEADER, CHUNK)
    declared = struct.unpack_from("<H", head, 42)[0]  # chunk count in the file header
    present = full + (1 if part else 0)
    if declared > present:
        diag.add(info.name, f"file truncated: header lists {declared} chunks, file holds {present}; "
                            "records of the missing chunks are lost")
    if not part:
        return
    with open(path, "rb") as f:
        f.seek(HEADER + full * CHUNK)
        tail = f.read(part)
    if not tail.strip(b"\x00"):
        return  # unused, zero-filled space: nothing was there to lose
    if part < CHUNK_HEADER or not tail.startswith(b"ElfChnk\x00"):
        diag.add(info.name, f"file truncated: the last {part} bytes are not a complete chunk header; "
                            "their records are lost")
        return
    first, last = struct.unpack_from("<QQ", tail, 8)  # record numbers the chunk header promises
    good = bad = 0
    body, n = _complete_records(tail)
    if n:
        try:
            parser = _open(io.BytesIO(head + body + bytes(CHUNK - len(body))), head)
        except ValueError as e:
            diag.add(info.name, f"file truncated inside chunk {full}: {e}")
            return
        good, bad = yield from _parse(parser, info.name, CHUNK, diag)
    promised = last - first + 1 if 0 <= last - first < CHUNK // 28 else None
    if promised is None:
        diag.add(info.name, f"file truncated inside chunk {full}; {good} of its records recovered")
    elif promised > good + bad:
        for k in range(last - (promised - good - bad) + 1, last + 1):
            diag.add(info.name, f"record lost: file truncated inside chunk {full}", record=k)
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
