"""Scope: every address fault of the seed rule pinned, plus properties over random addresses."""

from __future__ import annotations

import ipaddress

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagehunt.config import ScopeConfig
from stagehunt.scope import ScopeClassifier, describe, is_external, parse_ip

DEFAULT = ScopeConfig()
INTERNAL_TOO = ScopeConfig(count_internal=True)


# -- the seed's prefix wildcards -------------------------------------------------------------------

@pytest.mark.parametrize("ip", ["172.200.1.1", "172.2.3.4", "172.32.0.1", "172.15.255.254", "172.255.0.1"])
def test_public_172_addresses_that_the_seed_wildcard_172_2_star_dropped_are_external(ip: str) -> None:
    assert is_external(ip, DEFAULT)


@pytest.mark.parametrize("ip", ["172.16.0.1", "172.17.0.2", "172.18.5.5", "172.19.255.255", "172.24.1.1",
                                "172.31.255.254"])
def test_every_rfc1918_172_16_to_31_address_is_internal(ip: str) -> None:
    assert not is_external(ip, DEFAULT)
    assert describe(ip) == "private (RFC 1918)"


@pytest.mark.parametrize("ip", ["10.0.0.1", "10.255.255.255", "192.168.0.1", "192.168.255.254"])
def test_other_rfc1918_ranges_are_internal(ip: str) -> None:
    assert not is_external(ip, DEFAULT)


def test_ipv4_mapped_ipv6_is_judged_by_the_ipv4_address_inside() -> None:
    assert not is_external("::ffff:10.0.0.5", DEFAULT)
    assert is_external("::ffff:8.8.8.8", DEFAULT)
    assert is_external("::ffff:808:808", DEFAULT)  # the same address in hex spelling
    assert not is_external("::FFFF:127.0.0.1", DEFAULT)
    assert describe("::ffff:10.0.0.5") == "IPv4-mapped 10.0.0.5: private (RFC 1918)"


@pytest.mark.parametrize("ip,why", [
    ("100.64.0.1", "shared address space (RFC 6598, CGNAT)"),
    ("100.127.255.254", "shared address space (RFC 6598, CGNAT)"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("febf::1", "link-local"),
    ("fc00::1", "unique local (RFC 4193)"),
    ("fd12:3456:789a::1", "unique local (RFC 4193)"),
    ("224.0.0.251", "multicast"),  # mDNS: is_global=True on some Pythons
    ("239.255.255.250", "multicast"),  # SSDP
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),  # global-scope multicast: still not a destination server
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.10", "documentation (RFC 5737)"),
    ("198.51.100.7", "documentation (RFC 5737)"),
    ("203.0.113.200", "documentation (RFC 5737)"),
    ("2001:db8::1", "documentation (RFC 3849)"),
    ("240.0.0.1", "reserved (RFC 1112)"),
    ("198.18.0.1", "benchmarking (RFC 2544)"),
    ("0.1.2.3", "'this network' (RFC 791)"),
])
def test_special_purpose_addresses_are_never_external_by_default(ip: str, why: str) -> None:
    assert not is_external(ip, DEFAULT)
    assert describe(ip) == why


@pytest.mark.parametrize("ip", ["8.8.8.8", "140.82.113.3", "168.63.129.16", "1.1.1.1", "2606:4700:4700::1111",
                                "2a00:1450:4001:82a::200e"])
def test_real_public_addresses_are_external(ip: str) -> None:
    assert is_external(ip, DEFAULT)
    assert describe(ip) == "global"


@pytest.mark.parametrize("text", ["", "   ", "not an ip", "8.8.8", "8.8.8.8.8", "256.1.1.1", "08.8.8.8",
                                  "8.8.8.8/32", "8.8.8.8:443", "[8.8.8.8", "8.8.8.8%eth0", "::ffff:8.8.8.8.8",
                                  "2001:4860:4860::8888::1", "-", "null", "\x00", "8.8.8.8\x00"])
