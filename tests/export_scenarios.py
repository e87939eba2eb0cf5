"""Scenario telemetry for the export tests: flat Sysmon JSON (events 1 and 3) with the real field names.

Each scenario is a few processes on a timeline; the differential test feeds the same records to
`stagehunt hunt` (as JSON lines) and to the pySigma SQLite conversion of the exported rule (as a table
whose columns are the Sysmon field names).
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import orjson

T0 = datetime(2026, 11, 2, 12, 0, 0)
CHANNEL = "Microsoft-Windows-Sysmon/Operational"
_guid = itertools.count(0x100)
_pid = itertools.count(4000)


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


@dataclass
class Proc:
    """One process: its start (optional) and its connections."""

    image: str
    host: str = "WS1"
    user: str = "CORP\\alice"
    cmd: str | None = None
    logged_start: bool = True
    guid: str = field(default_factory=lambda: f"{{5f0c1a52-0000-0000-{next(_guid):04x}-000000000001}}")
    pid: int = field(default_factory=lambda: next(_pid))
    events: list[dict] = field(default_factory=list)

    def start(self, t: datetime) -> Proc:
        if self.logged_start:
            self.events.append({
                "EventID": 1, "Channel": CHANNEL, "Computer": self.host, "UtcTime": ts(t),
                "ProcessGuid": self.guid, "ProcessId": str(self.pid), "Image": self.image,
                "CommandLine": self.cmd or f'"{self.image}"', "User": self.user,
                "ParentProcessGuid": "{5f0c1a52-0000-0000-0000-000000000000}", "ParentProcessId": "4",
                "ParentImage": "C:\\Windows\\explorer.exe", "ParentCommandLine": "C:\\Windows\\explorer.exe"})
        return self

    def connect(self, t: datetime, dst: str, port: int = 443, *, inbound: bool = False) -> Proc:
        local = "fe80::1" if ":" in dst else "10.1.2.3"
        self.events.append({
            "EventID": 3, "Channel": CHANNEL, "Computer": self.host, "UtcTime": ts(t),
            "ProcessGuid": self.guid, "ProcessId": str(self.pid), "Image": self.image, "User": self.user,
            "Protocol": "tcp", "Initiated": "false" if inbound else "true",
            "SourceIsIpv6": str(":" in dst).lower(), "DestinationIsIpv6": str(":" in dst).lower(),
            "SourceIp": dst if inbound else local, "SourcePort": str(port if inbound else 50000),
            "DestinationIp": local if inbound else dst, "DestinationPort": str(50000 if inbound else port)})
        return self


def m(n: float) -> timedelta:
    return timedelta(minutes=n)


def scenario_set() -> dict[str, list[Proc]]:
    """Named scenarios; each value is the processes it consists of."""
    pf = "C:\\Program Files"
    s: dict[str, list[Proc]] = {}
    s["two_stage_powershell"] = [Proc("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe")
                                 .start(T0).connect(T0 + m(1), "45.33.32.156", 8080)
                                 .connect(T0 + m(41), "185.199.108.153", 8081)]
    s["browser"] = [Proc(f"{pf}\\Google\\Chrome\\Application\\chrome.exe").start(T0)
                    .connect(T0 + m(1), "142.250.74.78").connect(T0 + m(2), "151.101.1.69")
                    .connect(T0 + m(3), "140.82.112.3")]
    s["browser_upper_case_path"] = [Proc(f"{pf.upper()}\\GOOGLE\\CHROME\\APPLICATION\\CHROME.EXE").start(T0)
                                    .connect(T0 + m(1), "142.250.74.78").connect(T0 + m(2), "151.101.1.69")]
    s["fake_chrome_name"] = [Proc("C:\\Users\\Public\\chrome_update.exe").start(T0)
                             .connect(T0 + m(5), "104.16.132.229").connect(T0 + m(9), "93.184.216.34")]
    midnight = datetime(2026, 11, 2, 23, 45)
    s["midnight_pair"] = [Proc("C:\\Windows\\System32\\rundll32.exe", cmd="rundll32.exe stage.dll,Run")
                          .start(midnight - m(5)).connect(midnight, "45.79.19.196")
                          .connect(midnight + m(30), "198.58.118.167")]
    s["private_destinations"] = [Proc("C:\\ProgramData\\svcupdate.exe").start(T0)
                                 .connect(T0 + m(1), "10.0.0.5").connect(T0 + m(2), "192.168.1.10")
                                 .connect(T0 + m(3), "172.17.0.3")]
    s["public_172_2"] = [Proc("C:\\Users\\bob\\AppData\\Local\\Temp\\a.exe", user="CORP\\bob").start(T0)
                         .connect(T0 + m(1), "172.2.3.4").connect(T0 + m(2), "172.200.1.1")]
    s["too_far_apart"] = [Proc("C:\\Tools\\b.exe").start(T0).connect(T0 + m(1), "45.33.32.156")
                          .connect(T0 + m(30 * 60), "185.199.108.153")]
    s["inbound_only"] = [Proc("C:\\Tools\\listener.exe").start(T0)
                         .connect(T0 + m(1), "45.33.32.156", 4444, inbound=True)
                         .connect(T0 + m(2), "185.199.108.153", 4444, inbound=True)]
    s["cgnat_and_one_global"] = [Proc("C:\\Tools\\c.exe").start(T0).connect(T0 + m(1), "100.64.1.1")
                                 .connect(T0 + m(2), "93.184.216.34")]
    # Two instances of one image with one command line: one address each.
    s["two_instances"] = [Proc("C:\\Tools\\d.exe", cmd="d.exe --sync").start(T0).connect(T0 + m(1), "45.33.32.156"),
                          Proc("C:\\Tools\\d.exe", cmd="d.exe --sync").start(T0 + m(5))
                          .connect(T0 + m(6), "185.199.108.153")]
    s["documentation_and_multicast"] = [Proc("C:\\Tools\\e.exe").start(T0).connect(T0 + m(1), "203.0.113.5")
                                        .connect(T0 + m(2), "198.51.100.7").connect(T0 + m(3), "224.0.0.251")
                                        .connect(T0 + m(4), "45.33.32.156")]
    s["updater"] = [Proc("C:\\Program Files\\Vendor\\updater.exe").start(T0).connect(T0 + m(1), "45.33.32.156")
                    .connect(T0 + m(2), "185.199.108.153")]
    s["service_account"] = [Proc("C:\\Tools\\f.exe", user="CORP\\svc_backup").start(T0)
                            .connect(T0 + m(1), "45.33.32.156").connect(T0 + m(2), "185.199.108.153")]
    s["build_host"] = [Proc("C:\\Tools\\g.exe", host="BUILD-01").start(T0).connect(T0 + m(1), "45.33.32.156")
                       .connect(T0 + m(2), "185.199.108.153")]
    s["ntp_port"] = [Proc("C:\\Tools\\h.exe").start(T0).connect(T0 + m(1), "45.33.32.156", 123)
                     .connect(T0 + m(2), "185.199.108.153", 123)]
    s["cdn_destinations"] = [Proc("C:\\Tools\\i.exe").start(T0).connect(T0 + m(1), "52.85.1.1")
                             .connect(T0 + m(2), "52.84.2.2")]
    s["home_network"] = [Proc("C:\\Tools\\j.exe").start(T0).connect(T0 + m(1), "81.2.69.142")
                         .connect(T0 + m(2), "81.2.69.160")]
    s["glob_excluded_tool"] = [Proc("C:\\Tools\\x\\sync1.exe").start(T0).connect(T0 + m(1), "45.33.32.156")
                               .connect(T0 + m(2), "185.199.108.153")]
    s["linux_curl"] = [Proc("/usr/bin/curl", host="lnx1", user="root", logged_start=False)
                       .connect(T0 + m(1), "45.33.32.156", 80).connect(T0 + m(3), "185.199.108.153", 80)]
    s["three_addresses"] = [Proc("C:\\Users\\carol\\AppData\\Roaming\\k.exe", user="CORP\\carol").start(T0)
                            .connect(T0 + m(1), "45.33.32.156").connect(T0 + m(20), "185.199.108.153")
                            .connect(T0 + m(50), "104.16.132.229")]
    s["start_not_logged"] = [Proc("C:\\Tools\\l.exe", logged_start=False).connect(T0 + m(1), "45.33.32.156")
                             .connect(T0 + m(2), "151.101.1.69")]
    return s


# The known divergence: same image, different command lines, one address each. hunt's group_by = "seed"
# keeps them apart (command line from the process start); a Sigma rule cannot (EID 3 has no CommandLine).
def command_line_split() -> list[Proc]:
    return [Proc("C:\\Tools\\n.exe", cmd="n.exe --first").start(T0).connect(T0 + m(1), "45.33.32.156"),
            Proc("C:\\Tools\\n.exe", cmd="n.exe --second").start(T0 + m(2)).connect(T0 + m(3), "185.199.108.153")]


def events(procs: list[Proc]) -> list[dict]:
    return sorted((e for p in procs for e in p.events), key=lambda e: e["UtcTime"])


def write_jsonl(path: Path, procs: list[Proc]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events(procs)))
    return path


def sqlite_table(procs: list[Proc], table: str = "logs") -> sqlite3.Connection:
    """The events in an in-memory SQLite table whose columns are the Sysmon field names."""
    rows = events(procs)
    columns = sorted({k for r in rows for k in r})
    con = sqlite3.connect(":memory:")
    con.execute(f"CREATE TABLE {table} (" + ", ".join(
        f"{c} INTEGER" if c == "EventID" else f"{c} TEXT" for c in columns) + ")")
    con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [[r.get(c) for c in columns] for r in rows])
    return con
