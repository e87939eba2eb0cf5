"""Differential: EVTX loaded in batches through DuckDB (evtxsql.py) is exactly EVTX loaded record by record.

Same `events` rows (every column, in rowid order), same diagnostics (in order, and counted) and same FileInfo
rows and notes, on the real files, on files built from them (several chunks, dense chunks, values of odd
types) and on damaged and truncated copies; and on synthetic records of every shape the per-record path
treats specially. The batched path must also really be taken for clean input, and really fall back on
the per-record path where it cannot be exact.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from realdata import CHUNK, EVTX_FILES, HEADER, benchmark_module, write_multichunk_evtx

from stagehunt.diagnostics import Diagnostics
from stagehunt.schema import COLUMN_NAMES
from stagehunt.sources import evtxfile, evtxsql
from stagehunt.store import EventStore

evtx_corpus = benchmark_module("evtx_corpus")

Inputs = list[tuple[str, Path]]


def load_all(inputs: Inputs, fast: bool) -> tuple[list[tuple], list, dict, list[tuple]]:
    """Every input loaded into one store, as sources.load would; (rows, problems, counts, files)."""
    diag = Diagnostics()
    with EventStore() as store:
        for name, path in inputs:
            try:
                evtxfile.load(store, path, name, diag, fast=fast)
            except ValueError as e:
                diag.add(name, f"cannot read as evtx: {e}")
        rows = store.con.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM events ORDER BY rowid").fetchall()
        files = [(f.name, f.format, f.first_rowid, f.rows, f.origin_unit, f.notes) for f in store.files]
    return rows, diag.problems, dict(diag.counts), files


class Counts:
    """How often the batched path made a batch's rows, and how often it fell back on the per-record path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.loaded = self.refused = 0
        insert, prepare = evtxsql.insert, evtxsql.prepare

        def counting(*args: Any) -> None:
            try:
                insert(*args)
            except evtxsql.Refused:
                self.refused += 1
                raise
            self.loaded += 1

        def prepare_counting(*args: Any) -> str | None:
            reason = prepare(*args)
            self.refused += reason is not None
            return reason

        monkeypatch.setattr(evtxsql, "insert", counting)
        monkeypatch.setattr(evtxsql, "prepare", prepare_counting)


def batches(monkeypatch: pytest.MonkeyPatch, size: int) -> Counts:
    """Batches of `size` records, each loaded in DuckDB, however small (test files are)."""
    monkeypatch.setattr(evtxfile, "BATCH", size)
    monkeypatch.setattr(evtxfile, "MIN_BATCH", 1)
    return Counts(monkeypatch)


def assert_same(inputs: Inputs, monkeypatch: pytest.MonkeyPatch, batch: int) -> Counts:
    reference = load_all(inputs, fast=False)
    counts = batches(monkeypatch, batch)
    batched = load_all(inputs, fast=True)
    assert batched[0] == reference[0]  # rows
    assert batched[1:] == reference[1:]  # diagnostics, their counts, files
    return counts


# -- files --------------------------------------------------------------------------------------------------

def _patched(blob: bytes, find: bytes, replace: bytes) -> bytes:
    assert find in blob
    return blob.replace(find, replace)


