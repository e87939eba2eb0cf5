"""hunt on real public telemetry (tests/data/real): the measured expectations of EXPECTED.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stagehunt import Config, hunt
from stagehunt.config import DEFAULT_EXCLUDED_IMAGES

REAL = Path(__file__).parent.parent / "data" / "real"
EXPECTED = json.loads((REAL / "EXPECTED.json").read_text())["files"]
OTRF_SYSMON = sorted(name for name, facts in EXPECTED.items()
                     if facts.get("sysmon_by_eid", {}).get("3") and (REAL / "otrf" / name).exists())


def _name(image: str) -> str:
    return image.replace("\\", "/").rsplit("/", 1)[-1].lower()


def test_atomic_red_team_powershell_download_is_found():
    found = hunt([REAL / "otrf" / "psh_cmstp_execution_bypassuac_2020-10-2201543213.sysmon-excerpt.jsonl"])
    [f] = [f for f in found if _name(f.image) == "powershell.exe"]
    assert f.detection_type == "multi_stage_c2" and f.host == "workstation5"
    assert f.ip_list == ["140.82.113.3", "151.101.248.133"] and f.port_list == [443]
    assert all(e.line for e in f.evidence)


def test_covenant_handoff_to_internal_c2_needs_internal_scope():
    path = REAL / "otrf" / "covenant_dcom_iertutil_dll_hijack_2020-10-09183000.sysmon-excerpt.jsonl"
    assert not [f for f in hunt([path]) if f.detection_type == "parent_child_handoff"]
    found = hunt([path], Config().with_overrides(scope={"count_internal": True}))
    [h] = [f for f in found if f.detection_type == "parent_child_handoff"]
    assert _name(h.parent_image) == "iexplore.exe" and _name(h.image) == "notepad.exe"
    assert h.new_ips == ["10.10.10.5"] and set(h.parent_ip_list) == {"204.79.197.200", "72.21.91.29"}
    assert h.host == "workstation6.theshire.local" and h.strong_indicator


@pytest.mark.parametrize("name", OTRF_SYSMON)
def test_flagged_pairs_equal_the_naive_rule_minus_exclusions(name, tmp_path):
    """With a window covering the whole file, multi_stage_c2 flags exactly the naive rule's (host, image)
    pairs (>= 2 distinct public outbound destinations per process) that are not excluded.

    The naive rule reads Sysmon only; stagehunt would also use Security 5156 on a host without Sysmon
    network events (the domain controllers here), so the comparison runs on the Sysmon lines."""
    excluded = {n.lower() for n in DEFAULT_EXCLUDED_IMAGES}
    expected = {(p["host"].lower(), p["Image"].lower()) for p in EXPECTED[name]["naive_multi_public"]
                if _name(p["Image"]) not in excluded}
    lines = (REAL / "otrf" / name).read_bytes().splitlines(keepends=True)
    sysmon = tmp_path / name
    sysmon.write_bytes(b"".join(x for x in lines if json.loads(x).get("Channel", "").endswith("Sysmon/Operational")))
    cfg = Config().with_overrides(detection={"window": 3650 * 86400}, scoring={"suppress": False})
    found = hunt([sysmon], cfg)
    flagged = {(f.host, f.image.lower()) for f in found if f.detection_type == "multi_stage_c2"}
    assert flagged == expected


def test_reasons_quote_a_long_command_line_in_part_and_the_finding_keeps_it_whole():
    # Empire's launcher: powershell -enc with a payload of thousands of characters
    found = hunt([REAL / "otrf" / "empire_launcher_vbs_2020-09-04160940.sysmon-excerpt.jsonl"],
                 Config().with_overrides(scope={"count_internal": True}))
    long_ones = [f for f in found if f.command_line and len(f.command_line) > 1000]
    assert long_ones
    for f in long_ones:
        quoting = [r for r in f.reasons if f.command_line[:200] in r]
        assert quoting, f.reasons  # the reason still says which command line
        assert all(len(r) < 400 and r.endswith(f"… (+{len(f.command_line) - 240} characters)") for r in quoting)
        assert not any(f.command_line in r for r in f.reasons)
