"""The event store: inputs bigger than the memory limit are kept compressed, and nothing else changes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from stagehunt import engine, sources
from stagehunt.config import Config
from stagehunt.diagnostics import Diagnostics
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


def _run(compressed: bool) -> tuple[list[tuple], list[dict], list[tuple]]:
    with EventStore() as store:
        if compressed:
            store.expect_bytes(10**13)
        diag = Diagnostics()
        sources.load(store, list(sources.expand(INPUTS, store.tmpdir)), "auto", diag)
        assert store.compressed is compressed
        rows = store.con.execute("SELECT * FROM events ORDER BY rowid").fetchall()
        cfg = Config().with_overrides(scope={"count_internal": True})  # more findings: the lab C2 servers too
        findings = [asdict(f) for f in engine.run(store, cfg)]
        problems = [(p.file, p.line, p.record, p.message) for p in diag.problems]
    return rows, findings, problems


def test_compressed_and_uncompressed_stores_give_the_same_events_and_findings() -> None:
    plain, packed = _run(False), _run(True)
    assert len(plain[0]) > 7000 and len(plain[1]) > 5
    assert packed == plain
