"""Sources: find the input files, recognise each one's format, and load it into the event store.

Inputs may be files, directories (recursive), globs, `-` (standard input), and `.gz` / `.zip`
containers; each container member is read as a file of its own, named `archive.zip!member`.
The format of each file is sniffed from its first bytes unless the user names it.
"""

from __future__ import annotations

import glob
import importlib
import io
import shutil
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stagehunt.diagnostics import MAX_KEPT_PER_FILE, Diagnostics, one_line
from stagehunt.sources import auditd, jsonfile
from stagehunt.sources.dialects import DIALECTS
from stagehunt.store import EventStore, FileInfo


class InputError(Exception):
    """A user-facing problem with an input (missing, unreadable, unrecognised); one line."""


@dataclass(frozen=True)
class Input:
    name: str  # as shown to the user and cited in evidence
    path: Path  # a readable local file (containers and stdin are unpacked to a temp dir first)
    found: bool = False  # found by walking a directory or a glob, not named by the user
    problem: str | None = None  # why it cannot be read at all (an archive that does not open): reported, skipped
    damage: str | None = None  # where its container broke off (a cut .gz): reported, what precedes is read

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", displayable(self.name))


def displayable(name: str) -> str:
    """A file name as text every output (and DuckDB) takes: bytes that are not UTF-8, which Linux file names
    may hold and Python keeps as lone surrogates, shown as `\\xff`."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # surrogates that did not come from bytes (a zip member's name)
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


Loader = Callable[[EventStore, Path, str, Diagnostics], FileInfo]


def _json_loader(dialect: str | None) -> Loader:
    def load(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
        return jsonfile.load_json(store, path, name, dialect, diag)
    return load


def _lazy(module: str, func: str = "load") -> Loader:
    """Import a reader module on first use, so a missing optional library only hurts its format."""
    def load(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
        return getattr(importlib.import_module(f"stagehunt.sources.{module}"), func)(store, path, name, diag)
    return load


# --format names -> loaders. "json" sniffs the dialect per file.
READERS: dict[str, Loader] = {
    "json": _json_loader(None),
    **{name: _json_loader(name) for name in DIALECTS},
    "evtx": _lazy("evtxfile"),
    "xml": _lazy("xmlfile"),
    "syslog": _lazy("xmlfile", "load_syslog"),
    "azure-syslog": _lazy("xmlfile", "load_azure_syslog"),
    "auditd": _lazy("auditd"),
}

FORMAT_HELP = {
    "auto": "sniff each file",
    "json": "JSON lines, an array, or pretty-printed objects; dialect sniffed per file",
    **{name: d.description for name, d in DIALECTS.items()},
    "evtx": "Windows EVTX (Sysmon Operational, Security 4688/5156)",
    "xml": "Windows Event XML (wevtutil / Get-WinEvent exports)",
    "syslog": "Sysmon for Linux syslog lines carrying XML",
    "azure-syslog": "Azure Monitor Syslog rows with Sysmon-for-Linux XML in SyslogMessage",
    "auditd": "Linux audit logs: raw auditd text, or AUOMS / auditd records in Azure Syslog JSON rows",
}


def sniff(path: Path) -> str | None:
    """Name of the reader for this file from its first bytes, or None."""
    with open(path, "rb") as f:
        head = f.read(65536)
    if head.startswith(b"ElfFile\x00"):
        return "evtx"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 (PowerShell's `>`): only XML exports come so
        return "xml" if head[:512].decode("utf-16", "ignore").lstrip("\ufeff \t\r\n").startswith("<") else None
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")  # the BOM as a sequence, not its bytes
    if text.startswith(b"<"):
        return "xml"
    first = text.split(b"\n", 1)[0]
    starts_json = text.startswith((b"{", b"["))
    if not starts_json and b"<Event" in first and b"<System>" in first:  # (JSON rows may carry such XML)
        return "syslog"
    # JSON lines whose first line was cut (rotation, `tail -c`) or damaged: a later line starts a record
    if starts_json or b"\n{" in text:
        rec = jsonfile.first_record(path)
        if isinstance(rec, dict) and isinstance(rec.get("SyslogMessage"), str):
            msg = rec["SyslogMessage"]
            if "<Event>" in msg or "<Event " in msg:
                return "azure-syslog"
            return "auditd" if auditd.is_audit_message(msg) else None
        if rec is not None and jsonfile.sniff_dialect(rec):
            return "json"
        if starts_json:
            return None
    return "auditd" if auditd.sniff(text) else None


def expand(paths: list[str], workdir: Path) -> Iterator[Input]:
    """Every input file named by `paths`, containers unpacked into `workdir`. Raises InputError."""
    for k, p in enumerate(paths):
        if p == "-":
            dest = workdir / "stdin"
            with open(dest, "wb") as out:
                shutil.copyfileobj(sys.stdin.buffer, out)
            yield from _unpack(Input("<stdin>", dest), workdir)
            continue
        path = Path(p)
        if path.exists() and not path.is_dir() and not path.is_file():
            # a pipe (`<(zcat logs.gz)`, a FIFO) or a device: read once, as standard input is
            dest = workdir / f"stream-{k}"
            try:
                with open(path, "rb") as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
            except OSError as e:
                raise InputError(f"{p}: cannot read: {e.strerror or e}") from None
            yield from _unpack(Input(p, dest), workdir)
        elif path.is_dir():
            for f in sorted(x for x in path.rglob("*") if x.is_file() and not x.name.startswith(".")):
                yield from _unpack(Input(str(f), f, found=True), workdir)
        elif path.is_file():
            yield from _unpack(Input(str(path), path), workdir)
        elif any(ch in p for ch in "*?["):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise InputError(f"{p}: no file matches this pattern")
            for m in matches:
                if Path(m).is_file():
                    yield from _unpack(Input(m, Path(m), found=True), workdir)
        else:
            raise InputError(f"{p}: no such file or directory")


def _unpack(inp: Input, workdir: Path) -> Iterator[Input]:
    """The input, or the files of the container it is. A container that does not open is a problem of that
    input alone, reported when loading: the other inputs are still read. A file that only starts like one
    (a damaged first line; its name does not say .gz or .zip) is read as it is."""
    with open(inp.path, "rb") as f:
        magic = f.read(4)
    n = len(list(workdir.iterdir()))
    suffix = inp.path.suffix.lower()
    if magic[:2] == b"\x1f\x8b":
        dest = workdir / f"{n}-{inp.path.name.removesuffix('.gz')}"
        damage = _gunzip(inp.path, dest)
        if damage is not None and dest.stat().st_size == 0:
            yield _unopened(inp, suffix in (".gz", ".tgz"), f"cannot decompress gzip: {damage}")
            return
        # evidence cites the file that exists (`x.jsonl.gz:12`, line 12 of its decompressed text)
        yield Input(inp.name, dest, inp.found, damage=damage and f"gzip {damage}; the text before it is read")
    elif magic == b"PK\x03\x04":
        where = ""  # the member being read, once the archive opened
        try:
            with zipfile.ZipFile(inp.path) as z:
                for k, member in enumerate(z.infolist()):
                    if member.is_dir():
                        continue
                    where = f" at member {member.filename}"
                    if member.flag_bits & 1:
                        raise RuntimeError("encrypted, a password is needed")
                    dest = workdir / f"{n}-{k}-{Path(member.filename).name}"
                    with z.open(member) as src, open(dest, "wb") as out:
                        shutil.copyfileobj(src, out)
                    yield from _unpack(Input(f"{inp.name}!{member.filename}", dest, inp.found), workdir)
        # a damaged, encrypted or unsupported archive or member: the members before it are already read
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError, NotImplementedError) as e:
            yield _unopened(inp, suffix == ".zip" or bool(where), f"cannot open zip archive{where}: {one_line(e)}")
    elif magic[:2] in (b"\xff\xfe", b"\xfe\xff") and sniff(inp.path) != "xml":
        yield _as_utf8(inp, workdir / f"{n}-{inp.path.name}")
    else:
        yield inp


def _gunzip(src: Path, dest: Path) -> str | None:
    """Decompress every member of gzip file `src` into `dest`; None if it is whole, else where it broke off,
    with everything decompressed before that kept (a log copied while it was written, a download cut short:
    the gzip module would drop the last block read and say nothing)."""
    d, fed = zlib.decompressobj(wbits=31), False
    with open(src, "rb") as f, open(dest, "wb") as out:
        while chunk := f.read(1 << 20):
            while chunk:
                if not fed and not chunk.strip(b"\0"):
                    break  # zeros after the last member: padding, as the gzip module allows
                fed = True
                try:
                    out.write(d.decompress(chunk))
                except zlib.error as e:
                    return f"data corrupt after {out.tell():,} bytes of text ({e})"
                if not d.eof:
                    break
                chunk, d, fed = d.unused_data, zlib.decompressobj(wbits=31), False  # the next member
        out.write(d.flush())
        return f"stream cut short after {out.tell():,} bytes of text" if fed and not d.eof else None


def _as_utf8(inp: Input, dest: Path) -> Input:
    """A UTF-16 text file other than Event XML (which its reader takes as it is): JSON lines or syslog text
    that Windows PowerShell 5.1's `>` or `Out-File` wrote, as UTF-8, line for line (evidence cites the same
    lines). Characters that are no UTF-16 become U+FFFD, as in the XML reader."""
    with open(inp.path, "rb") as raw, open(dest, "w", encoding="utf-8", newline="") as out:
        text = io.TextIOWrapper(raw, encoding="utf-16", errors="replace", newline="")
        while chunk := text.read(1 << 20):
            out.write(chunk.removeprefix("\ufeff") if out.tell() == 0 else chunk)
    return Input(inp.name, dest, inp.found)


def _unopened(inp: Input, named_so: bool, problem: str) -> Input:
    """An archive that does not open: a problem to report, or, when its name does not call it an archive,
    the file itself, read as whatever it holds."""
    return Input(inp.name, inp.path, inp.found, problem) if named_so else inp


# Small files share statements (planning one costs ~10-20 ms, more than reading a small file), in groups of
# at most this many files and bytes: what a group with a bad file in it costs to read again, file by file.
GROUP_FILES = 500
GROUP_BYTES = 64 << 20
SMALL_FILE = 1 << 20  # EVTX, XML, syslog and auditd: ~1000 events at most (JSON lines: jsonfile.SMALL_FILE)
# readers whose small files are read together: (module, function taking [(path, name)])
GROUP_READERS = {"evtx": ("evtxfile", "load_group"), "xml": ("xmlfile", "load_group"),
                 "syslog": ("xmlfile", "load_syslog_group"), "auditd": ("auditd", "load_group")}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # gone or unreadable: its reader reports it
        return 0


def load(store: EventStore, inputs: list[Input], fmt: str, diag: Diagnostics,
         on_file: Callable[[Input], None] | None = None) -> list[FileInfo]:
    """Load every input; an unrecognised or unreadable file becomes a diagnostic, never a crash."""
    store.expect_bytes(sum(_size(inp.path) for inp in inputs))
    first_rowid = store.next_rowid
    infos: list[FileInfo] = []
    # consecutive small files of one reader (a JSON dialect, EVTX or XML) read with one statement
    batch: list[Input] = []
    batch_kind, batch_bytes = "", 0

    def flush() -> None:
        if not batch:
            return
        loaded = None
        files = [(i.path, i.name) for i in batch]
        if len(batch) > 1 and batch_kind in GROUP_READERS:
            # lazily, as their readers: the evtx library is only the EVTX reader's need
            module, func = GROUP_READERS[batch_kind]
            loaded = getattr(importlib.import_module(f"stagehunt.sources.{module}"), func)(store, files, diag)
        elif len(batch) > 1:
            loaded = jsonfile.load_json_lines_batch(store, files, batch_kind)
        if loaded is None:  # one file, or a batch with a bad file in it: one by one (nothing was kept)
            loaded = [info for i in batch if (info := _load_one(store, i, batch_kind, diag)) is not None]
        infos.extend(loaded)
        batch.clear()

    for inp in inputs:
        if on_file:
            on_file(inp)
        if inp.problem is not None:
            flush()  # files keep their order in the store
            diag.add(inp.name, inp.problem)
            store.begin_file(inp.name, "archive (unreadable)")
            continue
        if inp.damage is not None:
            diag.add(inp.name, inp.damage)
        if _empty(inp.path):  # a quiet host's export, a log just rotated: nothing to read, nothing wrong
            flush()
            store.begin_file(inp.name, "empty").notes.append("empty: no events")
            continue
        name = fmt if fmt != "auto" else sniff(inp.path)
        kind = _batch_kind(inp.path, name)
        if kind is not None:
            size = _size(inp.path)
            if batch and (kind != batch_kind or len(batch) >= GROUP_FILES or batch_bytes + size > GROUP_BYTES):
                flush()
            if not batch:
                batch_kind, batch_bytes = kind, 0
            batch.append(inp)
            batch_bytes += size
            continue
        flush()  # files keep their order in the store
        if name is None:
            tried = ", ".join(k for k in FORMAT_HELP if k not in ("auto", "json"))
            if inp.found:  # a README or licence beside the logs: say so, but it is not a parse error
                store.begin_file(inp.name, "skipped").notes.append(f"not telemetry in a known format (tried: {tried})")
            else:
                diag.add(inp.name, f"unrecognised format (tried: {tried}){_hint(inp.path)}")
                store.begin_file(inp.name, "unrecognised")
            continue
        if (info := _load_one(store, inp, name, diag)) is not None:
            infos.append(info)
    flush()
    store.finish()
    _report_timeless(store, diag, first_rowid)
    return infos


def _report_timeless(store: EventStore, diag: Diagnostics, first_rowid: int) -> None:
    """Events whose time could not be read (a missing UtcTime, a locale's own spelling of it) cannot be placed
    in any window: each is a problem of its record, not a silent gap in the detections. Only the rows from
    `first_rowid` on: those this load added."""
    per_file = store.con.execute("SELECT source_file, count(*) FROM events WHERE time IS NULL AND rowid >= ? "
                                 "GROUP BY ALL", [first_rowid]).fetchall()
    if not per_file:
        return
    first = store.con.execute(f"""
        SELECT source_file, line_of_row(source_line, rowid), source_record FROM events
        WHERE time IS NULL AND rowid >= ?
        QUALIFY row_number() OVER (PARTITION BY source_file ORDER BY rowid) <= {MAX_KEPT_PER_FILE}
        ORDER BY rowid""", [first_rowid]).fetchall()
    why = ("no time could be read (Sysmon's UtcTime such as 2026-11-20 23:41:19.123, or ISO 8601 system time): "
           "the detections cannot place this event in time")
    for file, line, record in first:
        diag.add(file, why, line=None if record is not None else line, record=record)
    for file, n in per_file:
        diag.add_count(file, n - min(n, MAX_KEPT_PER_FILE))


def _hint(path: Path) -> str:
    """For a file no reader knows, what it looks like when that is a common wrong export ("" otherwise)."""
    try:
        with open(path, "rb") as f:
            if not f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip().startswith((b"[", b"{")):
                return ""  # not JSON: nothing else is worth a look
        rec = jsonfile.first_record(path)
    except OSError:
        return ""
    if isinstance(rec, dict) and {"ProviderName", "Properties"} <= rec.keys():
        return ("; this is PowerShell `Get-WinEvent | ConvertTo-Json`, whose event data has no field names: "
                "export with `Get-WinEvent ... | ForEach-Object { $_.ToXml() }` or `wevtutil qe LOG /f:xml` instead")
    return ""


def _empty(path: Path) -> bool:
    """True for a file with no content: nothing, blank lines, a byte order mark, or an empty JSON array."""
    if _size(path) > 4096:
        return False
    try:
        with open(path, "rb") as f:
            text = f.read().removeprefix(b"\xef\xbb\xbf").strip()
    except OSError:  # gone or unreadable: its reader reports it
        return False
    return text == b"" or (text.startswith(b"[") and text.endswith(b"]") and not text[1:-1].strip())


def _batch_kind(path: Path, name: str | None) -> str | None:
    """With which neighbours a small file can share a statement: the reader of the group (a JSON dialect, or
    one of GROUP_READERS); None when it is read on its own."""
    if name in GROUP_READERS:
        return name if 0 < _size(path) < SMALL_FILE else None
    if name in ("json", *DIALECTS):
        return jsonfile.batch_dialect(path, name)
    return None


def _load_one(store: EventStore, inp: Input, name: str, diag: Diagnostics) -> FileInfo | None:
    """Load one file with the reader `name`; a file it cannot read is reported and still listed."""
    before = len(store.files)
    try:
        return READERS[name](store, inp.path, inp.name, diag)
    except (ValueError, OSError) as e:
        diag.add(inp.name, f"cannot read as {name}: {e}")
        if len(store.files) == before:  # failed before it began: still list the file
            store.begin_file(inp.name, f"{name} (unreadable)")
    return None
