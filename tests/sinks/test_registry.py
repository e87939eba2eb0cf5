"""The sink registry and open_sink."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from finding_builders import make_finding

from stagehunt.sinks import SINKS, open_sink


def test_registry_names() -> None:
    assert set(SINKS) == {"table", "jsonl", "csv", "ocsf"}


def test_unknown_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="choose one of: table, jsonl, csv, ocsf"):
        open_sink("xml", io.StringIO())


@pytest.mark.parametrize("name", ["jsonl", "csv", "ocsf", "table"])
def test_path_targets_are_created_and_closed(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"out.{name}"
    sink = open_sink(name, out)
    sink.write(make_finding())
    sink.close()
    sink.close()  # closing twice is harmless
    assert sink.stream.closed
    assert "ws1.corp.example" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["jsonl", "csv", "ocsf"])
def test_given_streams_stay_open_and_receive_the_output(name: str) -> None:
    buf = io.StringIO()
    with open_sink(name, buf) as sink:
        sink.write(make_finding())
    assert not buf.closed
    assert "ws1.corp.example" in buf.getvalue()


def test_machine_formats_given_a_console_write_its_raw_file() -> None:
    from rich.console import Console

    buf = io.StringIO()
    with open_sink("jsonl", Console(file=buf)) as sink:
        sink.write(make_finding(host="[b]h[/b]"))
    assert '"host":"[b]h[/b]"' in buf.getvalue()
