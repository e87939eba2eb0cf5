"""The writers on their own: escaping checked with a standard XML parser, determinism, and the
shapes each format's real producer emits (Winlogbeat ECS, Sumo CSE records, Sysmon XML)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from xml.etree.ElementTree import fromstring

import orjson
import pytest

from stagehunt.simulate.events import SysmonEvent
from stagehunt.simulate.writers import WRITERS, write_file, xml_escape

NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
AWKWARD = 'a "q" \'s\' <b>&amp; ]]> C:\\x\\ 日本 😀 \u2028 tab\there\r\nnew'
T = datetime(2024, 5, 6, 7, 8, 9, 120000, tzinfo=UTC)


def _events() -> list[SysmonEvent]:
    return [
        SysmonEvent(1, T, "WS1", {"RuleName": "-", "ProcessGuid": "{1}", "ProcessId": "10", "Image": AWKWARD,
                                  "CommandLine": AWKWARD, "User": "CORP\\bob", "Hashes": "SHA1=AB12,IMPHASH=000",
                                  "ParentProcessGuid": "{0}", "ParentProcessId": "4", "ParentImage": "C:\\e.exe"}),
        SysmonEvent(3, T, "WS1", {"ProcessGuid": "{1}", "ProcessId": "10", "Image": "C:\\a.exe", "User": "A\\B\\C",
                                  "Protocol": "tcp", "Initiated": "false", "SourceIp": "203.0.113.9",
                                  "SourceHostname": "remote.example", "SourcePort": "443", "DestinationIp": "10.0.0.5",
                                  "DestinationHostname": "-", "DestinationPort": "notaport"}),
        SysmonEvent(22, T, "WS1", {"ProcessGuid": "{1}", "ProcessId": "10", "QueryName": "x.example",
                                   "QueryResults": "type:  5 y.example;::ffff:198.51.100.7;2001:db8::1;",
                                   "Image": "C:\\a.exe", "User": "CORP\\bob"}),
    ]


def _write(fmt: str, events: list[SysmonEvent]) -> bytes:
    out = io.BytesIO()
    WRITERS[fmt](events, out)
    return out.getvalue()


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_writers_are_deterministic_and_write_one_record_per_line(fmt: str) -> None:
    first = _write(fmt, _events())
    assert first == _write(fmt, _events())
    assert first.endswith(b"\n") and first.count(b"\n") == 3


def test_event_time_is_utc_at_millisecond_precision() -> None:
    ev = SysmonEvent(3, datetime(2024, 1, 1, 2, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))), "h")
    assert ev.utc == datetime(2024, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)
    assert ev.utc_text == "2024-01-01 00:00:00.999"
    assert SysmonEvent(3, datetime(2024, 1, 1), "h").utc.tzinfo is UTC  # naive means UTC
    with pytest.raises(ValueError):
        SysmonEvent(3, T, "h", {"UtcTime": "2024-01-01 00:00:00.000"})


def test_xml_lines_parse_back_to_exactly_the_event_data() -> None:
    for line, ev in zip(_write("xml", _events()).splitlines(), _events(), strict=True):
        root = fromstring(line)
        assert root.tag == NS + "Event"
        data = {d.get("Name"): d.text or "" for d in root.iter(NS + "Data")}
        assert data == {"UtcTime": "2024-05-06 07:08:09.120", **ev.data}
        assert list(data) == [k for k, _ in ev.event_data()]  # Sysmon's order: RuleName, UtcTime, ...
        assert root.find(f"{NS}System/{NS}Computer").text == "WS1"
        assert root.find(f"{NS}System/{NS}TimeCreated").get("SystemTime") == "2024-05-06T07:08:09.1200000Z"


def test_syslog_lines_carry_namespace_free_xml_after_an_rfc3164_header() -> None:
    ev = SysmonEvent(3, datetime(2022, 11, 4, 9, 59, 47), "ip-172-31-60-25", {"Image": AWKWARD}, linux=True)
    line = _write("syslog", [ev]).decode()
    header, _, xml = line.partition(" sysmon: ")
    assert header == "Nov  4 09:59:47 ip-172-31-60-25"
    root = fromstring(xml)
    assert root.tag == "Event"
    assert root.find("System/Channel").text == "Linux-Sysmon/Operational"
    assert root.find("System/Security").get("UserId") == "0"
    assert root.find("System/TimeCreated").get("SystemTime") == "2022-11-04T09:59:47.000000000Z"
    assert {d.get("Name"): d.text for d in root.iter("Data")}["Image"] == AWKWARD


def test_xml_escape_refuses_what_xml_cannot_carry() -> None:
    assert xml_escape('<&>"\'\n') == "&lt;&amp;&gt;&quot;&apos;&#10;"
    for bad in ("\x00", "\x01", "\x1b", "\ufffe"):
        with pytest.raises(ValueError):
            xml_escape(f"a{bad}b")


def test_ecs_follows_the_winlogbeat_sysmon_pipeline() -> None:
    start, conn, dns = (orjson.loads(x) for x in _write("ecs", _events()).splitlines())
    assert start["@timestamp"] == "2024-05-06T07:08:09.12Z"  # Go trims trailing zeros
    assert start["event"]["code"] == 1 and start["winlog"]["computer_name"] == "WS1"
    assert start["process"]["pid"] == 10 and start["process"]["parent"]["pid"] == 4
    assert start["user"] == {"domain": "CORP", "name": "bob"}
    assert start["process"]["hash"] == {"sha1": "ab12"}  # lower case; the all-zero IMPHASH is dropped
    assert "event_data" not in start["winlog"]  # everything was mapped
    # three-part user names are not split; an unparseable port stays in event_data, as Beats leaves it
    assert conn["winlog"]["event_data"] == {"User": "A\\B\\C", "DestinationPort": "notaport"}
    assert conn["network"] == {"transport": "tcp", "direction": "ingress"}
    assert conn["source"] == {"ip": "203.0.113.9", "domain": "remote.example", "port": 443}
    assert dns["dns"]["resolved_ip"] == ["198.51.100.7", "2001:db8::1"]
    assert dns["dns"]["answers"][0] == {"type": "CNAME", "data": "y.example"}
    assert dns["winlog"]["event_data"] == {"User": "CORP\\bob"}  # addUser does not run for DNS events


def test_sumo_records_use_schema_names_and_keep_the_raw_fields() -> None:
    start, conn, dns = (orjson.loads(x) for x in _write("sumo-cse", _events()).splitlines())
    assert start["metadata_deviceEventId"] == "Microsoft-Windows-Sysmon/Operational-1"
    assert start["timestamp"] == int(T.timestamp() * 1000)
    assert (start["device_hostname"], start["processUid"], start["pid"]) == ("WS1", "{1}", 10)
    # the CSE mapping of EID 3 sets no device_hostname and no processUid: the guid survives in fields
    assert "device_hostname" not in conn and "processUid" not in conn and "dstPort" not in conn
    assert conn["fields"]["EventData.ProcessGuid"] == "{1}" and conn["fields"]["Computer"] == "WS1"
    assert (conn["srcDevice_ip"], conn["srcPort"], conn["dstDevice_ip"]) == ("203.0.113.9", 443, "10.0.0.5")
    assert dns["dns_query"] == "x.example" and dns["dns_replyIp"] == "198.51.100.7"
    linux = orjson.loads(_write("sumo-cse", [SysmonEvent(3, T, "h", linux=True)]))
    assert linux["metadata_deviceEventId"] == "Linux-Sysmon/Operational-3"


def test_write_file_names_the_formats_when_one_is_unknown(tmp_path) -> None:
    write_file("flat", _events(), tmp_path / "a.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == _write("flat", _events())
    with pytest.raises(ValueError, match="flat, ecs, sumo-cse, xml, syslog"):
        write_file("cef", _events(), tmp_path / "b")
