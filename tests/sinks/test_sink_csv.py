"""CSV sink: one row per finding, every cell neutralised, parses back to the same columns."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from finding_builders import FORMULA, make_finding, make_hostile

from stagehunt.findings import Finding
from stagehunt.sinks import open_sink
from stagehunt.sinks.csv import COLUMNS

DANGEROUS_FIRST = tuple("=+-@\t\r|%")


def render(*findings: Finding) -> list[list[str]]:
    buf = io.StringIO()
    with open_sink("csv", buf) as sink:
        for f in findings:
            sink.write(f)
    return list(csv.reader(io.StringIO(buf.getvalue())))


def test_header_and_one_row_per_finding(finding: Finding) -> None:
    rows = render(finding, make_finding(host="ws2"))
    assert rows[0] == COLUMNS
    assert len(rows) == 3
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["uid"] == finding.uid
    assert row["ip_list"] == "140.82.113.3;8.8.8.8;2606:4700:4700::1111"
    assert row["port_list"] == "443;8443"
    assert row["evidence"] == "logs/sysmon.json:12;logs/sec.evtx#9001"
    assert row["strong_indicator"] == "true"
    assert row["parent_pid"] == ""
    assert row["reasons"] == "3 distinct external addresses in 35 min;not an excluded image"
    assert rows[2][rows[0].index("host")] == "ws2"


def test_every_finding_field_has_a_column() -> None:
    assert set(make_finding().to_dict()) <= set(COLUMNS)


def test_hostile_cells_are_neutralised_and_columns_survive(hostile: Finding) -> None:
    rows = render(hostile, make_finding())
    assert [len(r) for r in rows] == [len(COLUMNS)] * 3
    for value in rows[1]:
        assert not value.startswith(DANGEROUS_FIRST), value
        for part in value.split(";"):  # a ';'-locale spreadsheet may split the cell there
            assert not part.startswith(DANGEROUS_FIRST), value


def test_formula_is_kept_readable_behind_a_quote() -> None:
    rows = render(make_hostile(FORMULA))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["command_line"] == "'" + FORMULA
    assert row["ip_list"] == "'" + FORMULA + ";8.8.8.8"
    assert row["reasons"] == f"'{FORMULA};x {FORMULA}"


def test_negative_and_plus_values_are_neutralised() -> None:
    rows = render(make_finding(command_line="-2", user="+1", host="@SUM(1)"))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["command_line"], row["user"], row["host"]) == ("'-2", "'+1", "'@SUM(1)")


def test_newlines_commas_and_quotes_round_trip() -> None:
    text = 'a,b "c"\nd'
    rows = render(make_finding(command_line=text))
    assert rows[1][rows[0].index("command_line")] == text


def test_lone_surrogate_does_not_abort_the_file(tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    with open_sink("csv", out) as sink:
        sink.write(make_finding(command_line="bad \ud800 text"))
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert rows[1][rows[0].index("command_line")] == "bad \ufffd text"
