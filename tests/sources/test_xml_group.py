"""Small Event XML files read with one insert give exactly what reading them one by one gives."""

from __future__ import annotations

import random
from pathlib import Path

from stagehunt import sources
from stagehunt.store import EventStore
from tests.realdata import EVTX_FILES, write_xml_document
from tests.sources.test_json_batch import _one_by_one, _together


def _damaged(rng: random.Random, text: bytes) -> bytes:
    kind = rng.choice(["cut", "garbage", "tag", "entity"])
    at = rng.randrange(len(text) // 4, len(text))
    if kind == "cut":  # an export stopped short
        return text[:at]
    if kind == "garbage":
        return text[:at] + rng.randbytes(rng.randint(1, 40)) + text[at:]
    if kind == "tag":  # one event's end tag lost: that event is malformed
        return text.replace(b"</Event>", b"</Evnt>", 1)
    return text[:at] + b"&bogus;" + text[at:]


def test_xml_files_read_together_as_one_by_one(tmp_path: Path) -> None:
    originals = [write_xml_document(f, tmp_path / f"{f.stem}.src").read_bytes() for f in EVTX_FILES]
    rng = random.Random(20261204)
    work = tmp_path / "exports"
    work.mkdir()
    for k in range(24):
        text = originals[k % len(originals)]
        (work / f"{k:02d}.xml").write_bytes(_damaged(rng, text) if k % 3 == 2 else text)
    (work / "05b.xml").write_bytes(b"<Events></Events>\n")  # no events: cannot be read as xml
    (work / "07b.jsonl").write_bytes(b'{"EventID": 1, "Image": "x"}\n')  # another format between them
    with EventStore() as store:
        inputs = list(sources.expand([str(work)], store.tmpdir))
    together = _together(inputs)
    assert len(together[1]) == 26 and len(together[0]) > 200
    assert together[2], "the damage is reported"
    assert any("cannot read as xml" in p[3] for p in together[2])
    lines = {}
    for row in together[0]:
        lines.setdefault(row[-3], []).append(row[-2])
    assert all(None not in ls and ls == sorted(ls) for ls in lines.values())  # each file cites its own lines
    assert together == _one_by_one(inputs)
