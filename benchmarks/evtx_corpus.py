"""A dense EVTX benchmark file: the real test chunks, filled with records the way a live log fills them.

Why: the real Sysmon EVTX files under tests/data/real hold one 64 KiB chunk each, with only 3-15 records in
it, while a Windows log's chunks hold ~100-300 records. Laying those sparse chunks end to end (as
tests/realdata.py's `write_multichunk_evtx` does) makes records/s mostly a measure of per-chunk cost (chunk
header, string and template tables, template definitions parsed once per chunk), not of reading records.

How: inside a chunk, records refer to templates by their offset in the chunk. The first record that uses a
template defines it inline: its TemplateInstance token carries the definition's offset, which is exactly the
position right after the token, and the definition follows. Any later record with the same token but no
definition after it is a plain template *reference*, which is what most records of a real log are. So each
real chunk keeps its records as they are and gets, after them, copies of its records in order, round after
round, until the next one would not fit in the 64 KiB: a copy is the record's BinXML with every inline
template definition cut out (in the System template and in the nested EventData one, whose size in the
substitution array shrinks accordingly), so it references the original's definitions and parses to the same
event. Every record then gets a fresh, file-wide record number, the same in the record header and in the
event's EventRecordID (a substitution value), so ids are unique and increasing; timestamps are kept. The
chunk header (first/last record number and id, last record offset, free space offset, CRC32 of the records,
CRC32 of the header) and the file header (chunk numbers and count, next record id, CRC32) are rewritten.

The output is deterministic: the same `chunks` gives the same bytes.

    python benchmarks/evtx_corpus.py --chunks 4000 -o /tmp/bench-dense-4000.evtx   # ~250 MiB
"""

from __future__ import annotations

import argparse
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import orjson
from evtx import PyEvtxParser

ROOT = Path(__file__).resolve().parent.parent
EVTX_DIR = ROOT / "tests" / "data" / "real" / "evtx-to-mitre"
EVTX_FILES = sorted(EVTX_DIR.glob("*.evtx"))

HEADER, CHUNK, CHUNK_HEADER, RECORD_HEADER = 4096, 65536, 512, 24
RECORD_MAGIC = b"**\x00\x00"
FRAGMENT_HEADER = b"\x0f\x01\x01\x00"  # BinXML fragment header token, version 1.1, flags 0
TEMPLATE_INSTANCE = 0x0C
UINT64, BINXML = 0x0A, 0x21  # substitution value types

Value = tuple[int, int, int]  # (value type, offset in the source chunk, offset in the copy)


@dataclass(frozen=True)
class DenseChunk:
    """One filled chunk whose record numbers are still to be set (see `numbered`)."""

    source: Path  # the real EVTX file the chunk comes from
    data: bytes  # all CHUNK bytes, zero-filled after the last record
    records: list[int]  # offset of every record in the chunk
    event_record_ids: list[int]  # offset of every record's EventRecordID substitution value
    origin: list[int]  # for every record, the index of the source record it is (a copy of)

    @property
    def multiplicity(self) -> list[int]:
        """How many times each source record occurs in the chunk (itself and its copies)."""
        counts = [0] * (max(self.origin) + 1)
        for i in self.origin:
            counts[i] += 1
        return counts

    def numbered(self, first: int) -> bytes:
        """The chunk with its records numbered first, first + 1, ... and its header and checksums updated."""
        buf = bytearray(self.data)
        for k, (rec, rid) in enumerate(zip(self.records, self.event_record_ids, strict=True)):
            struct.pack_into("<Q", buf, rec + 8, first + k)
            struct.pack_into("<Q", buf, rid, first + k)
        last = first + len(self.records) - 1
        free = struct.unpack_from("<I", buf, 48)[0]
        struct.pack_into("<QQQQ", buf, 8, first, last, first, last)  # record numbers, record ids
        struct.pack_into("<I", buf, 52, zlib.crc32(buf[CHUNK_HEADER:free]))
        struct.pack_into("<I", buf, 124, zlib.crc32(buf[:120] + buf[128:CHUNK_HEADER]))
        return bytes(buf)


def as_reference(c: bytes, pos: int) -> tuple[bytes, int, list[Value]]:
    """The BinXML fragment at `pos` in chunk `c` (fragment header, one TemplateInstance, end-of-fragment token)
    with every inline template definition cut out, so that it refers to the definitions at their offsets.

    Returns the new bytes, the offset just past the fragment in `c`, and the fragment's own substitution values.
    Raises ValueError on any other shape (an element written out directly, say), which this does not rewrite.
    """
    if c[pos:pos + 4] != FRAGMENT_HEADER or c[pos + 4] != TEMPLATE_INSTANCE:
        raise ValueError(f"offset {pos}: not a fragment holding one template instance")
    definition = struct.unpack_from("<I", c, pos + 10)[0]
    p = pos + 14
    if definition == p:  # defined right here: next offset (4), GUID (16), data size (4), data
        p += 24 + struct.unpack_from("<I", c, p + 20)[0]
    elif definition > p:
        raise ValueError(f"offset {pos}: template definition at {definition} lies ahead")
    n = struct.unpack_from("<I", c, p)[0]
    descriptors = [struct.unpack_from("<HB", c, p + 4 + 4 * i) for i in range(n)]
    p += 4 + 4 * n
    head = bytearray(c[pos:pos + 14]) + struct.pack("<I", n)
    at = len(head) + 4 * n  # where the values start in the copy
    table, body, values = bytearray(), bytearray(), []
    for size, kind in descriptors:
        if kind == BINXML:
            value, end, _ = as_reference(c, p)
            if end != p + size:
                raise ValueError(f"offset {p}: nested BinXML ends at {end}, its value at {p + size}")
        else:
            value = c[p:p + size]
        values.append((kind, p, at + len(body)))
        table += struct.pack("<HBB", len(value), kind, 0)
        body += value
        p += size
    if c[p] != 0:
        raise ValueError(f"offset {p}: expected the end-of-fragment token")
    return bytes(head + table + body + b"\x00"), p + 1, values


