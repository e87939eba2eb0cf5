"""Findings built by hand (for sink tests), with log-derived fields full of hostile content."""

from __future__ import annotations

from stagehunt.findings import Evidence, Finding

FORMULA = "=cmd|' /C calc'!A0"
HOSTILE = [FORMULA, "+1", "-2", "@SUM(1)", "\x1b[31mred\x1b[0m", "bell\x07", "evil\u202eexe.txt",
           "[bold]markup[/]", "line1\nline2", "a,b", 'say "hi"', "\ttab", "%0A", "|pipe"]


def make_finding(**changes: object) -> Finding:
    base: dict[str, object] = dict(
        detection_type="multi_stage_c2", host="ws1.corp.example", user="CORP\\alice",
        image=r"C:\Users\Public\stage2.exe", command_line=r"C:\Users\Public\stage2.exe -c 1", pid=4242,
        process_guid="{11111111-2222-3333-4444-555555555555}", parent_image=r"C:\Windows\explorer.exe",
        unique_external_ips=3, ip_list=["140.82.113.3", "8.8.8.8", "2606:4700:4700::1111"], port_list=[443, 8443],
        connection_count=7, first_contact="2026-11-02T12:00:00.000Z", last_contact="2026-11-02T12:34:56.789Z",
        duration_mins=34.9, strong_indicator=True,
        reasons=["3 distinct external addresses in 35 min", "not an excluded image"],
        evidence=[Evidence("logs/sysmon.json", 12, None, "2026-11-02T12:00:00.000Z", "network",
                           "stage2.exe -> 140.82.113.3:443/tcp", "140.82.113.3", 443),
                  Evidence("logs/sec.evtx", None, 9001, "2026-11-02T12:34:56.789Z", "network",
                           "stage2.exe -> 8.8.8.8:8443/tcp", "8.8.8.8", 8443)])
    base.update(changes)
    return Finding(**base)  # type: ignore[arg-type]


def make_hostile(payload: str) -> Finding:
    """Every free-text field of a finding carries `payload`."""
    return make_finding(host=payload, user=payload, image=f"C:\\x\\{payload}", command_line=payload,
                        parent_image=payload, parent_command_line=payload, process_guid=payload,
                        detection_type=payload, ip_list=[payload, "8.8.8.8"], reasons=[payload, f"x {payload}"],
                        evidence=[Evidence(payload, 1, None, None, "network", payload)])
