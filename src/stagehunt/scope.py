"""Is a destination external? Decided on parsed addresses with the stdlib `ipaddress`, never on text prefixes.

An address is external iff, after unwrapping IPv4-mapped IPv6 (`::ffff:a.b.c.d`), it is global and not
multicast (multicast reports `is_global=True` on some Pythons; CGNAT 100.64/10 is neither private nor
global). The user's `home_networks` remove addresses and `external_networks` add them; where both contain
an address, the longer prefix decides, and on a tie `external_networks` wins. With `count_internal`,
private unicast destinations (RFC 1918, RFC 6598 CGNAT, RFC 4193 ULA) count too — lab C2 often sits on
them — but never loopback, link-local, multicast, unspecified or broadcast.

The engine classifies the DISTINCT remote addresses of a run once (`ScopeClassifier.table`) and joins
the result; per-address Python cost is then paid once per address, not per event.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from stagehunt.config import ScopeConfig

if TYPE_CHECKING:
    import pyarrow as pa

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_net = ipaddress.ip_network
_MAPPED = _net("::ffff:0:0/96")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_CACHE_LIMIT = 1 << 20

# Private unicast ranges that `count_internal` counts, with the words used in reasons.
INTERNAL: tuple[tuple[IPNetwork, str], ...] = (
    (_net("10.0.0.0/8"), "private (RFC 1918)"),
    (_net("172.16.0.0/12"), "private (RFC 1918)"),
    (_net("192.168.0.0/16"), "private (RFC 1918)"),
    (_net("100.64.0.0/10"), "shared address space (RFC 6598, CGNAT)"),
    (_net("fc00::/7"), "unique local (RFC 4193)"),
)
# Only to name non-global addresses in reasons; whether an address is global is the stdlib's call.
_NAMED: tuple[tuple[IPNetwork, str], ...] = (
    (_net("192.0.2.0/24"), "documentation (RFC 5737)"),
    (_net("198.51.100.0/24"), "documentation (RFC 5737)"),
    (_net("203.0.113.0/24"), "documentation (RFC 5737)"),
    (_net("2001:db8::/32"), "documentation (RFC 3849)"),
    (_net("0.0.0.0/8"), "'this network' (RFC 791)"),
    (_net("198.18.0.0/15"), "benchmarking (RFC 2544)"),
    (_net("240.0.0.0/4"), "reserved (RFC 1112)"),
    (_net("192.0.0.0/24"), "IETF protocol assignments (RFC 6890)"),
)


def parse_ip(text: object) -> IPAddress | None:
    """The address in log text, IPv4-mapped IPv6 unwrapped to IPv4; None if the text is not an address."""
    parsed = _parse(text)
    return parsed[0] if parsed else None


def _parse(text: object) -> tuple[IPAddress, bool] | None:
    """(address, was IPv4-mapped). Accepts surrounding blanks, [brackets] and an IPv6 %zone."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if len(s) > 2 and s[0] == "[" and s[-1] == "]":
        s = s[1:-1]
    if ":" in s:  # a zone id only exists on IPv6; "1.2.3.4%x" stays unparseable
        s = s.split("%", 1)[0]
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return a.ipv4_mapped, True
    return a, False


def category(a: IPAddress) -> str:
    """What kind of address this is, in words (for reasons); 'global' only when the stdlib says so."""
    if a.is_unspecified:
        return "unspecified"
    if a.is_loopback:
        return "loopback"
    if a == _BROADCAST:
        return "broadcast"
    if a.is_multicast:
        return "multicast"
    if a.is_link_local:
        return "link-local"
    for net, name in INTERNAL:
        if a in net:
            return name
    if a.is_global:
        return "global"
    for net, name in _NAMED:
        if a in net:
            return name
    return "not globally routable"


def _is_internal(a: IPAddress) -> bool:
    # Explicit ranges rather than `is_private`, which also covers loopback, link-local and documentation.
    return any(a in net for net, _ in INTERNAL)


def normalise_network(text: str) -> IPNetwork:
    """A configured CIDR; an IPv4-mapped IPv6 network becomes the IPv4 network it maps."""
    net = ipaddress.ip_network(text.strip(), strict=False)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:  # always, inside ::ffff:0:0/96; the check narrows the type
            return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


