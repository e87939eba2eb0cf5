"""Every export target: golden files, sensitivity to the configuration, and the repaired converter faults.

Regenerate the golden files after an intended change (and review the diff):

    STAGEHUNT_UPDATE_GOLDEN=1 python -m pytest tests/export/test_targets.py

The golden configurations spell their exclusion lists out instead of using the shipped defaults, so the
files pin the export code, not lists that other modules own. The counted address lists follow the
installed Python's `ipaddress` tables (see cidrs.py); where those differ from the ones the files were made
with (golden/IPADDRESS.txt), the file comparison is skipped and test_cidrs.py still proves the lists right.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest

from stagehunt.config import Config, ExclusionConfig, ScopeConfig
from stagehunt.export import TARGETS, ExportError, export
from stagehunt.export.cidrs import counted_networks

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("STAGEHUNT_UPDATE_GOLDEN") == "1"
SEED_IMAGES = ("chrome.exe", "msedge.exe", "MicrosoftEdge.exe", "MicrosoftEdgeCP.exe", "firefox.exe", "iexplore.exe",
               "opera.exe", "brave.exe", "OneDrive.exe", "Teams.exe", "ms-teams.exe", "OUTLOOK.EXE", "olk.exe",
               "thunderbird.exe", "svchost.exe", "MsMpEng.exe", "WaaSMedicAgent.exe")


def _exclusions(**values: object) -> dict[str, object]:
    """Exclusions independent of the shipped lists (profiles, if this stagehunt has them, switched off)."""
    names = {f.name for f in dataclasses.fields(ExclusionConfig)}
    return {"use_defaults": False, **({"profiles": ()} if "profiles" in names else {}), **values}


CASES = {
    "seed": Config().with_overrides(exclusions=_exclusions(images=SEED_IMAGES)),
    "tuned": Config().with_overrides(
        detection={"min_ips": 3, "strong_ips": 4, "window": 7200, "window_mode": "tumbling", "group_by": "seed"},
        scope={"count_internal": True, "home_networks": ("203.0.112.0/24", "2001:db8:1::/48", "10.20.0.0/16"),
               "external_networks": ("10.20.30.0/24",)},
        exclusions=_exclusions(
            images=(*SEED_IMAGES, "updater.exe", "C:\\Program Files\\Acme\\agent.exe",
                    "C:\\Program Files\\**\\sync?.exe", "MicrosoftEdgeUpdate*.exe"),
            hashes=("SHA256=" + "0123456789abcdef" * 4,), users=("CORP\\svc_backup", "NT AUTHORITY\\SYSTEM"),
            hosts=("build-agent-01",), destinations=("52.84.0.0/15", "2606:4700::/32"), ports=(123, 53))),
}


def _ipaddress_tables() -> str:
    lists = counted_networks(ScopeConfig())
    return "\n".join(["ipv4 " + " ".join(map(str, lists.ipv4)), "ipv6 " + " ".join(map(str, lists.ipv6))]) + "\n"


def _golden_path(case: str, target: str) -> Path:
    return GOLDEN / case / f"{target}.{TARGETS[target].suffix}"


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str, target: str) -> None:
    if TARGETS[target].needs_pysigma:
        pytest.importorskip("sigma.collection")
    text = export(target, CASES[case])
    path = _golden_path(case, target)
    tables = GOLDEN / "IPADDRESS.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        tables.write_text(_ipaddress_tables(), encoding="utf-8")
        return
    if tables.read_text(encoding="utf-8") != _ipaddress_tables():
        pytest.skip("this Python's ipaddress tables differ from those the golden files were made with")
    assert text == path.read_text(encoding="utf-8"), f"{path} differs; regenerate (see this module's docstring)"


BASE = CASES["seed"]
CHANGES = {
    "threshold": (BASE.with_overrides(detection={"min_ips": 5, "strong_ips": 6}),
                  {"sigma": "gte: 5", "splunk": ">= 5", "esql": ">= 5", "kql": ">= 5", "sumo-query": ">= 5",
                   "sumo-rule": ">= 5", "sumo-terraform": ">= 5"}),
    "window": (BASE.with_overrides(detection={"window": 36 * 3600}),
               {"sigma": "timespan: '36h'", "splunk": "time_window=36h", "esql": "36h", "kql": "let window = 36h;",
                "sumo-query": "last 36h", "sumo-rule": '"windowSizeMillis": "129600000"',
                "sumo-terraform": 'window_size_millis = "129600000"'}),
    "home network": (BASE.with_overrides(scope={"home_networks": ("45.33.0.0/16",)}), None),
    "exclusion": (BASE.with_overrides(exclusions={"images": (*SEED_IMAGES, "Evil-Updater.exe")}), None),
}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_setting_changes_every_target(change: str, target: str) -> None:
    if TARGETS[target].needs_pysigma:
        pytest.importorskip("sigma.collection")
    cfg, marks = CHANGES[change]
    before, after = export(target, BASE), export(target, cfg)
    assert before != after
    if marks is not None:
        assert marks[target] in after and marks[target] not in before
    elif change == "exclusion":
        assert "evil-updater" in after.lower() and "evil-updater" not in before.lower()


def test_home_network_reaches_the_address_lists() -> None:
    cfg = CHANGES["home network"][0]
    sigma = export("sigma", cfg)
    assert "- '45.32.0.0/16'" in sigma and "- '45.33.0.0/16'" not in sigma  # a hole in the counted list
    if _has_pysigma():
        for target in ("splunk", "esql", "kql"):
            assert '"45.33.0.0/16"' in export(target, cfg), target  # a gap in the short form
    start = 45 << 24 | 33 << 16
    assert f"{start - 1}" in export("sumo-query", cfg) and f"{start + 65536}" in export("sumo-query", cfg)


def _has_pysigma() -> bool:
    try:
        import sigma.collection  # noqa: F401
    except ImportError:
        return False
    return True


def test_unknown_target_and_out_of_range_window() -> None:
    with pytest.raises(ExportError, match="unknown export target"):
        export("qradar", BASE)
    with pytest.raises(ExportError, match="1 minute to 5 days"):
        export("sumo-rule", BASE.with_overrides(detection={"window": 7 * 86400}))


# ---- the converter and seed faults each target must not have -----------------------------------------

def test_sumo_query_uses_schema_names_and_no_source_filter() -> None:
    text = export("sumo-query", CASES["tuned"])
    query = text[text.index("(_index="):]
    for wrong in ("windows:sysmon:3", "dstDevice_port", "application_name", "srcDevice_ip", 'matches "*chrome*"',
                  "parentProcessName"):
        assert wrong not in query, wrong
    for right in ('"Microsoft-Windows-Sysmon/Operational-3"', '"Microsoft-Windows-Sysmon/Operational-1"',
                  "ipv4ToNumber(dst_ip)", "isValidIPv6(dst_ip)", "toLowerCase(baseImage)", "values(start_cmd)",
                  "substring(dst_ip, 7)", "by host, user, image, command_line, slice", "timeslice 2h"):
        assert right in query, right
    assert "| timeslice" not in export("sumo-query", BASE)  # sliding: the search range is the window


def test_sumo_query_regexes_compile() -> None:
    text = export("sumo-query", CASES["tuned"])
    for rx in re.findall(r"matches /((?:\\/|[^/])+)/", text):
        re.compile(rx.replace("\\/", "/"))


def test_sumo_rule_body() -> None:
    doc = json.loads(export("sumo-rule", BASE))
    fields = doc["body"]["fields"]
    assert doc["path"] == "/api/sec/v1/rules/aggregation"
    assert fields["aggregationFunctions"] == [{"name": "unique_external_ips", "function": "count_distinct",
                                               "arguments": ["dstDevice_ip"]}]
    assert fields["triggerExpression"] == "unique_external_ips >= 2" and fields["windowSize"] == "T24H"
    assert "Microsoft-Windows-Sysmon/Operational-3" in fields["matchExpression"]
    assert "fields['EventData.Initiated']" in fields["matchExpression"]  # not `action`: always NetworkConnect
    assert "srcDevice_ip" not in fields["matchExpression"]
    assert "No Chain rule" in fields["descriptionExpression"]
    assert fields["suppressionWindowSize"] > 86_400_000


def test_sumo_terraform_resource() -> None:
    text = export("sumo-terraform", CASES["tuned"])
    assert 'resource "sumologic_cse_aggregation_rule" "stagehunt_t1104_multi_stage_c2" {' in text
    assert 'window_size = "CUSTOM"' in text and 'window_size_millis = "7200000"' in text
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert body.count("{") - body.count("${") >= body.count("}") - 1  # braces in strings aside, blocks close
    for line in body.splitlines():
        if " = " in line and line.strip().split(" = ", 1)[1].startswith('"'):
            json.loads(line.strip().split(" = ", 1)[1])  # HCL strings written as valid JSON strings


@pytest.fixture
def pysigma() -> None:
    pytest.importorskip("sigma.collection")


@pytest.mark.usefixtures("pysigma")
def test_splunk_window_and_mapped_addresses() -> None:
    sliding, tumbling = export("splunk", BASE), export("splunk", CASES["tuned"])
    assert "streamstats time_window=24h dc(DestinationIp)" in sliding and "bin _time" not in sliding
    assert "bin _time span=2h" in tumbling and "streamstats" not in tumbling
    for text in (sliding, tumbling):
        assert "EventCode=3" in text and "substr(DestinationIp, 8)" in text
        assert 'cidrmatch("::ffff:0:0/96", DestinationIp)' in text  # hex-spelled mapped text never counts
        assert text.index("substr(DestinationIp, 8)") < text.index("cidrmatch(")  # unwrap before testing


@pytest.mark.usefixtures("pysigma")
def test_esql_repairs_the_ecs_pipeline() -> None:
    text = export("esql", CASES["tuned"])
    assert 'network.direction)=="egress"' in text and '"true"' not in text
    assert "winlog.computer_name" in text and "winlog.event_data.Computer" not in text
    assert ".caseless" not in text and "to_lower(process.executable)" in text
    assert '"\\\\microsoftedge.exe"' in text and "MicrosoftEdge.exe" not in text.split("\n| WHERE", 1)[1]
    assert 'to_lower(user.domain)=="corp" and to_lower(user.name)=="svc_backup"' in text
    assert "(?i)" not in text.split("FROM ", 1)[1]  # Lucene RLIKE has no inline flags
    assert "DATE_TRUNC(2 hours, @timestamp)" in text and "DATE_TRUNC" not in export("esql", BASE)


@pytest.mark.usefixtures("pysigma")
def test_kql_repairs_the_kusto_backend() -> None:
    text = export("kql", CASES["tuned"])
    assert not re.search(r'ipv4_is_in_range\([^)]*"[0-9a-f]*:', text)  # no IPv6 CIDR in an IPv4 test
    assert 'coalesce(ipv6_is_in_range(RemoteIP, "2606:4700::/32"), false)' in text
    assert 'ActionType !in ("InboundConnectionAccepted", "ListeningConnectionCreated")' in text
    assert "substring(RemoteIP, 7)" in text and "RemotePort in (53, 123)" in text
    assert 'DeviceName =~ "build-agent-01"' in text
    assert "bin(Timestamp, window)" in text and "join kind=inner" in export("kql", BASE)
    for cfg in (BASE, Config()):
        assert len(export("kql", cfg)) < 10_000  # Sentinel rejects longer rule queries


@pytest.mark.usefixtures("pysigma")
@pytest.mark.parametrize("target", [t for t in TARGETS if t != "sigma"])
def test_every_query_states_its_window_semantics(target: str) -> None:
    for cfg in (BASE, CASES["tuned"]):
        text = export(target, cfg)
        assert "Window: " in text or "Window:" in text.replace("\n", " ")
        assert ("fixed buckets" in text or "sliding" in text)
