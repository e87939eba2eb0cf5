"""simulate: scenario telemetry is deterministic, offline, read as the format it claims to be, carries the
lab's own C2 addresses when given, and the tuning profiles silence exactly the false positives they name."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from stagehunt import hunt, hunt_detailed
from stagehunt.api import HuntResult
from stagehunt.config import Config, ConfigError, load_config
from stagehunt.exclusions import ImageMatcher
from stagehunt.profiles import PROFILE_NAMES, PROFILES, profile_images
from stagehunt.simulate import ranking
from stagehunt.simulate.auditd_writer import sockaddr, untrusted
from stagehunt.simulate.lab import FORMATS, applicable, write_scenario
from stagehunt.simulate.scenarios import (
    ATTACKS,
    DEFAULT_C2,
    FALSE_POSITIVES,
    RANKING,
    SCENARIO_NAMES,
    C2Error,
    build,
    build_all,
    parse_c2,
)
from stagehunt.sources.auditd import decode_saddr, proctitle_argv

CANARIES = ("10.66.0.5", "10.66.0.6")  # a lab's private canary hosts
PUBLIC_CANARIES = ("52.95.110.1", "3.5.140.2")


def simulate_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `stagehunt simulate` in a fresh interpreter in which opening any socket is an error."""
    code = ("import sys\n"
            "def guard(event, args):\n"
            "    if event.startswith('socket.'):\n"
            "        raise RuntimeError('simulate opened a socket: ' + event)\n"
            "sys.addaudithook(guard)\n"
            "from stagehunt.cli import app\n"
            "app(['simulate', *sys.argv[1:]])\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lab")
    result = simulate_cli("-o", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_every_scenario_in_every_applicable_format(lab: Path) -> None:
    for name in SCENARIO_NAMES:
        sc = build(name)
        files = {p.name for p in (lab / name).iterdir()}
        assert files == {f.file_name for f in applicable(sc)} | {"expected.json"}
        assert ("auditd.log" in files) == ("syslog.log" in files) == (sc.platform == "linux")
        assert ("xml.xml" in files) == (sc.platform == "windows")


def test_simulate_is_deterministic_and_offline(lab: Path, tmp_path: Path) -> None:
    """A second run (in a process where a socket would raise) writes byte-identical files."""
    again = simulate_cli("-o", str(tmp_path))
    assert again.returncode == 0, again.stderr
    first, second = tree(lab), tree(tmp_path)
    assert first == second and len(first) == 72  # 58 telemetry files, 14 expected.json


def test_expected_json(lab: Path) -> None:
    doc = orjson.loads((lab / "staged-dropper" / "expected.json").read_bytes())
    assert doc["kind"] == "attack" and doc["c2"] == list(DEFAULT_C2)
    assert [(f["detection_type"], f["image"].rsplit("\\", 1)[-1], f["parent_image"].rsplit("\\", 1)[-1])
            for f in doc["expected"]["findings"]] == [("staged_dropper", "stage2_test.exe", "powershell.exe"),
                                                      ("parent_child_handoff", "stage2_test.exe", "powershell.exe")]
    assert doc["files"] == {"flat": "flat.jsonl", "ecs": "ecs.jsonl", "sumo-cse": "sumo-cse.jsonl", "xml": "xml.xml"}
    fp = orjson.loads((lab / "fp-vpn-client" / "expected.json").read_bytes())
    assert fp["expected"] == {"outcome": "no finding", "silenced_by": "profile vpn-clients"}


def test_default_addresses_are_public_and_not_documentation() -> None:
    for sc in build_all():
        for ev in sc.events:
            if ev.eid == 3:
                a = ipaddress.ip_address(ev.data["DestinationIp"])
                assert a.is_global and not a.is_multicast, (sc.name, a)


def test_each_format_is_sniffed_as_itself(lab: Path) -> None:
    """`stagehunt inspect --json` (format sniffed) reads each file as the format it was written in, whole."""
    result = subprocess.run([sys.executable, "-m", "stagehunt.cli", "inspect", "--json", str(lab)],
                            capture_output=True, text=True, timeout=300)
    reports = {Path(r["file"]).relative_to(lab).as_posix(): r for r in orjson.loads(result.stdout)["files"]}
    telemetry = {k: r for k, r in reports.items() if not k.endswith("expected.json")}
    assert len(telemetry) == 58
    for key, r in telemetry.items():
        scenario, file_name = key.split("/")
        fmt = file_name.split(".")[0]
        assert r["format"] == fmt and r["error_count"] == 0, key
        sc = build(scenario)
        # auditd sees process starts, connections and file writes; the Sysmon formats every event
        want = sum(e.eid in (1, 3, 11) for e in sc.events) if fmt == "auditd" else len(sc.events)
        assert r["events"] == want, key


def test_c2_substitution_appears_and_is_detected(tmp_path: Path) -> None:
    result = simulate_cli("-o", str(tmp_path), "--c2", ",".join(CANARIES), "-s", "two-stage-powershell",
                          "-s", "linux-curl-chain")
    assert result.returncode == 0 and "--count-internal" in result.stderr
    for folder in ("two-stage-powershell", "linux-curl-chain"):
        doc = orjson.loads((tmp_path / folder / "expected.json").read_bytes())
        assert doc["c2"] == list(CANARIES) and doc["hunt_with"] == {"count_internal": True}
        for path in (tmp_path / folder).glob("*.*"):
            text = path.read_text(encoding="utf-8")
            assert not any(ip in text for ip in DEFAULT_C2), path
            if path.name == "auditd.log":  # addresses are in the hex sockaddr there
                assert all(sockaddr(ip, port) in text for ip, port in ((CANARIES[0], 8080), (CANARIES[1], 443)))
            elif path.name != "expected.json":
                assert all(ip in text for ip in CANARIES), path
    internal = Config().with_overrides(scope={"count_internal": True})
    windows = [p for p in sorted((tmp_path / "two-stage-powershell").iterdir()) if p.name != "expected.json"]
    for path in [*windows, tmp_path / "linux-curl-chain" / "auditd.log"]:
        assert hunt([path]) == [], path  # private canaries are not external ...
        found = hunt([path], internal)  # ... and are detected once internal destinations count
        assert found and set(found[0].ip_list) == set(CANARIES), path


def test_public_canaries_are_detected_without_count_internal() -> None:
    for name in ATTACKS:
        sc = build(name, PUBLIC_CANARIES)
        assert {e.data["DestinationIp"] for e in sc.events if e.eid == 3} == set(PUBLIC_CANARIES)


@pytest.mark.parametrize(("text", "message"), [
    ("127.0.0.1,10.0.0.1", "loopback"), ("192.0.2.10,10.0.0.1", "documentation"), ("fe80::1,10.0.0.1", "link-local"),
    ("10.0.0.1", "two distinct"), ("10.0.0.1,10.0.0.1", "two distinct"), ("10.0.0.1,10.0.0.2,10.0.0.3", "two distinct"),
    ("c2.example.net,10.0.0.1", "not an IP address"),
])
def test_unusable_c2_is_refused(text: str, message: str) -> None:
    with pytest.raises(C2Error, match=message):
        parse_c2(text)
    result = simulate_cli("-o", "/nonexistent/never-written", "--c2", text)
    assert result.returncode == 2 and message in result.stderr


def test_c2_forms() -> None:
    assert parse_c2(" 52.95.110.1 , ::ffff:3.5.140.2 ") == PUBLIC_CANARIES  # IPv4-mapped is logged as IPv4
    assert parse_c2("[2a05:d014::1],2603:1030::5") == ("2a05:d014::1", "2603:1030::5")


# -- auditd rendering --------------------------------------------------------------------------------------

def test_auditd_strings_and_addresses_round_trip() -> None:
    assert untrusted("/usr/bin/curl") == '"/usr/bin/curl"'
    assert untrusted("a b") == "612062" and untrusted('say "hi"') == "7361792022686922"
    for ip, port in (("44.204.18.94", 80), ("2a05:d014::17", 8443), ("10.66.0.5", 1913)):
        sa = decode_saddr(sockaddr(ip, port))
        assert (sa.ip, sa.port) == (ip, port)


def test_auditd_rendering_of_the_curl_chain(lab: Path) -> None:
    lines = (lab / "linux-curl-chain" / "auditd.log").read_text().splitlines()
    assert all(line.startswith("node=web01 type=") for line in lines)
    execs = [line for line in lines if "syscall=59 " in line]
    assert len(execs) == 3 and all("ppid=1847 " in line for line in execs[1:])  # both curls under the bash
    titles = [line.split("proctitle=")[1] for line in lines if "type=PROCTITLE" in line]
    assert proctitle_argv(titles[1])[:4] == ["curl", "-s", "-o", "/tmp/stage1.sh"]


# -- profiles ----------------------------------------------------------------------------------------------

def _silencer(name: str) -> str:
    return build(name).silenced_by or ""


FP_FORMATS = [(n, f.name) for n in FALSE_POSITIVES for f in applicable(build(n)) if f.name in ("flat", "auditd")]


@pytest.mark.parametrize(("name", "fmt"), FP_FORMATS)
def test_the_named_profile_is_what_silences_each_false_positive(tmp_path: Path, name: str, fmt: str) -> None:
    sc = build(name)
    write_scenario(tmp_path, sc, [fmt])
    path = tmp_path / name / FORMATS[fmt].file_name
    assert hunt([path]) == []  # shipped configuration: quiet
    kind, _, profile = sc.silenced_by.partition(" ")  # type: ignore[union-attr]
    if kind == "profile":
        only = Config().with_overrides(exclusions={"profiles": [profile]})
        without = Config().with_overrides(exclusions={"profiles": [p for p in PROFILE_NAMES if p != profile]})
        assert hunt([path], only) == []
    else:  # the seed's own list (browsers)
        assert kind == "defaults"
        without = Config().with_overrides(exclusions={"use_defaults": False})
    fired = hunt([path], without)
    assert fired and all(f.image in {e.data.get("Image") for e in sc.events} for f in fired)


def test_no_profile_hides_an_attack_process() -> None:
    matcher = ImageMatcher(profile_images(PROFILE_NAMES))
    for name in ATTACKS:
        for image in build(name).attack_images:
            assert matcher.match(image) is None, (name, image)


def test_profiles_never_exclude_generic_interpreters_or_downloaders() -> None:
    matcher = ImageMatcher(profile_images(PROFILE_NAMES))
    for image in ("java.exe", "java", "python.exe", "/usr/bin/python3", "ruby.exe", "/usr/bin/ruby", "node.exe",
                  "powershell.exe", "pwsh", "cmd.exe", "/usr/bin/bash", "/usr/bin/curl", "wget", "aria2c.exe"):
        assert matcher.match(image) is None, image
    # ... while the agents' own bundled interpreters are excluded by their install path
    assert matcher.match("/opt/chef/embedded/bin/ruby") and matcher.match("/opt/saltstack/salt/bin/python3.10")


def test_profiles_in_the_config_file(tmp_path: Path) -> None:
    cfg_file = tmp_path / "stagehunt.toml"
    cfg_file.write_text('[exclusions]\nprofiles = ["vpn-clients"]\nimages = ["acme-agent.exe"]\n')
    ex = load_config(cfg_file).exclusions
    assert ex.profiles == ("vpn-clients",)
    assert set(PROFILES["vpn-clients"].images) | {"acme-agent.exe"} <= set(ex.all_images())
    assert not set(PROFILES["ci-agents"].images) & set(ex.all_images())
    assert set(profile_images(PROFILE_NAMES)) <= set(Config().exclusions.all_images())  # default: all on
    cfg_file.write_text('[exclusions]\nprofiles = ["vpn"]\n')
    with pytest.raises(ConfigError, match="unknown profile 'vpn'; known: config-management, download-managers"):
        load_config(cfg_file)


def test_config_show_lists_profiles() -> None:
    result = subprocess.run([sys.executable, "-m", "stagehunt.cli", "config", "show"], capture_output=True,
                            text=True, timeout=120)
    assert 'profiles = ["config-management", "download-managers", "vpn-clients", "ci-agents"]' in result.stdout
    assert "# profile vpn-clients (" in result.stdout and "PanGPS.exe" in result.stdout


# -- ranking scenarios (issue 6): each mechanism, in every format ---------------------------------------------

WINDOWS = [f.name for f in applicable(build("cdn-fan-out"))]


@pytest.fixture(scope="module")
def ranking_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ranking")
    for name in RANKING:
        write_scenario(out, build(name))
    return out


def _hunt(lab: Path, name: str, fmt: str, cfg: Config | None = None) -> HuntResult:
    result = hunt_detailed([lab / name / FORMATS[fmt].file_name], cfg)
    assert [f.format for f in result.files] == [fmt] and result.diagnostics.total == 0
    return result


def test_ranking_scenarios_are_windows_with_dns_names() -> None:
    """Names come from DNS events, which Sysmon for Linux does not log: every ranking scenario is a Windows
    one, in the four Windows formats, and its DNS events carry the names and answers."""
    assert WINDOWS == ["flat", "ecs", "sumo-cse", "xml"]
    for name in RANKING:
        sc = build(name)
        assert sc.platform == "windows" and [f.name for f in applicable(sc)] == WINDOWS
        dns = [e for e in sc.events if e.eid == 22]
        assert dns and all(e.data["QueryName"] and "::ffff:" in e.data["QueryResults"] for e in dns)


@pytest.mark.parametrize("fmt", WINDOWS)
def test_cdn_fan_out_is_one_named_infrastructure(ranking_lab: Path, fmt: str) -> None:
    result = _hunt(ranking_lab, "cdn-fan-out", fmt)
    assert result.findings == []
    [f] = result.hidden
    edges = {*ranking.CDN_EDGES[0], *ranking.CDN_EDGES[1][:2]}
    # every answer of both lookups is named (not only the first: Sumo's dns_replyIp holds one), CNAMEs are not
    assert set(f.ip_list) == edges and len(f.infrastructures) == 1
    assert f.infrastructures[0]["names"] == [ranking.CDN_NAME] and set(f.infrastructures[0]["ips"]) == edges
    assert f.suppressed_by == [f"infrastructure: 6 addresses are one infrastructure, jetbrains.com "
                               f"({ranking.CDN_NAME}, 6 addresses)"]


@pytest.mark.parametrize("fmt", WINDOWS)
def test_ocsp_beside_two_stages_is_found_and_beside_one_is_not(ranking_lab: Path, fmt: str) -> None:
    result = _hunt(ranking_lab, "ocsp-beside-stage", fmt)
    a, b = DEFAULT_C2
    [f] = result.findings
    assert f.image.endswith("Invoice_2026-0317.exe") and set(f.ip_list) == {a, b, ranking.OCSP_IP}
    assert {"weight": 0, "reason": f"service traffic not counted: {ranking.OCSP_IP} is certificate revocation "
            f"({ranking.OCSP_NAME})"} in f.score_breakdown
    assert f.unique_infrastructures == 2 and f.severity != "low"
    [single] = result.hidden  # the other host's lure: OCSP and one stage
    assert single.image.endswith("Scan_0317_A4.exe") and set(single.ip_list) == {a, ranking.OCSP_IP}
    assert single.suppressed_by == ["service context: without service traffic only 1 counted address(es) remain"]


@pytest.mark.parametrize("fmt", WINDOWS)
def test_lone_behaviour_outranks_the_fleet(ranking_lab: Path, fmt: str) -> None:
    result = _hunt(ranking_lab, "fleet-vs-lone", fmt)
    assert result.hidden == [] and all(f.image == ranking.SLACK for f in result.findings)
    lone = [f for f in result.findings if set(DEFAULT_C2) <= set(f.ip_list)]
    fleet = [f for f in result.findings if f not in lone]
    assert len(lone) == 1 and len(fleet) == ranking.FLEET == len({f.host for f in fleet})
    assert lone[0].host == "wks-2017.acme.local" and result.findings[0] is lone[0]  # sorted: it comes first
    assert all(lone[0].score > f.score for f in fleet)  # type: ignore[operator]
    common = f"common across the fleet: slack.exe reached the same infrastructure on {ranking.FLEET} of"
    assert all(any(b["reason"].startswith(common) and b["weight"] < 0 for b in f.score_breakdown) for f in fleet)
    assert any(b["reason"].startswith("rare: only this host (wks-2017.acme.local)") for b in lone[0].score_breakdown)


AGENTS = (ranking.AUTOMOX, ranking.WARP, ranking.APPVEYOR)
# what may pull an unknown vendor's agent down: mechanisms, never a name
MECHANISM_REASONS = ("installed software with consistent metadata", "every counted address was looked up by name",
                     "common across the fleet")


def test_no_profile_or_default_names_the_unknown_vendors() -> None:
    matcher = ImageMatcher(Config().exclusions.all_images())
    assert [a for a in AGENTS if matcher.match(a) is not None] == []


@pytest.mark.parametrize("fmt", WINDOWS)
def test_unknown_vendor_agents_are_quiet_by_mechanism(ranking_lab: Path, fmt: str) -> None:
    result = _hunt(ranking_lab, "unknown-vendor-agents", fmt)
    everything = result.findings + result.hidden
    assert sorted(f.image for f in everything) == sorted(AGENTS)  # each was found: nothing excluded it
    for f in result.findings:
        lowering = [b["reason"] for b in f.score_breakdown if b["weight"] < 0]
        assert f.severity == "low" and lowering, f.reasons
        assert all(r.startswith(MECHANISM_REASONS) for r in lowering), lowering
    [warp] = result.hidden
    assert warp.image == ranking.WARP
    assert warp.suppressed_by[0].startswith("infrastructure: 3 addresses are one infrastructure, cloudflareclient.com")
    # without any profile or default exclusion: the very same findings, scores and suppressions
    bare = _hunt(ranking_lab, "unknown-vendor-agents", fmt,
                 Config().with_overrides(exclusions={"profiles": [], "use_defaults": False}))
    assert [(f.image, f.score, f.suppressed_by) for f in bare.findings + bare.hidden] == \
        [(f.image, f.score, f.suppressed_by) for f in everything]


def test_ranking_expected_json(lab: Path) -> None:
    cdn = orjson.loads((lab / "cdn-fan-out" / "expected.json").read_bytes())["expected"]
    assert cdn["outcome"] == "no finding" and cdn["hidden"] == [
        {"image": r"C:\Users\k.ito\scoop\apps\aria2\current\aria2c.exe", "suppressed_by": "infrastructure: ..."}]
    fleet = orjson.loads((lab / "fleet-vs-lone" / "expected.json").read_bytes())
    assert fleet["c2"] == list(DEFAULT_C2) and len(fleet["hosts"]) == ranking.FLEET
    [rank] = fleet["expected"]["outranks"]
    assert rank["above"] == {"image": ranking.SLACK, "reaches": list(DEFAULT_C2), "count": 1,
                             "reason_contains": "rare: only this host"}
    assert rank["below"]["count"] == ranking.FLEET
    agents = orjson.loads((lab / "unknown-vendor-agents" / "expected.json").read_bytes())["expected"]
    assert agents["outcome"] == "findings" and agents["max_severity"] == "low"
    assert [f["image"] for f in agents["findings"]] == [ranking.AUTOMOX, ranking.APPVEYOR]
