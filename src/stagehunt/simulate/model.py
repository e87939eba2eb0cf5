"""A scenario: Sysmon events on one host (or a fleet), and what a hunt over them must (or must not) report.

Expected outcomes: an attack scenario must produce each `Expected` finding (detection type, and the
processes it names); a finding naming a process outside the attack is a false positive. A
false-positive scenario must produce no finding at all, and names what keeps it quiet.

The ranking scenarios (issue 6) also say *how* a finding is ranked, in three more kinds of outcome:
`Hidden` (found, then hidden by a named ranking mechanism), `max_severity` (no visible finding above a
band) and `Outranks` (every finding of one group scores above every finding of another).
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


SEVERITIES = ("low", "medium", "high")  # scoring.band's bands, lowest first


@dataclass(frozen=True)
class Hidden:
    """A finding about `image` that the hunt must make and then hide by a ranking mechanism: one of its
    `suppressed_by` entries starts with `mechanism` ("infrastructure", "service context"). The finding must
    exist: had an exclusion removed the process, nothing would show that the mechanism works."""

    image: str
    mechanism: str

    def matches(self, f: Finding) -> bool:
        return f.image == self.image and any(s.startswith(f"{self.mechanism}:") for s in f.suppressed_by)

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "suppressed_by": f"{self.mechanism}: ..."}


@dataclass(frozen=True)
class Group:
    """The visible findings about `image` that reached every address in `reaches`: exactly `count` of them,
    each with a reason containing `reason` when given."""

    image: str
    reaches: tuple[str, ...]
    count: int
    reason: str | None = None

    def select(self, findings: list[Finding]) -> list[Finding]:
        return [f for f in findings if f.image == self.image and set(self.reaches) <= set(f.ip_list)]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"image": self.image, "reaches": list(self.reaches), "count": self.count}
        if self.reason:
            d["reason_contains"] = self.reason
        return d


@dataclass(frozen=True)
class Outranks:
    """Every finding of `above` scores strictly more than every finding of `below`."""

    above: Group
    below: Group

    def to_dict(self) -> dict[str, Any]:
        return {"above": self.above.to_dict(), "below": self.below.to_dict()}


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
    hidden: tuple[Hidden, ...] = ()  # findings that must be made and hidden by a ranking mechanism
    max_severity: str | None = None  # no visible finding may be ranked above this band (SEVERITIES)
    ranks: tuple[Outranks, ...] = ()  # score orderings between groups of visible findings

    def __post_init__(self) -> None:
        if self.max_severity is not None and self.max_severity not in SEVERITIES:
            raise ValueError(f"max_severity {self.max_severity!r}: one of {', '.join(SEVERITIES)}")

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
        elif self.expected:  # benign software that is reported, ranked low by the mechanisms below
            d["expected"] = {"outcome": "findings", "findings": [e.to_dict() for e in self.expected],
                             "silenced_by": self.silenced_by}
        else:
            d["expected"] = {"outcome": "no finding", "silenced_by": self.silenced_by}
        # the ranking outcomes, only where a scenario has them (the seed's expected.json stay as they were)
        if self.hidden:
            d["expected"]["hidden"] = [h.to_dict() for h in self.hidden]
        if self.max_severity:
            d["expected"]["max_severity"] = self.max_severity
        if self.ranks:
            d["expected"]["outranks"] = [r.to_dict() for r in self.ranks]
        return d


def events_of(*machines: Machine) -> tuple[SysmonEvent, ...]:
    """The machines' events in time order (stable: same-time events keep their order, machine by machine)."""
    return tuple(sorted((e for m in machines for e in m.events), key=lambda e: e.utc))


def desktop(m: Machine, user: str, t: datetime, pid: int) -> Proc:
    """The user's shell, started at logon before the capture."""
    name = user.rsplit("\\", 1)[-1]
    return m.existing(EXPLORER, pid, EXPLORER, user, t, cwd=f"C:\\Users\\{name}\\")


def host_in_url(ip: str) -> str:
    """An address as it appears in a URL."""
    return f"[{ip}]" if ":" in ip else ip
