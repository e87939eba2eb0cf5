"""Linux Sysmon events rendered as the raw auditd records the same activity produces (audit.log).

What auditd sees of each Sysmon event:
  1 (process start)  execve: SYSCALL 59 + EXECVE (argv) + CWD + PATH (image, loader) + PROCTITLE
  3 (connection)     connect: SYSCALL 42 (non-blocking: success=no exit=-115) + SOCKADDR + PROCTITLE
  11 (file create)   openat with O_CREAT: SYSCALL 257 + CWD + PATH (parent dir, new file) + PROCTITLE
Other events have no auditd counterpart and are left out. Records are in the RAW log format with
the `node=` prefix that `name_format = hostname` adds (so the host survives a central collector);
strings follow the kernel's rule for untrusted text: quoted, or hex when they hold a space, a double
quote, a control or a non-ASCII byte. The Sysmon fields that auditd lacks (guids, user names) are
not invented; uids come from `host.linux_uid`, the same mapping Sysmon's LogonId used.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from stagehunt.simulate.events import SysmonEvent
from stagehunt.simulate.host import linux_uid

UNSET = 4294967295  # (u32)-1: no login uid / session (daemons started by init)
_PROCTITLE_MAX = 128  # the kernel logs at most this many bytes of the argument memory


def untrusted_bytes(raw: bytes) -> str:
    """The kernel's audit_log_n_untrustedstring: "text", or upper-case hex when it needs escaping."""
    if any(b < 0x21 or b > 0x7E or b == 0x22 for b in raw):
        return raw.hex().upper()
    return f'"{raw.decode()}"'


def untrusted(value: str) -> str:
    return untrusted_bytes(value.encode())


def sockaddr(ip: str, port: int) -> str:
    """struct sockaddr_in / sockaddr_in6 as hex: family (little-endian), port (network order), address."""
    a = ipaddress.ip_address(ip)
    if a.version == 4:
        raw = (2).to_bytes(2, "little") + port.to_bytes(2, "big") + a.packed + bytes(8)
    else:
        raw = (10).to_bytes(2, "little") + port.to_bytes(2, "big") + bytes(4) + a.packed + bytes(4)
    return raw.hex().upper()


def _n(*parts: object, mod: int = 2**31) -> int:
    """A stable number derived from `parts`: pointer values, inode numbers."""
    return int(hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12], 16) % mod


@dataclass(frozen=True)
class _Task:
    pid: int
    ppid: int
    uid: int
    auid: int
    ses: int
    tty: str
    comm: str
    exe: str
    argv: tuple[str, ...]
    cwd: str

    def ids(self) -> str:
        u = self.uid
        return (f"ppid={self.ppid} pid={self.pid} auid={self.auid} uid={u} gid={u} euid={u} suid={u} fsuid={u} "
                f"egid={u} sgid={u} fsgid={u} tty={self.tty} ses={self.ses} comm={untrusted(self.comm)} "
                f"exe={untrusted(self.exe)}")

    def proctitle(self) -> str:
        return "proctitle=" + untrusted_bytes("\x00".join(self.argv).encode()[:_PROCTITLE_MAX])


