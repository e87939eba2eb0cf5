"""Writers: a list of SysmonEvents rendered in each log format stagehunt reads.

One function per format, `(events, binary file) -> None`, chosen by name from `WRITERS`. Every
writer is deterministic (same events, same bytes) and escapes properly: JSON through orjson, XML
with entity and character references, one record per line in every format. Text XML 1.0 cannot
carry (most C0 control characters, unpaired surrogates) is refused with ValueError, not altered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from stagehunt.simulate.ecs import PROVIDER_GUID, SYSMON_PID, ecs_record
from stagehunt.simulate.events import SysmonEvent

Writer = Callable[[Iterable[SysmonEvent], BinaryIO], None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _iso(ev: SysmonEvent, digits: int = 3) -> str:
    frac = f"{ev.utc.microsecond:06d}".ljust(digits, "0")[:digits]
    return ev.utc.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"


def _int_or_none(v: str | None) -> int | None:
    return int(v) if v is not None and re.fullmatch(r"-?[0-9]{1,18}", v) else None


def _json_lines(records: Iterable[dict[str, Any]], out: BinaryIO) -> None:
    for rec in records:
        out.write(orjson.dumps(rec) + b"\n")


# -- flat JSON (NXLog im_msvistalog style) --------------------------------------------------------

def flat_record(ev: SysmonEvent, record_id: int) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "EventTime": ev.utc.strftime("%Y-%m-%d %H:%M:%S"),
        "Hostname": ev.host,
        "EventID": ev.eid,
        "SourceName": ev.provider_name,
        "Channel": ev.channel,
        "RecordNumber": record_id,
        "TimeCreated": _iso(ev),
    }
    # EventData at top level, as NXLog flattens it. NXLog's own `ProcessID` is left out on purpose:
    # DuckDB folds it onto Sysmon's `ProcessId` (the OTRF 2019 quirk), which is not what we simulate.
    rec.update(ev.event_data())
    return rec


def write_flat(events: Iterable[SysmonEvent], out: BinaryIO) -> None:
    _json_lines((flat_record(ev, i) for i, ev in enumerate(events, 1)), out)


# -- ECS (Winlogbeat) -----------------------------------------------------------------------------

def write_ecs(events: Iterable[SysmonEvent], out: BinaryIO) -> None:
    _json_lines((ecs_record(ev, i) for i, ev in enumerate(events, 1)), out)


# -- Sumo Logic Cloud SIEM records ----------------------------------------------------------------

# event id -> (schema field, EventData name, is integer). Names follow the CSE schema; the Sysmon
# EID 3 mapping sets no device_hostname, processUid or commandLine (see reference/FORMATS.md).
_SUMO_FIELDS: dict[int, list[tuple[str, str, bool]]] = {
    1: [("processUid", "ProcessGuid", False), ("pid", "ProcessId", True), ("baseImage", "Image", False),
        ("commandLine", "CommandLine", False), ("user_username", "User", False),
        ("parentBaseImage", "ParentImage", False), ("parentCommandLine", "ParentCommandLine", False),
        ("parentPid", "ParentProcessId", True)],
    3: [("pid", "ProcessId", True), ("baseImage", "Image", False), ("user_username", "User", False),
        ("ipProtocol", "Protocol", False), ("srcDevice_ip", "SourceIp", False), ("srcPort", "SourcePort", True),
        ("srcDevice_hostname", "SourceHostname", False), ("dstDevice_ip", "DestinationIp", False),
        ("dstPort", "DestinationPort", True), ("dstDevice_hostname", "DestinationHostname", False)],
    10: [("processUid", "SourceProcessGUID", False), ("pid", "SourceProcessId", True),
         ("baseImage", "SourceImage", False), ("user_username", "SourceUser", False)],
    11: [("processUid", "ProcessGuid", False), ("pid", "ProcessId", True), ("baseImage", "Image", False),
         ("user_username", "User", False), ("file_path", "TargetFilename", False)],
    22: [("processUid", "ProcessGuid", False), ("pid", "ProcessId", True), ("baseImage", "Image", False),
         ("user_username", "User", False), ("dns_query", "QueryName", False)],
}


def sumo_record(ev: SysmonEvent) -> dict[str, Any]:
    network = ev.eid in (3, 22)
    rec: dict[str, Any] = {
        "metadata_vendor": "Microsoft",
        "metadata_product": "Sysmon for Linux" if ev.linux else "Sysmon",
        "metadata_deviceEventId": f"{ev.channel}-{ev.eid}",
        "objectType": "Network" if network else "Endpoint",
        "timestamp": (ev.utc - _EPOCH) // timedelta(milliseconds=1),
    }
    if ev.eid != 3:
        rec["device_hostname"] = ev.host
    for name, key, integer in _SUMO_FIELDS.get(ev.eid, []):
        raw = ev.data.get(key)
        value = _int_or_none(raw) if integer else raw
        if value is not None:
            rec[name] = value
    if ev.eid == 3:
        rec["action"] = "NetworkConnect"
    if ev.eid == 22:
        ips = [a.removeprefix("::ffff:") for a in ev.data.get("QueryResults", "").split(";")
               if a and not a.startswith("type:")]
        if ips:
            rec["dns_replyIp"] = ips[0]
    # the raw record, as CSE keeps it: every EventData field plus the System ones
    fields = {"Computer": ev.host, "Channel": ev.channel, "EventID": str(ev.eid)}
    fields.update({f"EventData.{k}": v for k, v in ev.event_data()})
    rec["fields"] = fields
    return rec


def write_sumo(events: Iterable[SysmonEvent], out: BinaryIO) -> None:
    _json_lines((sumo_record(ev) for ev in events), out)


# -- Windows Event XML and Sysmon-for-Linux syslog ------------------------------------------------

# C0 controls other than tab, LF and CR, unpaired surrogates and U+FFFE/U+FFFF are not XML 1.0 text
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_REFS = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;",
             # as references so a record stays on one line and a parser does not normalise them away
             "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_XML_SPECIAL = re.compile("[&<>\"'\t\n\r]")


def xml_escape(text: str) -> str:
    """Text safe in XML content and in double-quoted attributes, on one line."""
    if m := _NOT_XML.search(text):
        raise ValueError(f"XML 1.0 cannot carry U+{ord(m.group()):04X} in {text!r}")
    return _XML_SPECIAL.sub(lambda m: _XML_REFS[m.group()], text)


_VERSIONS = {1: 5, 3: 5, 10: 3, 11: 2, 22: 5}


def event_xml(ev: SysmonEvent, record_id: int, namespace: bool = True) -> str:
    """One <Event> element on one line; Windows exports carry the namespace, Sysmon for Linux does not."""
    x = xml_escape
    linux = ev.linux
    # Windows exports print 7 fraction digits, Sysmon for Linux 9
    created = _iso(ev, 9 if linux else 7)
    security = '<Security UserId="0"/>' if linux else '<Security UserID="S-1-5-18"/>'
    pid = SYSMON_PID[linux]
    guid = PROVIDER_GUID[linux] if linux else PROVIDER_GUID[linux].upper()  # as each platform prints it
    system = (
        f'<System><Provider Name="{ev.provider_name}" Guid="{guid}"/>'
        f"<EventID>{ev.eid}</EventID><Version>{_VERSIONS.get(ev.eid, 1)}</Version><Level>4</Level>"
        f"<Task>{ev.eid}</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>"
        f'<TimeCreated SystemTime="{created}"/><EventRecordID>{record_id}</EventRecordID><Correlation/>'
        f'<Execution ProcessID="{pid}" ThreadID="{pid + 4}"/><Channel>{ev.channel}</Channel>'
        f"<Computer>{x(ev.host)}</Computer>{security}</System>"
    )
    data = "".join(f'<Data Name="{x(k)}">{x(v)}</Data>' for k, v in ev.event_data())
    xmlns = ' xmlns="http://schemas.microsoft.com/win/2004/08/events/event"' if namespace else ""
    return f"<Event{xmlns}>{system}<EventData>{data}</EventData></Event>"


def write_xml(events: Iterable[SysmonEvent], out: BinaryIO) -> None:
    for i, ev in enumerate(events, 1):
        out.write(event_xml(ev, i).encode() + b"\n")


def syslog_line(ev: SysmonEvent, record_id: int) -> str:
    """`Nov 24 09:59:47 host sysmon: <Event>...</Event>` (RFC 3164 header, time in UTC)."""
    t = ev.utc
    header_host = re.sub(r"\s+", "-", ev.host) or "-"  # the header is space-separated
    return (f"{_MONTHS[t.month - 1]} {t.day:>2} {t:%H:%M:%S} {header_host} sysmon: "
            f"{event_xml(ev, record_id, namespace=False)}")


def write_syslog(events: Iterable[SysmonEvent], out: BinaryIO) -> None:
    for i, ev in enumerate(events, 1):
        out.write(syslog_line(ev, i).encode() + b"\n")


WRITERS: dict[str, Writer] = {
    "flat": write_flat,
    "ecs": write_ecs,
    "sumo-cse": write_sumo,
    "xml": write_xml,
    "syslog": write_syslog,
}


def write_file(fmt: str, events: Iterable[SysmonEvent], path: Path) -> None:
    """Write `events` to `path` in format `fmt` (a WRITERS name)."""
    try:
        writer = WRITERS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(WRITERS)}") from None
    with open(path, "wb") as out:
        writer(events, out)
