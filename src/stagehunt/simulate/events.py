"""The abstract Sysmon event that simulators build and writers render in each log format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

WINDOWS_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
LINUX_CHANNEL = "Linux-Sysmon/Operational"


@dataclass(frozen=True)
class SysmonEvent:
    """One Sysmon event: its id, time, host and EventData fields as Sysmon renders them (all text).

    `data` holds the EventData names (ProcessGuid, Image, DestinationIp, ...) in the order Sysmon
    writes them, without UtcTime: that is `utc`, the one clock every writer uses. `utc` is kept at
    Sysmon's precision (milliseconds, UTC) so that every format can carry it exactly.
    """

    eid: int
    utc: datetime
    host: str
    data: Mapping[str, str] = field(default_factory=dict)
    linux: bool = False

    def __post_init__(self) -> None:
        if "UtcTime" in self.data:
            raise ValueError("give the time as `utc`, not as data['UtcTime']")
        for k, v in self.data.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"EventData names and values are text: {k!r}={v!r}")
        utc = self.utc.replace(tzinfo=UTC) if self.utc.tzinfo is None else self.utc.astimezone(UTC)
        # frozen: normalise through object.__setattr__; a read-only copy keeps the event immutable
        object.__setattr__(self, "utc", utc.replace(microsecond=utc.microsecond // 1000 * 1000))
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    @property
    def channel(self) -> str:
        return LINUX_CHANNEL if self.linux else WINDOWS_CHANNEL

    @property
    def provider_name(self) -> str:
        return "Linux-Sysmon" if self.linux else "Microsoft-Windows-Sysmon"

    @property
    def utc_text(self) -> str:
        """UtcTime as Sysmon writes it: `2019-05-21 06:58:39.888`."""
        return self.utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{self.utc.microsecond // 1000:03d}"

    def event_data(self) -> list[tuple[str, str]]:
        """EventData in Sysmon's order: RuleName (when given), UtcTime, then the rest."""
        items = list(self.data.items())
        at = 1 if items and items[0][0] == "RuleName" else 0
        return [*items[:at], ("UtcTime", self.utc_text), *items[at:]]