class AuditLog:
    """Turns Linux Sysmon events into audit records; keeps what later events of a process need."""

    def __init__(self) -> None:
        self.tasks: dict[tuple[str, str], _Task] = {}  # (host, ProcessGuid) -> task
        self.by_pid: dict[tuple[str, int], _Task] = {}
        self.serial = 0

    def lines(self, ev: SysmonEvent) -> list[str]:
        d = ev.data
        if ev.eid == 1:
            task = self._task(ev)
            body = self._execve(task)
        elif ev.eid == 3 and d.get("Initiated", "true") == "true":
            task = self._known(ev)
            port = int(d["DestinationPort"])
            v6 = ":" in d["DestinationIp"]
            body = [
                ("SYSCALL", f"arch=c000003e syscall=42 success=no exit=-115 a0=5 a1=7ffd{_n('sa', ev.utc):08x} "
                            f"a2={'1c' if v6 else '10'} a3=0 items=0 {task.ids()} key=\"network_outbound\""),
                ("SOCKADDR", f"saddr={sockaddr(d['DestinationIp'], port)}"),
                ("PROCTITLE", task.proctitle()),
            ]
        elif ev.eid == 11:
            task = self._known(ev)
            path = d["TargetFilename"]
            folder = path.rsplit("/", 1)[0] + "/"
            body = [
                ("SYSCALL", f"arch=c000003e syscall=257 success=yes exit=6 a0=ffffff9c a1=7ffd{_n('fn', path):08x} "
                            f"a2=241 a3=1b6 items=2 {task.ids()} key=\"tmp_write\""),
                ("CWD", f"cwd={untrusted(task.cwd)}"),
                ("PATH", f"item=0 name={untrusted(folder)} inode={_n('ino', folder, mod=10**6)} dev=fd:01 "
                         "mode=041777 ouid=0 ogid=0 rdev=00:00 nametype=PARENT cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 "
                         "cap_frootid=0"),
                ("PATH", f"item=1 name={untrusted(path)} inode={_n('ino', path, mod=10**6)} dev=fd:01 mode=0100644 "
                         f"ouid={task.uid} ogid={task.uid} rdev=00:00 nametype=CREATE cap_fp=0 cap_fi=0 cap_fe=0 "
                         "cap_fver=0 cap_frootid=0"),
                ("PROCTITLE", task.proctitle()),
            ]
        else:
            return []  # DNS, process access, inbound: nothing in auditd's view of these
        self.serial += 1 + _n("gap", self.serial, mod=4)  # other events take serials in between
        ms = (ev.utc.microsecond // 1000)
        stamp = f"audit({int(ev.utc.timestamp())}.{ms:03d}:{self.serial})"
        node = ev.host.replace(" ", "-")
        return [f"node={node} type={rtype} msg={stamp}: {fields}" for rtype, fields in body]

    def _task(self, ev: SysmonEvent) -> _Task:
        d = ev.data
        pid, ppid = int(d["ProcessId"]), int(d.get("ParentProcessId") or 1)
        uid = linux_uid(d.get("User", "root"))
        parent = self.by_pid.get((ev.host, ppid))
        if parent is not None:  # the login uid, session and terminal are inherited
            auid, ses, tty = parent.auid, parent.ses, parent.tty
        elif d.get("ParentImage", "").endswith("/sshd"):  # a new login session
            auid, ses, tty = uid, 3 + _n("ses", ev.host, ppid, mod=200), "pts0"
        else:  # a daemon's child: no login
            auid, ses, tty = UNSET, UNSET, "(none)"
        image = d["Image"]
        try:
            argv = tuple(shlex.split(d.get("CommandLine") or image))
        except ValueError:  # unbalanced quotes: keep the words as logged
            argv = tuple((d.get("CommandLine") or image).split())
        task = _Task(pid, ppid, uid, auid, ses, tty, image.rsplit("/", 1)[-1][:15], image, argv or (image,),
                     d.get("CurrentDirectory") or "/")
        self.tasks[(ev.host, d["ProcessGuid"])] = task
        self.by_pid[(ev.host, pid)] = task
        return task

    def _known(self, ev: SysmonEvent) -> _Task:
        """The process behind a connection or file event; one whose start was not logged is made up from
        what the event says (Sysmon logs those too)."""
        d = ev.data
        task = self.tasks.get((ev.host, d.get("ProcessGuid", "")))
        if task is None:
            image = d.get("Image", "?")
            uid = linux_uid(d.get("User", "root"))
            task = _Task(int(d.get("ProcessId") or 0), 1, uid, UNSET, UNSET, "(none)", image.rsplit("/", 1)[-1][:15],
                         image, (image,), "/")
        return task

    def _execve(self, task: _Task) -> list[tuple[str, str]]:
        args = " ".join(f"a{i}={untrusted(a)}" for i, a in enumerate(task.argv))
        ptr = _n("argv", task.pid, task.exe)
        return [
            ("SYSCALL", f"arch=c000003e syscall=59 success=yes exit=0 a0=55{ptr:010x} a1=55{ptr + 0x1c0:010x} "
                        f"a2=55{ptr + 0x3f8:010x} a3=8 items=2 {task.ids()} key=\"exec\""),
            ("EXECVE", f"argc={len(task.argv)} {args}"),
            ("CWD", f"cwd={untrusted(task.cwd)}"),
            ("PATH", f"item=0 name={untrusted(task.exe)} inode={_n('ino', task.exe, mod=10**6)} dev=fd:01 "
                     "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 "
                     "cap_frootid=0"),
            ("PATH", f"item=1 name=\"/lib64/ld-linux-x86-64.so.2\" inode={_n('ino', 'ld', mod=10**6)} dev=fd:01 "
                     "mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 "
                     "cap_frootid=0"),
            ("PROCTITLE", task.proctitle()),
        ]


def write_auditd(events: Iterable[SysmonEvent], out: BinaryIO) -> None:
    """Sysmon-for-Linux events -> audit.log lines (Windows events have no auditd rendering)."""
    log = AuditLog()
    for ev in events:
        if not ev.linux:
            raise ValueError("auditd can only render Linux events (Sysmon for Linux)")
        for line in log.lines(ev):
            out.write(line.encode() + b"\n")