class ScopeClassifier:
    """Classifies addresses under one ScopeConfig; results are cached per distinct text."""

    def __init__(self, scope: ScopeConfig):
        self.scope = scope
        # (prefix length, is external, network), longest first: the first containing network decides.
        nets = [(n.prefixlen, True, n) for n in map(normalise_network, scope.external_networks)]
        nets += [(n.prefixlen, False, n) for n in map(normalise_network, scope.home_networks)]
        self._networks = sorted(nets, key=lambda x: (-x[0], not x[1]))
        self._cache: dict[str, tuple[bool, str]] = {}

    def classify(self, ip_text: str | None) -> tuple[bool, str]:
        """(counted as external, why) for one address as logged."""
        key = ip_text if isinstance(ip_text, str) else ""
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= _CACHE_LIMIT:  # a caller classifying per event must not grow without bound
                self._cache.clear()
            hit = self._cache[key] = self._classify(key)
        return hit

    def _classify(self, text: str) -> tuple[bool, str]:
        parsed = _parse(text)
        if parsed is None:
            return False, "not an IP address"
        a, mapped = parsed
        what = category(a)
        prefix = f"IPv4-mapped {a}: " if mapped else ""
        for _, external, net in self._networks:
            if a.version == net.version and a in net:
                where = "external_networks" if external else "home_networks"
                return external, f"{prefix}{what}, in [scope] {where} {net}"
        if what == "global":
            return True, prefix + what
        if self.scope.count_internal and _is_internal(a):
            return True, f"{prefix}{what}, counted ([scope] count_internal)"
        return False, prefix + what

    def is_external(self, ip_text: str | None) -> bool:
        return self.classify(ip_text)[0]

    def ipv4_segments(self) -> tuple[list[int], list[bool]]:
        """The IPv4 space cut where any network that decides the answer starts or ends: (segment starts
        as integers, ascending from 0; whether an address in that segment counts). The same answer as
        `is_external` for every address, as a table SQL can join (ASOF on the address as an integer)."""
        if not hasattr(self, "_segments"):
            nets = set(_stdlib_ipv4_networks())
            nets.update(n for n, _ in INTERNAL + _NAMED if n.version == 4)
            nets.update(n for _, _, n in self._networks if n.version == 4)
            cuts = {0}
            for n in nets:
                cuts.add(int(n.network_address))
                cuts.add(int(n.broadcast_address) + 1)
            starts = sorted(c for c in cuts if c < 1 << 32)
            values = [self._classify(str(ipaddress.IPv4Address(c)))[0] for c in starts]
            self._segments = (starts, values)
        return self._segments

    def reason(self, ip_text: str | None) -> str:
        return self.classify(ip_text)[1]

    def external_set(self, ips: Iterable[str | None]) -> set[str]:
        """The addresses among `ips` that count as external."""
        return {ip for ip in set(ips) if ip is not None and self.is_external(ip)}

    def table(self, ips: Iterable[str | None]) -> pa.Table:
        """One row per distinct address: ip (as logged), counted (bool), reason. Join it on the raw text."""
        import pyarrow as pa  # only here: the hunt itself needs no pyarrow (its import costs ~0.1 s)

        distinct = sorted({ip for ip in ips if ip is not None})
        results = [self.classify(ip) for ip in distinct]
        return pa.table({
            "ip": pa.array(distinct, pa.string()),
            "counted": pa.array([c for c, _ in results], pa.bool_()),
            "reason": pa.array([r for _, r in results], pa.string()),
        })


def _stdlib_ipv4_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the stdlib's is_global / is_private / is_multicast... consult, whatever the
    CPython patch release (their lists changed with CVE-2024-4032)."""
    found: list[ipaddress.IPv4Network] = [_net("255.255.255.255/32")]
    for value in vars(ipaddress._IPv4Constants).values():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, ipaddress.IPv4Network):
                found.append(item)
            elif isinstance(item, ipaddress.IPv4Address):
                found.append(ipaddress.IPv4Network(item))
    return found


@lru_cache(maxsize=16)
def classifier(scope: ScopeConfig) -> ScopeClassifier:
    """A shared classifier per (frozen, hashable) ScopeConfig, so is_external() reuses its cache."""
    return ScopeClassifier(scope)


def is_external(ip_text: str | None, scope: ScopeConfig | None = None) -> bool:
    """Does a connection to this address count as external under `scope`? Unparseable text: no."""
    return classifier(scope or ScopeConfig()).is_external(ip_text)


def describe(ip_text: str | None, scope: ScopeConfig | None = None) -> str:
    """Why an address is or is not external, e.g. 'private (RFC 1918)', 'loopback', 'global'."""
    return classifier(scope or ScopeConfig()).reason(ip_text)
