"""`stagehunt inspect`'s text output: a table where it fits, a block per file where it would not."""

from __future__ import annotations

import io
import re

import orjson
import pytest

from stagehunt.inspect import FileReport, render

SGR = re.compile(r"\x1b\[[0-9;]*m")  # the colour codes Rich itself emits on a terminal
LONG = "/srv/telemetry/2026/11/20/fin-ws-042.corp.example/Microsoft-Windows-Sysmon%4Operational-export.jsonl"


def report(file: str, **changes: object) -> FileReport:
    base: dict[str, object] = dict(
        file=file, format="flat", events=18, by_event_id={"sysmon": {"3": 12, "1": 6, "22": 2}},
        first_event="2026-11-20T13:41:07Z", last_event="2026-11-21T00:45:07Z",
        hosts=[f"h{i}.corp.example" for i in range(7)], error_count=1)
    base.update(changes)
    return FileReport(**base)  # type: ignore[arg-type]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_short_names_get_a_table_with_every_value() -> None:
    out = io.StringIO()
    render([report("a.jsonl")], out)
    text = out.getvalue()
    assert "┃ file" in text and "a.jsonl" in text
    assert "sysmon 1:6, 3:12, 22:2" in text  # event ids in numeric order
    assert "h4.corp.example (+2)" in text and "h5.corp" not in text  # five hosts, then how many more


def test_a_narrow_terminal_gets_one_block_per_file_with_whole_names(monkeypatch: pytest.MonkeyPatch) -> None:
    out = Terminal()
    monkeypatch.setenv("COLUMNS", "80")
    render([report(LONG), report("b.jsonl", error_count=0, notes=["3 blank lines skipped"])], out)
    lines = [line.rstrip() for line in SGR.sub("", out.getvalue()).splitlines()]
    assert LONG in lines  # the path on a line of its own, unfolded
    assert "b.jsonl" in lines
    assert any(line.split() == ["by", "event", "id", "sysmon", "1:6,", "3:12,", "22:2"] for line in lines)
    assert any(line.split() == ["errors", "1"] for line in lines)
    assert max(len(line) for line in lines if line != LONG) <= 80
    assert lines[-1].split() == ["note", "3", "blank", "lines", "skipped"]  # in its file's block


def test_a_skipped_file_is_two_lines_in_block_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory holds READMEs and licences beside the logs: each is its name, `skipped` and why, not
    seven rows of dashes."""
    out = Terminal()
    monkeypatch.setenv("COLUMNS", "80")
    why = "not telemetry in a known format (tried: flat, ecs)"
    render([report(LONG), report("README.md", format="skipped", events=0, by_event_id={}, first_event=None,
                                 last_event=None, hosts=[], error_count=0, notes=[why])], out)
    lines = [line.rstrip() for line in SGR.sub("", out.getvalue()).splitlines()]
    at = lines.index("README.md")
    assert [line.split() for line in lines[at + 1:]] == [["format", "skipped"], ["note", *why.split()]]


def test_control_characters_in_names_are_escaped() -> None:
    for stream in (io.StringIO(), Terminal()):
        render([report("evil\x1b[2J\x07.jsonl", hosts=["h\x1b]0;title\x07"]),
                report(LONG + "\x1b[2J", notes=["\x1b]0;x\x07"])], stream)
        text = SGR.sub("", stream.getvalue())
        assert "\x1b" not in text and "\x07" not in text
        assert "evil\\x1b[2J\\x07.jsonl" in text  # shown, as escapes


def test_a_newline_in_a_name_cannot_fake_a_line_of_its_own() -> None:
    out = io.StringIO()
    render([report("a.jsonl\nnote: all clear", notes=["n\nnote: forged"])], out)
    lines = out.getvalue().splitlines()
    assert not any(line.startswith("note: all clear") or line.startswith("note: forged") for line in lines)
    assert "a.jsonl\\nnote: all clear" in lines  # the name, escaped, on its line
    assert any(line.split() == ["note", "n\\nnote:", "forged"] for line in lines)


def test_event_times_have_one_width_as_findings_print_them(tmp_path):
    """A whole second and a fraction of one print alike (was `...:00Z` beside `...:19.950000Z`)."""
    from typer.testing import CliRunner

    from stagehunt.cli import app

    lines = [{"EventID": 1, "Hostname": "h", "UtcTime": t, "ProcessGuid": "{1}", "ProcessId": "4", "Image": "a.exe"}
             for t in ("2026-11-01 00:00:00.000", "2026-11-01 01:23:19.950")]
    (tmp_path / "t.jsonl").write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    res = CliRunner().invoke(app, ["inspect", "--json", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 0, res.output
    report = orjson.loads(res.stdout)["files"][0]
    assert (report["first_event"], report["last_event"]) == ("2026-11-01T00:00:00.000Z", "2026-11-01T01:23:19.950Z")