def test_unparseable_text_is_not_external(text: str) -> None:
    assert not is_external(text, DEFAULT)
    assert not is_external(text, INTERNAL_TOO)
    assert describe(text) == "not an IP address"


def test_none_is_not_external() -> None:
    assert not is_external(None, DEFAULT)


# -- IPv6 spellings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ip", ["0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001", "[::1]",
                                "::1%lo", "[::1%1]"])
def test_loopback_spellings(ip: str) -> None:
    assert not is_external(ip, DEFAULT)
    assert describe(ip) == "loopback"


@pytest.mark.parametrize("ip", ["2606:4700:4700::1111", "2606:4700:4700:0:0:0:0:1111", "2606:4700:4700::1111".upper(),
                                "[2606:4700:4700::1111]", "2606:4700:4700::1111%eth0", " 2606:4700:4700::1111 ",
                                "::FFFF:8.8.8.8", "[::ffff:8.8.8.8]"])
def test_public_ipv6_spellings_are_external(ip: str) -> None:
    assert is_external(ip, DEFAULT)


def test_zone_id_on_link_local_is_stripped_and_still_link_local() -> None:
    assert not is_external("fe80::1%eth0", INTERNAL_TOO)
    assert describe("[fe80::1%12]") == "link-local"


def test_linux_sysmon_all_zero_address_is_unspecified() -> None:
    assert describe("0:0:0:0:0:0:0:0") == "unspecified"


# -- home_networks, external_networks, count_internal ------------------------------------------------

def test_home_networks_remove_public_addresses() -> None:
    scope = ScopeConfig(home_networks=("140.82.112.0/20", "2606:4700::/32"))
    assert not is_external("140.82.113.3", scope)
    assert not is_external("::ffff:140.82.113.3", scope)
    assert not is_external("2606:4700:4700::1111", scope)
    assert is_external("140.82.128.1", scope)  # just outside the /20
    assert "home_networks 140.82.112.0/20" in describe("140.82.113.3", scope)


def test_external_networks_add_addresses_even_loopback() -> None:
    # the seed's own test scenarios talk to 127.0.0.1: a user may declare such lab networks external
    scope = ScopeConfig(external_networks=("10.20.0.0/16", "127.0.0.0/8", "fd00::/8"))
    assert is_external("10.20.3.4", scope)
    assert is_external("::ffff:10.20.3.4", scope)
    assert not is_external("10.21.3.4", scope)
    assert is_external("127.0.0.1", scope)
    assert is_external("fd00::5", scope)


def test_the_longer_prefix_decides_between_home_and_external_networks() -> None:
    scope = ScopeConfig(home_networks=("10.0.0.0/8", "100.100.0.0/16"),
                        external_networks=("10.50.0.0/16", "100.64.0.0/10"))
    assert is_external("10.50.1.1", scope)  # external /16 inside home /8
    assert not is_external("10.51.1.1", scope)
    assert not is_external("100.100.1.1", scope)  # home /16 inside external /10
    assert is_external("100.101.1.1", scope)


def test_equal_prefixes_in_both_lists_count_as_external() -> None:
    scope = ScopeConfig(home_networks=("10.1.0.0/16",), external_networks=("10.1.0.0/16",))
    assert is_external("10.1.2.3", scope)


def test_ipv4_mapped_network_in_config_applies_to_ipv4_addresses() -> None:
    scope = ScopeConfig(home_networks=("::ffff:8.8.8.0/120",))
    assert not is_external("8.8.8.8", scope)
    assert is_external("8.8.4.4", scope)


@pytest.mark.parametrize("ip", ["10.1.2.3", "172.17.0.2", "192.168.1.10", "100.64.0.1", "fd00::1", "fc00::1",
                                "::ffff:192.168.1.10"])
