"""What the detections share: SQL fragments for evidence lists and turning rows into finding parts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stagehunt.config import Config
from stagehunt.findings import Evidence, Finding, iso

MAX_EVIDENCE = 200  # per finding; the count of the rest is stated in the reasons

def conn_evidence_sql(alias: str = "c") -> str:
    """Aggregate: the list of connection evidence, in time order, over `conn`-shaped rows."""
    a = f"{alias}." if alias else ""
    return (f"list({{'file': {a}source_file, 'line': {a}source_line, 'record': {a}source_record, 'time': {a}time, "
            f"'ip': {a}ip, 'port': {a}port, 'protocol': {a}protocol}} "
            # a total order (every event has its own origin), so that any engine lists them alike
            f"ORDER BY {a}time, {a}source_file, {a}source_line, {a}source_record)")


def conn_stats_sql(alias: str = "c") -> str:
    """Aggregates every connection-based finding reports: addresses, ports, counts, span, evidence."""
    a = f"{alias}." if alias else ""
    return (f"count(DISTINCT {a}ip) AS n_ips, list(DISTINCT {a}port ORDER BY {a}port) FILTER ({a}port IS NOT NULL) "
            f"AS ports, count(*) AS n_conns, min({a}time) AS first_time, max({a}time) AS last_time, "
            f"{conn_evidence_sql(alias)} AS conns")


def bursts_sql(source: str, gkey: str, cfg: Config, having: str = "") -> str:
    """CTEs ending in `found`: per group (`gkey` over the rows of `source`, which has pkey, time, ip,
    port, protocol and source_*) and burst, the connections when at least min_ips distinct addresses
    fall in one window. Sliding: every connection opens a window and overlapping qualifying windows
    merge into one burst. Tumbling: fixed UTC-aligned buckets, as the seed's `timeslice`."""
    d = cfg.detection
    w = int(d.window)
    if d.window_mode == "sliding":
        member = f"""
        win AS (
            SELECT gkey, time, count(DISTINCT ip) OVER (PARTITION BY gkey ORDER BY time
                   RANGE BETWEEN CURRENT ROW AND INTERVAL {w} SECONDS FOLLOWING) AS n
            FROM g
        ), opening AS (  -- windows that qualify; overlapping ones merge into one burst. One row per time:
                         -- with ties, this window and the next could order tied rows apart and split a burst
            SELECT gkey, time, CASE WHEN lag(time) OVER (PARTITION BY gkey ORDER BY time)
                                         >= time - INTERVAL {w} SECONDS THEN 0 ELSE 1 END AS opens
            FROM (SELECT DISTINCT gkey, time FROM win WHERE n >= {d.min_ips}) q
        ), numbered AS (
            SELECT gkey, time, sum(opens) OVER (PARTITION BY gkey ORDER BY time ROWS UNBOUNDED PRECEDING) AS burst
            FROM opening
        ), bursts AS (
            SELECT gkey, burst, min(time) AS b_start, max(time) + INTERVAL {w} SECONDS AS b_end
            FROM numbered GROUP BY ALL
        ), member AS (
            SELECT g.*, b.burst FROM g JOIN bursts b ON g.gkey = b.gkey AND g.time BETWEEN b.b_start AND b.b_end
        )"""
    else:
        member = f"""
        member AS (
            SELECT g.*, CAST(floor(epoch_us(time) / {w * 1_000_000}) AS BIGINT) * {w} AS burst  -- UTC-aligned
            FROM g
        )"""
    return f"""
        g0 AS (
            SELECT {gkey} AS gkey, * FROM ({source})
        ), g AS (  -- only groups that reach enough addresses at all need the window work
            SELECT * FROM g0 WHERE gkey IN (SELECT gkey FROM g0 GROUP BY 1 HAVING count(DISTINCT ip) >= {d.min_ips})
        ), {member.strip()}, found AS (
            SELECT c.gkey, c.burst, min(c.pkey) AS pkey, count(DISTINCT c.pkey) AS n_processes, {conn_stats_sql()}
            FROM member c GROUP BY c.gkey, c.burst HAVING count(DISTINCT c.ip) >= {d.min_ips} {having}
        )"""


