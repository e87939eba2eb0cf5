"""A scenario: Sysmon events on one host, and what a hunt over them must (or must not) report.

Expected outcomes: an attack scenario must produce each `Expected` finding (detection type, and the
processes it names); a finding naming a process outside the attack is a false positive. A
false-positive scenario must produce no finding at all, and names what keeps it quiet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stagehunt.findings import Finding
from stagehunt.simulate.events import SysmonEvent
from stagehunt.simulate.host import Machine, Proc

BASE = datetime(2026, 3, 17, 8, 0, 0, tzinfo=UTC)  # scenarios start at BASE + their own offset
EXPLORER = r"C:\Windows\explorer.exe"
SERVICES = r"C:\Windows\System32\services.exe"


@dataclass(frozen=True)
class Expected:
    """A finding that must be produced: its type and the processes it names (exact image paths)."""

    detection_type: str
    image: str  # the (later) stage the finding is about
    parent_image: str  # the earlier stage: writer, injector, parent or shell
    confidence: str | None = None  # required confidence, when the scenario is about it
    reason: str | None = None  # text one of the finding's reasons must contain

    def matches(self, f: Finding) -> bool:
        return (f.detection_type == self.detection_type and f.image == self.image
                and f.parent_image == self.parent_image
                and (self.confidence is None or f.confidence == self.confidence)
                and (self.reason is None or any(self.reason in r for r in f.reasons)))

    def to_dict(self) -> dict[str, Any]:
        d = {"detection_type": self.detection_type, "image": self.image, "parent_image": self.parent_image}
        if self.confidence:
            d["confidence"] = self.confidence
        if self.reason:
            d["reason_contains"] = self.reason
        return d


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    kind: str  # attack | false-positive
    platform: str  # windows | linux
    source: str  # where in the seed it comes from
    description: str
    events: tuple[SysmonEvent, ...]
    expected: tuple[Expected, ...] = ()  # empty: no finding
    attack_images: tuple[str, ...] = ()  # processes of the attack; a finding naming another is a false positive
    silenced_by: str | None = None  # false positives: the exclusion that keeps the scenario quiet
    c2: tuple[str, ...] = ()

    @property
    def attack(self) -> bool:
        return self.kind == "attack"

    def to_dict(self) -> dict[str, Any]:
        """expected.json: what the scenario is and what a hunt over it must report."""
        d: dict[str, Any] = {"scenario": self.name, "title": self.title, "kind": self.kind,
                             "platform": self.platform, "source": self.source, "description": self.description,
                             "hosts": sorted({e.host for e in self.events}), "events": len(self.events)}
        if self.attack:
            d["c2"] = list(self.c2)
            d["expected"] = {"outcome": "findings", "findings": [e.to_dict() for e in self.expected],
                             "attack_processes": list(self.attack_images)}
        else:
            d["expected"] = {"outcome": "no finding", "silenced_by": self.silenced_by}
        return d


def events_of(m: Machine) -> tuple[SysmonEvent, ...]:
    return tuple(sorted(m.events, key=lambda e: e.utc))  # stable: same-time events keep their order


def desktop(m: Machine, user: str, t: datetime, pid: int) -> Proc:
    """The user's shell, started at logon before the capture."""
    name = user.rsplit("\\", 1)[-1]
    return m.existing(EXPLORER, pid, EXPLORER, user, t, cwd=f"C:\\Users\\{name}\\")


def host_in_url(ip: str) -> str:
    """An address as it appears in a URL."""
    return f"[{ip}]" if ":" in ip else ip
