"""Windows Event XML, Sysmon-for-Linux syslog lines, and Azure Monitor Syslog rows carrying that XML.

Every <Event> (with the Windows event namespace or none) is flattened by flatten.py to the `flat`
dialect and loaded through jsonfile.insert_records, so it maps to canonical columns like any other
source. Origins are line numbers: the line where each <Event> starts. Every event is parsed on its
own, so a malformed one becomes a diagnostic and never costs the rest of the file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree.ElementTree import ParseError, fromstring
from xml.parsers.expat import errors as expat_errors

from stagehunt.diagnostics import Diagnostics
from stagehunt.sources import flatten
from stagehunt.sources.jsonfile import insert_group, insert_records
from stagehunt.store import FileInfo

if TYPE_CHECKING:
    from stagehunt.store import EventStore

Triple = tuple[bytes, int | None, int | None]
PIECE = 1 << 20  # documents are read in blocks of this many bytes


def event_start(text: bytes, start: int = 0) -> int:
    """Offset of the next `<Event` tag (not <Events>, <EventData>, <EventID>...) at or after `start`, or -1."""
    i = text.find(b"<Event", start)
    while i >= 0:
        if text[i + 6:i + 7] in (b" ", b">", b"/", b"\t", b"\r", b"\n", b""):
            return i
        i = text.find(b"<Event", i + 6)
    return -1


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) as UTF-8; UTF-16 files (PowerShell `>` redirects) are transcoded."""
    with open(path, "rb") as f:
        bom = f.read(2)
        f.seek(0)
        if bom in (b"\xff\xfe", b"\xfe\xff"):
            for ln, text in enumerate(io.TextIOWrapper(f, encoding="utf-16", errors="replace", newline=""), 1):
                yield ln, text.encode()
            return
        for ln, line in enumerate(f, 1):
            yield ln, line[3:] if ln == 1 and line.startswith(b"\xef\xbb\xbf") else line


def _reason(e: Exception, xml: bytes | None = None) -> str:
    if xml is not None and isinstance(e, ParseError) and not xml.endswith(b"</Event>"):
        return f"event XML cut short after {len(xml)} bytes (syslog message size limit?)"
    code = getattr(e, "code", None)
    return expat_errors.messages.get(code, str(e)) if isinstance(code, int) else str(e)


# Sysmon for Linux writes an entity followed by a space instead of `;` (`&lt unknown process&gt `,
# `&quot SELECT ...`): invalid XML that is still unambiguous, so it is repaired (only after a failed parse).
_LINUX_ENTITY = re.compile(rb"&(lt|gt|amp|quot|apos) ")


def _one_event(xml: bytes) -> bytes:
    """Flat record of one `<Event>...</Event>`; raises ParseError or ValueError."""
    try:
        root = fromstring(xml)
    except ParseError:
        fixed, n = _LINUX_ENTITY.subn(rb"&\1;", xml)
        if not n:
            raise
        root = fromstring(fixed)
    return flatten.from_xml(root)[0]


# -- one event per line (Sysmon for Linux syslog) ------------------------------------------------------

def _line_events(path: Path, name: str, diag: Diagnostics, other: Callable[[int], None]) -> Iterator[Triple]:
    """Events of lines holding one <Event> each; `other(line)` is called for non-blank lines without one."""
    for ln, raw in _lines(path):
        i = event_start(raw)
        if i < 0:
            if raw.strip():
                other(ln)
            continue
        xml = raw[i:].rstrip()
        try:
            yield _one_event(xml), ln, None
        except (ParseError, ValueError) as e:
            diag.add(name, f"malformed event XML: {_reason(e, xml)}", line=ln)


# -- whole documents -----------------------------------------------------------------------------------

def _blocks(path: Path, size: int = PIECE) -> Iterator[bytes]:
    """The file as UTF-8 in blocks of about `size` bytes (UTF-16 exports transcoded, a BOM dropped)."""
    with open(path, "rb") as f:
        bom = f.read(3)
        if bom[:2] in (b"\xff\xfe", b"\xfe\xff"):
            f.seek(0)
            text = io.TextIOWrapper(f, encoding="utf-16", errors="replace", newline="")
            while block := text.read(size):
                yield block.encode()
            return
        if bom != b"\xef\xbb\xbf":
            yield bom
        while block := f.read(size):
            yield block


# An event's parts after its System: the rest of an event a stray </Event> cut short holds them whole.
_PART_START = re.compile(rb"<(?:EventData|UserData|RenderingInfo)[\s>/]")
_PART_END = re.compile(rb"</(?:EventData|UserData|RenderingInfo)>|<(?:EventData|UserData|RenderingInfo)\s*/>")


