"""Linux audit logs: raw auditd text (audit.log, audispd syslog lines) and AUOMS records, as text lines
or in Azure Monitor `Syslog` JSON rows.

An auditd event is several records (SYSCALL, EXECVE, SOCKADDR, CWD, PATH, PROCTITLE) sharing the stamp
`audit(TIME:SERIAL)`; they are joined by (node, stamp), so interleaved events are fine. An AUOMS record
is one whole event. A successful execve becomes a process start, connect an outbound network event
(unix and other non-IP peers stay `other`), every other syscall `other`; the event id is the syscall
number. Events without a syscall (logins, daemon messages) are skipped and counted in the file's notes.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from stagehunt.diagnostics import Diagnostics
from stagehunt.store import FileInfo

if TYPE_CHECKING:
    import pyarrow as pa

    from stagehunt.store import EventStore

BATCH = 50_000  # rows per insert
MAX_PENDING = 1_000  # open events kept while more of their records may come (logs without EOE)
MAX_RECORDS = 512  # records per event; more is a broken log, not a real event

_STAMP = re.compile(r"type=(\S+) (?:msg=)?audit\(([0-9]{1,12})\.([0-9]+):([0-9]+)\):?")
_LEAD = re.compile(r"\s*(?:node=\S+ )?type=\S+ (?:msg=)?audit\([0-9]+\.[0-9]+:[0-9]+\)")
_NODE = re.compile(r"(?:^|\s)node=(\S+) $")
# key=value; values are "quoted", 'quoted' (user-space msg='...'), {interpreted}, [json list] or bare
_FIELD = re.compile(r"""([A-Za-z_][\w\[\]]*)=("[^"]*"|'[^']*'|\{[^}]*\}|\[[^\]]*\]|\S*)""")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_ARG = re.compile(r"a(\d+)(?:\[(\d+)\])?")
# the kernel's printk form (`type=1300 audit(...)`) and old userspace (`type=UNKNOWN[1327]`) number types
_TYPE_NUMBERS = {"1300": "SYSCALL", "1302": "PATH", "1306": "SOCKADDR", "1307": "CWD", "1309": "EXECVE",
                 "1320": "EOE", "1327": "PROCTITLE"}
_SYSCALL_PARTS = {"SYSCALL", "EXECVE", "SOCKADDR", "CWD", "PATH", "PROCTITLE"}
_READ = {"SYSCALL", "EXECVE", "SOCKADDR", "PROCTITLE"}  # the records whose fields are used
_AUOMS_TEXT = ("cmdline", "proctitle")
_AUOMS_TRAILER = (" redactors=", " containerid=")
_EPOCH = datetime(1970, 1, 1)
_MAX_MICROS = (datetime(9999, 12, 31) - _EPOCH) // timedelta(microseconds=1)  # what a TIMESTAMP holds


@dataclass(frozen=True)
class Arch:
    execve: frozenset[int]  # execve, execveat
    connect: frozenset[int]
    socketcall: int | None = None  # i386 multiplexes socket calls; a0 = 3 is connect


_X86_64 = Arch(frozenset({59, 322}), frozenset({42}))
_I386 = Arch(frozenset({11, 358}), frozenset({362}), socketcall=102)
_AARCH64 = Arch(frozenset({221, 281}), frozenset({203}))
# raw records give AUDIT_ARCH_* in hex, AUOMS the machine name
ARCHES = {"c000003e": _X86_64, "x86_64": _X86_64, "40000003": _I386, "i386": _I386, "i686": _I386,
          "c00000b7": _AARCH64, "aarch64": _AARCH64}
_BY_NAME = {"execve": 59, "execveat": 322, "connect": 42}  # AUOMS without syscall_r: assume x86-64


# -- decoding --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SockAddr:
    family: str  # inet | inet6 | unix | other
    ip: str | None = None
    port: int | None = None
    path: str | None = None  # unix sockets; abstract names start with "@"
    family_number: int | None = None


