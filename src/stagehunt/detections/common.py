"""What the detections share: SQL fragments for evidence lists and turning rows into finding parts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stagehunt.findings import Evidence, iso

MAX_EVIDENCE = 200  # per finding; the count of the rest is stated in the reasons

# list of connection evidence, ordered by time, for an aggregate over `conn` rows aliased c
CONN_EVIDENCE_SQL = (
    "list({'file': c.source_file, 'line': c.source_line, 'record': c.source_record, 'time': c.time, "
    "'ip': c.ip, 'port': c.port, 'protocol': c.protocol} ORDER BY c.time, c.source_line)"
)


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
                            f"{base_name(image)} -> {e['ip']}{port}{proto}"))
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


def context_reason(row: dict[str, Any]) -> str:
    if not row["context_known"]:
        return ("process start not logged: command line, parent and hashes unknown "
                "(identity from its network events only)")
    parent = base_name(row.get("parent_image")) if row.get("parent_image") else "an unknown parent"
    ppid = f" (pid {row['parent_pid']})" if row.get("parent_pid") is not None else ""
    return f"started {hhmm(row['start_time'])} by {parent}{ppid}: {row.get('command_line') or row.get('image')}"