def _keywords_as(blob: bytes, value_type: int, value: bytes) -> bytes:
    """The first record's Keywords (a HexInt64 substitution) turned into another type of 8-byte value."""
    data = bytearray(blob)
    record = HEADER + 512
    desc = data.index(b"\x08\x00\x15\x00", record)  # size 8, HexInt64
    at = data.index(struct.pack("<Q", 0x8000000000000000), desc)
    data[desc + 2] = value_type
    data[at:at + 8] = value
    return bytes(data)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("evtx-diff")
    multi, _ = write_multichunk_evtx(tmp / "multi.evtx")
    dense = tmp / "dense.evtx"
    evtx_corpus.write_dense_evtx(dense, 3)
    real = EVTX_FILES[0].read_bytes()
    made = {
        # evtx writes floats as JSON strings, NaN and inf included (DuckDB would read a bare NaN, orjson not)
        "nan.evtx": _keywords_as(real, 0x0C, struct.pack("<d", float("nan"))),
        "inf.evtx": _keywords_as(real, 0x0C, struct.pack("<d", float("-inf"))),
        "real64.evtx": _keywords_as(real, 0x0C, struct.pack("<d", 1e16)),
        "bool.evtx": _keywords_as(real, 0x0D, b"\x01" + bytes(7)),
        # Security's spelling of the pid key (template names are UTF-16): the batch goes record by record
        "processid.evtx": _patched(real, "ProcessId".encode("utf-16-le"), "ProcessID".encode("utf-16-le")),
        # both spellings in one EventData (EventType renamed ProcessID beside ProcessId): record by record
        "bothids.evtx": _patched(real, "EventType".encode("utf-16-le"), "ProcessID".encode("utf-16-le")),
    }
    out = {"multi.evtx": multi, "dense.evtx": dense}
    for name, blob in made.items():
        (tmp / name).write_bytes(blob)
        out[name] = tmp / name
    return out


