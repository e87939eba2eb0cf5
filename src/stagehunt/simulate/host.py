"""A simulated machine that records the Sysmon events of what its processes do, with realistic fields.

Scenarios say what happens (`start`, `connect`, `write`, `open_process`, `resolve`); `Machine` fills in
what Sysmon would log around it: process guids in Sysmon's layout (machine id, start time, sequence),
hashes, PE metadata, logon ids, source ports, integrity levels. Everything is derived from the
arguments, never from a clock or a random source, so the same scenario gives the same events.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from stagehunt.simulate.events import SysmonEvent

# Version resources Sysmon copies from the image (FileVersion, Description, Product, Company,
# OriginalFileName); an image without any (a freshly built implant, Linux) logs "-".
_MS = "Microsoft® Windows® Operating System"
PE_INFO: dict[str, tuple[str, str, str, str, str]] = {
    "powershell.exe": ("10.0.19041.3996 (WinBuild.160101.0800)", "Windows PowerShell", _MS,
                       "Microsoft Corporation", "PowerShell.EXE"),
    "notepad.exe": ("10.0.19041.3996 (WinBuild.160101.0800)", "Notepad", _MS, "Microsoft Corporation",
                    "NOTEPAD.EXE"),
    "cmd.exe": ("10.0.19041.3636 (WinBuild.160101.0800)", "Windows Command Processor", _MS,
                "Microsoft Corporation", "Cmd.Exe"),
    "chrome.exe": ("122.0.6261.129", "Google Chrome", "Google Chrome", "Google LLC", "chrome.exe"),
    "msedge.exe": ("122.0.2365.92", "Microsoft Edge", "Microsoft Edge", "Microsoft Corporation", "msedge.exe"),
    "firefox.exe": ("123.0.1", "Firefox", "Firefox", "Mozilla Corporation", "firefox.exe"),
    "idman.exe": ("6.42.7.2", "Internet Download Manager", "Internet Download Manager", "Tonec Inc.",
                  "IDMan.exe"),
    "pangps.exe": ("6.2.1-76", "PanGPS", "GlobalProtect", "Palo Alto Networks", "PanGPS.exe"),
    "runner.listener.exe": ("2.314.1.0", "Runner.Listener", "Runner.Listener", "GitHub", "Runner.Listener.dll"),
    "runner.worker.exe": ("2.314.1.0", "Runner.Worker", "Runner.Worker", "GitHub", "Runner.Worker.dll"),
    # the ranking scenarios' software (ranking.py): vendors no profile names, with their own version resources
    "slack.exe": ("4.36.140", "Slack", "Slack", "Slack Technologies Inc.", "slack.exe"),
    "amagent.exe": ("1.42.22", "Automox Agent", "Automox Agent", "Automox, Inc.", "amagent.exe"),
    "warp-svc.exe": ("2024.3.409.0", "Cloudflare WARP service", "Cloudflare WARP", "Cloudflare, Inc.",
                     "warp-svc.exe"),
    "appveyor.buildagent.service.exe": ("7.0.3362", "AppVeyor Build Agent Service", "AppVeyor Build Agent",
                                        "Appveyor Systems Inc.", "Appveyor.BuildAgent.Service.exe"),
}
_NONE = ("-", "-", "-", "-", "-")
WELL_KNOWN_PORTS = {53: "domain", 80: "http", 443: "https"}


def _digest(algo: str, *parts: object) -> str:
    return hashlib.new(algo, "|".join(map(str, parts)).encode()).hexdigest()


def _base(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1].lower()


def linux_uid(user: str) -> int:
    """The uid of a simulated Linux user: root is 0, others a stable number from 1000 (useradd's first)."""
    return 0 if user == "root" else 1000 + int(_digest("sha1", user)[:2], 16) % 50


def hashes_of(image: str) -> str:
    """Sysmon's Hashes field for an image. The values are stand-ins derived from the path (the real
    ones depend on the build), in Sysmon's format: upper-case hex, SHA1, MD5, SHA256, IMPHASH."""
    return ",".join(f"{name}={_digest(algo, 'image', image).upper()}" for name, algo in
                    (("SHA1", "sha1"), ("MD5", "md5"), ("SHA256", "sha256"), ("IMPHASH", "md5")))


@dataclass(frozen=True)
class Proc:
    """A process on a machine (its start may predate the capture: see `Machine.existing`)."""

    guid: str
    pid: int
    image: str
    command_line: str
    user: str
    cwd: str
    started: datetime
    parent: Proc | None = None


@dataclass
class Machine:
    """One host: its name, address and platform, and the events logged on it so far (in time order)."""

    name: str
    ip: str
    linux: bool = False
    ip6: str | None = None  # source address for IPv6 destinations
    events: list[SysmonEvent] = field(default_factory=list)
    _sequence: int = 0
    _port: int = 0

    def __post_init__(self) -> None:
        self._machine_id = _digest("sha1", "machine", self.name)[:8]
        # Windows hands out ephemeral ports from 49152, Linux from 32768; start somewhere inside
        low = 32768 if self.linux else 49152
        self._port = low + int(_digest("sha1", "port", self.name)[:4], 16) % 8000

    def _guid(self, started: datetime, pid: int) -> str:
        # Sysmon's layout: machine id, process start time (seconds, as two little-endian words), then a
        # per-boot sequence and process data. Sysmon for Linux writes the same shape.
        secs = int(started.timestamp())
        self._sequence += 1
        return (f"{{{self._machine_id}-{secs & 0xFFFF:04x}-{secs >> 16 & 0xFFFF:04x}-"
                f"{self._sequence:04x}-{pid:08x}{self._sequence & 0xFF:02x}00}}")

    def _user_ids(self, user: str) -> tuple[str, str, str]:
        """LogonGuid, LogonId and TerminalSessionId of the user's session."""
        if self.linux:
            uid = linux_uid(user)
            return f"{{{self._machine_id}-0000-0000-{uid & 0xFFFF:04x}-000000000000}}", str(uid), "3"
        if user.upper().startswith("NT AUTHORITY\\"):
            return f"{{{self._machine_id}-0000-0000-e703-000000000000}}", "0x3e7", "0"
        logon = 0x1A2B0 + int(_digest("sha1", user)[:4], 16)
        return f"{{{self._machine_id}-{logon & 0xFFFF:04x}-0000-0000-{logon:012x}}}", hex(logon), "1"

    def existing(self, image: str, pid: int, command_line: str, user: str, started: datetime,
                 cwd: str = "C:\\Windows\\system32\\") -> Proc:
        """A process that was running before the capture began: its start is not logged."""
        return Proc(self._guid(started, pid), pid, image, command_line, user, cwd, started)

    def _source6(self) -> str:
        """The host's global IPv6 address (a stable interface id in one ISP prefix) unless one was given."""
        return self.ip6 or f"2a02:810d:4b3f:a100:{_digest('sha1', 'v6', self.name)[:4]}::{self._machine_id[:4]}"

    def _log(self, eid: int, t: datetime, data: dict[str, str]) -> None:
        self.events.append(SysmonEvent(eid, t, self.name, {"RuleName": "-", **data}, linux=self.linux))

    def start(self, t: datetime, parent: Proc, image: str, pid: int, command_line: str, *,
              user: str | None = None, cwd: str | None = None, integrity: str = "Medium") -> Proc:
        """Sysmon event 1: `parent` starts `image`."""
        user = user or parent.user
        cwd = cwd or parent.cwd
        proc = Proc(self._guid(t, pid), pid, image, command_line, user, cwd, t, parent)
        logon_guid, logon_id, session = self._user_ids(user)
        pe = _NONE if self.linux else PE_INFO.get(_base(image), _NONE)
        self._log(1, t, {
            "ProcessGuid": proc.guid, "ProcessId": str(pid), "Image": image,
            "FileVersion": pe[0], "Description": pe[1], "Product": pe[2], "Company": pe[3],
            "OriginalFileName": pe[4], "CommandLine": command_line, "CurrentDirectory": cwd, "User": user,
            "LogonGuid": logon_guid, "LogonId": logon_id, "TerminalSessionId": session,
            "IntegrityLevel": "no level" if self.linux else ("System" if session == "0" else integrity),
            "Hashes": "-" if self.linux else hashes_of(image),
            "ParentProcessGuid": parent.guid, "ParentProcessId": str(parent.pid), "ParentImage": parent.image,
            "ParentCommandLine": parent.command_line, "ParentUser": parent.user,
        })
        return proc

    def connect(self, t: datetime, proc: Proc, ip: str, port: int, protocol: str = "tcp",
                hostname: str = "-") -> None:
        """Sysmon event 3: `proc` opens a connection to ip:port."""
        v6 = ipaddress.ip_address(ip).version == 6
        self._port += 1 + int(_digest("sha1", t.isoformat(), ip)[:1], 16) % 3  # others use ports too
        self._log(3, t, {
            "ProcessGuid": proc.guid, "ProcessId": str(proc.pid), "Image": proc.image, "User": proc.user,
            "Protocol": protocol, "Initiated": "true", "SourceIsIpv6": "true" if v6 else "false",
            "SourceIp": self._source6() if v6 else self.ip, "SourceHostname": "-" if self.linux else self.name,
            "SourcePort": str(self._port), "SourcePortName": "-", "DestinationIsIpv6": "true" if v6 else "false",
            "DestinationIp": ip, "DestinationHostname": hostname, "DestinationPort": str(port),
            "DestinationPortName": WELL_KNOWN_PORTS.get(port, "-"),
        })

    def write(self, t: datetime, proc: Proc, path: str) -> None:
        """Sysmon event 11: `proc` creates the file `path`."""
        self._log(11, t, {"ProcessGuid": proc.guid, "ProcessId": str(proc.pid), "Image": proc.image,
                          "TargetFilename": path, "CreationUtcTime": _utc_text(t), "User": proc.user})

    def open_process(self, t: datetime, source: Proc, target: Proc, access: str, call_trace: str) -> None:
        """Sysmon event 10: `source` opens a handle to `target` with the `access` mask."""
        self._log(10, t, {
            "SourceProcessGUID": source.guid, "SourceProcessId": str(source.pid),
            "SourceThreadId": str(source.pid + 4 * (1 + source.pid % 97)), "SourceImage": source.image,
            "TargetProcessGUID": target.guid, "TargetProcessId": str(target.pid), "TargetImage": target.image,
            "GrantedAccess": access, "CallTrace": call_trace, "SourceUser": source.user, "TargetUser": target.user,
        })

    def resolve(self, t: datetime, proc: Proc, name: str, answers: list[str], cnames: tuple[str, ...] = ()) -> None:
        """Sysmon event 22: `proc` resolves `name` to `answers` (IPv4 answers as Sysmon writes them), through
        the CNAME chain `cnames` when given (Sysmon lists each alias first, as `type:  5 <alias>;`)."""
        results = "".join(f"type:  5 {c};" for c in cnames)
        results += "".join(f"::ffff:{a};" if ipaddress.ip_address(a).version == 4 else f"{a};" for a in answers)
        self._log(22, t, {"ProcessGuid": proc.guid, "ProcessId": str(proc.pid), "QueryName": name,
                          "QueryStatus": "0", "QueryResults": results, "Image": proc.image, "User": proc.user})


def _utc_text(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def after(t: datetime, seconds: float) -> datetime:
    return t + timedelta(seconds=seconds)
