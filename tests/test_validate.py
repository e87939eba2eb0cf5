"""validate: every scenario passes in every format with the shipped configuration, and the verdicts are
honest: a configuration that cannot see a scenario gets MISS, one without the tuning gets FALSE-POSITIVE,
a damaged file gets READ-ERROR, and the command's exit code says so."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from stagehunt.config import Config
from stagehunt.simulate.lab import FORMATS, applicable, write_scenario
from stagehunt.simulate.scenarios import ATTACKS, FALSE_POSITIVES, RANKING, SCENARIO_NAMES, build
from stagehunt.validate import Report, check, validate


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stagehunt.cli", "validate", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def report() -> Report:
    return validate()


def test_every_scenario_passes_in_every_format(report: Report) -> None:
    failing = [(c.scenario, c.format, c.verdict, c.problems) for c in report.cells if c.verdict != "PASS"]
    assert failing == [] and report.ok
    want = {(n, f.name) for n in SCENARIO_NAMES for f in applicable(build(n))}
    assert {(c.scenario, c.format) for c in report.cells} == want and len(want) == 58
    assert not report.count_internal and report.notes == []


def test_what_each_attack_scenario_is_answered_by(report: Report) -> None:
    by = {(c.scenario, c.format): c.found for c in report.cells}
    assert by[("two-stage-powershell", "xml")] == ["multi_stage_c2 powershell.exe <- explorer.exe (high)"]
    assert by[("staged-dropper", "sumo-cse")] == ["staged_dropper stage2_test.exe <- powershell.exe (high)",
                                                  "parent_child_handoff stage2_test.exe <- powershell.exe (high)"]
    assert by[("socks5-first-stage", "ecs")] == ["multi_stage_c2 powershell.exe <- explorer.exe (high)"]
    assert by[("linux-curl-chain", "auditd")] == ["sibling_chain curl <- bash (high)"]
    assert by[("injected-stage", "flat")] == ["injected_stage notepad.exe <- powershell.exe (high)"]
    assert all(by[(n, f)] == [] for n, f in by if n in FALSE_POSITIVES)


def test_a_config_that_cannot_see_two_stages_misses_them() -> None:
    r = validate(Config().with_overrides(detection={"min_ips": 3, "strong_ips": 3}),
                 formats=["flat", "auditd"], scenarios=["two-stage-powershell", "linux-curl-chain", "staged-dropper"])
    verdicts = {(c.scenario, c.format): c.verdict for c in r.cells}
    assert verdicts == {("two-stage-powershell", "flat"): "MISS", ("linux-curl-chain", "flat"): "MISS",
                        ("linux-curl-chain", "auditd"): "MISS",
                        # the dropper is found by what it did, not by counting addresses
                        ("staged-dropper", "flat"): "PASS"}
    miss = next(c for c in r.cells if c.scenario == "two-stage-powershell")
    assert miss.problems == ["missing multi_stage_c2 powershell.exe <- explorer.exe"] and not r.ok


def test_without_the_tuning_the_false_positives_fire() -> None:
    untuned = Config().with_overrides(exclusions={"profiles": [], "use_defaults": False})
    r = validate(untuned, formats=["flat"], scenarios=list(FALSE_POSITIVES))
    assert [c.verdict for c in r.cells] == ["FALSE-POSITIVE"] * 5
    vpn = next(c for c in r.cells if c.scenario == "fp-vpn-client")
    assert [f.rsplit(" (", 1)[0] for f in vpn.found] == ["multi_stage_c2 PanGPS.exe <- services.exe"]
    assert vpn.problems[0].startswith("false positive: multi_stage_c2 PanGPS.exe")


def test_a_missing_confidence_reason_is_a_miss() -> None:
    """The SOCKS scenario is about the proxy-port reason: without it (no proxy ports) the check fails."""
    r = validate(Config().with_overrides(detection={"proxy_ports": [], "standard_ports": [80, 443, 81, 1080, 1913]}),
                 formats=["flat"], scenarios=["socks5-first-stage"])
    [cell] = r.cells
    assert cell.verdict == "MISS" and "reason containing 'proxy/SOCKS first-stage port'" in cell.problems[0]


def test_private_canaries_switch_count_internal_on() -> None:
    r = validate(formats=["flat", "auditd"], c2=("10.66.0.5", "10.66.0.6"), scenarios=list(ATTACKS))
    assert r.ok and r.count_internal and "count_internal = true" in r.notes[0]


def test_a_damaged_file_is_a_read_error(tmp_path: Path) -> None:
    sc = build("two-stage-powershell")
    write_scenario(tmp_path, sc, ["flat"])
    path = tmp_path / sc.name / FORMATS["flat"].file_name
    with open(path, "ab") as f:
        f.write(b'{"EventID": 3, "UtcTime": \n')  # a record cut short
    cell = check(sc, "flat", path, Config())
    assert cell.verdict == "READ-ERROR" and any(p.startswith("unreadable:") for p in cell.problems)


def test_cli_exit_codes(tmp_path: Path) -> None:
    ok = cli("-s", "injected-stage", "-s", "fp-config-management", "--json", "--keep", str(tmp_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = orjson.loads(ok.stdout)
    assert doc["ok"] and doc["summary"]["PASS"] == 9 and len(doc["results"]) == 9
    assert (tmp_path / "injected-stage" / "xml.xml").is_file()  # --keep kept the simulated files
    broken = tmp_path / "broken.toml"
    broken.write_text("[detection]\nmin_ips = 50\nstrong_ips = 50\n")
    bad = cli("--config", str(broken), "-s", "two-stage-powershell", "-s", "fp-browsers", "-f", "flat")
    assert bad.returncode == 1
    assert "MISS" in bad.stdout and "2 checks: 1 PASS, 1 MISS" in bad.stdout
    assert cli("-s", "no-such-scenario").returncode == 2
    assert cli("--c2", "127.0.0.1,10.0.0.1").returncode == 2


def test_ipv6_canaries_pass_in_every_format() -> None:
    r = validate(c2=("2a05:d014:a3c::17", "2603:1030:20e:3::23c"), scenarios=list(ATTACKS))
    assert [(c.scenario, c.format, c.problems) for c in r.cells if c.verdict != "PASS"] == []
    assert len(r.cells) == 21 and not r.count_internal  # 4 Windows scenarios x 4 formats, Linux x 5


# -- the ranking scenarios (issue 6): honest verdicts when a mechanism is off or cannot work -----------------

def test_what_each_ranking_scenario_is_answered_by(report: Report) -> None:
    cells = {(c.scenario, c.format): c for c in report.cells if c.scenario in RANKING}
    assert len(cells) == 16 and all(c.verdict == "PASS" for c in cells.values())
    for fmt in ("flat", "ecs", "sumo-cse", "xml"):
        cdn = cells[("cdn-fan-out", fmt)]
        assert cdn.found == [] and cdn.hidden == ["hidden (infrastructure): multi_stage_c2 aria2c.exe <- "
                                                  "powershell.exe (high)"]
        ocsp = cells[("ocsp-beside-stage", fmt)]
        assert ocsp.found == ["multi_stage_c2 Invoice_2026-0317.exe <- explorer.exe (high)"]
        assert ocsp.hidden == ["hidden (service context): multi_stage_c2 Scan_0317_A4.exe <- explorer.exe (medium)"]
        fleet = cells[("fleet-vs-lone", fmt)].found
        assert len(fleet) == 2 and fleet[1].endswith(" (x50)")  # the lone one first, the fleet's fifty as one line
        agents = cells[("unknown-vendor-agents", fmt)]
        assert all(f.endswith(" low)") for f in agents.found) and len(agents.found) == 2
        assert agents.hidden == ["hidden (infrastructure): multi_stage_c2 warp-svc.exe <- services.exe (score 30 low)"]


def test_without_suppression_the_hidden_fan_out_is_a_false_positive() -> None:
    r = validate(Config().with_overrides(scoring={"suppress": False}), formats=["flat"],
                 scenarios=["cdn-fan-out", "ocsp-beside-stage", "unknown-vendor-agents"])
    verdicts = {c.scenario: (c.verdict, c.problems) for c in r.cells}
    assert verdicts["cdn-fan-out"] == ("FALSE-POSITIVE", [
        "false positive: multi_stage_c2 aria2c.exe <- powershell.exe (high) (should be hidden by infrastructure)"])
    assert verdicts["ocsp-beside-stage"] == ("FALSE-POSITIVE", [
        "false positive: multi_stage_c2 Scan_0317_A4.exe <- explorer.exe (medium) (should be hidden by service "
        "context)"])
    assert verdicts["unknown-vendor-agents"][0] == "FALSE-POSITIVE"
    assert "warp-svc.exe <- services.exe (high) (should be hidden by infrastructure)" in \
        verdicts["unknown-vendor-agents"][1][0]


def test_an_excluded_process_proves_nothing_about_the_mechanism() -> None:
    """A scenario hidden by an exclusion instead of its mechanism is a MISS, not a pass."""
    r = validate(Config().with_overrides(exclusions={"images": ["aria2c.exe", "warp-svc.exe"]}), formats=["xml"],
                 scenarios=["cdn-fan-out", "unknown-vendor-agents"])
    for cell in r.cells:
        assert cell.verdict == "MISS"
        assert any("no finding about it at all (excluded before ranking?" in p for p in cell.problems), cell.problems


def test_an_agent_ranked_above_low_is_a_false_positive() -> None:
    r = validate(Config().with_overrides(scoring={"installed_software": 0}), formats=["ecs"],
                 scenarios=["unknown-vendor-agents"])
    [cell] = r.cells
    assert cell.verdict == "FALSE-POSITIVE"
    assert cell.problems == ["false positive: multi_stage_c2 Appveyor.BuildAgent.Service.exe <- services.exe "
                             "(score 50 medium), above low",
                             "false positive: multi_stage_c2 amagent.exe <- services.exe (score 50 medium), above low"]


def test_without_prevalence_or_with_the_order_reversed_the_fleet_scenario_misses() -> None:
    blind = validate(Config().with_overrides(scoring={"fleet_min_hosts": 100}), formats=["sumo-cse"],
                     scenarios=["fleet-vs-lone"])
    [cell] = blind.cells
    assert cell.verdict == "MISS" and cell.problems[0].startswith("missing multi_stage_c2 slack.exe <- explorer.exe "
                                                                  "(reason containing 'rare: only this host')")
    assert any(p.startswith("missing reason 'common across the fleet' on 50 of 50 x slack.exe") for p in cell.problems)
    # prevalence still says rare and common, but direct-to-IP now weighs the lone one below the fleet
    reversed_ = validate(Config().with_overrides(scoring={"direct_to_ip": -40}), formats=["flat"],
                         scenarios=["fleet-vs-lone"])
    [cell] = reversed_.cells
    assert cell.verdict == "MISS" and len(cell.problems) == 1
    assert cell.problems[0].startswith("missing rank: 1 x slack.exe to 35.180.15.222, 20.106.54.31 must score above "
                                       "50 x slack.exe to 52.7.200.14, 108.138.85.36, but multi_stage_c2 slack.exe")


@pytest.mark.parametrize("fmt", ["flat", "ecs", "sumo-cse", "xml"])
def test_the_names_come_from_each_formats_dns_events(tmp_path: Path, fmt: str) -> None:
    """Drop the DNS events (Sysmon event 22) and the same scenarios fail: in every format, the names that
    make one infrastructure and the 'every address named' reason come from those events."""
    for name in ("cdn-fan-out", "unknown-vendor-agents"):
        sc = build(name)
        blind = dataclasses.replace(sc, events=tuple(e for e in sc.events if e.eid != 22))
        for scenario, folder, verdict in ((sc, "with-dns", "PASS"), (blind, "without-dns", "FALSE-POSITIVE")):
            write_scenario(tmp_path / folder, scenario, [fmt])
            cell = check(scenario, fmt, tmp_path / folder / name / FORMATS[fmt].file_name, Config())
            assert cell.verdict == verdict, (name, folder, cell.problems)


def test_cli_table_for_the_fleet() -> None:
    out = cli("-s", "fleet-vs-lone", "-f", "xml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "(x50)" in out.stdout and "outranks" in out.stdout and "1 checks: 1 PASS" in out.stdout


def test_on_a_terminal_validate_shows_which_scenario_it_proves(tmp_path: Path) -> None:
    from test_cli_hunt import _in_a_terminal

    code, out = _in_a_terminal(["validate", "-s", "injected-stage", "-s", "fp-config-management"], tmp_path)
    assert code == 0, out[-2000:]
    assert "validating" in out and "9 checks: 9 PASS" in out, out[-2000:]