def decode_saddr(hexstr: str) -> SockAddr:
    """Decode a SOCKADDR `saddr` (a struct sockaddr in hex). Raises ValueError if it is not one."""
    if not _HEX.fullmatch(hexstr):
        raise ValueError(f"saddr is not hex: {hexstr[:40]!r}")
    raw = bytes.fromhex(hexstr)
    if len(raw) < 2:
        raise ValueError("saddr shorter than its address family")
    fam = int.from_bytes(raw[:2], "little")  # sa_family is host order: little-endian on x86 and arm
    if fam == 2:  # sockaddr_in: port (network order), 4-byte address, padding
        if len(raw) < 8:
            raise ValueError(f"AF_INET saddr of {len(raw)} bytes, need 8")
        return SockAddr("inet", str(ipaddress.IPv4Address(raw[4:8])), int.from_bytes(raw[2:4], "big"), None, fam)
    if fam == 10:  # sockaddr_in6: port, flowinfo (4), 16-byte address, scope id (4)
        if len(raw) < 24:
            raise ValueError(f"AF_INET6 saddr of {len(raw)} bytes, need 24")
        ip6 = ipaddress.IPv6Address(raw[8:24])
        # IPv4-mapped (::ffff:a.b.c.d, dual-stack sockets) is that IPv4 destination
        ip = str(ip6.ipv4_mapped) if ip6.ipv4_mapped is not None else str(ip6)
        return SockAddr("inet6", ip, int.from_bytes(raw[2:4], "big"), None, fam)
    if fam == 1:  # sockaddr_un: a NUL-terminated path, or an abstract name after a leading NUL
        body = raw[2:]
        name = b"@" + body[1:].rstrip(b"\x00") if body[:1] == b"\x00" else body.split(b"\x00", 1)[0]
        return SockAddr("unix", path=text(name), family_number=fam)
    return SockAddr("other", family_number=fam)


def unescape(value: str) -> bytes | None:
    """auditd's encoding of an untrusted string: "text" as is; hex when it held a space, a double quote,
    a control or non-ASCII byte; `(null)` when the kernel could not read it."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].encode()
    if value in ("(null)", "(none)"):
        return None
    return bytes.fromhex(value) if _HEX.fullmatch(value) else value.encode()  # else: keep it as logged


def text(value: bytes | None) -> str | None:
    # logs carry arbitrary bytes; keep undecodable ones visible as \xNN rather than lose them
    return None if value is None else value.decode("utf-8", "backslashreplace")


def execve_argv(fields: dict[str, str]) -> list[str]:
    """argv from EXECVE fields: a0..aN, long arguments split as aN_len + aN[0], aN[1]..."""
    parts: dict[int, dict[int, bytes]] = {}
    for key, value in fields.items():
        if m := _ARG.fullmatch(key):
            parts.setdefault(int(m[1]), {})[int(m[2] or 0)] = unescape(value) or b""
    return [text(b"".join(p[k] for k in sorted(p))) or "" for _, p in sorted(parts.items())]


def proctitle_argv(value: str) -> list[str]:
    """argv from PROCTITLE: the process's argument memory (hex, NUL between arguments, at most 128 bytes)."""
    raw = unescape(value) or b""
    return [text(a) or "" for a in raw.rstrip(b"\x00").split(b"\x00")] if raw else []


def join_argv(argv: list[str]) -> str:
    """One command line; an argument is double-quoted only when it is empty or holds whitespace or quotes,
    so `sh -c "curl a; curl b"` stays readable and its argument boundaries stay visible."""
    def q(a: str) -> str:
        if a and not any(c.isspace() or c in "\"'" for c in a):
            return a
        return '"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return " ".join(q(a) for a in argv)


def parse_fields(body: str, auoms: bool = False) -> dict[str, str]:
    """key=value pairs of a record body, values as logged (the last of a repeated key wins). AUOMS
    writes cmdline / proctitle unescaped, spaces and nested quotes included, up to its trailer fields."""
    tail: dict[str, str] = {}
    for key in _AUOMS_TEXT if auoms else ():
        i = body.find(f" {key}=")
        if i >= 0:
            start = i + len(key) + 2
            # rfind: the text itself may hold " redactors="; the real trailer is the last one
            end = next((e for t in _AUOMS_TRAILER if (e := body.rfind(t)) >= start), len(body))
            value = body[start:end]
            tail[key] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
            body = body[:i] + body[end:]
            break
    # ENRICHED logs put the interpreted names (UID="alice") after a group separator
    return dict(_FIELD.findall(body.replace("\x1d", " "))) | tail


def _int(fields: dict[str, str], key: str, base: int = 10) -> int | None:
    """A number field; None if absent, not a number, or beyond 31 bits (no pid or syscall is: that is damage)."""
    try:
        v = int(fields.get(key, "").strip('"'), base)
    except ValueError:
        return None
    return v if -(2**31) <= v < 2**31 else None


def _user(f: dict[str, str]) -> str | None:
    """The process's user: a name when the log has one (ENRICHED `UID=`, AUOMS `user=`), else the uid."""
    for key in ("UID", "user", "uid", "AUID", "auid"):
        v = f.get(key, "").strip('"')  # never hex-decoded: uid 1000 is not the bytes 10 00
        if v and v not in ("4294967295", "unset", "-1", "(null)"):
            return v
    return None