class _Document:
    """Cuts a document into `<Event ...>...</Event>` pieces and parses each on its own.

    The wrapper, declarations and anything else between events are never parsed, so a damaged event
    costs only itself, whatever the damage (an unclosed comment, a cut line, a missing end tag).
    """

    def __init__(self, path: Path, name: str, diag: Diagnostics, block: int = PIECE):
        self.blocks, self.name, self.diag = _blocks(path, block), name, diag
        self.buf, self.pos, self.line, self.eof = b"", 0, 1, False
        self.seen = 0  # event start tags found
        self.gap_reported = False  # one report per stretch between two events, however it is cut in blocks
        # the last event parsed, held until the stretch after it is seen: a stray </Event> there can show
        # that it was cut short (and so parsed without the rest of its content)
        self.pending: Triple | None = None
        self.pending_parts = False  # whether the pending event had an EventData, UserData or RenderingInfo
        self.gap_system = False  # a <System> start tag seen in the stretch since the last event
        self.gap_part = [False, False]  # an event part's start and end tag seen there (the rest of one?)

    def _advance(self, to: int, gap: bool = True, scan_to: int | None = None) -> None:
        """Move to `to`; an end tag in a `gap` between events (up to `scan_to`) ends one whose start is damaged."""
        if to <= self.pos:
            return
        if gap and not self.gap_reported and (gap := self.buf.find(b"</Event>", self.pos, scan_to or to)) >= 0:
            self._scan_gap(gap)
            if self.pending is not None and all(self.gap_part) and not self.gap_system:
                # the rest of the last event (a whole part, no System of an event of its own) before this end tag:
                # a stray </Event> cut it short, and it parsed without that rest
                self.diag.add(self.name, "a stray </Event> cuts this event short; it is skipped",
                              line=self.pending[1])
                self.pending = None
            else:
                self.diag.add(self.name, "</Event> without its <Event>: an event with a damaged start tag is lost",
                              line=self.line + self.buf.count(b"\n", self.pos, gap))
            self.gap_reported = True
        elif gap:
            self._scan_gap(scan_to or to)
        self.line += self.buf.count(b"\n", self.pos, to)
        self.pos = to

    def _scan_gap(self, to: int) -> None:
        self.gap_system = self.gap_system or self.buf.find(b"<System", self.pos, to) >= 0
        for k, tag in enumerate((_PART_START, _PART_END)):
            self.gap_part[k] = self.gap_part[k] or tag.search(self.buf, self.pos, to) is not None

    def _more(self, keep_from: int) -> bool:
        """Drop what is before `keep_from` and read the next block; False at the end of the file."""
        self._advance(keep_from)
        self.buf, self.pos = self.buf[self.pos:], 0
        block = next(self.blocks, None)
        if block is None:
            self.eof = True
            return False
        self.buf += block
        return True

    def events(self) -> Iterator[Triple]:
        while True:
            i = event_start(self.buf, self.pos)
            if i < 0:
                # check the whole gap, then keep its last 7 bytes: a tag cut by the block boundary
                # (an end tag needs 8, so none is reported twice)
                self._advance(len(self.buf) - 7 if not self.eof else len(self.buf), scan_to=len(self.buf))
                if not self._more(self.pos):
                    self._advance(len(self.buf))
                    yield from self._flush()
                    return
                continue
            end = self.buf.find(b"</Event>", i)
            if end < 0 and not self.eof:
                self._more(i)
                continue
            self._advance(i)
            self.seen += 1
            self.gap_reported = self.gap_system = False
            self.gap_part = [False, False]
            nxt = event_start(self.buf, i + 6)
            if end < 0 or 0 <= nxt < end:
                yield from self._flush()
                why = "document ends inside this <Event> (file truncated?)" if nxt < 0 else \
                    "<Event> has no </Event> before the next <Event>"
                self.diag.add(self.name, why, line=self.line)
                if nxt < 0:
                    return
                self._advance(nxt, gap=False)
                continue
            xml = self.buf[i:end + 8]
            try:
                parsed: Triple | None = (_one_event(xml), self.line, None)
            except (ParseError, ValueError) as e:
                parsed = None
                self._rest_of_pending(xml)
                self.diag.add(self.name, f"malformed event XML: {_reason(e)}", line=self.line)
            yield from self._flush()
            self.pending, self.pending_parts = parsed, _PART_START.search(xml) is not None
            self._advance(end + 8, gap=False)

    def _rest_of_pending(self, xml: bytes) -> None:
        """A malformed piece holding whole event parts but no System, after an event of a System alone:
        `</Event><Event` inside one event split it in two (the gap check's case, with the rest in a piece)."""
        if (self.pending is not None and not self.pending_parts and b"<System" not in xml
                and _PART_START.search(xml) and _PART_END.search(xml)):
            self.diag.add(self.name, "a stray </Event> cuts this event short; it is skipped", line=self.pending[1])
            self.pending = None

    def _flush(self) -> Iterator[Triple]:
        if self.pending is not None:
            yield self.pending
            self.pending = None


# -- readers ---------------------------------------------------------------------------------------------