def test_count_internal_counts_private_unicast(ip: str) -> None:
    assert not is_external(ip, DEFAULT)
    assert is_external(ip, INTERNAL_TOO)
    assert "count_internal" in describe(ip, INTERNAL_TOO)


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1", "169.254.169.254", "fe80::1", "224.0.0.251", "ff02::1",
                                "0.0.0.0", "::", "255.255.255.255", "192.0.2.1", "2001:db8::1", "240.0.0.1"])
def test_count_internal_never_counts_loopback_link_local_multicast_unspecified_broadcast(ip: str) -> None:
    assert not is_external(ip, INTERNAL_TOO)


def test_count_internal_does_not_override_home_networks() -> None:
    scope = ScopeConfig(count_internal=True, home_networks=("10.0.0.0/8",))
    assert not is_external("10.1.1.1", scope)
    assert is_external("192.168.1.1", scope)


# -- many addresses at once ---------------------------------------------------------------------------

def test_table_has_one_row_per_distinct_address_and_joins_in_duckdb() -> None:
    classifier = ScopeClassifier(ScopeConfig(home_networks=("140.82.112.0/20",)))
    ips = ["8.8.8.8", "10.0.0.1", "8.8.8.8", None, "::ffff:1.1.1.1", "140.82.113.3", "junk"]
    table = classifier.table(ips)
    assert table.column_names == ["ip", "counted", "reason"]
    assert table.num_rows == 5
    counted = dict(zip(table["ip"].to_pylist(), table["counted"].to_pylist(), strict=True))
    assert counted == {"8.8.8.8": True, "10.0.0.1": False, "::ffff:1.1.1.1": True, "140.82.113.3": False,
                       "junk": False}
    con = duckdb.connect()
    con.execute("CREATE TABLE events AS SELECT unnest(?) AS remote_ip", [ips])
    con.register("ip_scope", table)
    n = con.execute("SELECT count(*) FROM events e JOIN ip_scope s ON s.ip = e.remote_ip AND s.counted").fetchone()
    assert n == (3,)  # 8.8.8.8 twice and ::ffff:1.1.1.1


def test_external_set_and_cached_results_agree() -> None:
    classifier = ScopeClassifier(DEFAULT)
    ips = ["8.8.8.8", "10.0.0.1", "1.1.1.1", None]
    assert classifier.external_set(ips) == {"8.8.8.8", "1.1.1.1"}
    assert classifier.external_set(ips) == {"8.8.8.8", "1.1.1.1"}  # second call from the cache


def test_parse_ip_unwraps_and_strips() -> None:
    assert parse_ip("::ffff:10.0.0.5") == ipaddress.IPv4Address("10.0.0.5")
    assert parse_ip("[fe80::1%eth0]") == ipaddress.IPv6Address("fe80::1")
    assert parse_ip("nope") is None


# -- properties -------------------------------------------------------------------------------------

