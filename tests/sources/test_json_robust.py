"""JSON readers on damaged input: never an exception, every bad line reported where it is, every
good line loaded with its own line number, nothing already read lost. Then the input plumbing:
arrays, .gz and .zip containers, directories, globs, standard input and the CLI's exit codes."""

from __future__ import annotations

import gzip
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.simulate.ecs import ecs_record
from stagehunt.simulate.events import SysmonEvent
from stagehunt.simulate.writers import flat_record, sumo_record
from stagehunt.sources.jsonfile import _is_clean_jsonl, _line_count
from stagehunt.store import EventStore

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def _event(marker: int) -> SysmonEvent:
    """A network event whose pid is `marker` (the line it is written on), so a loaded row names its line."""
    return SysmonEvent(3, T0, "WS1", {"ProcessGuid": "{0000-1}", "ProcessId": str(marker), "Image": r"C:\a.exe",
                                      "Protocol": "tcp", "Initiated": "true", "SourceIp": "10.0.0.1",
                                      "SourcePort": "50000", "DestinationIp": "203.0.113.7",
                                      "DestinationPort": "443"})


RECORDS: dict[str, Callable[[int], dict[str, Any]]] = {
    "flat": lambda m: flat_record(_event(m), m),
    "ecs": lambda m: ecs_record(_event(m), m),
    "sumo-cse": lambda m: sumo_record(_event(m)),
}


def _wrong_types(dialect: str, rec: dict[str, Any], which: int) -> dict[str, Any]:
    """`rec` with a value of the wrong JSON type where the dialect expects another."""
    rec = orjson.loads(orjson.dumps(rec))  # deep copy
    if dialect == "flat":
        key, value = [("Image", {"nested": [1, 2]}), ("DestinationPort", [443]), ("EventID", {"x": 1}),
                      ("UtcTime", True)][which % 4]
        rec[key] = value
    elif dialect == "ecs":
        [lambda: rec.update(process="not an object"), lambda: rec.update(user="bob"),
         lambda: rec["winlog"].update(event_data={"A": {"b": 1}}),
         lambda: rec.update(destination={"ip": ["203.0.113.7"], "port": "443"})][which % 4]()
    else:
        [lambda: rec.update(fields="x"), lambda: rec.update(pid={"a": 1}), lambda: rec.update(dstPort=[1]),
         lambda: rec.update(metadata_deviceEventId=3)][which % 4]()
    return rec


# A line is drawn as (kind, bytes maker). Kinds: good (a record of the dialect), blank (nothing to
# read), bad (never a JSON object: must be reported) and odd (a JSON object with wrong types: loaded
# or reported, but exactly once).
Line = tuple[str, Callable[[str, int], bytes]]
_garbage = st.binary(max_size=40).filter(lambda b: b"\n" not in b)


def _classify(kind: str, raw: bytes, first: bool = False) -> str:
    """What a line is, whatever produced it (random bytes may well spell `{}`). A BOM at the start of
    the file is no part of the first line."""
    s = raw.strip()
    if first and s.startswith(b"\xef\xbb\xbf"):
        s = s[3:].strip()
    if not s:
        return "blank"
    if kind in ("good", "odd"):
        return kind
    try:
        value = orjson.loads(s)
    except orjson.JSONDecodeError:
        return "bad"
    return "odd" if isinstance(value, dict) else "bad"


@st.composite
def line_kinds(draw: st.DrawFn) -> Line:
    def good(d: str, ln: int) -> bytes:
        return orjson.dumps(RECORDS[d](ln))

    choice = draw(st.sampled_from(["good", "good", "good", "crlf", "blank", "garbage", "cut", "utf8", "array",
                                   "scalar", "odd", "two"]))
    if choice == "good":
        return "good", good
    if choice == "crlf":
        return "good", lambda d, ln: good(d, ln) + b"\r"
    if choice == "blank":
        ws = draw(st.sampled_from([b"", b" ", b"\t", b"\r", b"  \t "]))
        return "blank", lambda d, ln: ws
    if choice == "garbage":
        junk = draw(_garbage)
        return "bad", lambda d, ln: junk
    if choice == "cut":
        frac = draw(st.floats(0.01, 0.99))
        return "bad", lambda d, ln: (lambda g: g[:max(1, int(len(g) * frac))])(good(d, ln))
    if choice == "utf8":
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        return "bad", lambda d, ln: good(d, ln).replace(b'"C:', b'"' + junk + b"C:", 1).replace(
            b'"baseImage":"', b'"baseImage":"' + junk, 1)
    if choice == "array":
        return "bad", lambda d, ln: b"[" + good(d, ln) + b"]"
    if choice == "scalar":
        value = draw(st.sampled_from([b'"text"', b"123", b"null", b"true", b"[]", b"-1.5e3"]))
        return "bad", lambda d, ln: value
    if choice == "two":
        return "bad", lambda d, ln: good(d, ln) + good(d, ln)  # two objects on one line
    which = draw(st.integers(0, 3))
    return "odd", lambda d, ln: orjson.dumps(_wrong_types(d, RECORDS[d](ln), which))


def _load(path: Path | str, fmt: str = "auto") -> tuple[list[tuple], Diagnostics, list]:
    diag = Diagnostics()
    with EventStore() as store:
        infos = sources.load(store, list(sources.expand([str(path)], store.tmpdir)), fmt, diag)
        rows = store.con.execute("SELECT source_file, source_line, source_record, pid, kind FROM events "
                                 "ORDER BY rowid").fetchall()
    return rows, diag, infos


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_accounting(kinds: list[str], rows: list[tuple], diag: Diagnostics, name: str) -> None:
    loaded = [r[1] for r in rows]
    # an event loaded without a time it could read (an odd line's UtcTime: true) is also reported as such
    timeless = [p.line for p in diag.problems if p.message.startswith("no time could be read")]
    reported = [p.line for p in diag.problems if not p.message.startswith("no time could be read")]
    assert all(p.file == name for p in diag.problems)
    assert len(loaded) == len(set(loaded)), "a line was loaded twice"
    assert len(reported) + len(timeless) == len(set(reported + timeless)) == diag.total, \
        "a line was reported twice or without its line"
    assert not set(loaded) & set(reported), "a line was both loaded and reported"
    assert set(timeless) <= set(loaded), "an event without a time was reported but not loaded"
    for ln, kind in enumerate(kinds, 1):
        if kind == "good":
            assert ln in loaded, f"good line {ln} lost"
        elif kind == "bad":
            assert ln in reported, f"bad line {ln} not reported"
        elif kind == "blank":
            assert ln not in loaded and ln not in reported
        else:
            assert ln in loaded or ln in reported, f"line {ln} neither loaded nor reported"
    for _, ln, record, pid, _ in rows:
        assert record is None
        if kinds[ln - 1] == "good":
            assert pid == ln, "a good line was loaded with the wrong line number"


