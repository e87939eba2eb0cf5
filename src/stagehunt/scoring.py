"""Rank and explain: a 0-100 score per finding from named, weighted reasons; benign fan-out suppressed.

Mechanisms, each general rather than a list of known software:
  service context  connections that are what their service does drop out of the count: DNS (port 53;
                   a finding made only of DNS traffic is a resolver's fan-out), time sync (123), and
                   certificate revocation (OCSP/CRL), recognised by the names contacted
  infrastructure   addresses grouped by the registrable domain of the names the data gives them; a
                   finding whose addresses are one infrastructure (CDN edges) is not multi-stage
  prevalence       the same image reaching the same infrastructure on many hosts is fleet behaviour;
                   on one host of many it is rare (optionally remembered across runs in a baseline)
  process context  where the image lives, whether its metadata is consistent, whether it is a script
                   interpreter or dual-use binary, Office/script lineage, ports, direct-to-IP contact
Weights live in [scoring]; every contribution becomes a line in `score_breakdown` and the reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from stagehunt import names as infra
from stagehunt import scope
from stagehunt.config import Config, ScoringConfig
from stagehunt.findings import Finding
from stagehunt.tables import temp_table

# Certificate revocation and trust-list endpoints, by the names CAs give them (any label with "ocsp",
# crl/crl3/crls, ctldl, cacerts, pki, aia); Let's Encrypt's OCSP, CRLs and issuer certificates live under
# o./c./i.lencr.org; some CAs answer OCSP on status.<ca>.com or *.symcd.com (these only under the CA's domain).
REVOCATION = re.compile(
    r"(^|\.)([a-z0-9-]*ocsp[a-z0-9-]*|crls?[0-9]*|ctldl|cacerts?|pki|aia[0-9]*)\."
    r"|(^|\.)[oci]\.lencr\.org$|(^|\.)status\.(rapidssl|geotrust|thawte|digicert|verisign)\.com$|\.symcd\.com$",
    re.I)
INTERPRETERS = frozenset({
    "powershell.exe", "pwsh.exe", "pwsh", "cmd.exe", "wscript.exe", "cscript.exe", "mshta.exe", "rundll32.exe",
    "regsvr32.exe", "certutil.exe", "bitsadmin.exe", "msbuild.exe", "installutil.exe", "regasm.exe", "regsvcs.exe",
    "curl.exe", "curl", "wget", "bash", "sh", "dash", "zsh", "ksh", "python", "python3", "python.exe", "perl",
    "nc", "ncat", "socat", "telnet",
})
# Where initial access lands: a process these start is a stage, whatever its own location says.
INITIAL_ACCESS_HOSTS = frozenset({
    "winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "onenote.exe", "msaccess.exe", "mspub.exe",
    "visio.exe", "wscript.exe", "cscript.exe", "mshta.exe", "powershell.exe", "pwsh.exe", "cmd.exe",
    "iexplore.exe", "msedge.exe", "microsoftedge.exe", "microsoftedgecp.exe", "chrome.exe", "firefox.exe",
    "opera.exe", "brave.exe", "acrord32.exe", "acrobat.exe",
})
USER_WRITABLE = re.compile(r"(\\users\\public\\|\\appdata\\|\\temp\\|\\tmp\\|\\downloads\\|^[a-z]:\\programdata\\"
                           r"|^/tmp/|^/var/tmp/|^/dev/shm/|^/home/[^/]+/)", re.I)
INSTALLED = re.compile(r"(^[a-z]:\\windows\\(system32|syswow64)\\|^[a-z]:\\program files( \(x86\))?\\"
                       r"|^\\device\\harddiskvolume\d+\\(windows|program files)|^/usr/|^/bin/|^/sbin/)", re.I)
STAGED = ("multi_stage_c2", "sibling_chain")  # findings about several addresses of one group, not a handoff
SERVICE_PORTS = {53: "DNS", 853: "DNS over TLS", 123: "time sync (NTP)"}
# Windows domain and LAN services: only counted at all when internal destinations are (lab mode).
LAN_SERVICE_PORTS = {88: "Kerberos", 135: "RPC", 137: "NetBIOS", 138: "NetBIOS", 139: "NetBIOS", 389: "LDAP",
                     445: "SMB", 464: "Kerberos", 636: "LDAPS", 1900: "SSDP", 3268: "LDAP GC", 3269: "LDAP GC",
                     5353: "mDNS", 5355: "LLMNR"}


def band(score: int) -> str:
    return "high" if score >= 70 else "medium" if score >= 40 else "low"


def _stem(name: str) -> str:
    n = _name(name).removesuffix(".mui")
    return n.rsplit(".", 1)[0] if n.endswith((".exe", ".dll", ".com", ".scr")) else n


def _name(path: str | None) -> str:
    return (path or "").replace("\\", "/").rsplit("/", 1)[-1].lower()


@dataclass
class Context:
    """Facts for every finding of a run, fetched in a few bulk queries (never one per finding)."""

    fleet_hosts: int
    inbound_dns: set[tuple[str, str]]  # (host, image name) that accept connections on port 53
    names: dict[str, list[str]]  # ip -> names the data gives it
    procs: dict[str, tuple]  # process key -> (image, company, original_file_name, parent_key)
    prevalence: dict[int, tuple[int, int]]  # finding index -> (hosts running the image, hosts doing the same)


def _context(con: duckdb.DuckDBPyConnection, findings: list[Finding]) -> Context:
    inbound = {(h, _name(i)) for h, i in con.execute(
        "SELECT DISTINCT host, image FROM events WHERE kind = 'network' AND direction = 'inbound' "
        "AND dst_port = 53").fetchall()}
    ips = sorted({ip for f in findings for ip in (*f.ip_list, *f.new_ips, *f.parent_ip_list)})
    names = infra.names_for(con, ips)
    procs: dict[str, tuple] = {}
    want = {k for f in findings for k in (f.process_key, f.earlier_key) if k}
    for _ in range(5):  # the processes, then up to four generations of ancestors
        want -= procs.keys()
        if not want:
            break
        rows = con.execute("SELECT p.key, p.image, e.company, e.original_file_name, p.parent_key FROM proc p "
                           "JOIN events e ON e.rowid = p.erow WHERE p.key IN (SELECT unnest(?))",
                           [sorted(want)]).fetchall()
        procs.update({r[0]: r[1:] for r in rows})
        want = {r[4] for r in rows if r[4]}
    return Context(0, inbound, names, procs, {})  # fleet_hosts: filled by _prevalence_counts


SEEN_NOW = ("SELECT DISTINCT lower(base_name_of(k.image)) AS image, c.ip, c.host FROM conn c "
            "JOIN ctx k USING (pkey) WHERE k.image IS NOT NULL")


def _open_baseline(con: duckdb.DuckDBPyConnection, path: str) -> str:
    """Attach the baseline file (created on first use); the relation of every (image, ip, host) seen."""
    con.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS baseline")
    con.execute("CREATE TABLE IF NOT EXISTS baseline.seen (image VARCHAR, ip VARCHAR, host VARCHAR, "
                "first_seen TIMESTAMP DEFAULT now(), PRIMARY KEY (image, ip, host))")
    return "(SELECT * FROM seen_now UNION SELECT image, ip, host FROM baseline.seen)"


def _prevalence_counts(con: duckdb.DuckDBPyConnection, findings: list[Finding], ctx: Context,
                       sc: ScoringConfig, seen: str) -> None:
    """Per finding: on how many hosts its image reached the same infrastructure (one query for all), over
    this run's data and, with a baseline, every earlier run's."""
    ctx.fleet_hosts = con.execute(f"SELECT count(DISTINCT host) FROM {seen}").fetchone()[0]
    if ctx.fleet_hosts < sc.fleet_min_hosts:
        return
    domain_ips: dict[str, set[str]] = {}
    for ip, name in con.execute("SELECT ip, name FROM ipnames").fetchall():
        domain_ips.setdefault(infra.registrable(name), set()).add(ip)
    rows: list[tuple[int, str, str]] = []
    for i, f in enumerate(findings):
        ips = set(f.ip_list if f.detection_type in STAGED else (f.new_ips or f.ip_list))
        for ip in list(ips):
            for n in ctx.names.get(ip, []):
                ips |= domain_ips.get(infra.registrable(n), set())
        rows += [(i, _name(f.image), ip) for ip in ips]
    if not rows:
        return
    temp_table(con, "_prev", {"fid": ("BIGINT", [r[0] for r in rows]), "image": ("VARCHAR", [r[1] for r in rows]),
                              "ip": ("VARCHAR", [r[2] for r in rows])})
    per_image = dict(con.execute(f"""
        SELECT image, count(DISTINCT host) FROM {seen} s
        WHERE image IN (SELECT DISTINCT image FROM _prev) GROUP BY 1""").fetchall())
    same = dict(con.execute(f"""
        SELECT p.fid, count(DISTINCT s.host) FROM _prev p JOIN {seen} s ON s.ip = p.ip AND s.image = p.image
        GROUP BY p.fid""").fetchall())
    con.execute("DROP TABLE _prev")
    for i, f in enumerate(findings):
        ctx.prevalence[i] = (per_image.get(_name(f.image), 0), same.get(i, 0))


def rank(con: duckdb.DuckDBPyConnection, findings: list[Finding], cfg: Config) -> list[Finding]:
    """Score every finding in place (suppressing benign ones) and return them best first. With
    [scoring] baseline, prevalence also counts earlier runs, and this run is added to the baseline."""
    if findings or cfg.scoring.baseline:  # what this run saw, once: the prevalence queries read it three times
        con.execute(f"CREATE OR REPLACE TEMP TABLE seen_now AS {SEEN_NOW}")
    seen = _open_baseline(con, cfg.scoring.baseline) if cfg.scoring.baseline else "seen_now"
    try:
        if findings:
            infra.build_names(con)
            ctx = _context(con, findings)
            _prevalence_counts(con, findings, ctx, cfg.scoring, seen)
            for i, f in enumerate(findings):
                _score(i, f, cfg, ctx)
            # ties broken on what the finding is, so the order never depends on the engine's row order
            findings.sort(key=lambda f: (f.suppressed, -(f.score or 0), f.first_contact or "", f.detection_type,
                                         f.host or "", f.process_guid or "", f.pid or 0, f.image or ""))
        if cfg.scoring.baseline:
            con.execute("INSERT INTO baseline.seen (image, ip, host) SELECT * FROM seen_now ON CONFLICT DO NOTHING")
    finally:
        if cfg.scoring.baseline:
            con.execute("DETACH baseline")
    return findings


def _score(i: int, f: Finding, cfg: Config, ctx: Context) -> None:
    sc = cfg.scoring
    out: list[tuple[int, str]] = [(getattr(sc, f"base_{f.detection_type}", 45), f"base for {f.detection_type}")]
    staged = f.detection_type in STAGED
    ips = list(f.ip_list if staged else (f.new_ips or f.ip_list))
    names = ctx.names
    ports: dict[str, set[int]] = {}
    for e in f.evidence:
        if e.kind == "network" and e.ip is not None:
            ports.setdefault(e.ip, set()).add(e.port or 0)

    # -- service context ---------------------------------------------------------------------------
    dropped: list[str] = []
    kept = []
    for ip in ips:
        revocation = [n for n in names.get(ip, []) if REVOCATION.search(n)]
        table = SERVICE_PORTS if scope.is_external(ip, cfg.scope.__class__()) else {**SERVICE_PORTS,
                                                                                   **LAN_SERVICE_PORTS}
        service = {table[p] for p in ports.get(ip, ()) if p in table}
        if revocation:
            dropped.append(f"{ip} is certificate revocation ({revocation[0]})")
        elif service and ports.get(ip, set()) <= set(table):
            dropped.append(f"{ip} is {'/'.join(sorted(service))} traffic")
        else:
            kept.append(ip)
    if dropped:
        out.append((0, "service traffic not counted: " + "; ".join(dropped)))
    need = cfg.detection.min_ips if staged else 1
    if sc.suppress and len(kept) < need:
        who = _name(f.image)
        if dropped and all("DNS" in d for d in dropped) and (f.host, who) in ctx.inbound_dns:
            why = f"{who} serves DNS on this host (accepts port-53 connections): its fan-out to resolvers is normal"
        else:
            why = f"without service traffic only {len(kept)} counted address(es) remain"
        f.suppressed_by.append(f"service context: {why}")

    # -- infrastructure ------------------------------------------------------------------------------
    groups = infra.group(kept, names)
    f.infrastructures = [{"domains": list(g.domains), "names": list(g.names), "ips": list(g.ips)} for g in groups]
    f.unique_infrastructures = len(groups)
    if (staged and not f.suppressed_by and len(kept) >= cfg.detection.min_ips and sc.suppress
            and len(groups) < cfg.detection.min_ips and all(names.get(i) for i in kept)):
        f.suppressed_by.append(f"infrastructure: {len(kept)} addresses are one infrastructure, "
                               f"{groups[0].label()}")
    if not staged and f.parent_ip_list and kept:
        earlier = {infra.registrable(n) for ip in f.parent_ip_list for n in names.get(ip, [])}
        if sc.suppress and earlier and all(names.get(i) and {infra.registrable(n) for n in names[i]} <= earlier
                                           for i in kept):
            f.suppressed_by.append("infrastructure: the later stage's new addresses belong to domains the "
                                       f"earlier stage already used ({', '.join(sorted(earlier))})")
    if len(groups) >= 2:
        out.append((sc.several_infrastructures, f"{len(groups)} distinct infrastructures: "
                    + "; ".join(g.label() for g in groups[:5])))
    if len(groups) >= cfg.detection.strong_ips:
        out.append((sc.many_infrastructures, f"at least strong_ips = {cfg.detection.strong_ips} infrastructures"))
    unnamed = [ip for ip in kept if not names.get(ip)]
    if unnamed:
        out.append((sc.direct_to_ip, "contacts addresses no DNS answer or hostname in the data names "
                    f"(direct-to-IP): {', '.join(unnamed[:5])}"))
    elif kept:
        out.append((sc.all_named, "every counted address was looked up by name first, as installed software does"))

    # -- process context -----------------------------------------------------------------------------
    out += _process_context(f, sc, ctx)
    # -- ports -----------------------------------------------------------------------------------------
    used = set(f.port_list)
    proxy = sorted(used & set(cfg.detection.proxy_ports))
    odd = sorted(used - set(cfg.detection.proxy_ports) - set(cfg.detection.standard_ports))
    if proxy:
        out.append((sc.proxy_port, f"proxy/SOCKS port {', '.join(map(str, proxy))}"))
    if odd:
        out.append((sc.nonstandard_port, f"non-standard port {', '.join(map(str, odd))}"))
    # -- prevalence ------------------------------------------------------------------------------------
    out += _prevalence(i, f, groups, sc, ctx)

    score = max(0, min(100, sum(w for w, _ in out)))
    f.score = score
    f.severity = band(score)
    f.score_breakdown = [{"weight": w, "reason": r} for w, r in out]
    f.reasons.append(f"score {score} ({f.severity}): " + "; ".join(
        f"{'+' if w >= 0 else ''}{w} {r}" for w, r in out))
    if f.suppressed_by:
        f.reasons.append("suppressed: " + "; ".join(f.suppressed_by))


def _process_context(f: Finding, sc: ScoringConfig, ctx: Context) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    known = f.process_key in ctx.procs
    _, company, ofn, parent_key = ctx.procs.get(f.process_key or "", (None, None, None, None))
    image = f.image or ""
    name = _name(image)
    interpreter = name in INTERPRETERS
    if interpreter:
        out.append((sc.script_interpreter, f"{name} is a script interpreter or dual-use binary"))
    if USER_WRITABLE.search(image):
        out.append((sc.user_writable, f"runs from a user-writable folder: {image}"))
    # .NET apphosts keep the assembly's name: OriginalFileName Runner.Worker.dll for Runner.Worker.exe
    renamed = bool(ofn) and ofn != "-" and _stem(ofn) != _stem(name)
    if renamed:
        out.append((sc.renamed_binary, f"renamed binary: OriginalFileName {ofn} runs as {name}"))
    lineage = _ancestors(ctx, parent_key)
    hits = [a for a in lineage if a in INITIAL_ACCESS_HOSTS and a != name]
    if hits:
        out.append((sc.office_or_script_lineage, f"descends from {' <- '.join(hits)} (Office, script host or "
                    "browser: where initial access lands)"))
    if INSTALLED.search(image) and not interpreter and not renamed and not hits:
        if known and company:  # Linux logs no PE metadata: a package path alone is "unverified"
            folder = image.rsplit("\\", 1)[0] if "\\" in image else image.rsplit("/", 1)[0]
            out.append((sc.installed_software, f"installed software with consistent metadata "
                        f"({company or 'packaged'}) in {folder}"))
        else:
            out.append((sc.installed_software_unverified, "installed location, metadata not logged"))
    if f.detection_type == "injected_stage" and known and company and not interpreter and INSTALLED.search(image):
        # the earlier stage: its start event if logged, else what the detection saw of it
        e_image, e_company = ctx.procs[f.earlier_key][:2] if f.earlier_key in ctx.procs else (f.parent_image, None)
        if e_image and INSTALLED.search(e_image) and _name(e_image) not in INTERPRETERS:
            if e_company == company:
                out.append((sc.same_vendor, f"both stages are installed {company} software ({_name(e_image)} -> "
                            f"{name}): a vendor's updater or broker handling its own process"))
            else:
                out.append((sc.installed_pair, f"both stages are installed software ({_name(e_image)} -> {name}), "
                            "neither a script interpreter"))
    if not known:
        out.append((0, "process start not logged: metadata and lineage unknown"))
    return out


def _ancestors(ctx: Context, key: str | None, depth: int = 4) -> list[str]:
    names = []
    while key and key in ctx.procs and len(names) < depth:
        image, _, _, parent = ctx.procs[key]
        names.append(_name(image))
        key = parent
    return names


def _prevalence(i: int, f: Finding, groups: list[infra.Infrastructure], sc: ScoringConfig,
                ctx: Context) -> list[tuple[int, str]]:
    if ctx.fleet_hosts < sc.fleet_min_hosts or not groups or i not in ctx.prevalence:
        return [(0, f"prevalence not informative: {ctx.fleet_hosts} host(s) in the data "
                    f"(fewer than fleet_min_hosts = {sc.fleet_min_hosts})")]
    hosts_with_image, hosts_same = ctx.prevalence[i]
    name = _name(f.image)
    if hosts_same >= max(sc.common_min_hosts, sc.common_share * hosts_with_image / 100):
        return [(sc.common_in_fleet, f"common across the fleet: {name} reached the same infrastructure on "
                 f"{hosts_same} of {ctx.fleet_hosts} hosts")]
    if hosts_same <= 1:
        return [(sc.unique_to_host, f"rare: only this host ({f.host}) shows {name} reaching this infrastructure, "
                 f"of {ctx.fleet_hosts} hosts")]
    return [(0, f"{name} reached this infrastructure on {hosts_same} of {ctx.fleet_hosts} hosts")]
