"""Sysmon events as Winlogbeat's Sysmon module renders them in ECS.

Follows `x-pack/winlogbeat/module/sysmon/config/winlogbeat-sysmon.js` (Elastic, beats): per event id,
some EventData fields are *renamed* to ECS fields (so they leave `winlog.event_data`), a few are
copied, and the rest stay in `winlog.event_data`. What the pipeline drops stays dropped here too:
QueryResults becomes `dns.answers` / `dns.resolved_ip` (CNAMEs and the `::ffff:` prefix are lost),
Hashes becomes `process.hash.*` / `process.pe.imphash` (lower case, all-zero hashes dropped).
Conversions that would fail in Beats (a non-numeric pid, an invalid IP) leave the field in
`winlog.event_data`, as Beats does with `fail_on_error: false`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from stagehunt.simulate.events import SysmonEvent

PROVIDER_GUID = {False: "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}", True: "{ff032593-a8d3-4f13-b0d6-01fc615a0f97}"}
SYSMON_PID = {False: 2828, True: 1109}  # Sysmon's own process (winlog.process.pid)


def _long(v: str) -> int | None:
    return int(v) if re.fullmatch(r"-?[0-9]{1,19}", v) and -(2**63) <= int(v) < 2**63 else None


def _ip(v: str) -> str | None:
    if "%" in v:  # Go's net.ParseIP takes no zone
        return None
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return None
    return v  # Beats keeps the text as logged (e.g. `a00:20f:0:0:18a2:6e00:e0:ffff`)


def _keep(v: str) -> str:
    return v


Conv = Callable[[str], Any]
_PROCESS: list[tuple[str, str, Conv]] = [
    ("ProcessGuid", "process.entity_id", _keep),
    ("ProcessId", "process.pid", _long),
    ("Image", "process.executable", _keep),
]
# event id -> (EventData name, ECS field, conversion) renamed by the pipeline
RENAMES: dict[int, list[tuple[str, str, Conv]]] = {
    1: [*_PROCESS,
        ("CommandLine", "process.command_line", _keep),
        ("CurrentDirectory", "process.working_directory", _keep),
        ("ParentProcessGuid", "process.parent.entity_id", _keep),
        ("ParentProcessId", "process.parent.pid", _long),
        ("ParentImage", "process.parent.executable", _keep),
        ("ParentCommandLine", "process.parent.command_line", _keep),
        ("OriginalFileName", "process.pe.original_file_name", _keep)],
    3: [*_PROCESS,
        ("Protocol", "network.transport", _keep),
        ("SourceIp", "source.ip", _ip),
        ("SourceHostname", "source.domain", _keep),
        ("SourcePort", "source.port", _long),
        ("DestinationIp", "destination.ip", _ip),
        ("DestinationHostname", "destination.domain", _keep),
        ("DestinationPort", "destination.port", _long),
        ("DestinationPortName", "network.protocol", _keep)],
    10: [("SourceProcessGUID", "process.entity_id", _keep),
         ("SourceProcessId", "process.pid", _long),
         ("SourceThreadId", "process.thread.id", _long),
         ("SourceImage", "process.executable", _keep)],
    11: [*_PROCESS, ("TargetFilename", "file.path", _keep)],
    22: [*_PROCESS,
         ("QueryName", "dns.question.name", _keep),
         ("QueryStatus", "sysmon.dns.status", _keep)],
}
# copied, not renamed: they stay in winlog.event_data as well
COPIES: dict[int, list[tuple[str, str]]] = {
    1: [("Company", "process.pe.company"), ("Description", "process.pe.description"),
        ("FileVersion", "process.pe.file_version"), ("Product", "process.pe.product")],
}
SPLIT_USER = {1, 3}  # the pipeline's addUser runs for these (and WMI/file-delete ids we do not write)


def _put(doc: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        doc = doc.setdefault(p, {})
    doc[leaf] = value


def go_time(ev: SysmonEvent) -> str:
    """@timestamp as Beats prints it: RFC 3339, trailing zeros of the fraction trimmed."""
    frac = f"{ev.utc.microsecond // 1000:03d}".rstrip("0")
    return ev.utc.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def resolved_ips(query_results: str) -> list[str]:
    """The addresses the pipeline keeps from a Sysmon QueryResults string (`dns.resolved_ip`)."""
    ips = []
    for answer in query_results.split(";"):
        if not answer or answer.startswith("type:"):
            continue
        answer = answer.replace("::ffff:", "", 1)  # JS String.replace: first occurrence only
        if _ip(answer) is not None:
            ips.append(answer)
    return ips


_DNS_TYPES = {"1": "A", "2": "NS", "5": "CNAME", "6": "SOA", "12": "PTR", "15": "MX", "16": "TXT", "28": "AAAA",
              "33": "SRV"}


def _answers(query_results: str) -> list[dict[str, str]]:
    out = []
    for answer in query_results.split(";"):
        if answer.startswith("type:"):
            parts = answer.split()
            if len(parts) == 3:  # the pipeline rejects any other shape; we skip it
                out.append({"type": _DNS_TYPES.get(parts[1], parts[1]), "data": parts[2]})
        elif ip := resolved_ips(answer):
            out.append({"type": "AAAA" if ":" in ip[0] else "A", "data": ip[0]})
    return out


def _hashes(doc: dict, hashes: str) -> None:
    for part in hashes.split(","):
        kv = part.split("=")
        if len(kv) != 2:
            continue
        key, value = kv[0].lower(), kv[1].lower()
        if re.fullmatch("0*", value):
            continue  # the pipeline drops empty (all-zero) hashes, e.g. IMPHASH of a non-PE file
        _put(doc, "process.pe.imphash" if key == "imphash" else f"process.hash.{key}", value)
        doc.setdefault("related", {}).setdefault("hash", []).append(value)


def ecs_record(ev: SysmonEvent, record_id: int) -> dict[str, Any]:
    """The ECS document Winlogbeat would ship for `ev`."""
    rest = dict(ev.data)
    doc: dict[str, Any] = {
        "@timestamp": go_time(ev),
        "event": {"code": ev.eid, "kind": "event", "module": "sysmon", "provider": ev.provider_name},
        "host": {"name": ev.host},
        "log": {"level": "information"},
    }
    for name, target, conv in RENAMES.get(ev.eid, []):
        if name in rest and (value := conv(rest[name])) is not None:
            _put(doc, target, value)
            del rest[name]
    for name, target in COPIES.get(ev.eid, []):
        if name in rest:
            _put(doc, target, rest[name])
    rule = rest.pop("RuleName", None)
    if rule and rule != "-":
        _put(doc, "rule.name", rule)
    if ev.eid in SPLIT_USER and len(parts := rest.get("User", "").split("\\")) == 2:
        doc["user"] = {"domain": parts[0], "name": parts[1]}
        _put(doc, "related.user", parts[1])
        del rest["User"]
    if ev.eid == 1 and rest.get("Hashes"):
        _hashes(doc, rest.pop("Hashes"))
    if ev.eid == 3:
        direction = {"true": "egress", "false": "ingress"}.get(rest.pop("Initiated", ""))
        if direction:
            _put(doc, "network.direction", direction)
        ipv6 = rest.pop("SourceIsIpv6", None)
        rest.pop("DestinationIsIpv6", None)
        if ipv6 in ("true", "false"):
            _put(doc, "network.type", "ipv6" if ipv6 == "true" else "ipv4")
    if ev.eid == 22 and rest.get("QueryResults"):
        qr = rest.pop("QueryResults")
        if answers := _answers(qr):
            _put(doc, "dns.answers", answers)
        if ips := resolved_ips(qr):
            _put(doc, "dns.resolved_ip", ips)
    linux = ev.linux
    winlog: dict[str, Any] = {
        "api": "wineventlog", "channel": ev.channel, "computer_name": ev.host, "event_id": ev.eid,
        "process": {"pid": SYSMON_PID[linux], "thread": {"id": SYSMON_PID[linux] + 4}},
        "provider_guid": PROVIDER_GUID[linux], "provider_name": ev.provider_name, "record_id": record_id,
        "user": {"identifier": "S-1-5-18"}, "version": 5,
    }
    if rest:
        winlog["event_data"] = rest
    doc["winlog"] = winlog
    doc["ecs"] = {"version": "1.12.0"}
    return doc
