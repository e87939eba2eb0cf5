"""LineIndex: the lines numpy finds are the lines Python's iteration over the file yields, whatever
window edges they cross."""

from __future__ import annotations

import mmap
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagehunt.sources import lineindex


@settings(max_examples=80, deadline=None)
@given(pieces=st.lists(st.sampled_from([b"\n", b"{", b"}", b"  ", b"\r\n", b"x" * 3000, b"{\"a\":1}"]),
                       max_size=40))
def test_lines_match_pythons_own_split_across_window_edges(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(lineindex, "_WINDOW", mmap.ALLOCATIONGRANULARITY)  # many windows for a few KB
        path = Path(tmp) / "f"
        path.write_bytes(data)
        index = lineindex.LineIndex(path)
        with open(path, "rb") as f:
            expected = list(f)
    assert index.count == len(expected)
    assert [data[slice(*index.span(ln))] for ln in range(1, index.count + 1)] == expected
    assert bytes(index.first) == b"".join(line[:1] for line in expected)
    assert index.ends_in_newline == data.endswith(b"\n")


@settings(max_examples=80, deadline=None)
@given(pieces=st.lists(st.sampled_from([b"\n", b"{", b"}", b"  ", b"\r\n", b"x" * 3000, b"{\"a\":1}", b"\n" * 4095]),
                       max_size=40))
def test_lines_starting_with_a_byte_match_pythons_own_split(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(lineindex, "_WINDOW", mmap.ALLOCATIONGRANULARITY)
        path = Path(tmp) / "f"
        path.write_bytes(data)
        found = lineindex.lines_starting(path, b"{}x")
        with open(path, "rb") as f:
            expected = list(f)
    for b in b"{}x":
        assert list(found[b]) == [i for i, line in enumerate(expected, 1) if line[:1] == bytes([b])], chr(b)
