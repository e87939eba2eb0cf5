"""The event store: inputs bigger than the memory limit are kept compressed, and nothing else changes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import duckdb
import pytest

from stagehunt import engine, sources
from stagehunt.config import Config
from stagehunt.detections import DETECTIONS
from stagehunt.diagnostics import Diagnostics
from stagehunt.simulate.lab import write_scenario
from stagehunt.simulate.scenarios import ATTACKS, build
from stagehunt.store import EventStore, _bytes

ROOT = Path(__file__).parent.parent
INPUTS = [str(ROOT / "examples"), str(ROOT / "tests" / "data" / "real")]  # JSON, XML, EVTX, syslog, auditd


def _events_catalog(store: EventStore) -> str:
    return store.con.execute("SELECT database_name FROM duckdb_tables() WHERE table_name = 'events'").fetchone()[0]


@pytest.mark.parametrize(("size", "expected"), [("1GB", 10**9), ("512MB", 512 * 10**6), ("2GiB", 2 << 30),
                                                ("1.5GB", 1_500_000_000), ("100 KiB", 102_400), ("3tb", 3 * 10**12)])
def test_memory_limits_are_read_as_duckdb_reads_them(size: str, expected: int) -> None:
    assert _bytes(size) == expected


def test_inputs_up_to_the_threshold_stay_uncompressed_and_bigger_ones_do_not() -> None:
    with EventStore(memory_limit="1GB") as store:
        store.expect_bytes(1_200_000_000)  # half of it is 60 % of the limit: still fits
        assert not store.compressed and _events_catalog(store) == "memory"
        store.expect_bytes(1_200_000_002)
        assert store.compressed and _events_catalog(store) == "compressed"


def test_a_store_that_already_holds_events_is_never_moved() -> None:
    with EventStore() as store:
        sources.load(store, list(sources.expand([str(ROOT / "examples")], store.tmpdir)), "auto", Diagnostics())
        n = store.count()
        store.expect_bytes(10**13)
        assert not store.compressed and store.count() == n


def test_load_decides_from_the_size_of_its_inputs() -> None:
    with EventStore() as store:
        inputs = list(sources.expand(INPUTS, store.tmpdir))
        total = sum(i.path.stat().st_size for i in inputs)
        store.memory_limit_bytes = int(total / 2 / 0.6) - 1  # these inputs are just too big for it
        sources.load(store, inputs, "auto", Diagnostics())
        assert store.compressed and _events_catalog(store) == "compressed" and store.count() > 7000
        # loading put off DuckDB's checkpoints to one at its end; after it they are as usual again (the
        # scoring baseline is a file on disk)
        threshold = "SELECT value FROM duckdb_settings() WHERE name = 'checkpoint_threshold'"
        assert store.con.execute(threshold).fetchone()[0] == duckdb.connect().execute(threshold).fetchone()[0]


def _run(compressed: bool, inputs: list[str]) -> tuple[list[tuple], list[dict], list[tuple]]:
    with EventStore() as store:
        if compressed:
            store.expect_bytes(10**13)
        diag = Diagnostics()
        sources.load(store, list(sources.expand(inputs, store.tmpdir)), "auto", diag)
        assert store.compressed is compressed
        # a compressed store leaves clean JSON lines' line numbers implicit: line_of_row gives them
        rows = store.con.execute("SELECT * REPLACE (line_of_row(source_line, rowid) AS source_line) FROM events "
                                 "ORDER BY rowid").fetchall()
        cfg = Config().with_overrides(scope={"count_internal": True})  # more findings: the lab C2 servers too
        findings = [asdict(f) for f in engine.run(store, cfg)]
        problems = [(p.file, p.line, p.record, p.message) for p in diag.problems]
    return rows, findings, problems


def test_compressed_and_uncompressed_stores_give_the_same_events_and_findings(tmp_path: Path) -> None:
    # the lab's attacks too, each file read on its own (its expected.json between them): every detection
    # fires, so every query that cites a line is compared, and with a compressed store's implicit lines
    for name in ATTACKS:
        write_scenario(tmp_path, build(name), formats=["flat"])
    inputs = [*INPUTS, str(tmp_path)]
    plain, packed = _run(False, inputs), _run(True, inputs)
    assert len(plain[0]) > 7000 and {f["detection_type"] for f in plain[1]} == set(DETECTIONS)
    assert packed == plain


def _lines(inputs: list[str], compressed: bool) -> tuple[list[tuple], list[tuple[int, int]]]:
    with EventStore() as store:
        if compressed:
            store.expect_bytes(10**13)
        sources.load(store, list(sources.expand(inputs, store.tmpdir)), "auto", Diagnostics())
        rows = store.con.execute("SELECT source_file, source_line, line_of_row(source_line, rowid), source_record, "
                                 "pid FROM events ORDER BY rowid").fetchall()
        return rows, list(store._implicit_lines)


def test_a_compressed_store_numbers_big_json_lines_files_without_writing_the_numbers(tmp_path: Path) -> None:
    """Big clean JSON-lines files (read one statement each) in a compressed store keep their line numbers
    implicit (an UPDATE of a compressed table is slow); line_of_row gives every event the line the
    uncompressed store writes, among files that do write theirs (a damaged one, small ones, an EVTX file)."""
    example = (ROOT / "examples" / "sysmon-two-stage-c2.jsonl").read_bytes().splitlines()
    big = b"\n".join(example * (4_200_000 // len(b"\n".join(example)) + 1)) + b"\n"  # over SMALL_FILE
    (tmp_path / "a-big.jsonl").write_bytes(big)
    lines = big.splitlines()
    lines[7] = lines[7][:40]  # a damaged line: this file goes the careful path, lines written row by row
    (tmp_path / "b-damaged.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "c-small.jsonl").write_bytes(b"\n".join(example[:5]) + b"\n")
    (tmp_path / "d-big.jsonl").write_bytes(b"\n".join(example[3:] * 600) + b"\n")
    evtx = ROOT / "tests" / "data" / "real" / "evtx-to-mitre" / "ID1-LSASS dump with LSASSY (SYSMON).evtx"
    inputs = [str(tmp_path), str(evtx)]
    plain, no_implicit = _lines(inputs, compressed=False)
    packed, implicit = _lines(inputs, compressed=True)
    assert no_implicit == []
    # the clean files, each read with one statement (the small one too: it has no small neighbour to share with)
    assert sorted({Path(packed[first][0]).name for first, _ in implicit}) == ["a-big.jsonl", "c-small.jsonl",
                                                                                "d-big.jsonl"]
    assert all(r[1] == r[2] for r in plain)  # uncompressed, every line is written
    assert [(f, line, record, pid) for f, _, line, record, pid in packed] == \
        [(f, line, record, pid) for f, _, line, record, pid in plain]
    files = [r[0] for r in packed]
    assert any(f.endswith("a-big.jsonl") for f in files) and any(f.endswith(".evtx") for f in files)
    first, stop = implicit[0]
    assert [r[2] for r in packed[first:stop]] == list(range(1, stop - first + 1))
    assert all(r[1] is None for r in packed[first:stop])  # not written, only given