def reference(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The definition in RULES-AND-SCOPE.md, stated directly."""
    a = getattr(a, "ipv4_mapped", None) or a
    return a.is_global and not a.is_multicast


ipv4s = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6s = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@given(ipv4s)
def test_ipv4_matches_the_reference_definition(a: ipaddress.IPv4Address) -> None:
    assert is_external(str(a), DEFAULT) == reference(a)


@given(ipv6s)
def test_ipv6_matches_the_reference_definition(a: ipaddress.IPv6Address) -> None:
    assert is_external(str(a), DEFAULT) == reference(a)
    assert is_external(a.exploded.upper(), DEFAULT) == reference(a)
    assert is_external(f"[{a}]", DEFAULT) == reference(a)


@given(ipv4s)
def test_ipv4_mapped_form_classifies_exactly_like_the_ipv4_address(a: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address((0xFFFF << 32) | int(a))
    for scope in (DEFAULT, INTERNAL_TOO):
        expected = is_external(str(a), scope)
        assert is_external(f"::ffff:{a}", scope) == expected
        assert is_external(str(mapped), scope) == expected  # hex spelling, e.g. ::ffff:808:808
        assert is_external(mapped.exploded, scope) == expected


# Special-purpose IPv4 blocks that are not global in any Python version (IANA registry): an oracle
# independent of `is_global`, so a stdlib regression would show here.
NEVER_GLOBAL_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
    "240.0.0.0/4")]
# ...and blocks whose global-ness depends on the Python patch release: left out of the oracle.
UNSETTLED_V4 = [ipaddress.ip_network(n) for n in ("192.0.0.0/24", "192.88.99.0/24")]


@given(ipv4s)
def test_ipv4_against_the_special_purpose_registry(a: ipaddress.IPv4Address) -> None:
    if any(a in n for n in UNSETTLED_V4):
        return
    assert is_external(str(a), DEFAULT) == (not any(a in n for n in NEVER_GLOBAL_V4))


@given(ipv4s | ipv6s)
def test_count_internal_matches_its_definition(a: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    u = getattr(a, "ipv4_mapped", None) or a
    internal = any(u in ipaddress.ip_network(n) for n in
                   ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
    assert is_external(str(a), INTERNAL_TOO) == (reference(a) or internal)


@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    scope = ScopeConfig(count_internal=True, home_networks=("10.0.0.0/8",), external_networks=("fd00::/8",))
    assert isinstance(is_external(text, scope), bool)
    assert isinstance(describe(text, scope), str)


@given(st.text(alphabet="0123456789abcdefABCDEF:.%[]/ x", max_size=45))
def test_address_like_text_never_raises_and_agrees_with_parse(text: str) -> None:
    a = parse_ip(text)
    assert is_external(text, DEFAULT) == (a is not None and reference(a))


# --- the SQL path used on the distinct addresses of a run agrees with classify ------------------------
def sql_scope(cfg: ScopeConfig, ips: list[str]) -> dict[str, bool]:
    """ip -> counted, as the engine decides it in DuckDB for network events to these addresses."""
    import pyarrow as pa

    from stagehunt import engine
    from stagehunt.config import Config
    from stagehunt.store import EventStore

    with EventStore() as store:
        info = store.begin_file("t", "flat")
        store.insert_arrow(info, pa.table({"kind": ["network"] * len(ips), "remote_ip": ips}))
        engine.build_ip_scope(store.con, Config(scope=cfg))
        return dict(store.con.execute("SELECT ip, counted FROM ip_scope").fetchall())


ODD = ScopeConfig(count_internal=False, home_networks=("20.0.0.0/8",), external_networks=("10.9.0.0/16",))


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50), st.booleans())
@settings(max_examples=60, deadline=None)
def test_sql_scope_agrees_with_classify(ns, count_internal):
    cfg = ScopeConfig(count_internal=count_internal, home_networks=ODD.home_networks,
                      external_networks=ODD.external_networks)
    cls = ScopeClassifier(cfg)
    ips = [str(ipaddress.IPv4Address(n)) for n in ns]
    # spellings the SQL path must leave to Python: blanks, leading zeros, IPv4-mapped, IPv6
    ips += [" " + ips[0], ips[0].replace(".", ".0", 1), "::ffff:" + ips[0], "2001:db8::1", "fe80::1", "x"]
    assert sql_scope(cfg, ips) == {ip: cls.is_external(ip) for ip in set(ips)}


def test_sql_scope_agrees_at_every_segment_boundary():
    for cfg in (ScopeConfig(count_internal=True, home_networks=("20.0.0.0/8",)), DEFAULT, ODD):
        cls = ScopeClassifier(cfg)
        starts, _ = cls.ipv4_segments()
        probes = [str(ipaddress.IPv4Address(x)) for s in starts for x in (s - 1, s, s + 1) if 0 <= x < 2**32]
        assert len(probes) > 50
        assert sql_scope(cfg, probes) == {ip: cls.is_external(ip) for ip in probes}
