"""JSON-lines files with a few damaged lines, still read by DuckDB in one statement.

A file whose one-statement read fails (a last line cut by rotation, one corrupt line, a blank line) used to
go record by record through Python: for one bad line in a million, five times the time and three times the
memory. Here only the suspect lines get the careful path's treatment (jsonfile.read_line: stripped,
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

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from stagehunt.sources import jsonfile
from stagehunt.sources.lineindex import LineIndex

if TYPE_CHECKING:
    from stagehunt.diagnostics import Diagnostics
    from stagehunt.store import EventStore, FileInfo

MAX_SUSPECTS = 10_000  # more odd lines than this: the careful path costs about as much
MAX_ROUNDS = 16  # rejections, each one more read of the whole file
_LINE_HINT = re.compile(r"\bin line (\d+)")


def _odd_lines(lines: LineIndex) -> list[int] | None:
    """Lines that do not start with `{`, and the last one if no newline ends it; None if too many."""
    odd = np.flatnonzero(lines.first != ord("{")) + 1
    if len(odd) > MAX_SUSPECTS:
        return None
    out = [int(x) for x in odd]
    if lines.count and not lines.ends_in_newline and (not out or out[-1] != lines.count):
        out.append(lines.count)
    return out


def load(store: EventStore, info: FileInfo, path: Path, dialect: str, diag: Diagnostics,
         first_error: str | None) -> bool:
    """Load `path` (a JSON-lines file the one-statement read refused; `first_error` is DuckDB's reason, if it
    gave one) with only its suspect lines read carefully. False, with nothing kept or reported, when the
    careful path must read it instead."""
    try:
        lines = LineIndex(path)
    except (OSError, ValueError):  # not mappable
        return False
    odd = _odd_lines(lines) if lines.count else None
    if odd is None:
        return False
    suspects = set(odd)
    kept_lines = np.arange(1, lines.count + 1)  # the original line of each line DuckDB read
    copy = store.tmpdir / "repaired.jsonl"
    try:
        return _load_copy(store, info, path, dialect, diag, lines, suspects, kept_lines, first_error, copy)
    finally:
        copy.unlink(missing_ok=True)  # as big as the input: free the disk now, not when the run ends


def _load_copy(store: EventStore, info: FileInfo, path: Path, dialect: str, diag: Diagnostics, lines: LineIndex,
               suspects: set[int], kept_lines: np.ndarray, error: str | None, copy: Path) -> bool:
    """Write the copy and read it, placing each rejection DuckDB reports, until it loads (True) or cannot."""

    rejected: dict[int, str] = {}  # suspect line -> why DuckDB refused its re-serialised record
    treated: dict[int, tuple[bytes | None, str | None]] = {}  # suspect line -> the careful path's reading
    from_copy = False
    with open(path, "rb") as src:
        for _ in range(MAX_ROUNDS + 1):
            if error is not None and not _place(error, kept_lines, suspects, rejected, dialect, from_copy):
                return False
            try:
                kept_lines, problems = _write_copy(src, lines, suspects, rejected, treated, copy)
            except OSError:  # no room for a copy as big as the input: the careful path needs none
                return False
            base, rows = store.next_rowid, len(kept_lines)
            try:
                kept = store.insert_select(info, jsonfile.select_sql(dialect), [str(copy)],
                                           origins=jsonfile.line_origins(kept_lines),
                                           keep=lambda n, rows=rows: n == rows)
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


def _write_copy(src: BinaryIO, lines: LineIndex, suspects: set[int], rejected: dict[int, str],
                treated: dict[int, tuple[bytes | None, str | None]],
                copy: Path) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Write the file with its suspect lines as the careful path reads them (re-serialised, or left out);
    returns the original line number of each line of the copy, and the problems of the lines left out."""

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
                treated[ln] = jsonfile.read_line(os.pread(fd, end - start, start), ln)
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
        reason = jsonfile.DUCKDB_WHERE.sub("", error.splitlines()[0])
        rejected[culprit] = f"record does not fit the {dialect} format: {reason}"
        return True
    return False

