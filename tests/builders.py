"""Small builders of flat Sysmon JSON events (the NXLog/OTRF shape) for detection tests."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import orjson

_guids = itertools.count(1)
T0 = datetime(2026, 11, 2, 12, 0, 0)


def guid() -> str:
    return f"{{{next(_guids):08x}-0000-0000-0000-000000000001}}"


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def start(t: datetime, image: str, pid: int, *, pguid: str | None = None, ppid: int = 4, parent_image: str =
          r"C:\Windows\explorer.exe", pg: str | None = None, host: str = "WS1", user: str = r"CORP\alice",
          cmd: str | None = None, hashes: str | None = None) -> dict:
    ev = {"EventID": 1, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": host, "UtcTime": ts(t),
          "ProcessId": str(pid), "Image": image, "CommandLine": cmd or f'"{image}"', "User": user,
          "ParentProcessId": str(ppid), "ParentImage": parent_image, "ParentCommandLine": parent_image}
    if pg is not None:
        ev["ProcessGuid"] = pg
    if pguid is not None:
        ev["ParentProcessGuid"] = pguid
    if hashes:
        ev["Hashes"] = hashes
    return ev


def conn(t: datetime, image: str, pid: int, dst: str, port: int = 443, *, pg: str | None = None, host: str = "WS1",
         src: str = "10.1.2.3", initiated: str | bool = "true", user: str = r"CORP\alice") -> dict:
    inbound = initiated in ("false", False)
    ev = {"EventID": 3, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": host, "UtcTime": ts(t),
          "ProcessId": str(pid), "Image": image, "User": user, "Protocol": "tcp", "Initiated": initiated,
          # inbound: the remote end is the source
          "SourceIp": dst if inbound else src, "SourcePort": str(port if inbound else 50000),
          "DestinationIp": src if inbound else dst, "DestinationPort": str(50000 if inbound else port)}
    if pg is not None:
        ev["ProcessGuid"] = pg
    return ev


def write(path: Path, events: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def file_create(t: datetime, image: str, pid: int, target: str, *, pg: str | None = None, host: str = "WS1") -> dict:
    ev = {"EventID": 11, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": host, "UtcTime": ts(t),
          "ProcessId": str(pid), "Image": image, "TargetFilename": target, "CreationUtcTime": ts(t)}
    if pg is not None:
        ev["ProcessGuid"] = pg
    return ev


def access(t: datetime, src_image: str, src_pid: int, target_image: str, target_pid: int, rights: str, *,
           src_pg: str | None = None, target_pg: str | None = None, host: str = "WS1") -> dict:
    ev = {"EventID": 10, "Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": host, "UtcTime": ts(t),
          "SourceProcessId": str(src_pid), "SourceImage": src_image, "TargetProcessId": str(target_pid),
          "TargetImage": target_image, "GrantedAccess": rights, "CallTrace": "C:\\Windows\\SYSTEM32\\ntdll.dll+9c584"}
    if src_pg is not None:
        ev["SourceProcessGUID"] = src_pg
    if target_pg is not None:
        ev["TargetProcessGUID"] = target_pg
    return ev
