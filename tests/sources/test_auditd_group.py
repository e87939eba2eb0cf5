"""Small audit logs read with one insert give exactly what reading them one by one gives."""

from __future__ import annotations

import random
from pathlib import Path

from tests.sources.test_auditd import ARP, AZURE_AUOMS, CURL, DD, encode_saddr, sockaddr, syscall
from tests.sources.test_json_batch import read_directory


def test_audit_logs_read_together_as_one_by_one(tmp_path: Path) -> None:
    """Real raw logs and AUOMS rows cut into small files (events cut at file edges, junk lines among the
    records, a log with no syscall at all), JSON arrays, and another format between them."""
    rng = random.Random(20261204)
    work = tmp_path / "hosts"
    work.mkdir()
    real = ARP.read_bytes().splitlines(keepends=True) + DD.read_bytes().splitlines(keepends=True)
    for k in range(30):
        at = rng.randrange(len(real))
        part = real[at:at + rng.randint(3, 9)]  # an event may be cut at the file's edge
        for j in range(rng.randint(1, 3)):  # and some curl connects of its own
            serial, t = 5000 + 10 * k + 2 * j, 1700000000.0 + 60 * k + j
            part += [(syscall(serial, t, 42, 4000 + k, 1, "/usr/bin/curl") + "\n").encode(),
                     (sockaddr(serial, t, encode_saddr(2, f"203.0.113.{k}", 443)) + "\n").encode()]
        if k % 5 == 2:  # a line that is no audit record: reported
            part.insert(rng.randrange(len(part) + 1), b"kernel: something else entirely\n")
        (work / f"a{k:02d}.log").write_bytes(b"".join(part))
    rows = AZURE_AUOMS.read_bytes().splitlines(keepends=True)
    for j in range(0, len(rows), 10):
        (work / f"b{j:03d}.json").write_bytes(b"".join(rows[j:j + 10]))
    (work / "b999.json").write_bytes(b"[" + b",".join(r.strip() for r in rows[:5]) + b"]\n")  # an array
    (work / "c-curl.log").write_bytes(CURL.encode())
    (work / "c-login-only.log").write_bytes(  # no syscall in it: skipped with a note
        b"type=USER_LOGIN msg=audit(1531903575.684:1153): pid=1 uid=0 auid=1000 ses=3 msg='op=login res=success'\n")
    (work / "a05b.jsonl").write_bytes(b'{"EventID": 1, "Image": "x"}\n')  # another format between them
    together = read_directory(work)
    formats = [f[1] for f in together[1]]
    assert formats.count("auditd") == 38 and "flat" in formats
    assert len(together[0]) > 50
    assert any("not an audit record" in p[3] for p in together[2]), "the junk is reported"
    assert any("without a syscall skipped" in note for f in together[1] for note in f[-1])
    assert any(f[4] == "record" for f in together[1])  # the array's rows cite their index
