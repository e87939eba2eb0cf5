"""The address set stagehunt counts, as CIDR lists and regular expressions for rule languages.

`scope.ScopeClassifier` decides per address. Rules need the same decision as lists, so the lists are
*computed*, never typed: every network the classifier's answer can depend on (the special-purpose
tables of the running Python's `ipaddress`, the internal ranges of `count_internal`, the configured
home and external networks) cuts the address space into intervals on which the answer is constant;
one address per interval is classified with the real classifier (its first and last addresses must
agree, or a boundary is missing and we refuse to guess), and the counted intervals are summarised
as CIDRs. So the lists follow the installed Python: 3.11.7 calls `::2` global, later patch releases
differ on a few IPv6 ranges, and the lists change with them exactly as `hunt` does.

IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is unwrapped by the classifier, so it is never part of the IPv6
list; `mapped_networks` lists the IPv4 ranges in their mapped form for rule languages that compare
IPv6 text without unwrapping.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache

from stagehunt.config import ExclusionConfig, ScopeConfig
from stagehunt.scope import INTERNAL, IPNetwork, ScopeClassifier, normalise_network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_BITS = {4: 32, 6: 128}
_ADDRESS = {4: ipaddress.IPv4Address, 6: ipaddress.IPv6Address}


@dataclass(frozen=True)
class ScopeNetworks:
    """The counted destinations of one ScopeConfig (minus excluded destinations, kept apart)."""

    ipv4: tuple[ipaddress.IPv4Network, ...]
    ipv6: tuple[ipaddress.IPv6Network, ...]  # never inside ::ffff:0:0/96

    @property
    def mapped(self) -> tuple[ipaddress.IPv6Network, ...]:
        """The IPv4 list as IPv4-mapped IPv6 networks (::ffff:a.b.c.d/96+n)."""
        return tuple(mapped_network(n) for n in self.ipv4)

    def ipv4_ranges(self) -> list[tuple[int, int]]:
        """The IPv4 list as merged inclusive integer ranges (for ipv4ToNumber-style checks)."""
        return merge_ranges((int(n.network_address), int(n.broadcast_address)) for n in self.ipv4)

    def ipv4_gaps(self) -> tuple[ipaddress.IPv4Network, ...]:
        """IPv4 networks NOT counted: the short form of the IPv4 list (an IPv4 address counts iff in none)."""
        return _complement(self.ipv4, 4)

    def ipv6_gaps(self) -> tuple[ipaddress.IPv6Network, ...]:
        """IPv6 networks NOT counted: the short form of the IPv6 list.

        Includes ::ffff:0:0/96: targets unwrap dotted IPv4-mapped text first and test it as IPv4, and
        a hex-spelled mapped address (::ffff:808:808, which Sysmon does not write) is safer not counted.
        """
        return _complement(self.ipv6, 6)


def mapped_network(net: ipaddress.IPv4Network) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((int(_MAPPED.network_address) + int(net.network_address), 96 + net.prefixlen))


def _stdlib_networks(version: int) -> list[IPNetwork]:
    """Every network named in the stdlib's special-purpose tables (whatever this Python ships)."""
    table = ipaddress._IPv4Constants if version == 4 else ipaddress._IPv6Constants  # type: ignore[attr-defined]
    found: list[IPNetwork] = []
    for value in vars(table).values():
        items = value if isinstance(value, list | tuple | set | frozenset) else [value]
        found += [v for v in items if isinstance(v, ipaddress.IPv4Network | ipaddress.IPv6Network)]
    # is_global also tests 100.64.0.0/10 (_public_network, found above) and multicast, which the
    # tables name too; the broadcast address is a network of its own in _private_networks.
    return [n for n in found if n.version == version]


@lru_cache(maxsize=32)
def counted_networks(scope: ScopeConfig) -> ScopeNetworks:
    """The destinations `hunt` counts under `scope`, as minimal sorted CIDR lists."""
    classifier = ScopeClassifier(scope)
    configured = [normalise_network(c) for c in (*scope.home_networks, *scope.external_networks)]
    lists: dict[int, list] = {}
    for version in (4, 6):
        nets = _stdlib_networks(version) + [n for n, _ in INTERNAL if n.version == version]
        nets += [n for n in configured if n.version == version]
        if version == 6:
            nets.append(_MAPPED)
        points = {0, 1 << _BITS[version]}
        for n in nets:
            points |= {int(n.network_address), int(n.broadcast_address) + 1}
        edges = sorted(points)
        counted: list[tuple[int, int]] = []
        for lo, hi in itertools.pairwise(edges):
            first, last = _ADDRESS[version](lo), _ADDRESS[version](hi - 1)
            if version == 6 and first in _MAPPED:
                continue  # unwrapped to IPv4 by the classifier: the IPv4 list covers it
            inside = classifier.is_external(str(first))
            if classifier.is_external(str(last)) != inside:
                raise RuntimeError(f"scope is not constant on {first}-{last}: a network boundary is missing")
            if inside:
                counted.append((lo, hi - 1))
        lists[version] = _summarise(merge_ranges(counted), version)
    return ScopeNetworks(tuple(lists[4]), tuple(lists[6]))


