"""The exported address lists mean exactly what scope.ScopeClassifier decides, on any Python.

Random addresses (biased towards the edges of every special-purpose and configured network) are
classified by the real classifier and looked up in the lists; the IPv6 regular expressions (for Sumo
Logic, which has no IPv6 CIDR test) are checked against every spelling of each address.
"""

from __future__ import annotations

import ipaddress
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagehunt.config import ExclusionConfig, ScopeConfig
from stagehunt.exclusions import ImageMatcher
from stagehunt.export.cidrs import counted_networks, excluded_destinations, ipv6_regex, mapped_network
from stagehunt.export.model import glob_regex, image_rules
from stagehunt.scope import INTERNAL, ScopeClassifier

SCOPES = [
    ScopeConfig(),
    ScopeConfig(count_internal=True),
    ScopeConfig(home_networks=("81.2.69.0/24", "2a00:1450::/32", "10.0.0.0/8"),
                external_networks=("10.20.30.0/24", "2a00:1450:4001::/48", "192.0.2.128/25")),
    ScopeConfig(count_internal=True, home_networks=("172.16.0.0/12", "::ffff:100.64.0.0/106"),
                external_networks=("172.16.5.0/24", "fd00::/8")),
]


def _edges() -> list[int]:
    table = [*ipaddress._IPv4Constants._private_networks, ipaddress._IPv4Constants._public_network,  # type: ignore[attr-defined]
             ipaddress._IPv4Constants._multicast_network, *(n for n, _ in INTERNAL if n.version == 4)]  # type: ignore[attr-defined]
    for s in SCOPES:
        table += [n for n in map(ipaddress.ip_network, (*s.home_networks, *s.external_networks)) if n.version == 4]
    return sorted({x for n in table for x in (int(n.network_address), int(n.broadcast_address))})


_V4_EDGES = _edges()
ipv4 = st.one_of(
    st.integers(0, 2**32 - 1),
    st.builds(lambda e, d: max(0, min(2**32 - 1, e + d)), st.sampled_from(_V4_EDGES), st.integers(-2, 2)),
).map(ipaddress.IPv4Address)
ipv6 = st.one_of(
    st.integers(0, 2**128 - 1),
    st.builds(lambda hi, lo: (hi << 112) | lo, st.sampled_from([0, 0x0100, 0x2001, 0x2002, 0x2a00, 0xfc00, 0xfd00,
                                                                0xfe80, 0xff02, 0x0064]),
              st.integers(0, 2**112 - 1)),
    st.integers(0, 2**32 - 1).map(lambda v: 0xFFFF00000000 | v),  # IPv4-mapped
).map(ipaddress.IPv6Address)


def _in(address: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: tuple) -> bool:
    return any(address.version == n.version and address in n for n in nets)


@pytest.mark.parametrize("scope", SCOPES, ids=range(len(SCOPES)))
@settings(max_examples=400, deadline=None)
@given(a=st.one_of(ipv4, ipv6))
def test_lists_agree_with_the_classifier(scope: ScopeConfig, a) -> None:
    lists = counted_networks(scope)
    expected = ScopeClassifier(scope).is_external(str(a))
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        # Rule languages see the mapped text; unwrapped it is tested against the IPv4 list, and the
        # mapped form of that list says the same.
        assert _in(a.ipv4_mapped, lists.ipv4) == expected
        assert _in(a, lists.mapped) == expected
        assert _in(a, lists.ipv6_gaps())  # never counted as IPv6 without unwrapping
        return
    nets = lists.ipv4 if a.version == 4 else lists.ipv6
    assert _in(a, nets) == expected
    gaps = lists.ipv4_gaps() if a.version == 4 else lists.ipv6_gaps()
    assert _in(a, gaps) == (not expected)
    if a.version == 4:
        n = int(a)
        assert any(lo <= n <= hi for lo, hi in lists.ipv4_ranges()) == expected


def test_default_lists_spot_checks() -> None:
    lists = counted_networks(ScopeConfig())
    for text, counted in [("8.8.8.8", True), ("172.2.3.4", True), ("172.200.1.1", True), ("172.17.0.3", False),
                          ("100.64.1.1", False), ("224.0.0.251", False), ("203.0.113.5", False),
                          ("169.254.169.254", False), ("168.63.129.16", True), ("255.255.255.255", False)]:
        assert _in(ipaddress.ip_address(text), lists.ipv4) == counted, text
    for text, counted in [("2001:4860:4860::8888", True), ("fe80::1", False), ("fd12::1", False),
                          ("ff02::1", False), ("2001:db8::1", False), ("::1", False)]:
        assert _in(ipaddress.ip_address(text), lists.ipv6) == counted, text
    assert len(lists.ipv4_gaps()) < 20 and len(lists.ipv6_gaps()) < 12  # the short forms stay short


