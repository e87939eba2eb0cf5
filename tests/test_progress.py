"""The progress bar's measure of one file: the reader's offset in it, or DuckDB's progress through its statement."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from evtx import PyEvtxParser
from realdata import write_multichunk_evtx

from stagehunt.progress import FileProgress, read_offset

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="open files' offsets: /proc")


@linux_only
def test_the_offset_is_the_furthest_any_open_descriptor_has_read(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(300_000))
    assert read_offset(path) is None  # nobody has it open
    with open(path, "rb", buffering=0) as a, open(tmp_path / ".." / tmp_path.name / "f.bin", "rb", buffering=0) as b:
        a.read(1000)
        b.read(250_000)
        assert read_offset(path) == 250_000  # also through another spelling of the path
    assert read_offset(path) is None


@linux_only
def test_a_reader_past_the_sniffing_is_followed_by_its_offset_and_duckdb_is_not(tmp_path: Path) -> None:
    path, _ = write_multichunk_evtx(tmp_path / "many.evtx", copies=2)
    size = path.stat().st_size
    progress = FileProgress(path, size)
    parser = PyEvtxParser(str(path))
    records = parser.records_json()
    seen = []
    for i, _ in enumerate(records):
        if i % 40 == 0:
            # DuckDB's progress through some small statement of the reader: not this file's
            seen.append(progress.update(statement_percent=100.0 if i % 80 else 3.0))
    middle = [f for f in seen if 0 < f < 1]
    assert middle, seen  # the bar moves within the file
    assert seen == sorted(seen)  # and never back
    assert progress.update(-1) > 0.9  # the parser has read (nearly) all of it
    del records, parser


@linux_only
def test_a_file_duckdb_reads_follows_duckdb_and_never_goes_back(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"{}\n" * 100_000)
    progress = FileProgress(path, path.stat().st_size)
    with open(path, "rb", buffering=0) as sniffing:
        sniffing.read(65536)  # what sniffing the format reads: not a reader's progress
        assert progress.update(40.0) == pytest.approx(0.4)
    assert progress.update(-1) == pytest.approx(0.4)  # between statements
    assert progress.update(25.0) == pytest.approx(0.4)
    assert progress.update(100.0) == 1.0


def test_with_no_descriptor_open_duckdb_alone_decides(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"{}\n")
    progress = FileProgress(path, 3)
    assert progress.update(50.0) == pytest.approx(0.5)
    empty = FileProgress(tmp_path / "x.jsonl", 0)
    assert empty.update(-1) == 0.0
