"""JSON lines sink: one finding per line, equal to Finding.to_dict() when read back."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
from finding_builders import make_finding

from stagehunt.findings import Finding
from stagehunt.sinks import open_sink

CONTRACT = {"detection_type", "technique", "severity", "confidence", "strong_indicator", "host", "user", "image",
            "command_line", "pid", "process_guid", "parent_image", "unique_external_ips", "ip_list", "port_list",
            "connection_count", "first_contact", "last_contact", "duration_mins", "reasons", "evidence"}


def render(*findings: Finding) -> list[str]:
    buf = io.StringIO()
    with open_sink("jsonl", buf) as sink:
        for f in findings:
            sink.write(f)
    text = buf.getvalue()
    assert text.endswith("\n")
    return text.splitlines()


def test_one_line_per_finding_round_trips(finding: Finding) -> None:
    second = make_finding(host="ws2", parent_ip_list=["1.1.1.1"], new_ips=["8.8.8.8"], score=80)
    lines = render(finding, second)
    assert len(lines) == 2
    assert orjson.loads(lines[0]) == finding.to_dict()
    assert orjson.loads(lines[1]) == second.to_dict()


def test_contract_fields_and_evidence_objects(finding: Finding) -> None:
    d = orjson.loads(render(finding)[0])
    assert set(d) >= CONTRACT
    assert d["technique"] == "T1104"
    assert d["evidence"][0] == {"file": "logs/sysmon.json", "line": 12, "record": None,
                                "time": "2026-11-02T12:00:00.000Z", "kind": "network",
                                "summary": "stage2.exe -> 140.82.113.3:443/tcp", "ip": "140.82.113.3", "port": 443}


def test_hostile_text_stays_on_one_line_and_round_trips(hostile: Finding) -> None:
    lines = render(hostile)
    assert len(lines) == 1
    assert "\x1b" not in lines[0] and "\x07" not in lines[0]  # JSON escapes control characters
    assert orjson.loads(lines[0]) == hostile.to_dict()


def test_lone_surrogate_is_replaced_not_fatal(tmp_path: Path) -> None:
    out = tmp_path / "f.jsonl"
    with open_sink("jsonl", out) as sink:
        sink.write(make_finding(command_line="bad \ud800 text"))
        sink.write(make_finding(host="next"))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert orjson.loads(lines[0])["command_line"] == "bad \ufffd text"
    assert orjson.loads(lines[1])["host"] == "next"
