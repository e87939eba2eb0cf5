"""Windows Event XML, Sysmon-for-Linux syslog and Azure Syslog readers on real events."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import orjson
from canonical import load_rows
from realdata import (
    AZURE_AUOMS,
    AZURE_SYSLOG,
    EVTX_FILES,
    OTRF_CMSTP,
    evtx_xml_records,
    one_line,
    without_declaration,
    write_syslog,
    write_xml_document,
)

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.sources import xmlfile
from stagehunt.store import EventStore

ORIGIN = ("source_file", "source_line", "source_record")


def load(path: Path, fmt: str = "auto") -> tuple[list[dict], Diagnostics, list]:
    return load_rows(path, fmt)


def events(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ORIGIN} for r in rows]


# -- Windows Event XML ---------------------------------------------------------------------------------

def test_xml_document_reads_exactly_like_the_evtx_it_was_rendered_from(tmp_path):
    for src in EVTX_FILES:
        xml = write_xml_document(src, tmp_path / "doc.xml")
        rows, diag, files = load(xml)
        assert files[0].format == "xml" and diag.total == 0
        assert events(rows) == events(load(src)[0])
        text = xml.read_text().splitlines()
        assert all(text[r["source_line"] - 1].startswith("<Event xmlns=") for r in rows)


def test_concatenated_events_on_one_line_as_wevtutil_writes_them(tmp_path):
    src = EVTX_FILES[2]
    xml = tmp_path / "wevtutil.xml"
    xml.write_text("".join(one_line(x) for x in evtx_xml_records(src)))
    rows, diag, _ = load(xml)
    assert diag.total == 0 and events(rows) == events(load(src)[0])
    assert {r["source_line"] for r in rows} == {1}


def test_evtx_dump_output_with_a_declaration_before_every_event(tmp_path):
    src = EVTX_FILES[1]
    xml = tmp_path / "dump.xml"
    xml.write_text("".join(evtx_xml_records(src)))
    rows, diag, _ = load(xml)
    assert diag.total == 0 and events(rows) == events(load(src)[0])


def test_one_event_per_line(tmp_path):
    src = EVTX_FILES[0]
    xml = tmp_path / "lines.xml"
    xml.write_text("".join(one_line(x) + "\n" for x in evtx_xml_records(src)))
    rows, diag, _ = load(xml)
    assert diag.total == 0 and events(rows) == events(load(src)[0])
    assert [r["source_line"] for r in rows] == list(range(1, len(rows) + 1))


def test_utf16_export_with_bom(tmp_path):
    src = EVTX_FILES[3]
    xml = tmp_path / "utf16.xml"
    xml.write_text(write_xml_document(src, tmp_path / "doc.xml").read_text(), encoding="utf-16")
    rows, diag, _ = load(xml, "xml")
    assert diag.total == 0 and events(rows) == events(load(src)[0])
    assert sources.sniff(xml) == "xml"  # found without --format too


def test_damaged_document_loses_only_the_damaged_events(tmp_path):
    src = EVTX_FILES[0]
    lines = write_xml_document(src, tmp_path / "doc.xml").read_text().splitlines(keepends=True)
    starts = [i + 1 for i, line in enumerate(lines) if line.startswith("<Event ")]
    # event 2: a line cut in half; event 4: a garbage line; the last event: the file ends inside it
    cut, garbage = starts[1] + 5, starts[3] + 5
    damaged = [*lines[:cut - 1], lines[cut - 1][:12] + "\n", *lines[cut:garbage - 1], "<<< & >>>\n",
               *lines[garbage - 1:starts[-1] + 3]]
    xml = tmp_path / "damaged.xml"
    xml.write_text("".join(damaged))
    rows, diag, _ = load(xml)
    intact = events(load(src)[0])
    assert events(rows) == [e for k, e in enumerate(intact) if k not in (1, 3, len(intact) - 1)]
    # lines after the inserted garbage line moved down by one
    assert [p.line for p in diag.problems] == [starts[1], starts[3], starts[-1] + 1]
    assert [r["source_line"] for r in rows][:3] == [starts[0], starts[2], starts[4] + 1]


def test_garbage_that_is_not_event_xml_is_a_diagnostic(tmp_path):
    junk = tmp_path / "pom.xml"
    junk.write_text('<?xml version="1.0"?>\n<project><modelVersion>4.0.0</modelVersion></project>\n')
    rows, diag, files = load(junk)
    assert rows == [] and files[0].format == "xml"
    assert [p.message for p in diag.problems] == ["cannot read as xml: no <Event> element found: not Windows Event XML"]


def test_powershell_clixml_is_named_with_the_way_to_export_event_xml(tmp_path):
    # Export-Clixml (UTF-16 in PowerShell 5): serialised .NET objects, which hold no Event XML
    clixml = tmp_path / "events.xml"
    clixml.write_text('<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj RefId="0">'
                      '<TN RefId="0"><T>System.Diagnostics.Eventing.Reader.EventLogRecord</T></TN></Obj></Objs>\n',
                      encoding="utf-16")
    rows, diag, _ = load(clixml)
    assert rows == []
    [message] = [p.message for p in diag.problems]
    assert "PowerShell Export-Clixml" in message and "$_.ToXml()" in message and "wevtutil qe" in message
    converted = tmp_path / "converted.xml"  # ConvertTo-Xml: the same, in another shape
    converted.write_text('<?xml version="1.0" encoding="utf-8"?>\n<Objects><Object Type="System.Diagnostics.'
                         'Eventing.Reader.EventLogRecord"><Property Name="Id" Type="System.Int32">3</Property>'
                         '</Object></Objects>\n')
    _, diag, _ = load(converted)
    assert "PowerShell ConvertTo-Xml" in diag.problems[0].message


def _security_xml(row: dict, data_names: list[str]) -> str:
    """A Security event as Windows renders it, from the values of a real NXLog-flattened row."""
    data = "".join(f"<Data Name={quoteattr(n)}>{escape(str(row[n]))}</Data>" for n in data_names if n in row)
    return (f"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
            f"<Provider Name='{row['SourceName']}' Guid='{row['ProviderGuid']}'/><EventID>{row['EventID']}</EventID>"
            f"<TimeCreated SystemTime='{row['TimeCreated']}'/><EventRecordID>1</EventRecordID>"
            f"<Channel>{row['Channel']}</Channel><Computer>{row['Hostname']}</Computer></System>"
            f"<EventData>{data}</EventData></Event>")


def test_security_4688_and_5156_read_like_their_nxlog_rows_but_keep_the_5156_pid(tmp_path):
    names = {4688: ["SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "NewProcessId",
                    "NewProcessName", "TokenElevationType", "ProcessId", "CommandLine", "TargetUserSid",
                    "TargetUserName", "TargetDomainName", "TargetLogonId", "ParentProcessName", "MandatoryLabel"],
             5156: ["ProcessID", "Application", "Direction", "SourceAddress", "SourcePort", "DestAddress", "DestPort",
                    "Protocol", "FilterRTID", "LayerName", "LayerRTID", "RemoteUserID", "RemoteMachineID"]}
    lines = OTRF_CMSTP.read_bytes().splitlines()
    picked = [next(raw for raw in lines if orjson.loads(raw)["EventID"] == eid) for eid in (4688, 5156)]
    (tmp_path / "nxlog.jsonl").write_bytes(b"\n".join(picked) + b"\n")
    (tmp_path / "security.xml").write_text("".join(
        _security_xml(row, names[row["EventID"]]) + "\n" for row in map(orjson.loads, picked)))
    from_json, _, _ = load(tmp_path / "nxlog.jsonl")
    from_xml, diag, _ = load(tmp_path / "security.xml")
    assert diag.total == 0
    [proc_json, net_json], [proc_xml, net_xml] = events(from_json), events(from_xml)
    assert proc_xml == proc_json
    assert (proc_xml["pid"], proc_xml["parent_pid"]) == (0x24F0, 0x1A34)
    assert proc_xml["image"] == "C:\\Windows\\System32\\cmstp.exe"
    # NXLog JSON spells 5156's pid `ProcessID` (a second read fills it); the XML reader hands it over as ProcessId
    assert net_json["pid"] == 3428 and net_xml == net_json
    assert (net_xml["kind"], net_xml["direction"], net_xml["protocol"], net_xml["dst_ip"], net_xml["dst_port"]) == \
        ("network", "outbound", "tcp", "168.63.129.16", 80)


# -- Sysmon for Linux: syslog lines and Azure Syslog rows -----------------------------------------------

def test_azure_syslog_first_network_event_exactly():
    rows, _, files = load(AZURE_SYSLOG)
    assert files[0].format == "azure-syslog"
    first = next(r for r in rows if r["event_id"] == 3 and r["image"].endswith("java"))
    assert {k: v for k, v in first.items() if v is not None} == {
        "kind": "network", "provider": "sysmon-linux", "event_id": 3,
        "time": datetime(2022, 5, 11, 18, 10, 21, 790000), "host": "ubuntu5",
        "process_guid": "{94325212-f5a5-627b-b809-87f375550000}", "pid": 1340,
        "image": "/usr/lib/jvm/java-8-openjdk-amd64/jre/bin/java", "user": "tomcat", "protocol": "tcp",
        "direction": "outbound", "src_ip": "192.168.2.5", "src_port": 41696, "dst_ip": "192.168.2.6",
        "dst_port": 1389, "remote_ip": "192.168.2.6", "remote_port": 1389,
        "source_file": AZURE_SYSLOG.name, "source_line": 6,
    }


def test_sysmon_for_linux_entities_without_semicolon_are_repaired():
    rows, diag, _ = load(AZURE_SYSLOG)
    by_line = {r["source_line"]: r for r in rows}
    assert by_line[9]["image"] == "<unknown process>"
    assert by_line[65]["command_line"] == (
        "sh -c /opt/omi/bin/omicli wql root/scx \"SELECT PercentUserTime, PercentPrivilegedTime, UsedMemory, "
        "PercentUsedMemory FROM SCX_UnixProcessStatisticalInformation where Handle='2030'\" | grep =")
    # the one message syslog cut short cannot be repaired: it is reported, with its line
    [problem] = diag.problems
    assert problem.line == 8 and "cut short after 2012 bytes" in problem.message
    assert len(rows) == 92


def test_syslog_lines_read_exactly_like_the_azure_rows(tmp_path):
    log = write_syslog(AZURE_SYSLOG, tmp_path / "syslog")
    with log.open("a") as f:
        f.write("May 11 18:20:00 UBUNTU5 systemd[1]: Started Daily apt download activities.\n")
    rows, diag, files = load(log)
    azure, _, _ = load(AZURE_SYSLOG)
    assert files[0].format == "syslog" and files[0].notes == ["1 line(s) without Sysmon XML skipped (first: line 94)"]
    assert rows == [dict(r, source_file="syslog") for r in azure]  # same events, same line numbers
    assert [p.line for p in diag.problems] == [8]


def test_auoms_rows_forced_as_azure_syslog_are_skipped_with_a_note_not_errors():
    rows, diag, files = load(AZURE_AUOMS, "azure-syslog")
    assert rows == [] and diag.total == 0
    assert files[0].notes == ["50 row(s) skipped: SyslogMessage is not Sysmon XML (e.g. AUOMS audit records)"]


def test_azure_syslog_json_array_uses_record_numbers(tmp_path):
    rows_in = [orjson.loads(raw) for raw in AZURE_SYSLOG.read_bytes().splitlines()[:7]]
    array = tmp_path / "export.json"
    array.write_bytes(orjson.dumps(rows_in))
    rows, diag, files = load(array, "azure-syslog")
    assert diag.total == 0 and files[0].origin_unit == "record"
    assert [(r["source_line"], r["source_record"]) for r in rows] == [(None, k) for k in range(1, 8)]
    assert events(rows) == events(load(AZURE_SYSLOG)[0])[:7]


def test_unnamespaced_event_with_the_namespace_stripped_is_the_same_event(tmp_path):
    src = EVTX_FILES[3]
    plain = tmp_path / "plain.xml"
    plain.write_text("".join(without_declaration(x).replace(
        ' xmlns="http://schemas.microsoft.com/win/2004/08/events/event"', "") for x in evtx_xml_records(src)))
    rows, diag, _ = load(plain)
    assert diag.total == 0 and events(rows) == events(load(src)[0])


def test_one_line_export_longer_than_a_read_piece(tmp_path):
    """wevtutil writes a whole export on one line: it is read in pieces, events spanning two pieces included."""
    src = EVTX_FILES[0]
    line = "".join(one_line(x) for x in evtx_xml_records(src))
    copies = xmlfile.PIECE // len(line) + 2
    xml = tmp_path / "big.xml"
    xml.write_text(line * copies)
    rows, diag, _ = load(xml)
    assert diag.total == 0 and events(rows) == events(load(src)[0]) * copies
    assert {r["source_line"] for r in rows} == {1}


def test_nxlog_5156_processid_spelling_is_read_beside_sysmon_processid_on_both_json_paths(tmp_path):
    """Row i of the second read of `ProcessID` must land on row i: mixed files, clean or not."""
    sysmon = {"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "ws1",
              "UtcTime": "2026-11-01 00:00:00.000", "ProcessId": "11", "Image": "C:\\a.exe", "Initiated": "true",
              "DestinationIp": "8.8.8.8", "DestinationPort": "443"}
    security = {"EventID": 5156, "Channel": "Security", "Hostname": "ws2", "TimeCreated": "2026-11-01T00:00:01Z",
                "ProcessID": "22", "Application": "\\device\\harddiskvolume2\\b.exe", "Direction": "%%14593",
                "SourceAddress": "10.0.0.2", "DestAddress": "1.1.1.1", "DestPort": "80", "Protocol": "6"}
    records = [sysmon, dict(security, ProcessID="22"), dict(sysmon, ProcessId="33"), dict(security, ProcessID="44")]
    lines = [orjson.dumps(r) for r in records]
    (tmp_path / "clean.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "blank.jsonl").write_bytes(b"\n".join(lines[:2]) + b"\n\n" + b"\n".join(lines[2:]) + b"\n")
    for name, line_numbers in (("clean.jsonl", [1, 2, 3, 4]), ("blank.jsonl", [1, 2, 4, 5])):
        rows, diag, _ = load_rows(tmp_path / name)
        assert diag.total == 0
        assert [(r["event_id"], r["pid"], r["source_line"]) for r in rows] == \
            list(zip([3, 5156, 3, 5156], [11, 22, 33, 44], line_numbers, strict=True)), name


def test_nxlog_5156_processid_spelling_is_read_in_a_group_of_small_files(tmp_path):
    """Small JSON-lines files are read as one group; each 5156 row still gets its own `ProcessID`."""
    security = {"EventID": 5156, "Channel": "Security", "Hostname": "ws2", "TimeCreated": "2026-11-01T00:00:01Z",
                "Application": "\\device\\harddiskvolume2\\b.exe", "Direction": "%%14593",
                "SourceAddress": "10.0.0.2", "DestAddress": "1.1.1.1", "DestPort": "80", "Protocol": "6"}
    sysmon = {"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "ws1",
              "UtcTime": "2026-11-01 00:00:00.000", "Image": "C:\\a.exe", "Initiated": "true",
              "DestinationIp": "8.8.8.8", "DestinationPort": "443"}
    work = tmp_path / "hosts"
    work.mkdir()
    expected = []
    for k in range(4):
        records = [dict(sysmon, ProcessId=str(10 * k + 1)), dict(security, ProcessID=str(10 * k + 2))]
        (work / f"host{k}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        expected += [(str(work / f"host{k}.jsonl"), 1, 10 * k + 1), (str(work / f"host{k}.jsonl"), 2, 10 * k + 2)]
    diag = Diagnostics()
    with EventStore() as store:
        sources.load(store, list(sources.expand([str(work)], store.tmpdir)), "auto", diag)
        rows = store.con.execute("SELECT source_file, source_line, pid FROM events ORDER BY rowid").fetchall()
    assert diag.total == 0 and rows == expected


def test_an_azure_syslog_export_cut_short_or_pretty_printed_keeps_every_whole_row(tmp_path):
    """A JSON array of Azure Syslog rows that stops inside a row (the whole file used to be refused as not
    valid JSON), and the same rows pretty-printed one after another (`jq .`; refused before too)."""
    rows_in = [orjson.loads(raw) for raw in AZURE_SYSLOG.read_bytes().splitlines() if raw.strip()]
    whole = orjson.dumps(rows_in, option=orjson.OPT_INDENT_2)
    cut = tmp_path / "cut.json"
    cut.write_bytes(whole[:whole.rindex(b'"SyslogMessage"')])  # inside the last row
    first = tmp_path / "first.json"
    first.write_bytes(orjson.dumps(rows_in[:-1]))
    assert sources.sniff(first) == "azure-syslog"  # one line of JSON rows holding `<Event>`: not syslog text
    got, diag, files = load(cut)
    expected, expected_diag, _ = load(first)
    assert files[0].format == "azure-syslog" and got == [dict(r, source_file=cut.name) for r in expected]
    cut_at = [p.message for p in diag.problems if p.record == len(rows_in)]
    assert len(cut_at) == 1 and cut_at[0].startswith(f"not valid JSON from array element {len(rows_in)} on")
    assert sorted(p.message for p in diag.problems) == sorted([*(p.message for p in expected_diag.problems), *cut_at])
    pretty = tmp_path / "pretty.json"
    pretty.write_bytes(b"\n".join(orjson.dumps(r, option=orjson.OPT_INDENT_2) for r in rows_in) + b"\n")
    rows, _, files = load(pretty)
    assert files[0].format == "azure-syslog" and len(rows) == len(load(AZURE_SYSLOG)[0]) > 0
