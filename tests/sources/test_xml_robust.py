"""Property tests: garbage and damage in XML, syslog and Azure Syslog inputs never raise out of
`sources.load`, never invent an event, and never lose one without a diagnostic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from realdata import AZURE_SYSLOG, EVTX_FILES, evtx_xml_records, one_line, write_syslog, write_xml_document

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.schema import COLUMN_NAMES
from stagehunt.sources import xmlfile
from stagehunt.sources.xmlfile import event_start

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
EVENT_COLUMNS = [c for c in COLUMN_NAMES if not c.startswith("source_")]

# pieces that upset an XML parser in different ways (unclosed comment and CDATA included), plus noise
FRAGMENTS = ["<", ">", "&", "&amp", "&lt ", "<!--", "-->", "<![CDATA[", "]]>", "<?xml version='1.0'?>", "<Event",
             "<Event>", "</Event>", "<Events>", "</Events>", "<EventData>", "<Data Name='x'>", "</Data>", '"', "'",
             "</System>", "\x00", "é", " ", "garbage"]
garbage_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet=st.characters(
    blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=20)), min_size=1, max_size=6).map("".join)
garbage_line = st.one_of(garbage_text.map(str.encode), st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")))


class Workdir:
    def __init__(self, tmp: Path):
        self.tmp = tmp

    def load(self, name: str, data: bytes, fmt: str = "auto") -> tuple[list[tuple], Diagnostics, list]:
        path = self.tmp / name
        path.write_bytes(data)
        diag = Diagnostics()
        from stagehunt.store import EventStore
        with EventStore() as store:
            sources.load(store, [sources.Input(name, path)], fmt, diag)
            rows = store.con.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY rowid").fetchall()
            return rows, diag, store.files


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    return Workdir(tmp_path_factory.mktemp("xml"))


@pytest.fixture(scope="module")
def evtx_events(work: Workdir) -> list[tuple]:
    rows, diag, _ = work.load("src.evtx", EVTX_FILES[2].read_bytes())
    assert diag.total == 0 and rows
    return rows


def insert(lines: list[bytes], extra: list[tuple[int, bytes]]) -> bytes:
    """`lines` with each (position, line) of `extra` inserted."""
    out = list(lines)
    for pos, line in sorted(extra, key=lambda x: x[0], reverse=True):
        out.insert(min(pos, len(out)), line)
    return b"".join(line + b"\n" for line in out)


@FAST
@given(st.lists(st.tuples(st.integers(0, 20), garbage_line), min_size=1, max_size=8))
def test_garbage_lines_in_an_event_per_line_file(work, evtx_events, extra):
    lines = [one_line(x).encode() for x in evtx_xml_records(EVTX_FILES[2])]
    rows, diag, _ = work.load("lines.xml", insert(lines, extra), "xml")
    assert rows == evtx_events  # every event line is intact, so every event is loaded, in order
    # text between events loses nothing; a stray event tag is reported
    assert bool(diag.counts["lines.xml"]) == any(event_start(g) >= 0 or b"</Event>" in g for _, g in extra)


@FAST
@given(st.lists(st.tuples(st.integers(0, 400), garbage_line), min_size=1, max_size=6))
# `</Event><Event` right after the first event's </System>: its System alone read as an event (found by CI)
@example(extra=[(23, b"</Event><Event")])
def test_garbage_lines_in_a_document(work, evtx_events, extra):
    lines = write_xml_document(EVTX_FILES[2], work.tmp / "clean.xml").read_bytes().splitlines()
    rows, diag, _ = work.load("doc.xml", insert(lines, extra), "xml")
    assert not Counter(rows) - Counter(evtx_events)  # nothing invented or altered
    assert len(rows) + diag.counts["doc.xml"] >= len(evtx_events)  # nothing lost without a word


@FAST
@given(st.data())
def test_truncated_document_keeps_the_events_before_the_cut(work, evtx_events, data):
    text = write_xml_document(EVTX_FILES[2], work.tmp / "clean.xml").read_bytes()
    cut = data.draw(st.integers(0, len(text)))
    rows, diag, _ = work.load("cut.xml", text[:cut], "xml")
    assert rows == evtx_events[:len(rows)]
    started, i = 0, event_start(text[:cut])
    while i >= 0:
        started, i = started + 1, event_start(text[:cut], i + 1)
    assert len(rows) + diag.counts["cut.xml"] >= started


@pytest.fixture(scope="module")
def syslog_clean(work: Workdir) -> tuple[list[bytes], list[tuple], int]:
    lines = write_syslog(AZURE_SYSLOG, work.tmp / "clean.log").read_bytes().splitlines()
    rows, diag, _ = work.load("clean-syslog", b"\n".join(lines) + b"\n", "syslog")
    return lines, rows, diag.total


@pytest.fixture(scope="module")
def azure_clean(work: Workdir) -> tuple[list[bytes], list[tuple], int]:
    lines = AZURE_SYSLOG.read_bytes().splitlines()
    rows, diag, _ = work.load("clean.json", b"\n".join(lines) + b"\n", "azure-syslog")
    return lines, rows, diag.total


@FAST
@given(st.lists(st.tuples(st.integers(0, 100), garbage_line), min_size=1, max_size=8))
def test_garbage_lines_in_sysmon_syslog(work, syslog_clean, extra):
    clean, want, want_errors = syslog_clean
    rows, diag, files = work.load("syslog", insert(clean, extra), "syslog")
    assert rows == want
    with_event = sum(1 for _, g in extra if event_start(g) >= 0)
    assert diag.counts["syslog"] == want_errors + with_event
    skipped = sum(1 for _, g in extra if g.strip() and event_start(g) < 0)
    assert bool(files[0].notes) == (skipped > 0)


@FAST
@given(st.lists(st.tuples(st.integers(0, 100), garbage_line), min_size=1, max_size=8))
def test_garbage_rows_in_azure_syslog(work, azure_clean, extra):
    clean, want, want_errors = azure_clean
    rows, diag, _ = work.load("azure.json", insert(clean, extra), "azure-syslog")
    assert rows == want
    bad_json = sum(1 for _, g in extra if g.strip())  # no garbage line is a JSON object
    assert diag.counts["azure.json"] == want_errors + bad_json


@FAST
@given(block=st.integers(7, 3000), damage=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(FRAGMENTS)),
                                                    max_size=4))
# an end tag inside the first start tag, then the lost event's own end tag: one loss, reported once
@example(block=7, damage=[(1, "</Event>")])
def test_block_boundaries_never_split_an_event_or_hide_a_loss(work, evtx_events, block, damage):
    """Documents are read in blocks; with any block size the same events come out, damaged or not."""
    text = bytearray("".join(one_line(x) for x in evtx_xml_records(EVTX_FILES[2])).encode())
    for pos, fragment in damage:
        text[pos % len(text):pos % len(text)] = fragment.encode()
    path = work.tmp / "blocks.xml"
    path.write_bytes(bytes(text))
    whole, small = Diagnostics(), Diagnostics()
    assert list(xmlfile._Document(path, "x", whole).events()) == \
        list(xmlfile._Document(path, "x", small, block=block).events())
    assert [(p.line, p.message) for p in small.problems] == [(p.line, p.message) for p in whole.problems]


def test_a_stray_end_tag_inside_an_event_skips_that_event_and_says_so(work, evtx_events):
    """`</Event>` right after an event's `</System>` still leaves valid XML: parsed as it stands, that event
    would load without its EventData. It is reported and skipped; a damaged start tag is told apart."""
    lines = write_xml_document(EVTX_FILES[2], work.tmp / "clean.xml").read_bytes().splitlines()
    systems = [k for k, line in enumerate(lines) if line.strip() == b"</System>"]
    cut = systems[3]  # the fourth event
    rows, diag, _ = work.load("stray.xml", insert(lines, [(cut + 1, b"</Event>")]), "xml")
    assert rows == evtx_events[:3] + evtx_events[4:]
    [problem] = diag.problems
    assert problem.message == "a stray </Event> cuts this event short; it is skipped"
    starts = [k for k, line in enumerate(lines) if line.lstrip().startswith(b"<Event ")]
    assert problem.line == starts[3] + 1
    # a start tag damaged instead: that event is lost with the older report, the one before it is kept
    damaged = list(lines)
    damaged[starts[4]] = damaged[starts[4]].replace(b"<Event ", b"<Evnt ", 1)
    rows, diag, _ = work.load("start.xml", b"\n".join(damaged) + b"\n", "xml")
    assert rows == evtx_events[:4] + evtx_events[5:]
    assert [p.message for p in diag.problems] == [
        "</Event> without its <Event>: an event with a damaged start tag is lost"]