def _event_record_ids(path: Path) -> list[int]:
    """The EventRecordID of each record of `path`, in file order, as the evtx package renders it."""
    return [orjson.loads(r["data"])["Event"]["System"]["EventRecordID"]
            for r in PyEvtxParser(str(path)).records_json()]


def _record_id_value(c: bytes, values: list[Value], expected: int, where: str) -> Value:
    found = [v for v in values if v[0] == UINT64 and struct.unpack_from("<Q", c, v[1])[0] == expected]
    if len(found) != 1:
        raise ValueError(f"{where}: {len(found)} UInt64 substitutions hold EventRecordID {expected}, not 1")
    return found[0]


def dense_chunk(path: Path) -> DenseChunk:
    """The single chunk of the real EVTX file `path`, its records followed by copies of them until it is full."""
    c = path.read_bytes()[HEADER:HEADER + CHUNK]
    if len(c) != CHUNK or not c.startswith(b"ElfChnk\x00"):
        raise ValueError(f"{path.name}: no complete first chunk")
    free = struct.unpack_from("<I", c, 48)[0]
    expected = iter(_event_record_ids(path))
    records, rids, copies = [], [], []
    off = CHUNK_HEADER
    while off < free:
        if c[off:off + 4] != RECORD_MAGIC:
            raise ValueError(f"{path.name}: no record at offset {off}")
        size, _, written = struct.unpack_from("<IQQ", c, off + 4)
        binxml, _, values = as_reference(c, off + RECORD_HEADER)
        _, original, in_copy = _record_id_value(c, values, next(expected), f"{path.name} offset {off}")
        records.append(off)
        rids.append(original)
        total = RECORD_HEADER + len(binxml) + 4
        total += -total % 8  # records are 8-byte aligned
        copy = bytearray(struct.pack("<4sIQQ", RECORD_MAGIC, total, 0, written)) + binxml
        copy += bytes(total - 4 - len(copy)) + struct.pack("<I", total)
        copies.append((bytes(copy), RECORD_HEADER + in_copy))
        off += size
    if off != free:
        raise ValueError(f"{path.name}: records end at {off}, the free space at {free}")
    n = len(records)
    data = bytearray(c[:free])
    origin = list(range(n))
    while len(data) + len(copies[len(origin) % n][0]) <= CHUNK:
        copy, rid = copies[len(origin) % n]
        records.append(len(data))
        rids.append(len(data) + rid)
        origin.append(len(origin) % n)
        data += copy
    struct.pack_into("<II", data, 44, records[-1], len(data))  # last record offset, free space offset
    data += bytes(CHUNK - len(data))
    return DenseChunk(path, bytes(data), records, rids, origin)


def dense_chunks() -> list[DenseChunk]:
    """One dense chunk per real EVTX file, in EVTX_FILES order."""
    return [dense_chunk(p) for p in EVTX_FILES]


def write_dense_evtx(dest: Path, chunks: int) -> int:
    """Write an EVTX file of `chunks` dense chunks (the real files' in turn) to `dest`; return its record count."""
    if not 1 <= chunks <= 0xFFFF:  # the file header counts chunks in 16 bits
        raise ValueError(f"chunks must be 1..65535, not {chunks}")
    dense = dense_chunks()
    total = sum(len(dense[k % len(dense)].records) for k in range(chunks))
    head = bytearray(EVTX_FILES[0].read_bytes()[:HEADER])
    struct.pack_into("<QQQ", head, 8, 0, chunks - 1, total + 1)  # first and last chunk, next record id
    struct.pack_into("<H", head, 42, chunks)
    struct.pack_into("<I", head, 124, zlib.crc32(head[:120]))
    number = 1
    with open(dest, "wb") as f:
        f.write(head)
        for k in range(chunks):
            chunk = dense[k % len(dense)]
            f.write(chunk.numbered(number))
            number += len(chunk.records)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=4000, help="64 KiB chunks to write (default 4000, ~250 MiB)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="the EVTX file to write")
    args = ap.parse_args()
    records = write_dense_evtx(args.output, args.chunks)
    print(f"{args.output}: {args.chunks} chunks, {records} records ({records / args.chunks:.1f} per chunk)")


if __name__ == "__main__":
    main()
