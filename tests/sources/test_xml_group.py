"""Small Event XML and syslog files read with one insert give exactly what reading them one by one gives."""

from __future__ import annotations

import random
from pathlib import Path

from tests.realdata import EVTX_FILES, REAL, write_syslog, write_xml_document
from tests.sources.test_json_batch import read_directory


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
    together = read_directory(work)
    assert len(together[1]) == 26 and len(together[0]) > 200
    assert together[2], "the damage is reported"
    assert any("cannot read as xml" in p[3] for p in together[2])
    lines = {}
    for row in together[0]:
        lines.setdefault(row[-3], []).append(row[-2])
    assert all(None not in ls and ls == sorted(ls) for ls in lines.values())  # each file cites its own lines


def test_syslog_files_read_together_as_one_by_one(tmp_path: Path) -> None:
    """A fleet's rotated syslog files: Sysmon lines among other daemons' lines, some cut or damaged, one file
    with no Sysmon line at all, and another format between them."""
    azure = REAL / "otrf" / "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"
    lines = write_syslog(azure, tmp_path / "all.src").read_bytes().splitlines(keepends=True)
    rng = random.Random(20261204)
    work = tmp_path / "hosts"
    work.mkdir()
    for k in range(30):
        part = lines[(k * 7) % len(lines):][:rng.randint(3, 12)]
        if k % 4 == 1:  # another daemon's lines between Sysmon's: skipped, noted
            part.insert(1, b"May 11 18:10:21 UBUNTU5 CRON[1234]: (root) CMD (run-parts /etc/cron.hourly)\n")
        if k % 5 == 3:  # a Sysmon line cut short: reported
            part[0] = part[0][:len(part[0]) // 2] + b"\n"
        if k % 7 == 6:
            part = [_damaged(rng, b"".join(part))]
        (work / f"host{k:02d}.log").write_bytes(b"".join(part))
    # looks like Sysmon's syslog to the sniffer, but no line holds an <Event>: cannot be read as syslog
    (work / "host05b.log").write_bytes(b"May 11 18:10:21 UBUNTU5 app: <Events><System></System></Events>\n")
    (work / "host07b.jsonl").write_bytes(b'{"EventID": 1, "Image": "x"}\n')  # another format between them
    together = read_directory(work)
    assert len(together[1]) == 32 and len(together[0]) > 150
    assert together[2], "the damage is reported"
    assert any("cannot read as syslog: no line carries a Sysmon <Event>" in p[3] for p in together[2])
    assert any("skipped" in note for info in together[1] for note in info[-1])