def _no_events(path: Path) -> str:
    """Why an XML file gave no event, with the way out when it is PowerShell's object serialisation."""
    with open(path, "rb") as f:
        head = f.read(4096).decode("utf-8", "replace").replace("\x00", "")  # UTF-16 exports, crudely
    for root, command in (("<Objs", "Export-Clixml"), ("<Objects", "ConvertTo-Xml")):
        if f"{root} " in head or f"{root}>" in head:
            return (f"no <Event> element found: this is PowerShell {command} (serialised objects), not Windows "
                    "Event XML; export with `Get-WinEvent ... | ForEach-Object { $_.ToXml() }` or "
                    "`wevtutil qe LOG /f:xml` instead")
    return "no <Event> element found: not Windows Event XML"


def load(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
    """Windows Event XML: an <Events> document, concatenated <Event>s (wevtutil), or one <Event> per line."""
    info = store.begin_file(name, "xml")
    doc = _Document(path, name, diag)
    insert_records(store, info, doc.events(), "flat", diag)
    if doc.seen == 0:
        raise ValueError(_no_events(path))
    return info


def load_group(store: EventStore, files: list[tuple[Path, str]], diag: Diagnostics) -> list[FileInfo]:
    """Several small Event XML files ((path, name) each) with one insert for all their events
    (jsonfile.insert_group): the same rows, files and diagnostics as `load` one by one."""
    entries = []
    for path, name in files:
        info = FileInfo(name, "xml", 0)  # the store's once its rows are in
        try:
            doc = _Document(path, name, diag)
            triples = list(doc.events())
            if doc.seen == 0:
                raise ValueError(_no_events(path))
        except (ValueError, OSError) as e:  # as sources.load reports a file `load` cannot read
            diag.add(name, f"cannot read as xml: {e}")
            triples = []  # load inserts nothing of a small file it fails on (rows go in at its end)
        entries.append((info, triples))
    return insert_group(store, entries, diag)


_NO_SYSMON = "no line carries a Sysmon <Event>"


def load_syslog(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
    """Sysmon for Linux syslog lines (`... sysmon: <Event>...</Event>`); other syslog lines are skipped."""
    info = store.begin_file(name, "syslog")
    skipped: list[int] = []
    insert_records(store, info, _line_events(path, name, diag, skipped.append), "flat", diag)
    _note_skipped(info, skipped)
    if info.rows == 0 and not diag.counts.get(name):
        raise ValueError(_NO_SYSMON)
    return info


def load_syslog_group(store: EventStore, files: list[tuple[Path, str]], diag: Diagnostics) -> list[FileInfo]:
    """Several small syslog files ((path, name) each) with one insert for all their events
    (jsonfile.insert_group): the same rows, files and diagnostics as `load_syslog` one by one. A fleet's
    rotated syslog files are many and small: 300 of them took 5 s one by one, nearly all of it planning."""
    entries = []
    for path, name in files:
        info = FileInfo(name, "syslog", 0)  # the store's once its rows are in
        skipped: list[int] = []
        try:
            triples = list(_line_events(path, name, diag, skipped.append))
        except OSError as e:  # as sources.load reports a file `load_syslog` cannot read
            diag.add(name, f"cannot read as syslog: {e}")
            triples = []
        _note_skipped(info, skipped)
        if not triples and not diag.counts.get(name):
            diag.add(name, f"cannot read as syslog: {_NO_SYSMON}")
        entries.append((info, triples))
    return insert_group(store, entries, diag)


def _note_skipped(info: FileInfo, skipped: list[int]) -> None:
    if skipped:
        info.notes.append(f"{len(skipped)} line(s) without Sysmon XML skipped (first: line {skipped[0]})")


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def _json_rows(path: Path, name: str, diag: Diagnostics) -> Iterator[tuple[dict, int | None, int | None]]:
    """(row, line, array index) of a JSON-lines file, a JSON array or pretty-printed rows; bad rows go to
    diagnostics, and a damaged array or a cut last row costs only what is damaged."""
    from stagehunt.sources.jsonfile import objects

    return objects(path, name, diag)


def _azure_events(path: Path, name: str, diag: Diagnostics, skipped: list[int]) -> Iterator[Triple]:
    for row, ln, rec in _json_rows(path, name, diag):
        msg = row.get("SyslogMessage")
        xml = msg.encode() if isinstance(msg, str) else b""
        i = event_start(xml)
        if i < 0:
            skipped[0] += 1  # AUOMS, daemon messages: another reader's business, not an error here
            continue
        xml = xml[i:].rstrip()
        try:
            yield _one_event(xml), ln, rec
        except (ParseError, ValueError) as e:
            diag.add(name, f"malformed Sysmon XML in SyslogMessage: {_reason(e, xml)}", line=ln, record=rec)


def load_azure_syslog(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
    """Azure Monitor `Syslog` rows (JSON) whose SyslogMessage holds Sysmon-for-Linux XML."""
    info = store.begin_file(name, "azure-syslog", origin_unit="record" if _is_json_array(path) else "line")
    skipped = [0]
    insert_records(store, info, _azure_events(path, name, diag, skipped), "flat", diag)
    if skipped[0]:
        info.notes.append(f"{skipped[0]} row(s) skipped: SyslogMessage is not Sysmon XML (e.g. AUOMS audit records)")
    return info
