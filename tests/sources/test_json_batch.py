"""Many small JSON-lines files read in one statement give exactly what reading them one by one gives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.sources import jsonfile
from stagehunt.store import EventStore
from tests.sources.test_json_robust import RECORDS, Line, line_kinds


def _write(path: Path, dialect: str, markers: list[int]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(RECORDS[dialect](m)) + b"\n" for m in markers))
    return path


def _state(store: EventStore, diag: Diagnostics) -> tuple:
    rows = store.con.execute("SELECT * FROM events ORDER BY rowid").fetchall()
    files = [(f.name, f.format, f.first_rowid, f.rows, f.origin_unit, f.notes) for f in store.files]
    # per file in the order found (events without a time are reported once the rows are in: after a group of
    # files read together, after each file read alone)
    problems = sorted(((p.file, p.line, p.record, p.message) for p in diag.problems), key=lambda p: p[0])
    return rows, files, problems, dict(diag.counts)


def _together(inputs: list[sources.Input]) -> tuple:
    diag = Diagnostics()
    with EventStore() as store:
        sources.load(store, inputs, "auto", diag)
        return _state(store, diag)


def _one_by_one(inputs: list[sources.Input]) -> tuple:
    diag = Diagnostics()
    with EventStore() as store:
        for inp in inputs:
            sources.load(store, [inp], "auto", diag)  # a batch of one is read on its own
        return _state(store, diag)


def read_directory(work: Path) -> tuple:
    """What reading the directory `work` gives (rows, files, problems, counts), checked to be exactly what
    reading its files one by one gives."""
    with EventStore() as store:
        inputs = list(sources.expand([str(work)], store.tmpdir))
    together = _together(inputs)
    assert together == _one_by_one(inputs)
    return together


def test_files_laid_end_to_end_number_each_files_lines_from_one(tmp_path: Path) -> None:
    files = [(_write(tmp_path / f"{k}.jsonl", "flat", list(range(100 * k + 1, 100 * k + 1 + n))), f"name-{k}")
             for k, n in enumerate([3, 1, 4, 1, 2])]
    files[1][0].write_bytes(files[1][0].read_bytes().rstrip(b"\n"))  # its last line ends at the end of the file
    with EventStore() as store:
        infos = jsonfile.load_json_lines_batch(store, files, "flat")
        rows = store.con.execute("SELECT source_file, source_line, pid FROM events ORDER BY rowid").fetchall()
    assert infos is not None
    assert [(i.name, i.format, i.first_rowid, i.rows) for i in infos] == [
        ("name-0", "flat", 0, 3), ("name-1", "flat", 3, 1), ("name-2", "flat", 4, 4), ("name-3", "flat", 8, 1),
        ("name-4", "flat", 9, 2)]
    expected = [(f"name-{k}", ln, 100 * k + ln) for k, n in enumerate([3, 1, 4, 1, 2]) for ln in range(1, n + 1)]
    assert rows == expected


def test_one_unclean_file_makes_the_batch_keep_nothing(tmp_path: Path) -> None:
    good = _write(tmp_path / "a.jsonl", "flat", [1, 2])
    blank = tmp_path / "b.jsonl"
    blank.write_bytes(orjson.dumps(RECORDS["flat"](3)) + b"\n\n" + orjson.dumps(RECORDS["flat"](4)) + b"\n")
    with EventStore() as store:
        assert jsonfile.load_json_lines_batch(store, [(good, "a"), (blank, "b")], "flat") is None
        assert store.count() == 0 and store.files == [] and store.next_rowid == 0


def test_big_pretty_or_unsniffable_files_are_not_batched(tmp_path: Path) -> None:
    assert jsonfile.batch_dialect(_write(tmp_path / "a.jsonl", "ecs", [1]), "json") == "ecs"
    assert jsonfile.batch_dialect(_write(tmp_path / "b.jsonl", "flat", [1]), "sumo-cse") == "sumo-cse"
    pretty = tmp_path / "p.json"
    pretty.write_bytes(orjson.dumps(RECORDS["flat"](1), option=orjson.OPT_INDENT_2))
    assert jsonfile.batch_dialect(pretty, "json") is None
    unknown = tmp_path / "u.jsonl"
    unknown.write_bytes(b'{"a": 1}\n')
    assert jsonfile.batch_dialect(unknown, "json") is None
    big = _write(tmp_path / "big.jsonl", "flat", list(range(1, jsonfile.SMALL_FILE // 300)))
    assert big.stat().st_size >= jsonfile.SMALL_FILE and jsonfile.batch_dialect(big, "json") is None


@st.composite
def directories(draw: st.DrawFn) -> list[tuple[str, list[Line]]]:
    """Files of a dialect each, mostly clean; some with blank, damaged or odd lines; some not JSON lines."""
    files = []
    for _ in range(draw(st.integers(1, 7))):
        dialect = draw(st.sampled_from(sorted(RECORDS)))
        if draw(st.integers(0, 3)):  # clean
            lines: list[Line] = [("good", lambda d, ln: orjson.dumps(RECORDS[d](ln)))] * draw(st.integers(0, 4))
        else:
            lines = draw(st.lists(line_kinds(), min_size=1, max_size=5))
        files.append((dialect, lines))
    return files


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(directories(), st.booleans())
def test_a_directory_reads_the_same_together_as_one_by_one(tmp_path: Path, spec, with_other: bool) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))  # one directory per example
    for k, (dialect, lines) in enumerate(spec):
        (work / f"{k:02d}.jsonl").write_bytes(b"".join(make(dialect, ln) + b"\n" for ln, (_, make)
                                                      in enumerate(lines, 1)))
    if with_other:  # a file of another format in the middle keeps its place
        (work / "03.xml").write_bytes(b"<Events></Events>\n")
        (work / "04.txt").write_bytes(b"not telemetry\n")
    with EventStore() as store:
        inputs = list(sources.expand([str(work)], store.tmpdir))
    assert _together(inputs) == _one_by_one(inputs)


@settings(max_examples=40, deadline=None)
@given(contents=st.lists(st.binary(max_size=300), min_size=1, max_size=8))
def test_files_are_laid_end_to_end_byte_for_byte_with_their_lines_counted(contents: list[bytes]) -> None:
    """The kernel copy and the buffered one (other systems) make the same joined file: each file's bytes,
    a newline added where its last line had none; and each file's lines are counted as it holds them."""
    expected = b"".join(c + b"\n" if c and not c.endswith(b"\n") else c for c in contents)
    counts = [c.count(b"\n") + (bool(c) and not c.endswith(b"\n")) for c in contents]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for k, c in enumerate(contents):
            paths.append(Path(tmp) / f"{k}.jsonl")
            paths[-1].write_bytes(c)
        assert jsonfile._lay_end_to_end(paths, Path(tmp) / "kernel.jsonl") == counts
        assert (Path(tmp) / "kernel.jsonl").read_bytes() == expected
        kernel_copy = getattr(os, "copy_file_range", None)
        if kernel_copy is not None:
            del os.copy_file_range  # as on systems without it
        try:
            assert jsonfile._lay_end_to_end(paths, Path(tmp) / "buffered.jsonl") == counts
        finally:
            if kernel_copy is not None:
                os.copy_file_range = kernel_copy
        assert (Path(tmp) / "buffered.jsonl").read_bytes() == expected
