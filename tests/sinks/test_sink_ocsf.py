"""OCSF sink: Detection Finding (2004) objects with the required attributes and types."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
from finding_builders import make_finding

from stagehunt.findings import Finding
from stagehunt.sinks import open_sink
from stagehunt.sinks.ocsf import epoch_ms


def render(*findings: Finding) -> list[dict]:
    buf = io.StringIO()
    with open_sink("ocsf", buf) as sink:
        for f in findings:
            sink.write(f)
    return [orjson.loads(line) for line in buf.getvalue().splitlines()]


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_class_activity_and_enums(finding: Finding) -> None:
    (o,) = render(finding)
    assert (o["class_uid"], o["activity_id"], o["type_uid"], o["category_uid"]) == (2004, 1, 200401, 2)
    assert (o["severity_id"], o["severity"]) == (4, "High")
    assert (o["confidence_id"], o["confidence"]) == (2, "Medium")
    assert o["status_id"] == 1
    assert o["metadata"]["version"] == "1.1.0"
    assert o["metadata"]["product"]["name"] == o["metadata"]["product"]["vendor_name"] == "stagehunt"
    assert isinstance(o["message"], str) and "stage2.exe" in o["message"]


def test_times_are_integer_epoch_milliseconds(finding: Finding) -> None:
    (o,) = render(finding)
    info = o["finding_info"]
    assert type(o["time"]) is int and type(info["first_seen_time"]) is int and type(info["last_seen_time"]) is int
    assert info["first_seen_time"] == ms("2026-11-02T12:00:00.000") == 1793620800000
    assert info["last_seen_time"] == o["time"] == ms("2026-11-02T12:34:56.789")
    assert epoch_ms("2026-11-02T12:00:00") == epoch_ms("2026-11-02T13:00:00+01:00")
    assert epoch_ms("garbage") is None and epoch_ms(None) is None


def test_finding_info_analytic_and_attack(finding: Finding) -> None:
    info = render(finding)[0]["finding_info"]
    assert info["uid"] == finding.uid
    assert isinstance(info["title"], str) and info["title"]
    assert info["desc"].splitlines() == finding.reasons
    assert info["analytic"] == {"uid": "multi_stage_c2", "name": "multi_stage_c2", "type_id": 1, "type": "Rule"}
    assert info["attacks"] == [{"tactic": {"uid": "TA0011", "name": "Command and Control"},
                                "technique": {"uid": "T1104", "name": "Multi-Stage Channels"}}]


def test_one_evidence_per_address_with_process_device_and_user(finding: Finding) -> None:
    ev = render(finding)[0]["evidences"]
    assert [e["dst_endpoint"]["ip"] for e in ev] == finding.ip_list
    e = ev[0]
    assert e["process"]["name"] == "stage2.exe"
    assert e["process"]["pid"] == 4242 and type(e["process"]["pid"]) is int
    assert e["process"]["uid"] == finding.process_guid
    assert e["process"]["cmd_line"] == finding.command_line
    assert e["process"]["file"]["path"] == finding.image
    assert e["process"]["parent_process"]["file"]["path"] == r"C:\Windows\explorer.exe"
    assert e["device"]["hostname"] == "ws1.corp.example"
    assert e["actor"]["user"]["name"] == "CORP\\alice"
    assert "port" not in e["dst_endpoint"]  # two ports seen: which went to which address is not known


def test_single_port_is_set_on_each_endpoint() -> None:
    ev = render(make_finding(port_list=[443]))[0]["evidences"]
    assert {e["dst_endpoint"]["port"] for e in ev} == {443}


def test_handoff_parent_addresses_are_evidence_of_the_parent_process() -> None:
    f = make_finding(detection_type="parent_child_handoff", ip_list=["8.8.8.8"], parent_ip_list=["1.1.1.1", "8.8.8.8"],
                     parent_pid=100, parent_process_guid="{p}")
    ev = render(f)[0]["evidences"]
    assert [(e["dst_endpoint"]["ip"], e["process"]["file"]["path"]) for e in ev] == [
        ("8.8.8.8", r"C:\Users\Public\stage2.exe"), ("1.1.1.1", r"C:\Windows\explorer.exe")]


def test_absent_values_are_omitted_not_null() -> None:
    o = render(make_finding(user=None, pid=None, command_line=None, confidence="certain", severity=""))[0]
    text = orjson.dumps(o).decode()
    assert "null" not in text
    assert "actor" not in o["evidences"][0]
    assert (o["confidence_id"], o["confidence"]) == (99, "certain")
    assert (o["severity_id"], o["severity"]) == (0, "Unknown")


def test_evidence_locations_are_kept(finding: Finding) -> None:
    assert render(finding)[0]["unmapped"]["evidence"] == ["logs/sysmon.json:12", "logs/sec.evtx#9001"]


def test_hostile_content_is_still_one_valid_object_per_line(hostile: Finding) -> None:
    (o,) = render(hostile)
    assert o["class_uid"] == 2004
    assert o["evidences"][0]["process"]["cmd_line"] == hostile.command_line
