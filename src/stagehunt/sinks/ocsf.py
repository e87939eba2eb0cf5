"""OCSF Detection Finding (class 2004, schema 1.1.0), one JSON object per line.

Each distinct destination becomes one evidence artifact: the process that reached it, the address,
the host and the user. Sysmon does not tie a port to each address in the finding, so `dst_endpoint.port`
is set only when the finding saw a single port; the full lists and the source locations of every
contributing event are kept under `unmapped`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stagehunt import __version__
from stagehunt.findings import Finding
from stagehunt.sinks.base import Sink
from stagehunt.sinks.jsonl import dumps

OCSF_VERSION = "1.1.0"
CLASS_UID, ACTIVITY_ID, CATEGORY_UID = 2004, 1, 2
TACTIC = {"uid": "TA0011", "name": "Command and Control"}
TECHNIQUES = {"T1104": "Multi-Stage Channels"}
SEVERITY_IDS = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5, "fatal": 6}
CONFIDENCE_IDS = {"low": 1, "medium": 2, "high": 3}


def epoch_ms(iso_text: str | None) -> int | None:
    """ISO 8601 (naive means UTC) -> milliseconds since the epoch; None if absent or unreadable."""
    if not iso_text:
        return None
    try:
        t = datetime.fromisoformat(iso_text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def _enum(value: str | None, ids: dict[str, int]) -> tuple[int, str]:
    """(id, caption): 0 Unknown when missing, 99 Other (keeping our word) when OCSF has no such value."""
    if not value:
        return 0, "Unknown"
    key = value.strip().lower()
    return (ids[key], key.capitalize()) if key in ids else (99, value)


def _name(path: str | None) -> str | None:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] if path else None


def _prune(obj: Any) -> Any:
    """Drop None values and the objects left empty, as OCSF omits absent attributes rather than nulling them."""
    if isinstance(obj, dict):
        out = {k: p for k, v in obj.items() if (p := _prune(v)) is not None and p != {}}
        return out or None
    if isinstance(obj, list):
        return [p for v in obj if (p := _prune(v)) is not None]
    return obj


def _process(image: str | None, pid: int | None, guid: str | None, cmd: str | None, user: str | None) -> dict:
    return {"name": _name(image), "pid": pid, "uid": guid, "cmd_line": cmd,
            "file": {"path": image, "name": _name(image)}, "user": {"name": user}}


def to_ocsf(f: Finding) -> dict[str, Any]:
    first, last = epoch_ms(f.first_contact), epoch_ms(f.last_contact)
    severity_id, severity = _enum(f.severity, SEVERITY_IDS)
    confidence_id, confidence = _enum(f.confidence, CONFIDENCE_IDS)
    parent = _process(f.parent_image, f.parent_pid, f.parent_process_guid, f.parent_command_line, None)
    child = {**_process(f.image, f.pid, f.process_guid, f.command_line, f.user), "parent_process": parent}
    port = f.port_list[0] if len(f.port_list) == 1 else None
    device = {"hostname": f.host, "type_id": 0, "type": "Unknown"}
    actor = {"user": {"name": f.user}}
    evidences = [{"process": child, "dst_endpoint": {"ip": ip, "port": port}, "device": device, "actor": actor}
                 for ip in f.ip_list]
    # a handoff also reached addresses from the earlier stage: their evidence names that process
    evidences += [{"process": parent, "dst_endpoint": {"ip": ip}, "device": device}
                  for ip in f.parent_ip_list if ip not in f.ip_list]
    name = _name(f.image) or "unknown process"
    title = f"{f.detection_type}: {name} reached {f.unique_external_ips} external addresses"
    return _prune({
        "class_uid": CLASS_UID, "class_name": "Detection Finding",
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "activity_id": ACTIVITY_ID, "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_ID, "type_name": "Detection Finding: Create",
        "time": last if last is not None else (first if first is not None else 0),
        "severity_id": severity_id, "severity": severity,
        "confidence_id": confidence_id, "confidence": confidence, "confidence_score": f.score,
        "status_id": 1, "status": "New",
        "message": f"{title} on {f.host or 'an unknown host'}" + (f": {f.reasons[0]}" if f.reasons else ""),
        "finding_info": {
            "uid": f.uid, "title": title, "desc": "\n".join(f.reasons),
            "analytic": {"uid": f.detection_type, "name": f.detection_type, "type_id": 1, "type": "Rule"},
            "attacks": [{"tactic": TACTIC,
                         "technique": {"uid": f.technique, "name": TECHNIQUES.get(f.technique, f.technique)}}],
            "first_seen_time": first, "last_seen_time": last,
        },
        "evidences": evidences,
        "metadata": {"version": OCSF_VERSION,
                     "product": {"name": "stagehunt", "vendor_name": "stagehunt", "version": __version__}},
        "unmapped": {
            "strong_indicator": f.strong_indicator, "unique_external_ips": f.unique_external_ips,
            "ip_list": f.ip_list, "port_list": f.port_list, "connection_count": f.connection_count,
            "duration_mins": f.duration_mins, "parent_ip_list": f.parent_ip_list, "new_ips": f.new_ips,
            "context_known": f.context_known, "reasons": f.reasons,
            "evidence": [e.location() for e in f.evidence],
        },
    })


class OcsfSink(Sink):
    def write(self, finding: Finding) -> None:
        self.stream.write(dumps(to_ocsf(finding)))