# -- events to rows --------------------------------------------------------------------------------------

@dataclass
class Event:
    node: str | None
    micros: int  # audit time, microseconds since the epoch (UTC)
    line: int | None
    record: int | None
    host: str | None  # the file's or row's host, for records without node=
    records: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    auoms: bool = False

    def first(self, rtype: str) -> dict[str, str] | None:
        return next((f for t, f in self.records if t == rtype), None)


# Arrow type names (pyarrow is imported only when auditd rows are made: sniffing needs none of it)
ROW_TYPES: dict[str, str] = {
    "kind": "string", "provider": "string", "event_id": "int32", "time": "timestamp[us]", "host": "string",
    "pid": "int64", "image": "string", "command_line": "string", "user": "string", "parent_pid": "int64",
    "parent_image": "string", "parent_command_line": "string", "protocol": "string", "direction": "string",
    "dst_ip": "string", "dst_port": "int32", "remote_ip": "string", "remote_port": "int32",
    "source_file": "string", "source_line": "int64", "source_record": "int64"}


class Rows:
    """Canonical rows in column lists, inserted every BATCH rows so memory stays flat; without a store, kept
    for one insert of a group of small files (`table`)."""

    def __init__(self, store: EventStore | None = None, info: FileInfo | None = None):
        self.store, self.info = store, info
        self.cols: dict[str, list] = {k: [] for k in ROW_TYPES}

    def __len__(self) -> int:
        return len(self.cols["kind"])

    def add(self, values: dict[str, object]) -> None:
        for k, col in self.cols.items():
            col.append(values.get(k))
        if self.store is not None and len(self) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.store is not None and self.info is not None and len(self):
            self.store.insert_arrow(self.info, self.table())
            self.cols = {k: [] for k in ROW_TYPES}

    def truncate(self, n: int) -> None:
        """Drop the rows after the first `n`."""
        for col in self.cols.values():
            del col[n:]

    def table(self) -> pa.Table:
        import pyarrow as pa

        return pa.table({k: pa.array(v, pa.type_for_alias(ROW_TYPES[k])) for k, v in self.cols.items()})