@pytest.mark.parametrize("dialect", sorted(RECORDS))
@FUZZ
@given(lines=st.lists(line_kinds(), min_size=1, max_size=15), bom=st.booleans())
def test_damaged_json_lines_lose_nothing_good_and_report_every_bad_line(dialect: str, lines: list[Line],
                                                                        bom: bool) -> None:
    raw = [make(dialect, ln) for ln, (_, make) in enumerate(lines, 1)]
    kinds = [_classify(kind, r, first=i == 0 and not bom) for i, ((kind, _), r) in enumerate(zip(lines, raw,
                                                                                                 strict=True))]
    # a UTF-8 BOM (PowerShell 5 `Out-File -Encoding utf8`) must not cost the first record
    data = (_BOM if bom else b"") + b"\n".join(raw) + b"\n"
    # a file that starts with `[` is a JSON array (salvaged as one when damaged): tested below
    assume(not _starts_an_array(data))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(data)
        rows, diag, _ = _load(path, dialect)
    _check_accounting(kinds, rows, diag, str(path))


_WS = b" \t\r\n\x0b\x0c"
_BOM = b"\xef\xbb\xbf"


def _starts_no_other_format(line: Line) -> bool:
    """Junk starting like XML, EVTX or UTF-16 text (a byte order mark: only XML exports come so) selects that
    reader (by design): not under test. (Junk starting like a gzip or zip container is: a file not named so
    is read as it is when it does not open as one.)"""
    head = line[1]("flat", 1)
    return not (head.startswith((b"ElfFile\x00", b"\xff\xfe", b"\xfe\xff"))
                or head.lstrip(_WS).startswith(b"<"))


def _starts_an_array(data: bytes) -> bool:
    return data.removeprefix(_BOM).lstrip(b" \t\r\n").startswith(b"[")


@FUZZ
@given(head=st.lists(line_kinds().filter(lambda k: k[0] == "bad").filter(_starts_no_other_format), min_size=1,
                     max_size=3),
       n_good=st.integers(1, 5), dialect=st.sampled_from(sorted(RECORDS)))
def test_a_damaged_first_line_does_not_hide_the_file_from_sniffing(head: list[Line], n_good: int,
                                                                    dialect: str) -> None:
    # a log cut at the front (rotation, `tail -c`, a partial copy) starts mid-record
    lines = [*head, *[("good", lambda d, ln: orjson.dumps(RECORDS[d](ln)))] * n_good]
    raw = [make(dialect, ln) for ln, (_, make) in enumerate(lines, 1)]
    kinds = [_classify(kind, r, first=i == 0) for i, ((kind, _), r) in enumerate(zip(lines, raw, strict=True))]
    data = b"\n".join(raw) + b"\n"
    assume(not _starts_an_array(data))  # that is a JSON array, damaged: see the array tests
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(data)
        rows, diag, infos = _load(path)
    assert [i.format for i in infos] == [dialect]
    _check_accounting(kinds, rows, diag, str(path))


@FUZZ
@given(n=st.integers(1, 6), cut=st.floats(0, 1), array=st.booleans())
def test_a_truncated_file_keeps_every_complete_record_before_the_cut(n: int, cut: float, array: bool) -> None:
    recs = [orjson.dumps(RECORDS["flat"](i)) for i in range(1, n + 1)]
    full = (b"[\n" + b",\n".join(recs) + b"\n]\n") if array else b"\n".join(recs) + b"\n"
    data = full[:int(len(full) * cut)]
    ends, pos = [], 2 if array else 0  # byte offset where each record ends
    for r in recs:
        ends.append(pos + len(r))
        pos += len(r) + (2 if array else 1)
    complete = [i for i, end in enumerate(ends, 1) if end <= len(data)]
    if array:  # damage: a cut element, or an array never closed
        problems = 0 if not data.strip() or data.rstrip().endswith(b"]") else 1
    else:  # damage: a last line that is not a whole record
        problems = 1 if data and not data.endswith(b"\n") and len(data) not in ends else 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.json"
        path.write_bytes(data)
        rows, diag, _ = _load(path, "flat")
    assert [pid for *_, pid, _ in rows] == complete
    assert diag.total == problems, [str(p) for p in diag.problems]


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["auto", "json", "flat", "ecs", "sumo-cse"]),
       container=st.sampled_from(["", ".gz", ".zip"]),
       magic=st.sampled_from([b"", b"\x1f\x8b", b"PK\x03\x04"]))
def test_random_bytes_never_raise(data: bytes, fmt: str, container: str, magic: bytes) -> None:
    data = magic + data  # starting like a container half of the time
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"random.bin{container}"
        path.write_bytes(data)
        rows, diag, _ = _load(path, fmt)
    assert all(r[0] == str(path) for r in rows)
    assert all(p.file == str(path) for p in diag.problems)


# -- arrays, containers, directories, globs -------------------------------------------------------

def _jsonl(path: Path, markers: list[int]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(RECORDS["flat"](m)) + b"\n" for m in markers))
    return path


@pytest.mark.parametrize("clean", [True, False], ids=["fast path", "careful path"])
def test_a_record_larger_than_duckdbs_default_object_size_is_read_whole(tmp_path: Path, clean: bool) -> None:
    """DuckDB's JSON reader defaults to 16 MiB objects; we do not raise it (its buffers cost memory and time),
    so a bigger record must still load in full, cited by its own line, whichever path reads the file."""
    big = RECORDS["flat"](2) | {"EventID": 1, "CommandLine": "x" * (17 << 20)}
    lines = [orjson.dumps(RECORDS["flat"](1)), orjson.dumps(big), orjson.dumps(RECORDS["flat"](3))]
    if not clean:
        lines.insert(1, b"")  # a blank line: no longer one record per line
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    diag = Diagnostics()
    with EventStore() as store:
        sources.load(store, list(sources.expand([str(path)], store.tmpdir)), "auto", diag)
        rows = store.con.execute("SELECT source_line, pid, length(command_line) FROM events ORDER BY rowid").fetchall()
    second = 3 if not clean else 2
    assert diag.total == 0
    assert rows == [(1, 1, None), (second, 2, 17 << 20), (second + 1, 3, None)]


