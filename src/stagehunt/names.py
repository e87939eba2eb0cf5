"""Infrastructure, not just addresses: names for destination IPs from the data itself, and grouping.

Names come from what the telemetry already says — DNS query events (QueryName -> QueryResults), the
DestinationHostname of connections, SIEM DNS fields mapped onto those columns. Two addresses are one
infrastructure when they share a name's registrable domain (Public Suffix List, including its private
section so tenants of shared hosting — `*.githubusercontent.com`, `*.cloudfront.net` — stay apart).
An address nobody named is an infrastructure of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import duckdb
from publicsuffixlist import PublicSuffixList

from stagehunt.store import canonical_ip

_IPISH = re.compile(r"^[0-9a-fA-F:.\[\]%]+$")


@lru_cache(maxsize=65536)
def registrable(name: str) -> str:
    """The registrable domain of a host name (`raw.githubusercontent.com` stays itself; `ocsp.digicert.com`
    -> `digicert.com`); the name itself when the list does not know its suffix."""
    n = name.strip().rstrip(".").lower()
    return _public_suffixes().privatesuffix(n) or n


@lru_cache(maxsize=1)
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # parsing the list takes ~60 ms: only when a finding has names to group


def build_names(con: duckdb.DuckDBPyConnection) -> None:
    """Create `ipnames(ip, name)`: every (address, host name) pair the events assert."""
    con.execute(r"""
        CREATE OR REPLACE TEMP TABLE ipnames_raw AS
        SELECT DISTINCT trim(regexp_replace(x, '^::ffff:', '')) AS ip, lower(rtrim(query_name, '.')) AS name
        FROM (SELECT query_name, unnest(string_split(query_results, ';')) AS x
              FROM events WHERE kind = 'dns' AND query_name IS NOT NULL AND query_results IS NOT NULL)
        WHERE x NOT LIKE 'type:%' AND trim(x) <> ''
        UNION
        SELECT DISTINCT remote_ip, lower(rtrim(dst_hostname, '.')) FROM events
        WHERE kind = 'network' AND dst_hostname IS NOT NULL AND remote_ip IS NOT NULL
    """)
    # answers may be spelled like any address: give them the events' canonical text form
    odd = [r[0] for r in con.execute("SELECT DISTINCT ip FROM ipnames_raw WHERE ip LIKE '%:%'").fetchall()]
    con.execute("CREATE OR REPLACE TEMP TABLE ipfix (raw VARCHAR, ip VARCHAR)")
    if odd:
        con.executemany("INSERT INTO ipfix VALUES (?, ?)", [(o, canonical_ip(o)) for o in odd])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE ipnames AS
        SELECT DISTINCT coalesce(f.ip, r.ip) AS ip, r.name FROM ipnames_raw r LEFT JOIN ipfix f ON f.raw = r.ip
        WHERE r.name IS NOT NULL AND r.name <> ''
    """)


def names_for(con: duckdb.DuckDBPyConnection, ips: list[str]) -> dict[str, list[str]]:
    """ip -> the names the data gives it (sorted)."""
    if not ips:
        return {}
    rows = con.execute("SELECT ip, list(DISTINCT name ORDER BY name) FROM ipnames WHERE ip IN (SELECT unnest(?)) "
                       "GROUP BY ip", [ips]).fetchall()
    return {ip: [n for n in names if not _IPISH.match(n)] for ip, names in rows}


@dataclass(frozen=True)
class Infrastructure:
    """Addresses that belong together, and the names that tie them."""

    ips: tuple[str, ...]
    domains: tuple[str, ...]  # registrable domains; empty when nobody named these addresses
    names: tuple[str, ...]

    def label(self) -> str:
        if not self.domains:
            return f"{self.ips[0]} (no name seen)"
        edges = f", {len(self.ips)} addresses" if len(self.ips) > 1 else ""
        return f"{'/'.join(self.domains)} ({', '.join(self.names[:3])}{edges})"


def group(ips: list[str], names: dict[str, list[str]]) -> list[Infrastructure]:
    """Union addresses that share a registrable domain; order follows `ips`."""
    parent = {ip: ip for ip in ips}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    owner: dict[str, str] = {}
    for ip in ips:
        for n in names.get(ip, []):
            d = registrable(n)
            if d in owner:
                parent[find(ip)] = find(owner[d])
            else:
                owner[d] = ip
    groups: dict[str, list[str]] = {}
    for ip in ips:
        groups.setdefault(find(ip), []).append(ip)
    out = []
    for members in groups.values():
        ns = sorted({n for ip in members for n in names.get(ip, [])})
        out.append(Infrastructure(tuple(members), tuple(sorted({registrable(n) for n in ns})), tuple(ns)))
    return out
