"""Windows Event XML, Sysmon-for-Linux syslog lines, and Azure Monitor Syslog rows carrying that XML.

Every <Event> (with the Windows event namespace or none) is flattened by flatten.py to the `flat`
dialect and loaded through jsonfile.insert_records, so it maps to canonical columns like any other
source. Origins are line numbers: the line itself for one-event-per-line inputs, the line where the
<Event> starts for whole documents. A malformed event becomes a diagnostic and reading resumes at
the next <Event>, so one bad record never costs the rest of the file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element, ParseError, XMLPullParser, fromstring
from xml.parsers.expat import errors as expat_errors

import orjson

from stagehunt.diagnostics import Diagnostics
from stagehunt.sources import flatten
from stagehunt.sources.jsonfile import insert_records

if TYPE_CHECKING:
    from stagehunt.store import EventStore, FileInfo

Triple = tuple[bytes, int | None, int | None]
_ROOT = b"<_stagehunt>"  # virtual root: concatenated <Event> documents (wevtutil qe) then parse as one
PIECE = 1 << 20  # documents are read in pieces of at most this many bytes


def event_start(text: bytes, start: int = 0) -> int:
    """Offset of the next `<Event` tag (not <Events>, <EventData>, <EventID>...) at or after `start`, or -1."""
    i = text.find(b"<Event", start)
    while i >= 0:
        if text[i + 6:i + 7] in (b" ", b">", b"/", b"\t", b"\r", b"\n", b""):
            return i
        i = text.find(b"<Event", i + 6)
    return -1


def _count_events(line: bytes) -> int:
    n, i = 0, event_start(line)
    while i >= 0:
        n, i = n + 1, event_start(line, i + 6)
    return n


def _strip_declaration(line: bytes) -> bytes:
    """Remove `<?xml ...?>` (evtx_dump repeats it before every event; XML allows it only at the start)."""
    i = line.find(b"<?xml")
    while i >= 0:
        j = line.find(b"?>", i)
        if j < 0:
            return line[:i]
        line = line[:i] + line[j + 2:]
        i = line.find(b"<?xml", i)
    return line


def _lines(path: Path, xml: bool = True, limit: int = -1) -> Iterator[tuple[int, int, bytes]]:
    """(1-based line number, offset in the line, text) as UTF-8; lines longer than `limit` come in pieces
    (wevtutil writes a whole export on one line). For `xml`, declarations are removed; UTF-16 (PowerShell
    `>` redirects) is transcoded."""
    with open(path, "rb") as f:
        bom = f.read(2)
        f.seek(0)
        if bom in (b"\xff\xfe", b"\xfe\xff"):
            text = io.TextIOWrapper(f, encoding="utf-16", errors="replace", newline="")
            read: Callable[[], bytes] = lambda: text.readline(limit).encode()  # noqa: E731
        else:
            read = lambda: f.readline(limit)  # noqa: E731
        ln, off = 1, 0
        while piece := read():
            if ln == 1 and off == 0 and piece.startswith(b"\xef\xbb\xbf"):
                piece = piece[3:]
            yield ln, off, _strip_declaration(piece) if xml and b"<?xml" in piece else piece
            if piece.endswith(b"\n"):
                ln, off = ln + 1, 0
            else:
                off += len(piece)


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


# -- one event per line (Get-WinEvent ToXml, Sysmon for Linux syslog) -------------------------------------

def _line_events(path: Path, name: str, diag: Diagnostics, other: Callable[[int], None]) -> Iterator[Triple]:
    """Events of lines holding one <Event> each; `other(line)` is called for non-blank lines without one."""
    for ln, _, raw in _lines(path):
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


def _is_line_per_event(path: Path) -> bool:
    for _, off, raw in _lines(path, limit=PIECE):
        line = raw.strip()
        if line:
            return off == 0 and raw.endswith(b"\n") and event_start(line) == 0 and line.endswith(b"</Event>") \
                and event_start(line, 1) < 0
    return False


# -- whole documents -----------------------------------------------------------------------------------

def _is_event(el: Element) -> bool:
    return el.tag.endswith("Event") and flatten.local(el.tag) == "Event"


class _Document:
    """Pull-parses a document line by line; on an error, reports it and restarts at the next <Event>."""

    def __init__(self, name: str, diag: Diagnostics):
        self.name, self.diag = name, diag
        self.parser: XMLPullParser | None = None
        self.stack: list[Element] = []
        self.open_events: list[int] = []  # start lines of the <Event>s being parsed
        self.base = self.offset = 0  # line, and byte offset in it, where the current parser started
        self.seen = 0  # <Event> elements the parser began, good or bad
        self.tags = 0  # `<Event` tags in the text: more than `seen` means some were never parsed
        self.started = False

    def events(self, pieces: Iterator[tuple[int, int, bytes]]) -> Iterator[Triple]:
        for ln, off, piece in pieces:
            self.tags += _count_events(piece)
            pos: int | None = 0
            while pos is not None:
                if self.parser is None:
                    # the first parser reads from the top (an <Events> wrapper included); later ones resync
                    i = event_start(piece, pos) if self.started else pos
                    if i < 0:
                        break
                    self._start(ln, off + i)
                    chunk = piece[i:]
                else:
                    chunk = piece
                assert self.parser is not None
                self.parser.feed(chunk)
                pos = None
                try:
                    yield from self._drain(ln)
                except ParseError as e:
                    pos = self._failed(e, ln, off, piece)
        yield from self._finish()
        if self.tags > self.seen:  # e.g. an unclosed comment or CDATA section swallowed them without an error
            for _ in range(self.tags - self.seen):
                self.diag.add(self.name, "an <Event> was never parsed: malformed XML before it hides it "
                                         "(unclosed comment or CDATA?)")

    def _start(self, ln: int, offset: int) -> None:
        self.parser = XMLPullParser(events=("start", "end"))
        self.parser.feed(_ROOT)
        self.base, self.offset, self.stack, self.open_events = ln, offset, [], []
        self.started = True

    def _drain(self, ln: int) -> Iterator[Triple]:
        assert self.parser is not None
        for ev, el in self.parser.read_events():
            if ev == "start":
                self.stack.append(el)
                if _is_event(el):
                    self.open_events.append(ln)
                    self.seen += 1
                continue
            self.stack.pop()
            if not _is_event(el):
                continue
            start = self.open_events.pop()
            if self.stack:
                self.stack[-1].remove(el)  # keeps memory flat on big documents
            try:
                yield flatten.from_xml(el)[0], start, None
            except ValueError as e:
                self.diag.add(self.name, f"malformed event: {e}", line=start)

    def _failed(self, e: ParseError, ln: int, off: int, piece: bytes) -> int | None:
        """Report a parse error; return where in `piece` (of line `ln`, at `off`) to look for the next <Event>."""
        eline, ecol = getattr(e, "position", (1, 0))
        at = self.base + eline - 1
        col = ecol - len(_ROOT) + self.offset if eline == 1 else ecol  # byte offset in line `at`
        if not self.open_events and at == ln and piece.startswith(b"</", max(col - off, 0)):
            pass  # the closing tag of a wrapper (</Events>) opened before a resync: nothing is lost
        elif self.open_events:
            self.diag.add(self.name, f"malformed XML in the <Event> starting here: {_reason(e)} "
                                     f"at line {at}, column {col + 1}", line=self.open_events[-1])
        else:
            self.diag.add(self.name, f"malformed XML: {_reason(e)} at column {col + 1}", line=at)
        self.parser = None
        if at != ln:
            return None
        # the error may sit on the `<Event` of the next event (the previous one cut short): restart
        # there, but always past where the failed parser started, so we cannot loop
        nxt = col if (ln, col) != (self.base, self.offset) else col + 1
        return min(max(nxt - off, 0), len(piece))

    def _finish(self) -> Iterator[Triple]:
        if self.parser is None:
            return
        self.parser.feed(b"</" + _ROOT[1:])
        try:
            yield from self._drain(0)
            self.parser.close()
        except ParseError:
            if self.open_events:  # an unclosed <Events> alone loses nothing
                self.diag.add(self.name, "document ends inside this <Event> (file truncated?)",
                              line=self.open_events[-1])
        self.parser = None


# -- readers ---------------------------------------------------------------------------------------------

def load(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
    """Windows Event XML: a document (<Events> or concatenated <Event>s) or one <Event> per line."""
    info = store.begin_file(name, "xml")
    if _is_line_per_event(path):
        def other(ln: int) -> None:  # in an event-per-line file any other line is a damaged record
            diag.add(name, "line holds no <Event>", line=ln)
        insert_records(store, info, _line_events(path, name, diag, other), "flat", diag)
        return info
    doc = _Document(name, diag)
    insert_records(store, info, doc.events(_lines(path, limit=PIECE)), "flat", diag)
    if doc.seen == 0:
        raise ValueError("no <Event> element found: not Windows Event XML")
    return info


def load_syslog(store: EventStore, path: Path, name: str, diag: Diagnostics) -> FileInfo:
    """Sysmon for Linux syslog lines (`... sysmon: <Event>...</Event>`); other syslog lines are skipped."""
    info = store.begin_file(name, "syslog")
    skipped: list[int] = []
    insert_records(store, info, _line_events(path, name, diag, skipped.append), "flat", diag)
    if skipped:
        info.notes.append(f"{len(skipped)} line(s) without Sysmon XML skipped (first: line {skipped[0]})")
    if info.rows == 0 and not diag.counts.get(name):
        raise ValueError("no line carries a Sysmon <Event>")
    return info


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def _json_rows(path: Path, name: str, diag: Diagnostics) -> Iterator[tuple[dict, int | None, int | None]]:
    """(row, line, array index) of a JSON-lines file or a JSON array; bad rows go to diagnostics."""
    if _is_json_array(path):
        try:
            rows = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as e:
            raise ValueError(f"not valid JSON: {e}") from None
        for k, row in enumerate(rows if isinstance(rows, list) else [rows], 1):
            if isinstance(row, dict):
                yield row, None, k
            else:
                diag.add(name, "array element is not a JSON object", record=k)
        return
    for ln, _, raw in _lines(path, xml=False):
        if not raw.strip():
            continue
        try:
            row = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            diag.add(name, f"malformed JSON: {e}", line=ln)
            continue
        if isinstance(row, dict):
            yield row, ln, None
        else:
            diag.add(name, "not a JSON object", line=ln)


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
