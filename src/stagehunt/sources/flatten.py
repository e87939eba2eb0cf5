"""Windows events (EVTX JSON or Event XML) flattened to the `flat` dialect's keys.

The EVTX and XML readers both end here, so one event reads the same whatever container it came in:
every EventData `Data Name` becomes a top-level key with a string value, and the System part becomes
`EventID`, `Channel`, `Hostname`, `TimeCreated` and `EventRecordID`. The `flat` dialect's SQL then
maps the keys onto canonical columns, exactly as for NXLog-style JSON.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

import orjson

Flat = tuple[bytes, int | None]  # (record as flat JSON, EventRecordID)


def _text(v: Any) -> str | None:
    """A JSON value from the evtx package as the string the event log holds."""
    if v is True:
        return "true"  # evtx renders Initiated / *IsIpv6 as JSON booleans; Sysmon writes "true"
    if v is False:
        return "false"
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return str(v)
    return orjson.dumps(v).decode()  # unnamed Data lists, nested #attributes: keep them readable


def _int(v: Any) -> int | None:
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if 0 <= n < 1 << 63 else None  # source_record is BIGINT


def _finish(data: dict[str, Any], eid: Any, channel: Any, host: Any, time: Any, record_id: int | None) -> Flat:
    # Security 5156 names its pid `ProcessID`; the flat dialect (and DuckDB's case-sensitive reader)
    # only knows `ProcessId`.
    if "ProcessID" in data and "ProcessId" not in data:
        data["ProcessId"] = data.pop("ProcessID")
    data["EventID"] = None if eid is None else str(eid)
    data["Channel"] = channel
    data["Hostname"] = host
    data["TimeCreated"] = time
    data["EventRecordID"] = record_id
    return orjson.dumps(data), record_id


def from_evtx_json(raw: str | bytes) -> Flat:
    """One record of `PyEvtxParser.records_json()` (its `data` text). Raises ValueError if it is no Event."""
    ev = orjson.loads(raw)
    ev = ev.get("Event") if isinstance(ev, dict) else None
    system = ev.get("System") if isinstance(ev, dict) else None
    if not isinstance(system, dict):
        raise ValueError("record has no Event/System element")
    ed = ev.get("EventData")
    data = {k: v if type(v) is str else _text(v) for k, v in ed.items()} if isinstance(ed, dict) else {}
    eid = system.get("EventID")
    if isinstance(eid, dict):  # <EventID Qualifiers="16384">7036</EventID>
        eid = eid.get("#text")
    tc = system.get("TimeCreated")
    attributes = tc.get("#attributes") if isinstance(tc, dict) else None
    time = attributes.get("SystemTime") if isinstance(attributes, dict) else None  # damaged: no time, no crash
    return _finish(data, eid, system.get("Channel"), system.get("Computer"), time, _int(system.get("EventRecordID")))


def local(tag: str) -> str:
    return tag.rpartition("}")[2]  # "{http://schemas.microsoft.com/...}System" -> "System"


def _xml_text(t: str | None) -> str:
    if t is None:
        return ""
    # pretty-printers (evtx_dump, some exporters) render an empty <Data/> as a newline plus indentation
    return "" if "\n" in t and t.isspace() else t


def from_xml(event: Element) -> Flat:
    """One <Event> element, with or without the Windows event namespace. Raises ValueError if it has no System."""
    system = data_el = None
    for child in event:
        tag = local(child.tag)
        if tag == "System":
            system = child
        elif tag == "EventData":
            data_el = child
    if system is None:
        raise ValueError("<Event> has no <System> element")
    data: dict[str, Any] = {}
    if data_el is not None:
        for d in data_el:
            name = d.get("Name")
            if name:
                data[name] = _xml_text(d.text)
    eid = channel = host = time = record_id = None
    for c in system:
        tag = local(c.tag)
        if tag == "EventID":
            eid = (c.text or "").strip() or None
        elif tag == "Channel":
            channel = c.text
        elif tag == "Computer":
            host = c.text
        elif tag == "TimeCreated":
            time = c.get("SystemTime")
        elif tag == "EventRecordID":
            record_id = _int(c.text)
    return _finish(data, eid, channel, host, time, record_id)