def test_mapped_network() -> None:
    assert str(mapped_network(ipaddress.IPv4Network("8.0.0.0/7"))) == "::ffff:800:0/103"


def test_excluded_destinations_normalise_mapped_networks() -> None:
    v4, v6 = excluded_destinations(ExclusionConfig(destinations=("::ffff:52.84.0.0/111", "2606:4700::/32")))
    assert [str(n) for n in v4] == ["52.84.0.0/15"] and [str(n) for n in v6] == ["2606:4700::/32"]


def _spellings(a: ipaddress.IPv6Address) -> set[str]:
    groups = [int(g, 16) for g in a.exploded.split(":")]
    out = {str(a), a.exploded, a.exploded.upper(), ":".join(f"{g:x}" for g in groups)}
    for i in range(8):  # `::` over every run of zero groups, not only the longest
        for j in range(i, 8):
            if all(groups[k] == 0 for k in range(i, j + 1)):
                out.add(":".join(f"{g:x}" for g in groups[:i]) + "::" + ":".join(f"{g:X}" for g in groups[j + 1:]))
    return out


NETS = ["::/127", "100::/64", "2001::/23", "2001:db8::/32", "fe80::/10", "fc00::/7", "ff00::/8", "2001:10::/28",
        "2606:4700:10::/44", "2001:0:0:1::/64", "0:0:1::/48", "2a00:1450:4001:80b::/113", "::ffff:0:0/96"]


@pytest.mark.parametrize("net", NETS)
@settings(max_examples=150, deadline=None)
@given(offset=st.integers(0, 2**128 - 1), near=st.booleans(), zeros=st.lists(st.booleans(), min_size=8, max_size=8))
def test_ipv6_regex_matches_every_spelling(net: str, offset: int, near: bool, zeros: list[bool]) -> None:
    n = ipaddress.IPv6Network(net)
    rx = re.compile("(?i)" + ipv6_regex(n))
    base = int(n.network_address)
    value = (base + offset % n.num_addresses) if near else offset
    groups = [0 if z else (value >> (16 * (7 - i))) & 0xFFFF for i, z in enumerate(zeros)]  # runs of zeros
    for v in (value, int("".join(f"{g:04x}" for g in groups), 16) & ((1 << (128 - n.prefixlen)) - 1) | base):
        a = ipaddress.IPv6Address(v)
        for text in _spellings(a):
            assert bool(rx.match(text)) == (a in n), (net, text)


GLOBS = ["C:\\Program Files\\**\\sync?.exe", "MicrosoftEdgeUpdate*.exe", "D:/**/agent.exe", "/opt/*/bin/python3*",
         "c:\\tools\\a[1].exe", "*.tmp"]
PATHS = ["C:\\Program Files\\Acme\\sync1.exe", "C:\\Program Files\\sync2.exe", "C:\\Program Files\\A\\B\\syncX.EXE",
         "C:\\Program Files\\sync12.exe", "C:\\Users\\x\\MicrosoftEdgeUpdateSetup.exe", "D:\\agent.exe",
         "D:\\x\\y\\agent.exe", "/opt/salt/bin/python3.11", "/opt/a/b/bin/python3", "C:\\Tools\\a[1].exe",
         "C:\\Tools\\a1.exe", "C:\\Temp\\x.tmp", "C:\\Temp\\x.tmp.exe", "agent.exe", "MicrosoftEdgeUpdate.exe"]


@pytest.mark.parametrize("glob", GLOBS)
def test_glob_regex_agrees_with_the_image_matcher(glob: str) -> None:
    rx = re.compile(glob_regex(glob))
    matcher = ImageMatcher([glob])
    for path in PATHS:
        assert bool(rx.search(path.lower())) == matcher.excludes(path), (glob, path)


def test_image_rules_split_names_paths_globs() -> None:
    rules = image_rules(("chrome.exe", "C:\\Tools\\agent.exe", "*.tmp", "CHROME.EXE"))
    assert rules.names == ("chrome.exe",)
    assert set(rules.paths) == {"C:\\Tools\\agent.exe", "C:/Tools/agent.exe"}
    assert len(rules.patterns) == 1
