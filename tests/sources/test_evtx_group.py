"""Small EVTX files read with one insert give exactly what reading them one by one gives."""

from __future__ import annotations

import random
from pathlib import Path

from stagehunt import sources
from stagehunt.store import EventStore
from tests.realdata import EVTX_FILES, write_multichunk_evtx
from tests.sources.test_evtx_differential import _damaged
from tests.sources.test_json_batch import _one_by_one, _together


def _inputs(directory: Path) -> list[sources.Input]:
    with EventStore() as store:
        return list(sources.expand([str(directory)], store.tmpdir))


def test_real_files_read_together_as_one_by_one(tmp_path: Path) -> None:
    for k in range(3):
        for f in EVTX_FILES:
            (tmp_path / f"{k}-{f.name}").write_bytes(f.read_bytes())
    inputs = _inputs(tmp_path)
    together = _together(inputs)
    assert len(together[0]) == 3 * 37 and len(together[1]) == 3 * len(EVTX_FILES) and together[2] == []
    assert together == _one_by_one(inputs)
    # each file cites its own records, numbered as the EVTX file numbers them
    cited = {}
    for row in together[0]:
        cited.setdefault(row[-3], []).append(row[-1])
    assert len(cited) == 3 * len(EVTX_FILES)
    assert all(None not in records and records == sorted(records) for records in cited.values())


def test_damaged_cut_and_unreadable_files_among_good_ones(tmp_path: Path) -> None:
    multi, _ = write_multichunk_evtx(tmp_path / "multi.bin")  # 4 chunks: under 1 MiB, still small
    rng = random.Random(20261204)
    blobs = [multi.read_bytes(), *(f.read_bytes() for f in EVTX_FILES)]
    for k in range(24):
        blob = blobs[k % len(blobs)]
        (tmp_path / f"{k:02d}.evtx").write_bytes(_damaged(rng, blob) if k % 3 else blob)
    (tmp_path / "10b.evtx").write_bytes(b"ElfFile\x00" + bytes(100))  # header cut short: unreadable
    (tmp_path / "11b.jsonl").write_bytes(b'{"EventID": 1, "Image": "x"}\n')  # another format between them
    inputs = _inputs(tmp_path)
    together = _together(inputs)
    assert together[2], "the damage is reported"
    assert any("cannot read as evtx" in p[3] for p in together[2])
    assert together == _one_by_one(inputs)
