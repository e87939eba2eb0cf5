"""JSON-lines files with a few damaged lines, still read by DuckDB in one statement.

A file whose one-statement read fails (a last line cut by rotation, one corrupt line, a blank line) used to
go record by record through Python: for one bad line in a million, five times the time and three times the
memory. Here only the suspect lines get the careful path's treatment (jsonfile._line_records: stripped,
parsed, re-serialised or reported), the rest is copied byte for byte, and DuckDB reads the copy:

  suspects  lines that do not start with `{` (blank, indented, `null`, garbage, a BOM) and an unterminated
            last line, found by one scan of the file;
  then      the line DuckDB names when it rejects the copy, and its neighbours (its line numbers are
            sometimes one off), until the copy loads or after MAX_ROUNDS rejections.

A suspect that the careful path would drop is reported with the same message; one DuckDB rejects after
re-serialising is reported as the careful path's chunk insert reports it. Whatever this cannot settle
(too many suspects, a rejection it cannot place) is left to the careful path, with nothing kept.
"""

from __future__ import annotations

import mmap
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import orjson

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from stagehunt.diagnostics import Diagnostics
    from stagehunt.store import EventStore, FileInfo

MAX_SUSPECTS = 10_000  # more odd lines than this: the careful path costs about as much
MAX_ROUNDS = 16  # rejections, each one more read of the whole file
_WINDOW = 64 << 20  # bytes scanned at a time
_BOM = b"\xef\xbb\xbf"
_LINE_HINT = re.compile(r"\bin line (\d+)")
_DUCKDB_WHERE = re.compile(r' in file "[^"]*", in line \d+')


class _Lines:
    """Where each line of a file starts, and how long the file is (lines split at `\\n`, as the careful
    path's iteration splits them)."""

    def __init__(self, path: Path):
        import numpy as np

        ends: list[np.ndarray] = []
        with open(path, "rb") as f:
            self.size = os.fstat(f.fileno()).st_size
            for off in range(0, self.size, _WINDOW):
                with mmap.mmap(f.fileno(), min(_WINDOW, self.size - off), offset=off,
                               access=mmap.ACCESS_READ) as mm:
                    a = np.frombuffer(mm, dtype=np.uint8)
                    ends.append(np.flatnonzero(a == 10) + off)
                    del a  # the mapping cannot close while numpy holds it
        starts = np.concatenate([np.zeros(1, dtype=np.int64), *(e + 1 for e in ends)])
        self.starts = starts[:-1] if starts[-1] >= self.size else starts  # no line after a final newline
        self.count = len(self.starts)

    def span(self, ln: int) -> tuple[int, int]:
        """Byte range of line `ln` (1-based), its newline included."""
        start = int(self.starts[ln - 1])
        return start, int(self.starts[ln]) if ln < self.count else self.size


def _odd_lines(path: Path, lines: _Lines) -> list[int] | None:
    """Lines that do not start with `{`, and the last one if no newline ends it; None if too many."""
    import numpy as np

    odd: list[np.ndarray] = []
    found = 0
    with open(path, "rb") as f:
        for off in range(0, lines.size, _WINDOW):
            with mmap.mmap(f.fileno(), min(_WINDOW, lines.size - off), offset=off, access=mmap.ACCESS_READ) as mm:
                a = np.frombuffer(mm, dtype=np.uint8)
                lo, hi = np.searchsorted(lines.starts, [off, off + len(a)])
                here = lines.starts[lo:hi]
                bad = np.flatnonzero(a[here - off] != ord("{")) + lo + 1
                del a
            odd.append(bad)
            found += len(bad)
            if found > MAX_SUSPECTS:
                return None
    out = [int(x) for part in odd for x in part]
    last_cut = lines.count and not _ends_in_newline(path, lines.size)
    if last_cut and (not out or out[-1] != lines.count):
        out.append(lines.count)
    return out


def _ends_in_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"


def _treat(raw: bytes, ln: int) -> tuple[bytes | None, str | None]:
    """The careful path's reading of one line: (record to load, None), (None, problem) or (None, None) for
    a blank line."""
    line = raw.strip()
    if ln == 1 and line.startswith(_BOM):
        line = line[len(_BOM):].strip()
    if not line:
        return None, None
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return None, f"malformed JSON: {e}"
    if not isinstance(rec, dict):
        return None, "not a JSON object"
    return orjson.dumps(rec), None


