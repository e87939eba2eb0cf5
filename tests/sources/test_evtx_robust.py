"""Property tests: a damaged EVTX file never raises out of `sources.load`, and costs only what is damaged.

The input is the real EVTX files' chunks laid end to end (4 chunks), so every chunk is real data.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from realdata import CHUNK, HEADER, write_multichunk_evtx

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.schema import COLUMN_NAMES
from stagehunt.sources.evtxfile import CHUNK_HEADER
from stagehunt.store import EventStore

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Multi:
    def __init__(self, tmp: Path):
        path, self.per_chunk = write_multichunk_evtx(tmp / "multi.evtx")
        self.data = path.read_bytes()
        self.work = tmp / "damaged.evtx"
        rows, diag = self.load(self.data)
        assert diag.total == 0 and len(rows) == sum(self.per_chunk)
        self.rows = rows
        starts = [sum(self.per_chunk[:k]) for k in range(len(self.per_chunk) + 1)]
        self.by_chunk = [rows[a:b] for a, b in pairwise(starts)]

    def load(self, data: bytes) -> tuple[list[tuple], Diagnostics]:
        self.work.write_bytes(data)
        diag = Diagnostics()
        with EventStore() as store:
            sources.load(store, [sources.Input("damaged.evtx", self.work)], "auto", diag)
            rows = store.con.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM events ORDER BY rowid").fetchall()
        return rows, diag


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Multi:
    return Multi(tmp_path_factory.mktemp("evtx"))


SIZE = HEADER + 4 * CHUNK


@FAST
@given(cut=st.integers(0, SIZE))
@example(cut=0).via("empty file")
@example(cut=100).via("inside the file header")
@example(cut=HEADER).via("header only")
@example(cut=HEADER + CHUNK_HEADER - 1).via("inside the first chunk header")
@example(cut=HEADER + 6000).via("inside the first chunk's records")
@example(cut=HEADER + 2 * CHUNK).via("on a chunk boundary")
@example(cut=HEADER + 2 * CHUNK + 9000).via("inside the third chunk's records")
def test_truncated_file_keeps_its_readable_prefix_and_counts_the_rest(multi, cut):
    rows, diag = multi.load(multi.data[:cut])
    errors = diag.counts["damaged.evtx"]
    assert rows == multi.rows[:len(rows)]  # a prefix of the intact file, no half-read record
    if cut == 0:
        assert rows == [] and errors == 0  # an empty file holds no events: noted, nothing wrong
        return
    if cut < HEADER:
        assert rows == [] and errors == 1  # unrecognised, or a header too short: one diagnostic
        return
    full, part = divmod(cut - HEADER, CHUNK)
    before = sum(multi.per_chunk[:full])
    chunks_missing = 1 if full + (part > 0) < len(multi.per_chunk) else 0  # "header lists 4 chunks"
    if part == 0:
        assert (len(rows), errors) == (before, chunks_missing)
    elif part < CHUNK_HEADER:
        assert (len(rows), errors) == (before, chunks_missing + 1)
    else:  # every record the cut chunk promised is either loaded or reported lost
        assert len(rows) >= before and len(rows) + errors == before + multi.per_chunk[full] + chunks_missing
    if full >= 1:
        assert len(rows) > 0


@FAST
@given(st.lists(st.tuples(st.integers(HEADER, SIZE - 1), st.integers(0, 255)), min_size=1, max_size=12))
def test_corrupted_records_cost_only_their_chunk_and_are_counted(multi, damage):
    data = bytearray(multi.data)
    for offset, value in damage:
        data[offset] = value
    rows, diag = multi.load(bytes(data))
    damaged_chunks = {(offset - HEADER) // CHUNK for offset, _ in damage}
    untouched = Counter(r for k, chunk in enumerate(multi.by_chunk) if k not in damaged_chunks for r in chunk)
    assert not untouched - Counter(rows)  # every record of an undamaged chunk is loaded as it was
    if len(rows) < len(multi.rows):
        assert diag.counts["damaged.evtx"] > 0  # nothing vanishes silently


@FAST
@given(st.lists(st.tuples(st.integers(0, HEADER - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_file_header_never_raises(multi, damage):
    data = bytearray(multi.data)
    for offset, value in damage:
        data[offset] = value
    rows, diag = multi.load(bytes(data))
    assert len(rows) <= len(multi.rows)
    if not rows:
        assert diag.counts["damaged.evtx"] >= 1
