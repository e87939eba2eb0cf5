"""Findings: what a detection reports, with the fields of the contract in DESIGN.md."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Evidence:
    """One contributing event: where it is (file and line or record) and what it says."""

    file: str
    line: int | None
    record: int | None
    time: str | None  # ISO 8601 UTC
    kind: str  # canonical event kind
    summary: str  # e.g. "powershell.exe -> 140.82.113.3:443/tcp"
    ip: str | None = None  # network evidence: the remote address and port
    port: int | None = None

    def location(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}"
        if self.record is not None:
            return f"{self.file}#{self.record}"
        return self.file


@dataclass
class Finding:
    detection_type: str  # multi_stage_c2 | parent_child_handoff | ...
    host: str | None
    user: str | None
    image: str | None  # for a handoff: the later stage
    command_line: str | None
    pid: int | None
    process_guid: str | None
    parent_image: str | None  # for a handoff: the earlier stage
    unique_external_ips: int
    ip_list: list[str]
    port_list: list[int]
    connection_count: int
    first_contact: str  # ISO 8601 UTC
    last_contact: str
    duration_mins: float
    strong_indicator: bool
    reasons: list[str]
    evidence: list[Evidence]
    technique: str = "T1104"
    severity: str = "high"
    confidence: str = "medium"
    parent_command_line: str | None = None
    parent_pid: int | None = None
    parent_process_guid: str | None = None
    parent_ip_list: list[str] = field(default_factory=list)  # handoff: what the earlier stage reached
    new_ips: list[str] = field(default_factory=list)  # handoff: reached by the later stage only
    context_known: bool = True  # False when the process start was not logged
    score: int | None = None  # 0-100, see scoring.py; severity is its band
    score_breakdown: list[dict] = field(default_factory=list)  # [{"weight": +20, "reason": "..."}]
    infrastructures: list[dict] = field(default_factory=list)  # [{"domains", "names", "ips"}]
    unique_infrastructures: int | None = None
    suppressed_by: list[str] = field(default_factory=list)  # why a finding is hidden (service traffic...)
    process_key: str | None = field(default=None, repr=False)  # engine-internal identity, not exported
    earlier_key: str | None = field(default=None, repr=False)  # the earlier stage's, for staged detections

    @property
    def uid(self) -> str:
        """Stable id: same finding on the same data, same uid."""
        key = "|".join(str(x) for x in (self.detection_type, self.host, self.process_guid, self.pid, self.image,
                                        self.first_contact, ",".join(self.ip_list), self.parent_process_guid))
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    @property
    def suppressed(self) -> bool:
        return bool(self.suppressed_by)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("process_key")
        d.pop("earlier_key")
        d["uid"] = self.uid
        return d


def iso(t: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, milliseconds."""
    if t is None:
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