def load(store: EventStore, info: FileInfo, path: Path, dialect: str, diag: Diagnostics,
         first_error: str | None) -> bool:
    """Load `path` (a JSON-lines file the one-statement read refused; `first_error` is DuckDB's reason, if it
    gave one) with only its suspect lines read carefully. False, with nothing kept or reported, when the
    careful path must read it instead."""
    import numpy as np

    from stagehunt.sources import jsonfile

    lines = _Lines(path)
    odd = _odd_lines(path, lines) if lines.count else None
    if odd is None:
        return False
    suspects = set(odd)
    rejected: dict[int, str] = {}  # suspect line -> why DuckDB refused its re-serialised record
    treated: dict[int, tuple[bytes | None, str | None]] = {}  # suspect line -> the careful path's reading
    kept_lines = np.arange(1, lines.count + 1)  # the original line of each line DuckDB read
    error, from_copy = first_error, False
    copy = store.tmpdir / "repaired.jsonl"
    with open(path, "rb") as src:
        for _ in range(MAX_ROUNDS + 1):
            if error is not None and not _place(error, kept_lines, suspects, rejected, dialect, from_copy):
                return False
            kept_lines, problems = _write_copy(src, lines, suspects, rejected, treated, copy)
            base, rows = store.next_rowid, len(kept_lines)
            try:
                kept = store.insert_select(info, jsonfile.select_sql(dialect), [str(copy)],
                                           origins=_origins(kept_lines), keep=lambda n, rows=rows: n == rows)
            except jsonfile.DATA_ERRORS as e:
                error, from_copy = str(e), True
                continue
            if kept is None:
                return False
            if dialect == "flat":
                jsonfile._fill_5156_pids(store, base, kept, copy)
            for ln, message in sorted(problems):
                diag.add(info.name, message, line=ln)
            return True
    return False


def _write_copy(src: BinaryIO, lines: _Lines, suspects: set[int], rejected: dict[int, str],
                treated: dict[int, tuple[bytes | None, str | None]],
                copy: Path) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Write the file with its suspect lines as the careful path reads them (re-serialised, or left out);
    returns the original line number of each line of the copy, and the problems of the lines left out."""
    import numpy as np

    runs: list[np.ndarray] = []
    problems: list[tuple[int, str]] = []
    fd = src.fileno()
    previous = 0  # the last suspect written
    with open(copy, "wb") as out:
        for ln in [*sorted(suspects), lines.count + 1]:
            if previous + 1 < ln:  # the clean run up to this suspect, byte for byte
                stop = lines.span(ln)[0] if ln <= lines.count else lines.size
                _copy_range(fd, out, int(lines.starts[previous]), stop)
                runs.append(np.arange(previous + 1, ln))
            previous = ln
            if ln > lines.count:
                break
            if ln in rejected:
                problems.append((ln, rejected[ln]))
                continue
            if ln not in treated:  # once per suspect, not once per round
                start, end = lines.span(ln)
                treated[ln] = _treat(os.pread(fd, end - start, start), ln)
            record, problem = treated[ln]
            if record is not None:
                out.write(record + b"\n")
                runs.append(np.array([ln]))
            elif problem is not None:
                problems.append((ln, problem))
    return (np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)), problems


def _copy_range(fd: int, out: BinaryIO, start: int, stop: int) -> None:
    while start < stop:
        data = os.pread(fd, min(stop - start, 16 << 20), start)
        if not data:
            break
        out.write(data)
        start += len(data)


def _place(error: str, kept_lines: np.ndarray, suspects: set[int], rejected: dict[int, str], dialect: str,
           from_copy: bool) -> bool:
    """Turn DuckDB's rejection of what it read (the file itself, or the copy: `from_copy`) into more
    suspects, or a rejected record; False if it cannot."""
    m = _LINE_HINT.search(error)
    if not m:
        return False
    h = int(m.group(1))  # a line of what DuckDB read, maybe one past the culprit
    around = [int(kept_lines[i - 1]) for i in (h - 1, h, h + 1) if 1 <= i <= len(kept_lines)]
    fresh = [ln for ln in around if ln not in suspects]
    if fresh:
        suspects.update(fresh)
        return True
    if not from_copy:  # a suspect's raw text, which the copy replaces
        return True
    culprit = int(kept_lines[h - 1]) if 1 <= h <= len(kept_lines) else None
    if culprit is not None and culprit not in rejected:  # its re-serialised record, refused
        reason = _DUCKDB_WHERE.sub("", error.splitlines()[0])
        rejected[culprit] = f"record does not fit the {dialect} format: {reason}"
        return True
    return False


def _origins(kept_lines: np.ndarray) -> pa.Table:
    import pyarrow as pa

    return pa.table({"line": pa.array(kept_lines, pa.int64()), "record": pa.nulls(len(kept_lines), pa.int64())})
