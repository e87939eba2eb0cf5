"""Where each line of a file starts, found by numpy over the mapped file a window at a time."""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

_WINDOW = 64 << 20  # bytes mapped at a time: mapped pages never add more than this to the resident set


def _each_window(f: BinaryIO, size: int, fn: Callable[[int, np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """fn(offset, bytes) for each window of the mapped file; what fn returns must not be a view of them."""
    out = []
    for off in range(0, size, _WINDOW):
        with mmap.mmap(f.fileno(), min(_WINDOW, size - off), offset=off, access=mmap.ACCESS_READ) as mm:
            a = np.frombuffer(mm, dtype=np.uint8)
            out.append(fn(off, a))
            del a  # the mapping cannot close while numpy holds it
    return out


class LineIndex:
    """The lines of a file as split at `\\n` (as iterating over a binary file splits them): `starts[k]` is
    where line k + 1 starts, `count` how many there are, `first` the first byte of each (10 for an empty
    line). Raises OSError or ValueError for a file that cannot be mapped."""

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            self.size = os.fstat(f.fileno()).st_size
            parts = _each_window(f, self.size, lambda off, a: np.flatnonzero(a == 10) + off)
            newlines = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            starts = np.concatenate([np.zeros(1, dtype=np.int64), newlines + 1])
            self.starts = starts[:-1] if starts[-1] >= self.size else starts  # no line after a final newline
            self.count = len(self.starts)
            self.ends_in_newline = bool(len(newlines)) and int(newlines[-1]) == self.size - 1
            first = _each_window(f, self.size, self._first_bytes)
            self.first = np.concatenate(first) if first else np.zeros(0, dtype=np.uint8)

    def _first_bytes(self, off: int, a: np.ndarray) -> np.ndarray:
        lo, hi = np.searchsorted(self.starts, [off, off + len(a)])
        return a[self.starts[lo:hi] - off]  # fancy indexing: a copy

    def span(self, ln: int) -> tuple[int, int]:
        """Byte range of line `ln` (1-based), its newline included."""
        start = int(self.starts[ln - 1])
        return start, int(self.starts[ln]) if ln < self.count else self.size


def lines_starting(path: Path, firsts: bytes) -> dict[int, np.ndarray]:
    """For each byte of `firsts`, the (1-based) numbers of the lines that start with it, without an index of
    every line (a pretty-printed file has ~50 lines per event)."""
    state = {"lines_before": 0, "at_line_start": True}  # newlines before the window; whether a line starts at it

    def window(off: int, a: np.ndarray) -> np.ndarray:
        """(line number, first byte) of each line starting in this window."""
        newlines = np.flatnonzero(a == 10)
        # the line after the k-th newline here is line lines_before + k + 2; one starting at the window's
        # first byte is line lines_before + 1
        heads, numbers = newlines + 1, np.arange(len(newlines)) + state["lines_before"] + 2
        if state["at_line_start"]:
            heads, numbers = np.concatenate([[0], heads]), np.concatenate([[state["lines_before"] + 1], numbers])
        inside = heads < len(a)  # a newline ending the window: the next window starts that line
        state["lines_before"] += len(newlines)
        state["at_line_start"] = bool(a[-1] == 10)
        return np.stack([numbers[inside], a[heads[inside]]])  # fancy indexing: a copy

    with open(path, "rb") as f:
        parts = _each_window(f, os.fstat(f.fileno()).st_size, window)
    found = np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), dtype=np.int64)
    return {b: found[0][found[1] == b] for b in firsts}