class Reader:
    """Joins records into events and turns events into rows."""

    def __init__(self, rows: Rows, name: str, diag: Diagnostics):
        self.rows, self.name, self.diag = rows, name, diag
        # OrderedDict: popping the oldest of a plain dict again and again rescans its deleted slots
        self.pending: OrderedDict[tuple[str | None, int, str], Event] = OrderedDict()
        self.skipped: Counter[str] = Counter()
        # (host, pid) -> (image, command line) of its latest execve: the parent of later children
        self.images: dict[tuple[str | None, int], tuple[str | None, str | None]] = {}

    def record(self, msg: str, line: int | None, record: int | None, host: str | None) -> bool:
        """Take one record; False if `msg` is not an audit record."""
        m = _STAMP.search(msg)
        if not m:
            return False
        rtype, serial = m[1].removeprefix("UNKNOWN[").rstrip("]"), m[4]
        rtype = _TYPE_NUMBERS.get(rtype, rtype)
        auoms = rtype.startswith("AUOMS_")
        # CWD, PATH, logins...: only their type matters, and parsing them is half the work
        fields = parse_fields(msg[m.end():], auoms) if auoms or rtype in _READ else {}
        node_m = _NODE.search(msg[:m.start()]) if m.start() else None
        node = node_m[1] if node_m else fields.get("node")
        micros = int(m[2]) * 1_000_000 + int(m[3][:6].ljust(6, "0"))
        if micros > _MAX_MICROS:
            self.diag.add(self.name, f"audit time {m[2]} is past the year 9999", line=line, record=record)
            return True
        if auoms:  # one record is one whole event
            self.emit(Event(node, micros, line, record, host, [(rtype, fields)], auoms=True))
            return True
        key = (node, micros, serial)
        if rtype == "EOE":  # end of a multi-record event: finish it now (it may be gone already)
            if key in self.pending:
                self.emit(self.pending.pop(key))
            return True
        ev = self.pending.get(key)
        if ev is None:
            if len(self.pending) >= MAX_PENDING:  # logs without EOE: the oldest open event is complete by now
                self.emit(self.pending.popitem(last=False)[1])
            ev = self.pending[key] = Event(node, micros, line, record, host)
        if len(ev.records) < MAX_RECORDS:
            ev.records.append((rtype, fields))
        elif len(ev.records) == MAX_RECORDS:
            ev.records.append(("OVERFLOW", {}))
            self.problem(ev, f"more than {MAX_RECORDS} records in one audit event: the rest are ignored")
        return True

    def finish(self) -> None:
        for ev in self.pending.values():
            self.emit(ev)
        self.pending.clear()
        self.rows.flush()

    def emit(self, ev: Event) -> None:
        sc = ev.records[0][1] if ev.auoms and "syscall" in ev.records[0][1] else ev.first("SYSCALL")
        if sc is None:
            types = {t for t, _ in ev.records}
            if types & _SYSCALL_PARTS:  # a SYSCALL line was lost: nothing names the process
                self.problem(ev, f"audit event without its SYSCALL record (has {', '.join(sorted(types))}); "
                                 "line lost or damaged?")
                self.row(ev, "other", None, {})
            else:
                self.skipped[ev.records[0][0]] += 1
            return
        number = _int(sc, "syscall_r" if ev.auoms else "syscall")
        if number is None and ev.auoms:
            number = _BY_NAME.get(sc.get("syscall", ""))
        if number is None:
            self.problem(ev, f"SYSCALL record without a syscall number: {sc.get('syscall', '')[:40]!r}")
        op = _operation(sc, number, ev.auoms)
        if op == "execve" and sc.get("success") != "no":  # a failed execve ran nothing; the caller lives on
            self.execve(ev, sc, number)
        elif op == "connect":  # not filtered on success: a non-blocking connect "fails" with EINPROGRESS
            self.connect(ev, sc, number)
        else:
            self.row(ev, "other", number, sc)

    def execve(self, ev: Event, sc: dict[str, str], number: int | None) -> None:
        if ev.auoms:
            cmd = sc.get("cmdline") or sc.get("proctitle")
        else:
            args = {k: v for t, f in ev.records if t == "EXECVE" for k, v in f.items()}
            argv = execve_argv(args) or proctitle_argv((ev.first("PROCTITLE") or {}).get("proctitle", ""))
            cmd = join_argv(argv) if argv else None
        host, pid, ppid = _host(ev), _int(sc, "pid"), _int(sc, "ppid")
        parent = self.images.get((host, ppid), (None, None)) if ppid is not None else (None, None)
        if pid is not None:
            self.images[(host, pid)] = (_exe(sc, ev.auoms), cmd)
        self.row(ev, "process_start", number, sc, command_line=cmd, parent_pid=ppid, parent_image=parent[0],
                 parent_command_line=parent[1])

    def connect(self, ev: Event, sc: dict[str, str], number: int | None) -> None:
        # AUOMS folds SOCKADDR into its one record, as hex (saddr, or saddr_r beside an interpretation)
        raw = (sc.get("saddr_r") or sc.get("saddr")) if ev.auoms else (ev.first("SOCKADDR") or {}).get("saddr")
        # connect() does not say TCP or UDP (resolvers connect UDP sockets too): the protocol stays unknown
        net = {"direction": "outbound", "protocol": None}
        try:
            sa = decode_saddr(raw.strip('"')) if raw is not None else None
        except ValueError as e:
            self.problem(ev, f"connect: {e}")
            sa = None
        if sa is not None and sa.family not in ("inet", "inet6"):
            self.row(ev, "other", number, sc)  # a unix or netlink peer is no network destination
        elif sa is not None:
            self.row(ev, "network", number, sc, **net, dst_ip=sa.ip, dst_port=sa.port, remote_ip=sa.ip,
                     remote_port=sa.port)
        else:
            self.row(ev, "network", number, sc, **net)  # the destination is lost, the connect is not

    def row(self, ev: Event, kind: str, number: int | None, sc: dict[str, str], **extra: object) -> None:
        self.rows.add({"kind": kind, "provider": "auditd", "event_id": number,
                       "time": _EPOCH + timedelta(microseconds=ev.micros), "host": _host(ev), "pid": _int(sc, "pid"),
                       "image": _exe(sc, ev.auoms), "user": _user(sc), "source_file": self.name,
                       "source_line": ev.line, "source_record": ev.record} | extra)

    def problem(self, ev: Event, message: str) -> None:
        self.diag.add(self.name, message, line=ev.line, record=ev.record)


def _operation(sc: dict[str, str], number: int | None, auoms: bool) -> str | None:
    """"execve", "connect" or None for a SYSCALL record."""
    if auoms:  # AUOMS names the syscall itself (i386 socketcall included)
        name = sc.get("syscall", "")
        return "execve" if name.startswith("execve") else name if name == "connect" else None
    # auditd always logs arch; a hand-written record without one is taken as the common x86-64
    arch = ARCHES.get(sc.get("arch", "c000003e").lower())
    if arch is None or number is None:
        return None
    if number in arch.execve:
        return "execve"
    if number in arch.connect or (number == arch.socketcall and _int(sc, "a0", 16) == 3):
        return "connect"
    return None


