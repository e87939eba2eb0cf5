"""`stagehunt inspect --json` (the real CLI, in a subprocess) on every real file listed in EXPECTED.json."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from realdata import EVTX_FILES, REAL, write_xml_document

from stagehunt import sources
from stagehunt.diagnostics import Diagnostics
from stagehunt.store import EventStore

EXPECTED: dict[str, dict] = json.loads((REAL / "EXPECTED.json").read_text())["files"]
PATHS = {p.name: p for p in REAL.rglob("*") if p.is_file()}

SYSLOG_SYSMON = "syslog_sysmon_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.json"
# EXPECTED.json was measured with an XML parser that silently drops what it rejects. stagehunt repairs
# the entities Sysmon for Linux writes without `;` (`&lt unknown process&gt `, `&quot SELECT`), which
# recovers 16 real events, and reports the one message syslog cut short at 2012 bytes (line 8).
RECOVERED = {SYSLOG_SYSMON: {"1": 2, "5": 14}}
ERROR_LINES = {SYSLOG_SYSMON: [8]}


def expected_format(name: str) -> str | None:
    """The Sysmon format of a file, None for the audit logs (raw auditd text, AUOMS rows)."""
    if name.endswith(".evtx"):
        return "evtx"
    if name.endswith(".sysmon-excerpt.jsonl"):
        return "flat"
    if name.startswith("syslog_sysmon_"):
        return "azure-syslog"
    if name.startswith("sysmon_log4shell_"):
        return "azure-windowsevent"
    return None


READABLE = sorted(n for n in EXPECTED if expected_format(n))
AUDIT = sorted(n for n in EXPECTED if not expected_format(n))


def inspect_json(*args: str) -> tuple[int, dict[str, dict]]:
    """Run `stagehunt inspect --json ARGS`; exit code and the report per file name."""
    proc = subprocess.run([sys.executable, "-m", "stagehunt.cli", "inspect", "--json", *args],
                          capture_output=True, check=False)
    reports = json.loads(proc.stdout)["files"] if proc.stdout else []
    return proc.returncode, {Path(r["file"]).name: r for r in reports}


@pytest.fixture(scope="module")
def inspected() -> dict[str, dict]:
    code, reports = inspect_json(*(str(PATHS[n]) for n in sorted(EXPECTED)))
    assert code == 0
    return reports


def test_every_expected_file_is_present_and_reported(inspected):
    assert sorted(inspected) == sorted(EXPECTED)


@pytest.mark.parametrize("name", READABLE)
def test_format(inspected, name):
    assert inspected[name]["format"] == expected_format(name)


@pytest.mark.parametrize("name", READABLE)
def test_sysmon_counts_by_event_id(inspected, name):
    report = inspected[name]
    got = Counter({eid: n for provider in ("sysmon", "sysmon-linux")
                   for eid, n in report["by_event_id"].get(provider, {}).items()})
    want = Counter(EXPECTED[name]["sysmon_by_eid"]) + Counter(RECOVERED.get(name, {}))
    assert got == want
    assert [e["line"] for e in report["errors"]] == ERROR_LINES.get(name, [])
    assert report["error_count"] == len(ERROR_LINES.get(name, []))


@pytest.mark.parametrize("name", READABLE)
def test_security_5156_counts(inspected, name):
    assert inspected[name]["by_event_id"].get("security", {}).get("5156", 0) == EXPECTED[name]["security_5156"]


@pytest.mark.parametrize("name", AUDIT)
def test_audit_logs_are_not_taken_for_sysmon(inspected, name):
    """Unrecognised (one diagnostic) until an auditd reader claims them; never Sysmon, never a crash."""
    report = inspected[name]
    assert report["format"] in ("unrecognised", "auditd")
    assert not {"sysmon", "sysmon-linux"} & set(report["by_event_id"])
    if report["format"] == "unrecognised":
        assert report["events"] == 0 and report["error_count"] == 1
        assert report["errors"][0]["message"].startswith("unrecognised format")


@pytest.mark.parametrize("name", READABLE)
def test_network_events_and_direction(name):
    """EID 3 count and outbound share (evtx `Initiated` is a JSON boolean, XML and NXLog a string)."""
    with EventStore() as store:
        sources.load(store, list(sources.expand([str(PATHS[name])], store.tmpdir)), "auto", Diagnostics())
        eid3, outbound = store.con.execute(
            "SELECT count(*), count(*) FILTER (direction = 'outbound') FROM events "
            "WHERE provider LIKE 'sysmon%' AND event_id = 3").fetchone()
    assert (eid3, outbound) == (EXPECTED[name]["eid3"], EXPECTED[name]["eid3_outbound"])


def test_inspect_format_xml_on_xml_rendered_from_real_evtx(tmp_path):
    """`--format xml` and auto-detection read the same events as the EVTX they were rendered from."""
    src = EVTX_FILES[0]
    xml = write_xml_document(src, tmp_path / "events.xml")
    for args in (["--format", "xml", str(xml)], [str(xml)]):
        code, reports = inspect_json(*args)
        assert code == 0
        report = reports["events.xml"]
        assert report["format"] == "xml" and report["error_count"] == 0
        assert report["by_event_id"]["sysmon"] == EXPECTED[src.name]["sysmon_by_eid"]


def test_inspect_wrong_forced_format_is_a_diagnostic_not_a_crash():
    """The report still comes out; nothing could be read, so the exit code says unreadable input (2)."""
    code, reports = inspect_json("--format", "evtx", str(PATHS[SYSLOG_SYSMON]))
    assert code == 2
    [report] = reports.values()
    assert report["events"] == 0 and report["error_count"] == 1
    assert "not an EVTX file" in report["errors"][0]["message"]