def test_json_array_records_are_numbered_from_one_and_bad_elements_reported(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_bytes(orjson.dumps([RECORDS["flat"](1), "not an object", RECORDS["ecs"](3) | {"EventID": 3},
                                   RECORDS["flat"](4)], option=orjson.OPT_INDENT_2))
    rows, diag, infos = _load(path)
    assert infos[0].format == "flat"
    assert [(line, record, pid) for _, line, record, pid, _ in rows] == [(None, 1, 1), (None, 3, None), (None, 4, 4)]
    assert [(p.line, p.record) for p in diag.problems] == [(None, 2)]
    assert "array element is not a JSON object" in diag.problems[0].message


def test_a_truncated_json_array_keeps_the_elements_before_the_damage(tmp_path: Path) -> None:
    full = orjson.dumps([RECORDS["flat"](i) for i in (1, 2, 3)], option=orjson.OPT_INDENT_2)
    path = tmp_path / "cut.json"
    path.write_bytes(full[:full.rfind(b'"ProcessId"')])  # the export stopped inside element 3
    rows, diag, _ = _load(path, "flat")
    assert [(record, pid) for _, _, record, pid, _ in rows] == [(1, 1), (2, 2)]
    assert [p.record for p in diag.problems] == [3]


def test_gzip_keeps_its_own_name_so_evidence_cites_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "sysmon.jsonl.gz"
    path.write_bytes(gzip.compress(_jsonl(tmp_path / "x", [1, 2]).read_bytes()))
    rows, diag, infos = _load(path)
    assert diag.total == 0 and infos[0].format == "flat"
    assert [(f, line, pid) for f, line, _, pid, _ in rows] == [(str(path), 1, 1), (str(path), 2, 2)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.integers(1, 60), members=st.integers(1, 3), cut=st.floats(0.0, 1.0), tail=st.sampled_from(
    [b"", b"\0" * 700, b"garbage"]))
def test_a_damaged_gzip_reads_as_the_text_before_the_damage(tmp_path: Path, events: int, members: int, cut: float,
                                                           tail: bytes) -> None:
    """Differential: a .gz cut anywhere, of one or more members, with zero padding or junk after it, reads
    exactly as the text zlib gets out of it, written plainly (the gzip module dropped its last block, and
    said nothing when some text had come out)."""
    import zlib

    text = _jsonl(tmp_path / "x", list(range(1, events + 1))).read_bytes()
    parts = [text[k * len(text) // members:(k + 1) * len(text) // members] for k in range(members)]
    whole = b"".join(gzip.compress(p, mtime=0) for p in parts)
    blob = (whole + tail)[:max(11, int(len(whole + tail) * cut))]
    # the reference: what zlib decompresses, member after member, until the data ends or breaks
    expected, rest, broken = b"", blob, None
    while rest.strip(b"\0"):
        d = zlib.decompressobj(wbits=31)
        try:
            expected += d.decompress(rest)
        except zlib.error:
            broken = "corrupt"
            break
        if not d.eof:
            broken = "cut short"
            break
        rest = d.unused_data
    with tempfile.TemporaryDirectory() as folder:
        case = Path(folder)
        (case / "events.jsonl.gz").write_bytes(blob)
        (case / "plain.jsonl").write_bytes(expected)
        gz_rows, gz_diag, _ = _load(case / "events.jsonl.gz", "flat")
        plain_rows, plain_diag, _ = _load(case / "plain.jsonl", "flat")
    assert [r[1:] for r in gz_rows] == [r[1:] for r in plain_rows]
    gz_problems = [(p.line, p.message) for p in gz_diag.problems]
    gzip_notes = [m for line, m in gz_problems if line is None and "gzip" in m]
    assert [x for x in gz_problems if x[1] not in gzip_notes] == [(p.line, p.message) for p in plain_diag.problems]
    if broken is None:
        assert not gzip_notes
    elif expected:
        assert len(gzip_notes) == 1 and gzip_notes[0].startswith(
            f"gzip {'data corrupt' if broken == 'corrupt' else 'stream cut short'} after {len(expected):,} bytes")


def test_zip_members_are_named_archive_bang_member(tmp_path: Path) -> None:
    path = tmp_path / "logs.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.jsonl", _jsonl(tmp_path / "a", [1]).read_bytes())
        z.writestr("host2/b.jsonl.gz", gzip.compress(_jsonl(tmp_path / "b", [2, 3]).read_bytes()))
        z.writestr("notes/", b"")
    rows, diag, _ = _load(path)
    assert diag.total == 0
    assert [(f, line, pid) for f, line, _, pid, _ in rows] == [
        (f"{path}!a.jsonl", 1, 1), (f"{path}!host2/b.jsonl.gz", 1, 2), (f"{path}!host2/b.jsonl.gz", 2, 3)]


def test_an_archive_that_does_not_open_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    _jsonl(logs / "good.jsonl", [1, 2])
    (logs / "broken.zip").write_bytes(b"PK\x03\x04 not a zip")
    (logs / "cut.jsonl.gz").write_bytes(gzip.compress(b"x" * 1000)[:10])  # the header alone: no text
    encrypted = logs / "locked.zip"  # the members before an unreadable one are kept
    with zipfile.ZipFile(encrypted, "w") as z:
        z.writestr("first.jsonl", _jsonl(tmp_path / "first", [3]).read_bytes())
        z.writestr("second.jsonl", _jsonl(tmp_path / "second", [4]).read_bytes())
    blob = bytearray(encrypted.read_bytes())
    at = blob.index(b"PK\x01\x02", blob.index(b"PK\x01\x02") + 4)  # the second member's directory entry
    blob[at + 8] |= 1  # its flags: encrypted
    encrypted.write_bytes(bytes(blob))
    rows, diag, _ = _load(logs)
    assert sorted(pid for *_, pid, _ in rows) == [1, 2, 3]
    assert sorted((Path(p.file).name, p.message) for p in diag.problems) == [
        ("broken.zip", "cannot open zip archive: File is not a zip file"),
        ("cut.jsonl.gz", "cannot decompress gzip: stream cut short after 0 bytes of text"),
        ("locked.zip", "cannot open zip archive at member second.jsonl: encrypted, a password is needed")]
    res = _cli("hunt", str(logs))
    assert res.returncode == 0 and "Traceback" not in res.stderr.decode()
    assert f"warning: {logs / 'broken.zip'}: cannot open zip archive" in res.stderr.decode()
    assert _cli("hunt", "--strict", str(logs)).returncode == 2


def test_a_file_that_only_starts_like_an_archive_is_read_as_what_it_holds(tmp_path: Path) -> None:
    # a log whose first line was damaged into container magic: its good lines are read, the first reported
    for magic in (b"PK\x03\x04", b"\x1f\x8b"):
        path = tmp_path / "events.jsonl"
        path.write_bytes(magic + b"junk\n" + _jsonl(tmp_path / "x", [1, 2]).read_bytes())
        rows, diag, _ = _load(path, "flat")
        assert [(line, pid) for _, line, _, pid, _ in rows] == [(2, 1), (3, 2)]
        assert [(p.line, p.message.split(":")[0]) for p in diag.problems] == [(1, "malformed JSON")]


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf", b"[]", b"[ \n ]\n"],
                         ids=["nothing", "blank lines", "a BOM", "[]", "[ ] spread"])
def test_an_empty_file_is_noted_not_an_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "quiet-host.jsonl").write_bytes(content)
    rows, diag, _ = _load(tmp_path / "quiet-host.jsonl")
    assert rows == [] and diag.total == 0
    res = _cli("inspect", "--json", "quiet-host.jsonl", cwd=tmp_path)
    assert res.returncode == 0, res.stderr.decode()
    [report] = orjson.loads(res.stdout)["files"]
    assert (report["format"], report["events"], report["error_count"], report["notes"]) == (
        "empty", 0, 0, ["empty: no events"])
    hunt = _cli("hunt", "quiet-host.jsonl", cwd=tmp_path)
    assert hunt.returncode == 0 and "0 finding(s) from 0 event(s) in 1 file(s)" in hunt.stderr.decode()