def excluded_destinations(exclusions: ExclusionConfig) -> tuple[tuple[ipaddress.IPv4Network, ...],
                                                                 tuple[ipaddress.IPv6Network, ...]]:
    """[exclusions] destinations, normalised (IPv4-mapped networks become IPv4) and collapsed."""
    nets = [normalise_network(c) for c in exclusions.destinations]
    v4 = tuple(ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv4Network)))
    v6 = tuple(ipaddress.collapse_addresses(n for n in nets if isinstance(n, ipaddress.IPv6Network)))
    return v4, v6


def merge_ranges(ranges) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _summarise(ranges: list[tuple[int, int]], version: int) -> list:
    cls = _ADDRESS[version]
    nets = [n for lo, hi in ranges for n in ipaddress.summarize_address_range(cls(lo), cls(hi))]
    return list(ipaddress.collapse_addresses(nets))


def _complement(nets, version: int) -> tuple:
    covered = [(int(n.network_address), int(n.broadcast_address)) for n in nets]
    gaps, cursor = [], 0
    for lo, hi in merge_ranges(covered):
        if lo > cursor:
            gaps.append((cursor, lo - 1))
        cursor = hi + 1
    if cursor <= (1 << _BITS[version]) - 1:
        gaps.append((cursor, (1 << _BITS[version]) - 1))
    return tuple(_summarise(gaps, version))


# ---- IPv6 networks as regular expressions over the address text --------------------------------------
# For rule languages with no IPv6 CIDR function (Sumo Logic search and Cloud SIEM expressions). The
# pattern accepts every valid spelling of an address in the network: any `::` placement, leading
# zeros, either case (with the (?i) flag). It assumes the text is a valid IPv6 address (callers guard
# with isValidIPv6) and hex-only groups (the IPv4-mapped range is handled apart, unwrapped to IPv4).

_HEX = "[0-9a-f]"
_GROUP = f"{_HEX}{{1,4}}"


def _hex_range(lo: int, hi: int) -> str:
    """Regex for one 16-bit group whose value is in [lo, hi], written with optional leading zeros."""
    if lo == 0 and hi == 0xFFFF:
        return _GROUP
    alts: list[str] = []
    for width in range(1, 5):  # split by the number of significant hex digits
        wlo, whi = (0 if width == 1 else 16 ** (width - 1)), 16**width - 1
        a, b = max(lo, wlo), min(hi, whi)
        if a > b:
            continue
        for p in _aligned_blocks(a, b, width):
            alts.append(f"0{{0,{4 - width}}}{p}" if width < 4 else p)
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _aligned_blocks(a: int, b: int, digits: int) -> list[str]:
    """Blocks for [a, b] written with exactly `digits` digits (leading zeros kept)."""
    sa, sb = f"{a:0{digits}x}", f"{b:0{digits}x}"
    if sa == sb:
        return [sa]
    i = 0
    while sa[i] == sb[i]:
        i += 1
    tail = digits - i - 1
    if sa[i + 1:] == "0" * tail and sb[i + 1:] == "f" * tail:
        return [sa[:i] + _digit_class(int(sa[i], 16), int(sb[i], 16)) + (f"{_HEX}{{{tail}}}" if tail else "")]
    lead = sa[:i]
    base = int(lead, 16) << (4 * (tail + 1)) if lead else 0
    da, db = int(sa[i], 16), int(sb[i], 16)
    step = 1 << (4 * tail)
    out = _aligned_blocks(a, base + (da + 1) * step - 1, digits)
    if db - da > 1:
        out.append(lead + _digit_class(da + 1, db - 1) + (f"{_HEX}{{{tail}}}" if tail else ""))
    return out + _aligned_blocks(base + db * step, b, digits)


def _digit_class(lo: int, hi: int) -> str:
    if lo == hi:
        return f"{lo:x}"
    if lo == 0 and hi == 15:
        return _HEX
    chars = "0123456789abcdef"[lo:hi + 1]
    parts = []
    for run in re.findall(r"[0-9]+|[a-f]+", chars):
        parts.append(run if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return "[" + "".join(parts) + "]"


def ipv6_regex(net: ipaddress.IPv6Network) -> str:
    """An anchored regex matching every textual form of every address in `net` (lower-case hex)."""
    p = net.prefixlen
    if p == 0:
        return "^.*:.*$"
    groups = net.network_address.exploded.split(":")
    k = (p + 15) // 16  # groups the prefix touches
    spans = []  # allowed (lo, hi) per constrained group
    for g in range(k):
        value = int(groups[g], 16)
        free = 16 * (g + 1) - p  # host bits inside this group
        spans.append((value, value | ((1 << free) - 1)) if free > 0 else (value, value))
    pats = [_hex_range(lo, hi) for lo, hi in spans]
    zero_ok = [lo == 0 for lo, _ in spans]
    alts = []
    # No `::` among the constrained groups: they are written out, then anything (or the end).
    alts.append("^" + ":".join(pats) + ("(?::.*)?$" if k < 8 else "$"))
    # `::` starts at group i (0-based) and the text after it holds m explicit groups.
    for i in range(0, min(k, 8)):
        head = ":".join(pats[:i])
        for m in range(0, 8 - i):  # the run covers groups i .. 7-m, at least one group
            run_end = 7 - m
            if not all(zero_ok[g] for g in range(i, min(run_end + 1, k))):
                continue
            after = [pats[g] for g in range(run_end + 1, k)]  # constrained groups written after ::
            rest = m - len(after)
            tail_parts = after + [_GROUP] * rest
            alts.append("^" + head + "::" + ":".join(tail_parts) + "$")
    return "(?:" + "|".join(alts) + ")"
