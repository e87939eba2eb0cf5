"""Every scenario by name: the seed's five tests and its false positives, the ranking scenarios of issue 6,
and the C2 addresses they use.

Attack scenarios reach two C2 addresses, A (first stage) and B (second stage): by default real
public addresses in large cloud ranges (the documentation ranges are not global and loopback is
never counted, so neither would be detected), or a lab's own canary hosts (`--c2 A,B`). Canaries
on private addresses are detected only when internal destinations count (`count_internal`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from stagehunt import scope
from stagehunt.config import ScopeConfig
from stagehunt.simulate import attacks, false_positives, ranking
from stagehunt.simulate.model import Expected, Scenario

__all__ = ["ATTACKS", "DEFAULT_C2", "FALSE_POSITIVES", "RANKING", "SCENARIO_NAMES", "Expected", "Scenario", "build",
           "build_all", "needs_count_internal", "parse_c2"]

# Arbitrary addresses in AWS (eu-west-3) and Azure ranges: global unicast, owned by large clouds.
DEFAULT_C2: tuple[str, str] = ("35.180.15.222", "20.106.54.31")

ATTACKS: dict[str, Callable[[str, str], Scenario]] = {
    "two-stage-powershell": attacks.two_stage_powershell,
    "staged-dropper": attacks.staged_dropper,
    "socks5-first-stage": attacks.socks_first_stage,
    "linux-curl-chain": attacks.linux_curl_chain,
    "injected-stage": attacks.injected_stage,
}
FALSE_POSITIVES: dict[str, Callable[[], Scenario]] = {
    "fp-config-management": false_positives.config_management,
    "fp-download-manager": false_positives.download_manager,
    "fp-vpn-client": false_positives.vpn_client,
    "fp-ci-agent": false_positives.ci_agent,
    "fp-browsers": false_positives.browsers,
}
# Issue 6: how findings are ranked, by mechanism, on software no profile names. Kept apart from the seed's
# lists (their tests hold for exactly those); the benign ones take A and B too and ignore them.
RANKING: dict[str, Callable[[str, str], Scenario]] = {
    "cdn-fan-out": ranking.cdn_fan_out,
    "ocsp-beside-stage": ranking.ocsp_beside_stage,
    "fleet-vs-lone": ranking.fleet_vs_lone,
    "unknown-vendor-agents": ranking.unknown_vendor_agents,
}
SCENARIO_NAMES: tuple[str, ...] = (*ATTACKS, *FALSE_POSITIVES, *RANKING)


class C2Error(ValueError):
    """--c2 is not two usable, distinct addresses."""


def parse_c2(text: str | Iterable[str]) -> tuple[str, str]:
    """`A,B` (or a list) -> two distinct addresses, canonical text. Refuses what could never be detected."""
    items = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    out = []
    for item in items:
        try:
            a = ipaddress.ip_address(item.strip("[]"))
        except ValueError:
            raise C2Error(f"--c2: {item!r} is not an IP address") from None
        if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
            a = a.ipv4_mapped  # ::ffff:a.b.c.d is logged, and counted, as a.b.c.d
        if not scope.is_external(str(a), ScopeConfig(count_internal=True)):
            raise C2Error(f"--c2: {a} is {scope.describe(str(a))}: connections to it never count, "
                          "so no scenario could be detected; use a public or private unicast address")
        out.append(str(a))
    if len(out) != 2 or out[0] == out[1]:
        raise C2Error("--c2: give two distinct addresses, A,B: A is every scenario's first stage, B its second "
                      f"(got {', '.join(out) or 'none'})")
    return out[0], out[1]


def needs_count_internal(c2: tuple[str, ...], scope_cfg: ScopeConfig) -> bool:
    """True if some C2 address counts only when internal destinations count (a lab canary on RFC 1918)."""
    return any(not scope.is_external(ip, scope_cfg) for ip in c2)


def build(name: str, c2: tuple[str, str] = DEFAULT_C2) -> Scenario:
    """One scenario's events and expected outcome. Raises KeyError for an unknown name."""
    if name in ATTACKS:
        return ATTACKS[name](*c2)
    if name in RANKING:
        return RANKING[name](*c2)
    return FALSE_POSITIVES[name]()


def build_all(names: Iterable[str] | None = None, c2: tuple[str, str] = DEFAULT_C2) -> list[Scenario]:
    return [build(n, c2) for n in (names or SCENARIO_NAMES)]