def test_get_winevent_convertto_json_is_named_with_the_way_to_export_events(tmp_path: Path) -> None:
    # PowerShell's ConvertTo-Json of Get-WinEvent: event data as unnamed Properties, which no reader can map
    record = {"Id": 3, "ProviderName": "Microsoft-Windows-Sysmon", "MachineName": "ws1",
              "Properties": [{"Value": "-"}, {"Value": "2023-11-14 22:13:20.000"}]}
    (tmp_path / "events.json").write_bytes(orjson.dumps([record]))
    _, diag, _ = _load(tmp_path / "events.json")
    [message] = [p.message for p in diag.problems]
    assert message.startswith("unrecognised format (tried: ")
    assert "Get-WinEvent | ConvertTo-Json" in message and "$_.ToXml()" in message
    (tmp_path / "other.json").write_bytes(orjson.dumps([{"a": 1}]))  # other unknown JSON: no such hint
    _, diag, _ = _load(tmp_path / "other.json")
    assert [p.message for p in diag.problems] == [diag.problems[0].message.split(";")[0]]


def test_directories_are_read_recursively_skipping_hidden_files(tmp_path: Path) -> None:
    _jsonl(tmp_path / "top.jsonl", [1])
    (tmp_path / "deep" / "er").mkdir(parents=True)
    _jsonl(tmp_path / "deep" / "er" / "low.jsonl", [2])
    _jsonl(tmp_path / ".hidden.jsonl", [3])
    rows, diag, _ = _load(tmp_path)
    assert diag.total == 0
    assert sorted((Path(f).name, pid) for f, *_, pid, _ in rows) == [("low.jsonl", 2), ("top.jsonl", 1)]


def test_globs_expand_including_recursive_double_star(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _jsonl(tmp_path / "one.jsonl", [1])
    _jsonl(tmp_path / "a" / "two.jsonl", [2])
    (tmp_path / "skip.txt").write_text("not a log\n")
    rows, _, _ = _load(str(tmp_path / "*.jsonl"))
    assert [pid for *_, pid, _ in rows] == [1]
    rows, _, _ = _load(str(tmp_path / "**" / "*.jsonl"))
    assert sorted(pid for *_, pid, _ in rows) == [1, 2]
    with tempfile.TemporaryDirectory() as tmp, EventStore() as store, pytest.raises(sources.InputError,
                                                                                    match="no file matches"):
        list(sources.expand([str(Path(tmp) / "*.nothing")], store.tmpdir))


def test_an_unrecognised_file_is_reported_with_the_formats_tried(tmp_path: Path) -> None:
    path = tmp_path / "README.txt"
    path.write_text("these are notes, not a log\n")
    rows, diag, _ = _load(path)
    assert rows == []
    [problem] = diag.problems
    assert problem.file == str(path)
    assert "unrecognised format" in problem.message
    for fmt in ("flat", "ecs", "sumo-cse", "evtx", "xml", "syslog"):
        assert fmt in problem.message


# -- the command line -----------------------------------------------------------------------------

def _cli(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "stagehunt.cli", *args], input=stdin, capture_output=True,
                          timeout=120, check=False, cwd=cwd)


def test_stdin_is_read_with_a_dash() -> None:
    data = b"".join(orjson.dumps(RECORDS["ecs"](m)) + b"\n" for m in (1, 2, 3))
    res = _cli("inspect", "--json", "-", stdin=data)
    assert res.returncode == 0, res.stderr.decode()
    [report] = orjson.loads(res.stdout)["files"]
    assert (report["file"], report["format"], report["events"]) == ("<stdin>", "ecs", 3)
    assert report["by_event_id"] == {"sysmon": {"3": 3}}


