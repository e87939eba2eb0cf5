"""EVTX reader: exact canonical records from real files, origins, and what damage costs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import orjson
import pytest
from canonical import load_rows
from realdata import EVTX_DIR, EVTX_EID3, EVTX_FILES, HEADER, write_multichunk_evtx

from stagehunt.diagnostics import Diagnostics
from stagehunt.sources import evtxfile, flatten
from stagehunt.store import EventStore


def load(path: Path, fmt: str = "auto") -> tuple[list[dict], Diagnostics, list]:
    return load_rows(path, fmt)


def test_first_network_event_exactly():
    rows, diag, files = load(EVTX_EID3)
    [first, _] = [r for r in rows if r["event_id"] == 3]
    assert {k: v for k, v in first.items() if v is not None} == {
        "kind": "network", "provider": "sysmon", "event_id": 3,
        "time": datetime(2021, 11, 30, 22, 5, 44, 846000), "host": "fs03vuln.offsec.lan",
        "process_guid": "A57649D1-A03B-61A6-2F23-8D0000000000", "pid": 2668,
        "image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "user": "OFFSEC\\admmig",
        "protocol": "tcp", "direction": "outbound", "src_ip": "10.23.42.38", "src_port": 62095,
        "dst_ip": "10.23.123.11", "dst_port": 443, "remote_ip": "10.23.123.11", "remote_port": 443,
        "source_file": EVTX_EID3.name, "source_record": 48104,
    }
    assert diag.total == 0 and files[0].format == "evtx" and files[0].origin_unit == "record"


def test_process_start_exactly():
    rows, _, _ = load(EVTX_DIR / "ID10-Mimikatz LSASS process dump.evtx")
    first = next(r for r in rows if r["event_id"] == 1)
    assert {k: v for k, v in first.items() if v is not None} == {
        "kind": "process_start", "provider": "sysmon", "event_id": 1,
        "time": datetime(2021, 10, 21, 20, 40, 12, 867000), "host": "fs03.offsec.lan",
        "process_guid": "7CF65FC7-D02C-6171-1203-000000001200", "pid": 2032,
        "image": "C:\\TOOLS\\Mimikatzx64\\mimikatz.exe", "command_line": "mimikatz.exe", "user": "OFFSEC\\admmig",
        "parent_guid": "7CF65FC7-886C-616E-B201-000000001200", "parent_pid": 2908,
        "parent_image": "C:\\Windows\\System32\\cmd.exe", "parent_command_line": '"C:\\Windows\\system32\\cmd.exe" ',
        "hashes": "SHA1=D241DF7B9D2EC0B8194751CD5CE153E27CC40FA4,MD5=A3CB3B02A683275F7E0A0F8A9A5C9E07,"
                  "SHA256=31EB1DE7E840A342FD468E558E5AB627BCB4C542A8FE01AEC4D5BA01D539A0FC,"
                  "IMPHASH=DBDEA7B557F0E6B5D9E18ABE9CE5220A",
        "company": "gentilkiwi (Benjamin DELPY)", "product": "mimikatz", "original_file_name": "mimikatz.exe",
        "source_file": "ID10-Mimikatz LSASS process dump.evtx", "source_record": 82849,
    }


def test_every_record_is_one_row_in_file_order():
    for path in EVTX_FILES:
        rows, diag, _ = load(path)
        records = [r["source_record"] for r in rows]
        assert diag.total == 0 and records == sorted(records) and len(set(records)) == len(records)


def test_flatten_turns_evtx_json_types_into_the_strings_sysmon_wrote():
    raw = orjson.dumps({"Event": {"System": {
        "EventID": {"#attributes": {"Qualifiers": 16384}, "#text": 3},
        "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS1",
        "TimeCreated": {"#attributes": {"SystemTime": "2021-11-30T22:05:50.864921Z"}},
        "EventRecordID": 7}, "EventData": {"Initiated": True, "SourceIsIpv6": False, "DestinationPort": 443,
                                           "Image": "x.exe", "RuleName": None}}})
    flat, rid = flatten.from_evtx_json(raw)
    assert rid == 7 and orjson.loads(flat) == {
        "Initiated": "true", "SourceIsIpv6": "false", "DestinationPort": "443", "Image": "x.exe", "RuleName": None,
        "EventID": "3", "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "WS1",
        "TimeCreated": "2021-11-30T22:05:50.864921Z", "EventRecordID": 7}


def test_truncated_inside_a_chunk_keeps_its_whole_records_and_counts_the_rest(tmp_path):
    multi, per_chunk = write_multichunk_evtx(tmp_path / "multi.evtx")
    full_rows, _, _ = load(multi)
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(multi.read_bytes()[:HEADER + 2 * 65536 + 6000])  # 6000 bytes into the third chunk
    rows, diag, _ = load(cut)
    kept = len(rows) - per_chunk[0] - per_chunk[1]
    assert 0 < kept < per_chunk[2]
    assert rows == [dict(r, source_file="cut.evtx") for r in full_rows[:len(rows)]]  # nothing half-read
    lost = [p for p in diag.problems if "record lost" in p.message]
    assert diag.counts["cut.evtx"] == 1 + per_chunk[2] - kept  # + "header lists 4 chunks, file holds 3"
    assert [p.record for p in lost] == list(range(kept + 1, per_chunk[2] + 1))


def test_unreadable_header_is_one_diagnostic_and_the_file_is_still_listed(tmp_path):
    bad = tmp_path / "bad.evtx"
    bad.write_bytes(b"ElfFile\x00" + bytes(100))
    rows, diag, files = load(bad)
    assert rows == [] and [f.name for f in files] == ["bad.evtx"]
    [problem] = diag.problems
    assert problem.message == f"cannot read as evtx: EVTX file header truncated: 108 of {HEADER} bytes"


def test_a_non_evtx_file_forced_as_evtx_is_refused_cleanly():
    with EventStore() as store, pytest.raises(ValueError, match="not an EVTX file"):
        evtxfile.load(store, EVTX_DIR / "LICENSE-CC0.md", "LICENSE-CC0.md", Diagnostics())