def _exe(sc: dict[str, str], auoms: bool) -> str | None:
    if "exe" not in sc:
        return None
    return sc["exe"].strip('"') if auoms else text(unescape(sc["exe"]))  # AUOMS has unescaped it already


def _host(ev: Event) -> str | None:
    h = ev.node or ev.host
    return h.lower() if h else None


# -- files -----------------------------------------------------------------------------------------------

def sniff(head: bytes) -> bool:
    """True if the first non-blank line is an audit record (raw, `node=` prefixed, or after a syslog prefix)."""
    for line in head.lstrip(b"\xef\xbb\xbf").splitlines()[:5]:
        if line.strip():
            return _STAMP.search(line.decode("utf-8", "replace")) is not None
    return False


def is_audit_message(msg: str) -> bool:
    """True if an Azure Syslog message is an audit record (AUOMS, or raw auditd forwarded by audisp)."""
    return _LEAD.match(msg) is not None


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")


Message = tuple[str | None, int | None, int | None, str | None]  # text, line, array index, host


def _json_messages(path: Path, name: str, diag: Diagnostics) -> Iterator[Message]:
    """(SyslogMessage, line, array index, host) of each Azure Syslog row (JSON lines, an array or
    pretty-printed rows); bad rows go to diagnostics."""
    from stagehunt.sources.jsonfile import objects  # any JSON layout; damaged arrays salvaged

    for row, ln, rec in objects(path, name, diag):
        msg, host = row.get("SyslogMessage"), row.get("Computer") or row.get("HostName")
        yield msg if isinstance(msg, str) else None, ln, rec, host if isinstance(host, str) else None


def load(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
    """Raw auditd text, or Azure Syslog JSON rows carrying audit records (AUOMS)."""
    head = _head(path)
    info = store.begin_file(name, "auditd", origin_unit=_origin_unit(head))
    _read(path, head, name, diag, info, Rows(store, info))
    return info


def load_group(store: EventStore, files: list[tuple[Path, str]], diag: Diagnostics) -> list[FileInfo]:
    """Several small audit logs ((path, name) each) with one insert for all their rows: the same rows, files
    and diagnostics as `load` one by one (300 files of 20 records took 1.8 s one by one)."""
    rows = Rows()
    infos = []
    for path, name in files:
        before = len(rows)
        try:
            head = _head(path)
        except OSError as e:  # as sources.load reports a file `load` cannot open
            diag.add(name, f"cannot read as auditd: {e}")
            infos.append(FileInfo(name, "auditd (unreadable)", 0))
            continue
        info = FileInfo(name, "auditd", 0, origin_unit=_origin_unit(head))  # the store's once its rows are in
        try:
            _read(path, head, name, diag, info, rows)
        except (ValueError, OSError) as e:
            diag.add(name, f"cannot read as auditd: {e}")
            rows.truncate(before)  # `load` inserts nothing of a small file it fails on (rows go in at its end)
        info.rows = len(rows) - before
        infos.append(info)
    store.insert_arrow_files(infos, rows.table())
    return infos


def _origin_unit(head: bytes) -> str:
    return "record" if head[:1] == b"[" else "line"


def _read(path: Path, head: bytes, name: str, diag: Diagnostics, info: FileInfo, rows: Rows) -> None:
    reader = Reader(rows, name, diag)
    not_audit = 0
    if head[:1] in (b"{", b"["):
        for msg, ln, rec, host in _json_messages(path, name, diag):
            if msg is None or not reader.record(msg, ln, rec, host):
                not_audit += 1  # daemon messages, Sysmon XML: another reader's business, not an error
    else:
        with open(path, "rb") as f:
            for ln, raw in enumerate(f, 1):
                line = raw.decode("utf-8", "replace").strip().lstrip("\ufeff")
                if line and not reader.record(line, ln, None, None):
                    diag.add(name, "not an audit record (expected type=... msg=audit(TIME:SERIAL): ...)", line=ln)
    reader.finish()
    if not_audit:
        info.notes.append(f"{not_audit} row(s) skipped: SyslogMessage is not an audit record")
    if reader.skipped:
        kinds = ", ".join(f"{t} {n}" for t, n in reader.skipped.most_common(5))
        info.notes.append(f"{sum(reader.skipped.values())} audit event(s) without a syscall skipped ({kinds})")
