"""How far the read of one input file has come, for the progress bar.

Two sources, because readers differ: DuckDB reads a clean JSON-lines file in one statement and reports its
own progress through it (`query_progress`), while the EVTX, XML, auditd and careful JSON readers read the
file from Python or the `evtx` parser, one block or chunk after another, and run many small statements (whose
own progress would make the bar jump about). For those, the offset of the open file (Linux shows it in
/proc/self/fdinfo) says how much has been read.
"""

from __future__ import annotations

import os
from pathlib import Path

# Sniffing the format reads at most this much of a file: an offset beyond it is a reader's.
_SNIFFED = 64 << 10


def read_offset(path: Path) -> int | None:
    """The furthest offset of this process's open descriptors on `path`; None when none is open or the
    system does not show them (not Linux)."""
    target = os.path.realpath(path)
    best = None
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != target:
                continue
            with open(f"/proc/self/fdinfo/{fd}") as info:
                pos = int(info.readline().split()[1])  # "pos:\t<offset>"
        except (OSError, ValueError, IndexError):  # closed meanwhile, or not the expected text
            continue
        best = pos if best is None else max(best, pos)
    return best


class FileProgress:
    """The fraction of one file read so far: by its open descriptors' offset once a reader is past the
    sniffing, else by DuckDB's progress through the running statement. It never goes back."""

    def __init__(self, path: Path, size: int):
        self.path, self.size = path, size
        self.done = 0.0
        self._by_offset = False

    def update(self, statement_percent: float) -> float:
        """The fraction read, given DuckDB's query_progress() (-1 when no statement runs)."""
        offset = read_offset(self.path)
        if offset is not None and offset > _SNIFFED:
            self._by_offset = True
        if self._by_offset:
            now = (offset or 0) / self.size if self.size else 1.0
        else:
            now = statement_percent / 100 if statement_percent >= 0 else 0.0
        self.done = max(self.done, min(now, 1.0))
        return self.done
