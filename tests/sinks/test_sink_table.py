"""Table sink: readable, and log content can neither drive the terminal nor inject Rich markup."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from finding_builders import HOSTILE, make_finding, make_hostile
from rich.console import Console

from stagehunt.findings import Finding
from stagehunt.sinks import open_sink

SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes Rich itself emits on a terminal


def render(*findings: Finding, verbose: bool = False, terminal: bool = False) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=250, force_terminal=terminal, color_system="truecolor" if terminal else None)
    with open_sink("table", console, verbose=verbose) as sink:
        for f in findings:
            sink.write(f)
    return buf.getvalue()


def test_columns_and_values(finding: Finding) -> None:
    out = render(finding)
    for header in ("sev/conf", "detection", "host", "image", "user", "#ips", "ips", "ports", "window", "reason"):
        assert header in out
    for value in ("high/medium strong", "multi_stage_c2", "ws1.corp.example", "stage2.exe", "CORP\\alice",
                  "140.82.113.3, 8.8.8.8, 2606:4700:4700::1111", "443, 8443",
                  "2026-11-02 12:00:00 – 12:34:56 UTC", "3 distinct external addresses in 35 min"):
        assert value in out
    assert r"C:\Users\Public" not in out  # the image column shows the file name
    assert "not an excluded image" not in out  # only the first reason unless verbose


def test_long_address_lists_are_shortened() -> None:
    out = render(make_finding(ip_list=[f"8.8.8.{i}" for i in range(1, 8)], unique_external_ips=7))
    assert "8.8.8.1, 8.8.8.2, 8.8.8.3 +4 more" in out


def test_verbose_lists_every_reason_and_evidence(finding: Finding) -> None:
    out = render(finding, verbose=True)
    assert "  - not an excluded image" in out
    assert "logs/sysmon.json:12, logs/sec.evtx#9001" in out
    assert finding.uid in out


@pytest.mark.parametrize("terminal", [False, True])
def test_no_raw_control_characters_reach_the_terminal(terminal: bool) -> None:
    out = render(*(make_hostile(p) for p in HOSTILE), verbose=True, terminal=terminal)
    visible = SGR.sub("", out)
    assert "\x1b" not in visible
    assert "\x07" not in out
    assert "\u202e" not in out
    assert "\\x1b[31mred" in out  # shown, escaped
    assert "\\x07" in out and "\\u202e" in out


def test_rich_markup_in_logs_is_shown_literally() -> None:
    out = render(make_finding(host="[bold]markup[/]", user="[red]x[/red]", reasons=["[link=http://e.vil]y[/link]"],
                              command_line=":skull: [blink]z[/]"), verbose=True)
    assert "[bold]markup[/]" in out
    assert "[red]x[/red]" in out
    assert "[link=http://e.vil]y[/link]" in out
    styled = render(make_finding(host="[bold]markup[/]"), terminal=True)
    assert "[bold]markup[/]" in SGR.sub("", styled)


def test_newlines_in_values_cannot_fake_a_line_of_their_own() -> None:
    out = render(make_finding(reasons=["fine\n#2 high/medium fake finding"]), verbose=True)
    assert "fine\\n#2 high/medium fake finding" in out
    assert not any(line.startswith("#2") for line in out.splitlines())


def test_writes_to_a_path_and_to_a_plain_stream(tmp_path: Path, finding: Finding) -> None:
    out = tmp_path / "t.txt"
    with open_sink("table", out) as sink:
        sink.write(finding)
    text = out.read_text(encoding="utf-8")
    assert "ws1.corp.example" in text and "\x1b" not in text
    buf = io.StringIO()
    with open_sink("table", buf) as sink:
        sink.write(finding)
    assert "ws1.corp.example" in buf.getvalue()
    assert not buf.closed  # a stream we were given stays open


def test_no_findings_prints_nothing() -> None:
    assert render() == ""