def _damaged(rng: random.Random, blob: bytes) -> bytes:
    kind = rng.choice(["bytes", "bytes", "record", "cut", "cut-in-chunk"])
    data = bytearray(blob)
    if kind == "bytes":  # scattered single bytes, anywhere after the file header
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(HEADER, len(data))] = rng.randrange(256)
    elif kind == "record":  # a run of bytes inside one chunk's records
        at = rng.randrange(HEADER + 512, len(data) - 64)
        data[at:at + rng.randint(1, 64)] = rng.randbytes(64)[:rng.randint(1, 64)]
    elif kind == "cut":
        return bytes(data[:rng.randrange(HEADER, len(data))])
    else:
        chunk = rng.randrange((len(data) - HEADER) // CHUNK)
        return bytes(data[:HEADER + chunk * CHUNK + rng.randrange(512, CHUNK)])
    return bytes(data)


@pytest.fixture(scope="module")
def damaged(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    tmp = tmp_path_factory.mktemp("evtx-damaged")
    rng = random.Random(20240604)
    sources = [files["multi.evtx"].read_bytes(), files["dense.evtx"].read_bytes()]
    out = []
    for k in range(16):
        path = tmp / f"damaged-{k}.evtx"
        path.write_bytes(_damaged(rng, sources[k % 2]))
        out.append((path.name, path))
    return out


def test_real_and_built_files(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    inputs = [(p.name, p) for p in EVTX_FILES] + [(name, path) for name, path in files.items()]
    counts = assert_same(inputs, monkeypatch, batch=evtxfile.BATCH)
    assert counts.loaded >= len(inputs) - 1 and counts.refused == 1  # only bothids.evtx goes record by record


def test_small_batches_with_problems_between_them(files: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    cut = tmp_path / "cut.evtx"  # records missing, a chunk cut inside its records: problems at batch edges
    blob = bytearray(files["multi.evtx"].read_bytes())
    blob[HEADER + CHUNK + 3000:HEADER + CHUNK + 3200] = bytes(200)
    cut.write_bytes(bytes(blob[:HEADER + 3 * CHUNK + 9000]))
    counts = assert_same([("cut.evtx", cut), ("processid.evtx", files["processid.evtx"]),
                          ("bothids.evtx", files["bothids.evtx"])], monkeypatch, batch=3)
    assert counts.loaded > 3 and counts.refused >= 1


def test_damaged_copies(damaged: Inputs, monkeypatch: pytest.MonkeyPatch):
    counts = assert_same(damaged, monkeypatch, batch=64)
    assert counts.loaded > 16


def test_clean_input_never_takes_the_per_record_path(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    batches(monkeypatch, 64)
    monkeypatch.setattr(evtxfile, "_flat", lambda *a: pytest.fail("per-record path taken"))
    rows, problems, _, files_ = load_all([("dense.evtx", files["dense.evtx"])], fast=True)
    assert len(rows) == files_[0][3] > 100 and problems == []


def test_security_spelling_of_the_pid_takes_the_batch_path_with_the_same_pids(files: dict[str, Path],
                                                                              monkeypatch: pytest.MonkeyPatch):
    """Security events spell EventData's pid `ProcessID`: renamed in the batch text as flatten renames it."""
    inputs = [("processid.evtx", files["processid.evtx"])]
    reference = load_all(inputs, fast=False)
    batches(monkeypatch, 4)
    monkeypatch.setattr(evtxfile, "_flat", lambda *a: pytest.fail("per-record path taken"))
    batched = load_all(inputs, fast=True)
    pid = COLUMN_NAMES.index("pid")
    assert batched == reference and sum(r[pid] is not None for r in batched[0]) > 5 and batched[1] == []


# -- synthetic records --------------------------------------------------------------------------------------

def _event(system: Any = None, data: Any = None, **event: Any) -> bytes:
    ev: dict[str, Any] = {"System": system if system is not None else {
        "EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1",
        "TimeCreated": {"#attributes": {"SystemTime": "2021-11-30T22:05:50.864921Z"}}, "EventRecordID": 7}}
    if data is not None:
        ev["EventData"] = data
    ev.update(event)
    return orjson.dumps({"Event": ev})


def _system(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = orjson.loads(_event())["Event"]["System"]
    base.update(changes)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()

SYNTHETIC: list[bytes] = [
    _event(data={"Image": "x.exe", "Initiated": True, "SourceIsIpv6": False, "DestinationPort": 443,
                 "SourcePort": -1, "ProcessId": 18446744073709551615, "User": None, "RuleName": None}),
    _event(system=_system(EventID={"#attributes": {"Qualifiers": 16384}, "#text": 7036}, Channel="System")),
    _event(system=_system(EventID={"#attributes": {"Qualifiers": 16384}})),
    _event(system=_system(EventID={"#text": "4688"}, Channel="Security"),
           data={"NewProcessId": "0x1a4", "ProcessId": "0x4", "NewProcessName": "C:\\x.exe",
                 "SubjectUserName": "bob", "SubjectDomainName": "CORP", "TargetUserName": "alice"}),
    _event(system=_system(EventID={"#text": None})),
    _event(system=_system(EventID="22")),
    _event(system=_system(EventID=True)),
    _event(system=_system(EventID=3.0)),
    _event(system=_system(EventID=[3])),
    _event(system=_system(EventID=None)),
    _event(system=_system(EventID=_DROP)),
    _event(system=_system(EventID=-5)),
    _event(system=_system(EventRecordID="12")),
    _event(system=_system(EventRecordID=None)),
    _event(system=_system(EventRecordID=_DROP)),
    _event(system=_system(EventRecordID=-1)),
    _event(system=_system(EventRecordID=1 << 63)),
    _event(system=_system(EventRecordID=(1 << 63) - 1)),
    _event(system=_system(EventRecordID=2.5)),
    _event(system=_system(EventRecordID={"#text": 5})),
    _event(system=_system(TimeCreated="2021-11-30")),
    _event(system=_system(TimeCreated={"#attributes": None})),
    _event(system=_system(TimeCreated={"#attributes": "x"})),
    _event(system=_system(TimeCreated={"#attributes": {"SystemTime": 5}})),
    _event(system=_system(TimeCreated={"#attributes": {"SystemTime": {"a": 1}}})),
    _event(system=_system(TimeCreated={})),
    _event(system=_system(Channel=True, Computer=12)),
    _event(system=_system(Channel={"#text": "Security"})),
    _event(system=_system(Channel=["Security"])),
    _event(system=_system(Computer=None)),
    _event(system={}),
    _event(system=_system(EventID=_DROP, Channel=_DROP, Computer=_DROP, TimeCreated=_DROP, EventRecordID=_DROP,
                          Provider={"#attributes": {"Name": "x"}})),
    orjson.dumps({"Event": {"System": "x"}}),
    orjson.dumps({"Event": {"System": None}}),
    orjson.dumps({"Event": {"System": [1]}}),
    orjson.dumps({"Event": {"EventData": {"Image": "x"}}}),
    orjson.dumps({"Event": None}),
    orjson.dumps({"Event": 5}),
    orjson.dumps({"NotEvent": {}}),
    b"[]",
    b"null",
    b"5",
    b'"text"',
    b"{not json",
    b"",
    b'{"Event":{"System":{"EventID":1}}}\n{"Event":{"System":{"EventID":2}}}',  # two records in one
    _event(data="unnamed data"),
    _event(data=["a", "b"]),
    _event(data=None),
    _event(data={}),
    _event(data={"Image": {"#attributes": {"x": 1}, "#text": "a"}}),
    # nested values DuckDB would render otherwise than orjson: escapes in upper case, floats with `e+`
    _event(data={"CommandLine": {"a": "\u001f"}, "User": [1.5e300]}),
    _event(system=_system(Channel={"#text": "\u0001"})),
    _event(system=_system(TimeCreated={"#attributes": {"SystemTime": [2.5e-300]}})),
    _event(data={"Image": ["a", "b"]}),
    _event(data={"Image": []}),
    _event(data={"Image": {}}),
    _event(data={"CommandLine": "[not json]"}),
    _event(data={"CommandLine": '{"looks": "like json"}'}),
    _event(data={"CommandLine": "{7CF65FC7-665F-6165-2000-000000001200}"}),
    _event(data={"Image": 1e16, "SourcePort": 0.5, "DestinationPort": -0.0, "User": 1.5e-7, "Hashes": 1e300}),
    _event(data={"Image": "tab\there\nnewline \u0000 nul \u001f \u2028 \U0001f600 é \\ \" /"}),
    _event(data={"Image": "NaN", "User": "inf", "CommandLine": "-inf Infinity"}),
    _event(data={"EventID": "1", "Channel": "Security", "Hostname": "h", "TimeCreated": "t", "EventRecordID": 1,
                 "Computer": "other-host", "@timestamp": "2021-01-01T00:00:00Z", "EventTime": "x"}),
    _event(system=_system(Computer=None, TimeCreated=_DROP),
           data={"Computer": "from-data", "@timestamp": "2021-01-02"}),
    # Security 5156 and its `ProcessID`: renamed, kept beside ProcessId, filled into an empty pid
    _event(system=_system(EventID=5156, Channel="Security"),
           data={"ProcessID": 4, "Application": "System", "Direction": "%%14593", "SourceAddress": "10.0.0.1",
                 "SourcePort": "445", "DestAddress": "10.0.0.2", "DestPort": 50000, "Protocol": 6}),
    _event(system=_system(EventID=5156, Channel="Security"), data={"ProcessId": "-", "ProcessID": "0x10"}),
    _event(system=_system(EventID=5156, Channel="SECURITY"), data={"ProcessId": None, "ProcessID": 12}),
    _event(system=_system(EventID=5156, Channel="Security"), data={"ProcessID": 12, "ProcessId": 13}),
    _event(system=_system(EventID=3), data={"ProcessId": None, "ProcessID": 12, "SourceProcessId": 9}),
    _event(system=_system(EventID=3), data={"ProcessID": None}),
    _event(system=_system(EventID=3), data={"ProcessID": True}),
    _event(system=_system(EventID=4688, Channel="Security"), data={"ProcessID": "0x4", "NewProcessId": "0x8"}),
    _event(data={"ProcessID": {"a": 1}}),
]


def _synthetic(rng: random.Random, n: int, odd: float) -> Iterator[bytes]:
    """Plausible events with values of every JSON type in the keys the `flat` dialect reads (objects and
    arrays, which send their batch record by record, with probability `odd`)."""
    keys = [k for k in evtxsql._FLAT.columns if k not in ("EventID", "Channel", "Hostname", "TimeCreated")]
    values: list[Any] = ["", "-", "x", "C:\\a b\\c.exe", "0x1f", "443", "true", "1e5", "é", "[::1", "{7CF65FC7}",
                         0, 1, -7, 4294967296, True, False, None, 2.5, 1e16]
    channels = ["Microsoft-Windows-Sysmon/Operational", "Security", "Linux-Sysmon/Operational", "System", "sysmon"]
    for _ in range(n):
        data = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 8))}
        if data and rng.random() < odd:
            data[rng.choice(list(data))] = rng.choice([{"#text": "a"}, ["a"], "{\"a\":1}", "[::1]"])
        rid = None if rng.random() < odd else rng.randrange(1 << 40)
        yield _event(system=_system(EventID=rng.choice([1, 3, 10, 11, 22, 4688, 5156, "3", 7036]),
                                    Channel=rng.choice(channels), EventRecordID=rid), data=data)


def _load_records(records: list[bytes], fast: bool, every: int,
                  time_zone: str = "UTC") -> tuple[list[tuple], list, dict, list[tuple]]:
    """`records` through one sink as _parse hands them over, `every` at a time, with a parse error between."""
    diag = Diagnostics()
    with EventStore() as store:
        store.con.execute(f"SET TimeZone = '{time_zone}'")
        info = store.begin_file("synthetic.evtx", "evtx", origin_unit="record")
        sink: evtxfile._Sink = evtxfile._Batches(store, info, diag) if fast else evtxfile._PerRecord(store, info, diag)
        with sink:
            for i in range(0, len(records), every):
                part = [r.decode("utf-8", "surrogatepass") for r in records[i:i + every]]
                sink.records(part, list(range(1000 + i, 1000 + i + len(part))))
                sink.problem(f"cannot parse EVTX record: {i}", i)
        rows = store.con.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM events ORDER BY rowid").fetchall()
        files = [(f.name, f.format, f.first_rowid, f.rows, f.origin_unit, f.notes) for f in store.files]
        return rows, diag.problems, dict(diag.counts), files


def test_synthetic_records(monkeypatch: pytest.MonkeyPatch):
    records = list(_synthetic(random.Random(7), 240, odd=0.02))
    counts = batches(monkeypatch, 12)
    assert _load_records(records, fast=True, every=7) == _load_records(records, fast=False, every=7)
    assert counts.loaded > 10 and counts.refused > 2


def test_each_odd_record_in_a_batch_of_its_own(monkeypatch: pytest.MonkeyPatch):
    """Each odd shape between two plain events, a batch of three: nothing else odd shares its batch."""
    records = [r for odd in SYNTHETIC for r in (_event(data={"Image": "a"}), odd, _event(data={"Image": "b"}))]
    counts = batches(monkeypatch, 3)
    assert _load_records(records, fast=True, every=3) == _load_records(records, fast=False, every=3)
    assert counts.loaded > 10 and counts.refused > 10


def test_rows_are_made_in_the_store_time_zone(monkeypatch: pytest.MonkeyPatch):
    """The batch statements run on cursors, which must convert zoned times as the store's connection does."""
    records = [_event(system=_system(TimeCreated={"#attributes": {"SystemTime": f"2021-11-30T22:05:5{k}+02:00"}}),
                      data={"Image": "a"}) for k in range(6)]
    counts = batches(monkeypatch, 3)
    batched = _load_records(records, fast=True, every=3, time_zone="Asia/Tokyo")
    assert batched == _load_records(records, fast=False, every=3, time_zone="Asia/Tokyo")
    assert batched != _load_records(records, fast=False, every=3)  # the zone matters to these rows
    assert counts.loaded == 2