def test_strict_makes_a_bad_line_exit_2_and_names_file_and_line(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", [1])
    path.write_bytes(path.read_bytes() + b'{"EventID": 3, "Ima\n' + orjson.dumps(RECORDS["flat"](3)) + b"\n")
    lenient = _cli("inspect", "--json", "a.jsonl", cwd=tmp_path)
    assert lenient.returncode == 0
    [report] = orjson.loads(lenient.stdout)["files"]
    assert (report["events"], report["error_count"], report["errors"][0]["line"]) == (2, 1, 2)
    assert "warning: a.jsonl:2: malformed JSON" in lenient.stderr.decode()
    strict = _cli("inspect", "--json", "--strict", "a.jsonl", cwd=tmp_path)
    assert strict.returncode == 2
    assert "warning: a.jsonl:2: malformed JSON" in strict.stderr.decode()


def test_a_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    res = _cli("inspect", "nope.jsonl", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.decode().splitlines() == ["stagehunt: error: nope.jsonl: no such file or directory"]


def test_a_missing_long_path_is_still_one_line(tmp_path: Path) -> None:
    missing = tmp_path / ("x" * 70) / "nope.jsonl"
    res = _cli("inspect", str(missing))
    assert res.returncode == 2
    err = res.stderr.decode()
    assert "Traceback" not in err
    assert err.splitlines() == [f"stagehunt: error: {missing}: no such file or directory"]


# -- the cleanliness check that lets DuckDB number the lines maps the file a window at a time ----------------

@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
       odd=st.lists(st.tuples(st.integers(0, 11), st.sampled_from([b"", b" {}", b"null", b"\r"])), max_size=2),
       final_newline=st.booleans())
@example(lengths=[5], odd=[(1, b"\r")], final_newline=False)  # a last line that is not a record, no final newline
def test_the_windowed_cleanliness_check_sees_a_bad_line_wherever_the_windows_fall(lengths, odd, final_newline):
    """Lines of every length around the 4 KiB window edges; a blank, indented or non-object line anywhere."""

    lines = [b'{"k":"' + b"x" * (n - 1) + b'"}' for n in lengths]
    for at, text in odd:
        lines.insert(at % (len(lines) + 1), text)
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    # every line but the last starts with `{` (and so does the last one, unless it is the empty one after
    # the final newline, or the blank one after it, which DuckDB skips without shifting any line number)
    body = data[:-1] if data.endswith(b"\n") else data
    expected = all(line.startswith(b"{") for line in body.split(b"\n")[:-1]) and \
        (body.split(b"\n")[-1].startswith(b"{") or (data.endswith(b"\n") and body.split(b"\n")[-1] in (b"",)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.jsonl"
        path.write_bytes(data)
        assert _is_clean_jsonl(path, window=4096) == expected
        assert _is_clean_jsonl(path) == expected
        # the quick check's count: every line, the last one with or without its newline
        count = data.count(b"\n") + (not data.endswith(b"\n"))
        assert _line_count(path, window=4096) == _line_count(path) == count


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_a_null_line_among_events_is_reported_where_an_empty_object_is_loaded(newline: bytes) -> None:
    """The fast path counts lines instead of checking each one: a bare `null` line gives DuckDB a row as well
    (as many rows as lines), but it is no event and must be reported, while `{}` is an object and loads as
    one, with every line number right."""
    good = [orjson.dumps(RECORDS["flat"](ln)) for ln in range(1, 7)]
    lines = [good[0], b"{}", good[2], b"null", good[4], b"  " + good[5]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(newline.join(lines) + newline)
        rows, diag, _ = _load(path)
    parse_problems = [p.line for p in diag.problems if not p.message.startswith("no time could be read")]
    assert parse_problems == [4]
    assert [p.line for p in diag.problems if p.line != 4] == [2]  # `{}` loads, with no time: said so too
    assert [r[1] for r in rows] == [1, 2, 3, 5, 6]
    assert [r[3] for r in rows] == [1, None, 3, 5, 6]  # each record's pid is its line number


def test_the_line_count_of_empty_and_unterminated_files(tmp_path: Path) -> None:
    for data, lines in [(b"", 0), (b"{}", 1), (b"{}\n", 1), (b"{}\n{}", 2), (b"\n\n", 2)]:
        (tmp_path / "f.jsonl").write_bytes(data)
        assert _line_count(tmp_path / "f.jsonl", window=4096) == lines


# -- pretty-printed objects one after another (`jq .`, PowerShell ConvertTo-Json, json.dump(indent=2)) --------

def _pretty(records: list[dict[str, Any]], indent: int = 2, newline: bytes = b"\n") -> tuple[bytes, list[int]]:
    """The stream's bytes and the line each object starts on."""
    import json

    out, starts, line = [], [], 1
    for rec in records:
        text = json.dumps(rec, indent=indent).encode().replace(b"\n", newline) + newline
        starts.append(line)
        line += text.count(b"\n")
        out.append(text)
    return b"".join(out), starts


@pytest.mark.parametrize("dialect", ["flat", "ecs", "sumo-cse"])
def test_a_stream_of_pretty_printed_objects_is_read_with_the_line_each_starts_on(tmp_path: Path, dialect: str):
    data, starts = _pretty([RECORDS[dialect](m) for m in (1, 2, 3)])
    path = tmp_path / "jq.json"
    path.write_bytes(data)
    rows, diag, infos = _load(path)
    assert infos[0].format == dialect and diag.total == 0
    assert [(line, record) for _, line, record, _, _ in rows] == [(s, None) for s in starts]
    assert starts[1] > 3  # really several lines per object


def test_one_pretty_printed_object_powershell_style_with_bom_and_crlf(tmp_path: Path) -> None:
    data, _ = _pretty([RECORDS["flat"](7)], indent=4, newline=b"\r\n")
    path = tmp_path / "event.json"
    path.write_bytes(b"\xef\xbb\xbf" + data)
    rows, diag, infos = _load(path)
    assert infos[0].format == "flat" and diag.total == 0
    assert [(line, pid) for _, line, _, pid, _ in rows] == [(1, 7)]


def test_a_damaged_pretty_object_costs_only_itself_and_a_cut_one_is_reported(tmp_path: Path) -> None:
    data, starts = _pretty([RECORDS["flat"](m) for m in (1, 2, 3, 4)])
    lines = data.split(b"\n")
    lines[starts[1]] = lines[starts[1]].replace(b'":', b'"', 1)  # object 2: a colon lost on its second line
    cut = b"\n".join(lines[:starts[3] + 2])  # object 4: the file ends two lines into it
    path = tmp_path / "damaged.json"
    path.write_bytes(cut)
    rows, diag, _ = _load(path)
    assert [(line, pid) for _, line, _, pid, _ in rows] == [(starts[0], 1), (starts[2], 3)]
    assert [p.line for p in diag.problems] == [starts[1], starts[3]]
    assert "malformed JSON object" in diag.problems[0].message
    assert "not closed at the end of the file" in diag.problems[1].message


@pytest.mark.parametrize("dialect", sorted(RECORDS))
@FUZZ
@given(objects=st.lists(st.sampled_from(["good", "good", "colon", "comma", "cut", "garbage", "scalar"]),
                        min_size=1, max_size=8))
def test_damaged_pretty_streams_keep_every_good_object_and_report_every_bad_one(dialect: str, objects: list[str]):
    """Each object is loaded at the line it starts on or reported at that line; nothing is both or neither."""
    import json

    chunks, starts, kinds, line = [], [], [], 1
    for i, kind in enumerate(objects, 1):
        text = json.dumps(RECORDS[dialect](i), indent=2)
        if kind == "colon":
            text = text.replace('":', '"', 1)
        elif kind == "comma":
            text = text.replace(",\n", "\n", 1)
        elif kind == "cut" and i < len(objects):  # the next object starts before this one closes
            text = text.rsplit("\n", 1)[0]
        elif kind == "garbage":
            text = text.replace('"', "\x00", 2)
        elif kind == "scalar":
            text = "{\n  \"EventID\"\n}"  # `{` ... `}` in the first column, but no valid object between
        chunks.append(text + "\n")
        starts.append(line)
        # `cut` on the last object leaves it whole: nothing follows to cut it
        kinds.append("good" if kind == "good" or (kind == "cut" and i == len(objects)) else "bad")
        line += chunks[-1].count("\n")
    data = "".join(chunks).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pretty.json"
        path.write_bytes(data)
        rows, diag, _ = _load(path, dialect)
    loaded = [r[1] for r in rows]
    reported = [p.line for p in diag.problems]
    assert loaded == [s for s, k in zip(starts, kinds, strict=True) if k == "good"]
    assert reported == [s for s, k in zip(starts, kinds, strict=True) if k == "bad"]


def test_a_record_of_the_wrong_shape_is_reported_without_our_temporary_file(tmp_path: Path) -> None:
    """DuckDB's error names the chunk file the careful path wrote and its line 1; the user sees their own."""
    path = tmp_path / "ecs.jsonl"
    path.write_bytes(orjson.dumps(RECORDS["ecs"](1)) + b"\n" + orjson.dumps(RECORDS["ecs"](2) | {"process": "x"})
                     + b"\n")
    rows, diag, _ = _load(path)
    assert [(line, pid) for _, line, _, pid, _ in rows] == [(1, 1)]
    [problem] = diag.problems
    assert (problem.file, problem.line) == (str(path), 2)
    assert "record does not fit the ecs format" in problem.message
    assert "chunk" not in problem.message and "stagehunt-" not in problem.message and "in line" not in problem.message


def _every_column(path: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[list[tuple], list[tuple]]:
    diag = Diagnostics()
    with EventStore() as store:
        sources.load(store, list(sources.expand([str(path)], store.tmpdir)), "auto", diag)
        rows = store.con.execute("SELECT * FROM events ORDER BY rowid").fetchall()
    return rows, [(p.line, p.record, p.message) for p in diag.problems]


ELEMENTS: dict[str, Callable[[str, int], Any]] = {
    "good": lambda d, i: RECORDS[d](i),
    "5156 ProcessID": lambda d, i: {"EventID": 5156, "Channel": "Security", "Hostname": "WS1",
                                    "ProcessID": str(i), "Application": r"\device\x.exe", "Direction": "%%14593",
                                    "SourceAddress": "10.0.0.1", "DestAddress": "203.0.113.9", "DestPort": "443",
                                    "EventTime": "2024-03-01 12:00:00"},
    "null": lambda d, i: None,
    "empty": lambda d, i: {},
    "scalar": lambda d, i: i,
    "list": lambda d, i: [RECORDS[d](i)],
    "unknown keys": lambda d, i: {"Foo": i},
}


@FUZZ
@given(dialect=st.sampled_from(sorted(RECORDS)), kinds=st.lists(st.sampled_from(sorted(ELEMENTS)), max_size=8),
       indent=st.booleans(), prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\r\n  ", b"\xef\xbb\xbf\n"]),
       cut=st.one_of(st.none(), st.just("after a comma"), st.floats(0.3, 1.0)))
def test_a_json_array_reads_the_same_in_one_statement_as_element_by_element(dialect: str, kinds: list[str],
                                                                             indent: bool, prefix: bytes,
                                                                             cut: float | str | None) -> None:
    """The one-statement read of a JSON array (DuckDB, nothing held in Python) and the careful path (each
    element parsed and checked) agree on every column of every row and on every problem reported, for
    whole and cut exports."""
    from stagehunt.sources import jsonfile

    elements = [ELEMENTS[k](dialect if k != "5156 ProcessID" else "flat", i) for i, k in enumerate(kinds, 1)]
    assume(any(isinstance(e, dict) and e for e in elements))  # else no dialect to sniff
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.json"
        data = prefix + orjson.dumps([RECORDS[dialect](0), *elements], option=orjson.OPT_INDENT_2 if indent else 0)
        if cut is not None:  # an export cut short; right after a comma, DuckDB alone would see no damage
            data = data[:data.rfind(b",") + 1] if cut == "after a comma" else data[:int(len(data) * cut)]
        path.write_bytes(data)
        fast, careful = _every_column(path), _careful_only(path, jsonfile, "_fast_array")
    assert fast == careful


def test_a_big_json_array_is_read_without_holding_its_elements(tmp_path: Path) -> None:
    """The elements of a clean array go to DuckDB straight from the file: sniffing parses only the first one
    (it parsed the whole file, and held every element as a Python object: 1.6 GB for a 211 MB export)."""
    from stagehunt.sources import jsonfile

    path = tmp_path / "export.json"
    path.write_bytes(orjson.dumps([RECORDS["flat"](i) for i in range(1, 2001)]))
    parsed: list[int] = []
    real = jsonfile.orjson.loads

    def counting(data: Any) -> Any:
        parsed.append(len(data))
        return real(data)

    jsonfile.orjson.loads = counting
    try:
        rows, diag, infos = _load(path)
    finally:
        jsonfile.orjson.loads = real
    assert infos[0].format == "flat" and diag.total == 0
    assert [(line, record, pid) for _, line, record, pid, _ in rows] == [(None, i, i) for i in range(1, 2001)]
    assert max(parsed, default=0) < 4096  # no parse of the file or of a big part of it


def _careful_only(path: Path, module: Any, shortcut: str) -> tuple[list[tuple], list[tuple]]:
    """_every_column with one of the one-statement readers (`module.shortcut`) switched off: what the
    careful path reads."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, shortcut, lambda *a: False)
        return _every_column(path)


@pytest.mark.parametrize("dialect", sorted(RECORDS))
@FUZZ
@given(lines=st.lists(line_kinds(), min_size=1, max_size=15), bom=st.booleans(), final_newline=st.booleans())
def test_json_lines_with_a_few_bad_lines_read_the_same_as_record_by_record(dialect: str, lines: list[Line],
                                                                          bom: bool, final_newline: bool) -> None:
    """Only the suspect lines of a damaged file are read carefully, the rest by DuckDB from a copy: every
    column of every row and every problem must be what reading each record carefully gives."""
    from stagehunt.sources import damaged_jsonl

    raw = [make(dialect, ln) for ln, (_, make) in enumerate(lines, 1)]
    data = (_BOM if bom else b"") + b"\n".join(raw) + (b"\n" if final_newline else b"")
    assume(data.removeprefix(_BOM).startswith(b"{"))  # else the lines are not what is read first
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        path.write_bytes(data)
        rows, problems = _every_column(path)
        careful_rows, careful_problems = _careful_only(path, damaged_jsonl, "load")
    assert (rows, sorted(problems, key=str)) == (careful_rows, sorted(careful_problems, key=str))


def test_one_bad_line_in_many_costs_one_more_read_not_a_record_by_record_one(tmp_path: Path) -> None:
    """A cut last line (rotation, a copy of a live log) or one corrupt line: the other lines still go to
    DuckDB from the file's bytes; only the suspects are parsed in Python."""
    from stagehunt.sources import jsonfile

    good = [orjson.dumps(RECORDS["ecs"](i)) for i in range(1, 3001)]
    good[1499] = good[1499][:40]  # corrupt, mid-file
    good[2099] = orjson.dumps(RECORDS["ecs"](2100) | {"process": "not an object"})  # JSON, not the dialect's
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(good) + b"\n" + good[0][:55])  # and a last line cut short
    parsed: list[int] = []
    real = jsonfile.orjson.loads

    def counting(data: Any) -> Any:
        parsed.append(1)
        return real(data)

    jsonfile.orjson.loads = counting
    careful = jsonfile._careful
    jsonfile._careful = None  # type: ignore[assignment]  # reaching it would fail the test
    try:
        rows, diag, _ = _load(path)
    finally:
        jsonfile.orjson.loads, jsonfile._careful = real, careful
    assert [(ln, pid) for _, ln, _, pid, _ in rows] == [(i, i) for i in range(1, 3001) if i not in (1500, 2100)]
    assert [(p.line, p.message.split(":")[0]) for p in diag.problems] == [
        (1500, "malformed JSON"), (2100, "record does not fit the ecs format"), (3001, "malformed JSON")]
    assert len(parsed) <= 16  # the sniff, the suspects and their neighbours, not 3001 lines
    with EventStore() as store:  # the copy, as big as the input, does not outlive its load
        sources.load(store, list(sources.expand([str(path)], store.tmpdir)), "auto", Diagnostics())
        assert store.count() == 2998 and not list(store.tmpdir.glob("repaired*"))


@pytest.mark.parametrize("dialect", sorted(RECORDS))
@FUZZ
@given(objects=st.lists(st.sampled_from(["good", "good", "good", "compact", "colon", "cut", "scalar", "null",
                                         "nested at column 1", "close not at column 1", "text between",
                                         "blank between"]), min_size=1, max_size=8),
       bom=st.booleans(), crlf=st.booleans(), final_newline=st.booleans())
def test_a_pretty_printed_stream_reads_the_same_in_one_statement_as_object_by_object(
        dialect: str, objects: list[str], bom: bool, crlf: bool, final_newline: bool) -> None:
    """`jq .` output read by DuckDB in one statement, or object by object: every column of every row and
    every problem the same, for clean streams and for every way one can be damaged or oddly laid out."""
    import json

    from stagehunt.sources import jsonfile

    chunks = []
    for i, kind in enumerate(objects, 1):
        text = json.dumps(RECORDS[dialect](i), indent=2)
        if kind == "compact":
            text = json.dumps(RECORDS[dialect](i))  # a whole object on its `{` line
        elif kind == "colon":
            text = text.replace('":', '"', 1)
        elif kind == "cut":
            text = text.rsplit("\n", 1)[0]
        elif kind == "scalar":
            text = "{\n  \"EventID\"\n}"
        elif kind == "null":
            text = "null"
        elif kind == "nested at column 1":
            text = text.replace('\n  "', '\n"', 1).replace("{\n", "{\n\"inner\": {\n\"a\": 1\n},\n", 1)
        elif kind == "close not at column 1":
            text = text[:-2] + "  }"
        elif kind == "text between":
            text += "\nsome text"
        elif kind == "blank between":
            text += "\n \t"
        chunks.append(text)
    data = "\n".join(chunks) + ("\n" if final_newline else "")
    raw = (b"\xef\xbb\xbf" if bom else b"") + (data.replace("\n", "\r\n") if crlf else data).encode()
    assume(raw.removeprefix(b"\xef\xbb\xbf").startswith((b"{\n", b"{\r\n")))  # a stream: read as one first
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pretty.json"
        path.write_bytes(raw)
        fast, careful = _every_column(path), _careful_only(path, jsonfile, "_fast_pretty")
    assert fast == careful


def test_a_clean_pretty_printed_stream_goes_to_duckdb_whole(tmp_path: Path) -> None:
    """`jq . events.jsonl > pretty.json`: read in one statement (it was object by object in Python: 3x the
    time and 2.5x the memory), each event cited by the line its object starts on."""
    import json

    from stagehunt.sources import jsonfile

    path = tmp_path / "pretty.json"
    texts = [json.dumps(RECORDS["ecs"](i), indent=2) for i in range(1, 301)]
    path.write_text("\n".join(texts) + "\n")
    starts = [1 + sum(t.count("\n") + 1 for t in texts[:i]) for i in range(300)]
    careful = jsonfile._careful
    jsonfile._careful = None  # type: ignore[assignment]  # reaching it would fail the test
    try:
        rows, diag, infos = _load(path)
    finally:
        jsonfile._careful = careful
    assert infos[0].format == "ecs" and diag.total == 0
    assert [(line, pid) for _, line, _, pid, _ in rows] == list(zip(starts, range(1, 301), strict=True))


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_json_lines_from_powershell_read_as_their_utf8_twin(tmp_path: Path, encoding: str) -> None:
    """Windows PowerShell 5.1's `>` and `Out-File` write UTF-16 with a BOM: the same rows, lines and problems
    as the UTF-8 file (it was "unrecognised format")."""
    lines = [orjson.dumps(RECORDS["flat"](i)).decode() for i in range(1, 6)]
    lines[2] = lines[2][:30]  # a damaged line keeps its number
    text = "\r\n".join(lines) + "\r\n"
    utf8, utf16 = tmp_path / "events.jsonl", tmp_path / "events16.jsonl"
    utf8.write_text(text, encoding="utf-8", newline="")
    utf16.write_bytes(("\ufeff" + text).encode(encoding))
    (rows8, problems8), (rows16, problems16) = _every_column(utf8), _every_column(utf16)
    same_name = [tuple(str(utf8) if v == str(utf16) else v for v in r) for r in rows16]
    assert same_name == rows8 and len(rows8) == 4
    assert problems16 == problems8 and [p[0] for p in problems8] == [3]


def test_no_room_for_the_copy_of_a_damaged_file_falls_back_to_reading_it_record_by_record(tmp_path: Path) -> None:
    """The copy is as big as the input; a full disk must not end the run (the careful path needs no copy)."""
    import errno

    from stagehunt.sources import damaged_jsonl

    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(RECORDS["flat"](i)) for i in range(1, 6)) + b"\n{cut")
    expected = _careful_only(path, damaged_jsonl, "load")

    def full_disk(*_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(damaged_jsonl, "_write_copy", full_disk)
        assert _every_column(path) == expected and len(expected[0]) == 5 and [p[0] for p in expected[1]] == [6]


@pytest.mark.parametrize("layout", ["lines", "array"])
def test_events_without_a_readable_time_are_reported_not_silently_unused(tmp_path: Path, layout: str) -> None:
    """A network event whose time is missing or in a locale's spelling cannot fall in any window: it was
    loaded, counted and then silently absent from every detection."""
    records = [RECORDS["flat"](m) for m in range(1, 46)]
    for m, rec in enumerate(records, 1):
        if m % 3 == 0:
            rec.pop("UtcTime")
            rec.pop("TimeCreated", None)
            rec.pop("@timestamp", None)
        elif m % 3 == 1:
            rec["UtcTime"] = "11/20/2026 11:41:19 PM"  # en-US, as some exports render it
            rec.pop("TimeCreated", None)
            rec.pop("@timestamp", None)
    path = tmp_path / "events.json"
    if layout == "lines":
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    else:
        path.write_bytes(orjson.dumps(records))
    rows, diag, _ = _load(path)
    assert len(rows) == 45  # still events: counted by inspect, their context still usable
    timeless = [m for m in range(1, 46) if m % 3 != 2]
    assert diag.counts[str(path)] == len(timeless) == 30  # all counted, the first 20 kept
    where = [p.line if layout == "lines" else p.record for p in diag.problems]
    assert where == timeless[:20] and all(p.message.startswith("no time could be read") for p in diag.problems)
    res = _cli("hunt", "--strict", str(path))
    assert res.returncode == 2 and f"{path}" in res.stderr.decode()


def test_an_unreadable_utctime_falls_back_to_the_system_time(tmp_path: Path) -> None:
    """UtcTime in a locale's spelling beside an ISO @timestamp: the event takes the system time (it was NULL,
    since a present UtcTime hid the system time from the parse)."""
    rec = RECORDS["flat"](1) | {"UtcTime": "11/20/2026 11:41:19 PM", "@timestamp": "2026-11-20T23:41:19.250Z"}
    rec.pop("TimeCreated", None)
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(rec) + b"\n")
    diag = Diagnostics()
    with EventStore() as store:
        sources.load(store, list(sources.expand([str(path)], store.tmpdir)), "flat", diag)
        (time,) = store.con.execute("SELECT time FROM events").fetchone()
    assert time == datetime(2026, 11, 20, 23, 41, 19, 250000) and diag.total == 0


_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(st.characters(blacklist_categories=("Cs",)),
                                                                         max_size=8))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=5), inner, max_size=3), max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(elements=st.lists(st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), max_size=6), _VALUES,
                                         max_size=5) | _VALUES, max_size=10),
       indent=st.booleans(), bom=st.booleans())
def test_an_array_streamed_by_duckdb_reads_as_the_whole_array_in_python(elements: list, indent: bool,
                                                                         bom: bool) -> None:
    """Differential: a clean JSON array's elements handed over by DuckDB a batch at a time (what Azure Syslog
    and AUOMS exports take now: the whole array as Python objects was ~7x the file) are the records and
    problems of reading the whole array with orjson; with a BOM too (orjson refuses one, and the careful
    reading then took `[null]` for a JSON line)."""
    from stagehunt.sources.jsonfile import _array_items, _careful_array, _one_clean_array, _streamed_elements

    text = orjson.dumps(elements, option=orjson.OPT_INDENT_2 if indent else 0) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        plain, path = Path(tmp) / "plain.json", Path(tmp) / "export.json"
        plain.write_bytes(text)
        path.write_bytes((_BOM if bom else b"") + text)
        careful_problems: list[tuple] = []
        careful = list(_careful_array(plain, lambda *p: careful_problems.append(p)))
        streamed_problems: list[tuple] = []
        assert _one_clean_array(path)

        def report(*p: Any) -> None:
            streamed_problems.append(p)

        streamed = list(_array_items(_streamed_elements(path, report), report))
    assert streamed == careful and streamed_problems == careful_problems
