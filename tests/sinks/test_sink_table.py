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


def render(*findings: Finding, verbose: bool = False, terminal: bool = False, width: int = 250) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=terminal, color_system="truecolor" if terminal else None)
    with open_sink("table", console, verbose=verbose) as sink:
        for f in findings:
            sink.write(f)
    return buf.getvalue()


def test_columns_and_values(finding: Finding) -> None:
    out = render(finding)
    for header in ("sev/conf", "detection", "host", "image", "user", "#ips", "ips", "ports", "window", "reason"):
        assert header in out
    for value in ("high/medium", "strong", "multi_stage_c2", "ws1.corp.example", "stage2.exe", "CORP\\alice",
                  "443, 8443", "2026-11-02 12:00:00", "– 12:34:56 UTC", "3 distinct external addresses in 35 min"):
        assert value in out
    # addresses stacked one per line, in order
    rows = [line for line in out.splitlines() if any(ip in line for ip in finding.ip_list)]
    assert [next(ip for ip in finding.ip_list if ip in line) for line in rows] == finding.ip_list
    assert r"C:\Users\Public" not in out  # the image column shows the file name
    assert "not an excluded image" not in out  # only the first reason unless verbose


def test_long_address_lists_are_shortened() -> None:
    out = render(make_finding(ip_list=[f"8.8.8.{i}" for i in range(1, 8)], unique_external_ips=7))
    assert "8.8.8.3" in out and "+4 more" in out
    assert "8.8.8.4" not in out


def test_a_window_across_midnight_shows_both_dates() -> None:
    out = render(make_finding(first_contact="2026-11-20T23:41:19.000Z", last_contact="2026-11-21T00:45:07.000Z"))
    assert "2026-11-20 23:41:19" in out and "– 2026-11-21 00:45:07 UTC" in out


def test_a_medium_console_puts_the_first_reason_under_the_table(finding: Finding) -> None:
    out = render(finding, make_finding(reasons=["second finding's reason"]), width=160)
    lines = out.splitlines()
    assert "reason" not in out.split("───")[0]  # no reason column in the header
    assert "ws1.corp.example" in out and "stage2.exe" in out  # still a table row, unfolded
    assert "#1 3 distinct external addresses in 35 min" in lines
    assert "#2 second finding's reason" in lines
    assert max(len(line) for line in lines) <= 160


def test_a_narrow_console_stacks_each_finding_without_folding_names(finding: Finding) -> None:
    out = render(finding, make_finding(host="ws2", reasons=["second", "more"]), width=80)
    lines = [line.rstrip() for line in out.splitlines()]
    assert max(len(line) for line in lines) <= 80
    assert "#1 high/medium strong  multi_stage_c2" in lines
    assert "   host    ws1.corp.example" in lines
    assert "   image   stage2.exe" in lines
    assert "   ips (3) 140.82.113.3, 8.8.8.8, 2606:4700:4700::1111" in lines
    assert "   window  2026-11-02 12:00:00 – 12:34:56 UTC" in lines
    assert "   reason  second" in lines
    assert not any("more" in line for line in lines)  # only the first reason unless verbose
    verbose = [line.rstrip() for line in render(finding, verbose=True, width=80).splitlines()]
    assert any(line.strip() == "not an excluded image" for line in verbose)  # every reason, each on its own line
    assert any(line.split() == ["evidence", "logs/sysmon.json:12,", "logs/sec.evtx#9001"] for line in verbose)


def test_verbose_reasons_are_whole_lines_in_a_file_and_hang_indented_on_a_terminal() -> None:
    long = "score 77 (high): " + "; ".join(f"+5 reason number {i} with some words" for i in range(12))
    finding = make_finding(reasons=["first reason", long])
    piped = render(finding, verbose=True, width=200).splitlines()
    assert f"  - {long}" in piped  # one line, however long: grep finds it whole
    assert any(line.startswith("  evidence: logs/sysmon.json:12") for line in piped)
    on_terminal = render(finding, verbose=True, terminal=True, width=200)
    shown = [line.rstrip() for line in SGR.sub("", on_terminal).splitlines()]
    at = next(i for i, line in enumerate(shown) if line.startswith("  - score 77"))
    assert len(shown[at]) <= 200 and shown[at + 1].startswith("    +5 reason")  # under the text, not the dash


def test_narrow_layout_is_as_safe_as_the_table() -> None:
    out = render(*(make_hostile(p) for p in HOSTILE), verbose=True, terminal=True, width=80)
    assert "\x1b" not in SGR.sub("", out) and "\x07" not in out and "\u202e" not in out
    assert "[bold]markup[/]" in SGR.sub("", out)


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


def test_a_handoff_lists_every_address_it_counts() -> None:
    # #ips of a handoff counts both stages: the earlier stage's addresses follow the later stage's, marked
    handoff = make_finding(detection_type="parent_child_handoff", unique_external_ips=3, ip_list=["91.215.85.17"],
                           parent_ip_list=["185.220.101.33", "45.137.21.9"], new_ips=["91.215.85.17"])
    stacked = [line.rstrip() for line in render(handoff, width=80).splitlines()]
    assert "   ips (3) 91.215.85.17, 185.220.101.33 (earlier), 45.137.21.9 (earlier)" in stacked
    table = render(handoff)
    assert table.index("91.215.85.17") < table.index("185.220.101.33 (earlier)") < table.index("45.137.21.9 (earlier)")
    # a later stage counted on its own (staged_dropper) lists only its own
    dropped = make_finding(detection_type="staged_dropper", unique_external_ips=1, ip_list=["91.215.85.17"],
                           parent_ip_list=["185.220.101.33"], new_ips=["91.215.85.17"])
    assert "(earlier)" not in render(dropped) and "185.220.101.33" not in render(dropped)