def base_name(path: str | None) -> str:
    if not path:
        return "?"
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def hhmm(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def span_text(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def conn_evidence(items: list[dict[str, Any]], image: str | None) -> list[Evidence]:
    out = []
    for e in items[:MAX_EVIDENCE]:
        port = f":{e['port']}" if e["port"] is not None else ""
        proto = f"/{e['protocol']}" if e["protocol"] else ""
        out.append(Evidence(e["file"], e["line"], e["record"], iso(e["time"]), "network",
                            f"{base_name(image)} -> {e['ip']}{port}{proto}", e["ip"], e["port"]))
    return out


def start_evidence(row: dict[str, Any], prefix: str = "") -> list[Evidence]:
    if not row.get(f"{prefix}start_file"):
        return []
    cmd = row.get(f"{prefix}command_line") or row.get(f"{prefix}image")
    return [Evidence(row[f"{prefix}start_file"], row[f"{prefix}start_line"], row[f"{prefix}start_record"],
                     iso(row[f"{prefix}start_time"]), "process_start", f"started: {cmd}")]


def first_contacts(items: list[dict[str, Any]]) -> list[tuple[str, datetime, set[int]]]:
    """(ip, first contact, ports) per distinct IP, in order of first contact."""
    seen: dict[str, tuple[datetime, set[int]]] = {}
    for e in items:
        _t, ports = seen.setdefault(e["ip"], (e["time"], set()))
        if e["port"] is not None:
            ports.add(e["port"])
    return sorted(((ip, t, p) for ip, (t, p) in seen.items()), key=lambda x: x[1])


def contacts_text(contacts: list[tuple[str, datetime, set[int]]], limit: int = 8) -> str:
    parts = [f"{ip} (port {', '.join(map(str, sorted(ports))) or '?'}, first {hhmm(t)})" for ip, t, ports in
             contacts[:limit]]
    more = f" and {len(contacts) - limit} more" if len(contacts) > limit else ""
    return "; ".join(parts) + more


QUOTED = 240  # characters of a command line that a reason quotes; the finding's own fields hold it whole


def quoted(text: str | None, limit: int = QUOTED) -> str | None:
    """A command line as a reason quotes it: whole up to `limit` characters, else its start and how much is
    left out (an encoded PowerShell payload runs to thousands of characters, a screenful in a table)."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… (+{len(text) - limit} characters)"


def context_reason(row: dict[str, Any]) -> str:
    if not row["context_known"]:
        return ("process start not logged: command line, parent and hashes unknown "
                "(identity from its network events only)")
    parent = base_name(row.get("parent_image")) if row.get("parent_image") else "an unknown parent"
    ppid = f" (pid {row['parent_pid']})" if row.get("parent_pid") is not None else ""
    return f"started {hhmm(row['start_time'])} by {parent}{ppid}: {quoted(row.get('command_line')) or row.get('image')}"


def port_reasons(ports: list[int] | None, cfg: Config) -> tuple[list[str], bool]:
    """Named reasons for SOCKS/proxy first stages and non-standard C2 ports; True if they raise confidence."""
    ports = sorted(set(ports or []))
    reasons = []
    proxy = [p for p in ports if p in cfg.detection.proxy_ports]
    if proxy:
        apt3 = " (1913 is APT3's SOCKS5 first-stage port)" if 1913 in proxy else ""
        reasons.append(f"confidence raised: proxy/SOCKS first-stage port {', '.join(map(str, proxy))}{apt3}")
    odd = [p for p in ports if p not in cfg.detection.standard_ports and p not in proxy]
    if odd:
        reasons.append(f"confidence raised: non-standard C2 port {', '.join(map(str, odd))} "
                       f"(standard: {', '.join(map(str, cfg.detection.standard_ports))})")
    return reasons, bool(reasons)


def later_stage_finding(detection_type: str, row: dict[str, Any], *, earlier: tuple, earlier_ips: list[str],
                        reasons: list[str], first_evidence: Evidence, cfg: Config) -> Finding:
    """A finding about a later stage (the row's process, from ctx) that reached new addresses after an
    earlier one (image, pid, command line, guid) did something to it: dropped it, opened it..."""
    e_image, e_pid, e_cmd, e_guid = earlier
    contacts = first_contacts(row["conns"])
    new = [ip for ip, _, _ in contacts]
    span = (row["last_time"] - row["first_time"]).total_seconds()
    extra, _ = port_reasons(row["ports"], cfg)
    return Finding(
        detection_type=detection_type, host=row["host"], user=row["user"], image=row["image"],
        command_line=row["command_line"], pid=row["pid"], process_guid=row["guid"], parent_image=e_image,
        parent_command_line=e_cmd, parent_pid=e_pid, parent_process_guid=e_guid, unique_external_ips=row["n_ips"],
        ip_list=new, parent_ip_list=sorted(earlier_ips), new_ips=new, port_list=row["ports"] or [],
        connection_count=row["n_conns"], first_contact=iso(row["first_time"]), last_contact=iso(row["last_time"]),
        duration_mins=round(span / 60, 1), strong_indicator=True, confidence="high",
        reasons=[*reasons, *extra, context_reason(row)],
        evidence=[first_evidence, *start_evidence(row), *conn_evidence(row["conns"], row["image"])],
        context_known=row["context_known"],
    )
