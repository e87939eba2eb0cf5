"""The dense EVTX benchmark file (benchmarks/evtx_corpus.py): valid EVTX, every record read, same events."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from pathlib import Path

import orjson
import pytest
from evtx import PyEvtxParser
from realdata import benchmark_module

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.inspect import file_reports
from stagehunt.store import EventStore

evtx_corpus = benchmark_module("evtx_corpus")

CHUNKS = 6  # every real chunk once, the first two twice


def _events(path: Path) -> list[dict]:
    return [orjson.loads(r["data"])["Event"] for r in PyEvtxParser(str(path)).records_json()]


@pytest.fixture(scope="module")
def dense(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("dense") / "dense.evtx"
    return path, evtx_corpus.write_dense_evtx(path, CHUNKS)


def test_chunks_are_dense_and_checksummed(dense):
    path, records = dense
    blob = path.read_bytes()
    assert len(blob) == 4096 + CHUNKS * 65536
    assert struct.unpack_from("<QQQ", blob, 8) == (0, CHUNKS - 1, records + 1)
    assert struct.unpack_from("<H", blob, 42)[0] == CHUNKS
    assert struct.unpack_from("<I", blob, 124)[0] == zlib.crc32(blob[:120])
    number = 1
    for k in range(CHUNKS):
        c = blob[4096 + k * 65536:4096 + (k + 1) * 65536]
        first, last, first_id, last_id = struct.unpack_from("<QQQQ", c, 8)
        last_record, free, records_crc = struct.unpack_from("<III", c, 44)
        assert (first, first_id) == (number, number) and last == last_id
        assert last - first + 1 >= 40  # the sparse real chunks hold 3-15
        assert free > 65536 - 4096 and records_crc == zlib.crc32(c[512:free])
        assert struct.unpack_from("<I", c, 124)[0] == zlib.crc32(c[:120] + c[128:512])
        off = 512
        while off < free:  # each record's size at both ends, ids in order, the header's last record last
            size, rid = struct.unpack_from("<IQ", c, off + 4)
            assert c[off:off + 4] == b"**\x00\x00" and struct.unpack_from("<I", c, off + size - 4)[0] == size
            assert rid == number
            number, last_off, off = number + 1, off, off + size
        assert off == free and last_off == last_record and number == last + 1
    assert number == records + 1


def test_evtx_parser_reads_every_record_in_order(dense):
    path, records = dense
    ids = [r["event_record_id"] for r in PyEvtxParser(str(path)).records_json()]
    assert ids == list(range(1, records + 1))


def test_copies_are_their_originals_but_for_the_record_id(dense):
    path, _ = dense
    originals = {p: _events(p) for p in evtx_corpus.EVTX_FILES}
    chunks = evtx_corpus.dense_chunks()
    events = iter(_events(path))
    number = 1
    for k in range(CHUNKS):
        chunk = chunks[k % len(chunks)]
        assert sorted(set(chunk.origin)) == list(range(len(originals[chunk.source])))
        for i in chunk.origin:
            event = next(events)
            assert event["System"].pop("EventRecordID") == number
            original = dict(originals[chunk.source][i], System=dict(originals[chunk.source][i]["System"]))
            del original["System"]["EventRecordID"]
            assert event == original
            number += 1


def test_stagehunt_reads_every_record_with_the_originals_event_mix(dense):
    path, records = dense
    chunks = evtx_corpus.dense_chunks()
    expected: Counter[str] = Counter()
    for k in range(CHUNKS):
        chunk = chunks[k % len(chunks)]
        eids = [str(e["System"]["EventID"]) for e in _events(chunk.source)]
        for eid, times in zip(eids, chunk.multiplicity, strict=True):
            expected[eid] += times
    diag = Diagnostics()
    with EventStore() as store:
        sources.load(store, list(sources.expand([str(path)], store.tmpdir)), "auto", diag)
        [report] = file_reports(store, diag)
        rids = [r for (r,) in store.con.execute("SELECT source_record FROM events ORDER BY rowid").fetchall()]
    assert diag.total == 0 and report.error_count == 0 and report.format == "evtx"
    assert report.events == records and rids == list(range(1, records + 1))
    assert report.by_event_id == {"sysmon": dict(expected)}
