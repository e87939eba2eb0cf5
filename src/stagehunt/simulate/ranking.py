"""The ranking scenarios of issue 6: what the score must do with benign fan-out and with rare behaviour.

Each one exercises a ranking mechanism (scoring.py) on software no profile or exclusion names, so
that only the mechanism can give the expected outcome:
  cdn-fan-out            infrastructure: CDN edges behind one DNS name are one infrastructure
  ocsp-beside-stage      service context: an OCSP fetch is not counted, the two real stages still are
  fleet-vs-lone          prevalence: the same behaviour on 50 hosts ranks below a different one on 1
  unknown-vendor-agents  process context and infrastructure: installed agents whose addresses DNS names
The names come from Sysmon DNS events (event 22, QueryName -> QueryResults), logged by the process that
asked, as Windows logs them; Sysmon for Linux logs no DNS events, so these scenarios are Windows ones.

Addresses are real public ones in the providers' ranges (CloudFront, Cloudflare, AWS, Azure, Google,
Edgio for DigiCert's OCSP), chosen for the scenarios and never looked up (simulate is offline): the
vendors' names need not resolve to exactly these today. Builders take the C2 addresses A and B like the
attack scenarios; the benign ones ignore them (they have no C2).
"""

from __future__ import annotations

from stagehunt.simulate.host import Machine, Proc, after
from stagehunt.simulate.model import (
    BASE,
    EXPLORER,
    SERVICES,
    Expected,
    Group,
    Hidden,
    Outranks,
    Scenario,
    desktop,
    events_of,
)

PS = r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"
SYSTEM = r"NT AUTHORITY\SYSTEM"

# -- cdn-fan-out -------------------------------------------------------------------------------------------

CDN_NAME = "download-cdn.jetbrains.com"
CDN_ALIAS = "d1kl7wp4vsxqmg.cloudfront.net"
# one CloudFront answer of four edges, and the next answer after the 60 s TTL ran out
CDN_EDGES = (("18.161.97.14", "18.161.97.42", "18.161.97.63", "18.161.97.119"),
             ("18.244.18.5", "18.244.18.77", "18.244.18.102", "18.244.18.120"))


def cdn_fan_out(_a: str = "", _b: str = "") -> Scenario:
    t = after(BASE, 10 * 3600)
    m = Machine("WKS-0810.acme.local", "10.20.23.18")
    shell = desktop(m, r"ACME\k.ito", after(t, -2400), 5120)
    ps = m.start(after(t, -300), shell, PS, 6604, f'"{PS}" -NoLogo', cwd="C:\\Users\\k.ito\\")
    # aria2c, installed by Scoop in the user's profile: a command-line downloader no profile hides on purpose
    aria = r"C:\Users\k.ito\scoop\apps\aria2\current\aria2c.exe"
    url = f"https://{CDN_NAME}/idea/ideaIU-2024.1.exe"
    dl = m.start(t, ps, aria, 7788, f"{aria} -x4 -s4 -d C:\\Users\\k.ito\\Downloads {url}")
    m.resolve(after(t, 0.1), dl, CDN_NAME, list(CDN_EDGES[0]), cnames=(CDN_ALIAS,))
    for k, ip in enumerate(CDN_EDGES[0]):  # -x4 -s4: four segments, one connection per edge answered
        m.connect(after(t, 0.2 + 0.05 * k), dl, ip, 443)
    # two segments stall and are retried after the TTL: a new lookup, other edges of the same name
    m.resolve(after(t, 75), dl, CDN_NAME, list(CDN_EDGES[1]), cnames=(CDN_ALIAS,))
    for k, ip in enumerate(CDN_EDGES[1][:2]):
        m.connect(after(t, 75.1 + 0.05 * k), dl, ip, 443)
    return Scenario(
        "cdn-fan-out", "CDN fan-out behind one DNS name (aria2c)", "false-positive", "windows",
        "issue 6: infrastructure, not just addresses",
        f"aria2c.exe (started from the user's PowerShell) downloads one file in four segments from {CDN_NAME}: "
        "four CloudFront edges from one answer, two more from the next answer when segments are retried. "
        "Six addresses, one name: one infrastructure, not a multi-stage channel.",
        events_of(m), silenced_by="ranking: infrastructure", hidden=(Hidden(aria, "infrastructure"),))


# -- ocsp-beside-stage ---------------------------------------------------------------------------------------

OCSP_NAME = "ocsp.digicert.com"
OCSP_IP = "192.229.211.108"
OCSP_CHAIN = ("ocsp.edge.digicert.com", "fp2e7a.wpc.phicdn.net")


def ocsp_beside_stage(a: str, b: str) -> Scenario:
    t = after(BASE, 11 * 3600)

    def lure(m: Machine, user: str, image: str, pid: int, second_stage: bool) -> None:
        shell = desktop(m, user, after(t, -5000), pid - 1400)
        p = m.start(t, shell, image, pid, f'"{image}"', cwd=image.rsplit("\\", 1)[0] + "\\")
        m.connect(after(t, 1.2), p, a, 443)  # stage 1 over HTTPS, straight to the address
        # validating the server's certificate, CryptoAPI asks the CA's OCSP responder, in the process itself
        m.resolve(after(t, 1.4), p, OCSP_NAME, [OCSP_IP], cnames=OCSP_CHAIN)
        m.connect(after(t, 1.5), p, OCSP_IP, 80)
        m.connect(after(t, 2.1), p, a, 443)
        if second_stage:
            m.connect(after(t, 64.7), p, b, 443)

    # two users open two lures; only on the first host does the second stage come
    staged = Machine("WKS-0719.acme.local", "10.20.21.77")
    lone = Machine("WKS-0722.acme.local", "10.20.21.93")
    invoice = r"C:\Users\t.brandt\Downloads\Invoice_2026-0317.exe"
    scan = r"C:\Users\e.varga\Downloads\Scan_0317_A4.exe"
    lure(staged, r"ACME\t.brandt", invoice, 8164, second_stage=True)
    lure(lone, r"ACME\e.varga", scan, 7420, second_stage=False)
    return Scenario(
        "ocsp-beside-stage", "An OCSP fetch on port 80 beside a real second stage", "attack", "windows",
        "issue 6: service context",
        f"A downloaded lure fetches stage 1 from A:443; checking the certificate, it asks {OCSP_NAME} on "
        "port 80; a minute later it fetches stage 2 from B:443 — three addresses, two of them stages. On a "
        "second host a different lure gets stage 1 and the OCSP answer but no stage 2: one stage is not "
        "multi-stage, and the OCSP address must not make it two.",
        events_of(staged, lone),
        (Expected("multi_stage_c2", invoice, EXPLORER, reason=f"{OCSP_IP} is certificate revocation ({OCSP_NAME})"),),
        (invoice,), c2=(a, b), hidden=(Hidden(scan, "service context"),))


# -- fleet-vs-lone ------------------------------------------------------------------------------------------

SLACK = r"C:\Program Files\Slack\slack.exe"
SLACK_API = ("edgeapi.slack.com", "52.7.200.14")  # AWS us-east-1
SLACK_EDGE = ("a.slack-edge.com", "108.138.85.36")  # CloudFront
FLEET = 50
LONE_HOST = 17  # WKS-2017: one of the fleet


def fleet_vs_lone(a: str, b: str) -> Scenario:
    t = after(BASE, 12 * 3600)
    machines = []
    for h in range(1, FLEET + 1):
        m = Machine(f"WKS-{2000 + h}.acme.local", f"10.30.{h // 200}.{10 + h % 200}")
        user = f"ACME\\emp{2000 + h}"
        shell = desktop(m, user, after(t, -600 + 7 * h), 4000 + 4 * h)
        logon = after(t, 7 * h)  # the morning's logons, a few seconds apart; Slack starts from the Run key
        cmd = f'"{SLACK}" --process-start-args --startup'
        slack = m.start(logon, shell, SLACK, 6000 + 4 * h, cmd)
        for k, (name, ip) in enumerate((SLACK_API, SLACK_EDGE)):
            m.resolve(after(logon, 2 + k), slack, name, [ip])
            m.connect(after(logon, 2.1 + k), slack, ip, 443)
        if h == LONE_HOST:
            # three hours later, on this one host, another slack.exe (same file, same metadata: a backdoored
            # app bundle, say) reaches two addresses no DNS answer names
            odd = m.start(after(logon, 3 * 3600), shell, SLACK, 9100, cmd)
            m.connect(after(logon, 3 * 3600 + 2), odd, a, 443)
            m.connect(after(logon, 3 * 3600 + 3), odd, a, 443)
            m.connect(after(logon, 3 * 3600 + 95), odd, b, 443)
        machines.append(m)
    lone = Group(SLACK, (a, b), 1, reason="rare: only this host")
    fleet = Group(SLACK, (SLACK_API[1], SLACK_EDGE[1]), FLEET, reason="common across the fleet")
    return Scenario(
        "fleet-vs-lone", "The same behaviour on 50 hosts, a different one on 1", "attack", "windows",
        "issue 6: prevalence",
        f"slack.exe starts at logon on {FLEET} hosts and reaches {SLACK_API[0]} and {SLACK_EDGE[0]} on every "
        f"one; on WKS-{2000 + LONE_HOST} a second slack.exe reaches A:443 and, a minute and a half later, "
        "B:443. The lone behaviour must rank above every fleet one, which are common across the fleet.",
        events_of(*machines), (Expected("multi_stage_c2", SLACK, EXPLORER, reason="rare: only this host"),),
        (SLACK,), c2=(a, b), ranks=(Outranks(lone, fleet),))


# -- unknown-vendor-agents -------------------------------------------------------------------------------

AUTOMOX = r"C:\Program Files (x86)\Automox\amagent.exe"
WARP = r"C:\Program Files\Cloudflare\Cloudflare WARP\warp-svc.exe"
APPVEYOR = r"C:\Program Files\AppVeyor\BuildAgent\Appveyor.BuildAgent.Service.exe"


def unknown_vendor_agents(_a: str = "", _b: str = "") -> Scenario:
    t = after(BASE, 13 * 3600)
    laptop = Machine("LAP-0931.acme.local", "192.168.178.34")  # at home: VPN and management agent
    build = Machine("BUILD-12.acme.local", "10.40.0.42")
    # the service control manager of each machine, running since boot (before the capture)
    scm = {laptop.name: laptop.existing(SERVICES, 708, SERVICES, SYSTEM, after(t, -120)),
           build.name: build.existing(SERVICES, 640, SERVICES, SYSTEM, after(t, -120))}

    def service(m: Machine, image: str, pid: int) -> Proc:
        """`image` started as a service at boot."""
        return m.start(t, scm[m.name], image, pid, f'"{image}"', user=SYSTEM,
                       cwd=image.rsplit("\\", 1)[0] + "\\", integrity="System")

    # a VPN client: registration API, then the WireGuard endpoint, all under the vendor's one domain
    warp = service(laptop, WARP, 3316)
    laptop.resolve(after(t, 4), warp, "zero-trust-client.cloudflareclient.com", ["162.159.137.105", "162.159.138.105"])
    laptop.connect(after(t, 4.2), warp, "162.159.137.105", 443)
    laptop.resolve(after(t, 6), warp, "engage.cloudflareclient.com", ["162.159.192.1"])
    laptop.connect(after(t, 6.1), warp, "162.159.192.1", 2408, protocol="udp")
    laptop.resolve(after(t, 9), warp, "connectivity.cloudflareclient.com", ["162.159.197.3"])
    laptop.connect(after(t, 9.1), warp, "162.159.197.3", 443)
    # a patch- and configuration-management agent: its API (two addresses), then a patch from the software's CDN
    amx = service(laptop, AUTOMOX, 3580)
    laptop.resolve(after(t, 20), amx, "api.automox.com", ["52.24.112.9", "35.163.85.200"])
    laptop.connect(after(t, 20.3), amx, "52.24.112.9", 443)
    laptop.connect(after(t, 320.3), amx, "35.163.85.200", 443)  # the next poll, the other address
    laptop.resolve(after(t, 331), amx, "download-installer.cdn.mozilla.net", ["34.117.35.28"])
    laptop.connect(after(t, 331.2), amx, "34.117.35.28", 443)
    # a CI agent on a build server: the job API, then artifacts to the project's blob storage
    agent = service(build, APPVEYOR, 2212)
    build.resolve(after(t, 3), agent, "ci.appveyor.com", ["20.62.132.188"])
    for k in range(3):
        build.connect(after(t, 3.2 + 15 * k), agent, "20.62.132.188", 443)
    build.resolve(after(t, 250), agent, "appveyorartifacts.blob.core.windows.net", ["20.150.38.228"])
    build.connect(after(t, 250.2), agent, "20.150.38.228", 443)
    low = "installed software with consistent metadata"
    return Scenario(
        "unknown-vendor-agents", "Agents from vendors no profile names (Automox, Cloudflare WARP, AppVeyor)",
        "false-positive", "windows", "issue 6: process context and infrastructure, generalising",
        "A patch/configuration-management agent (Automox), a VPN client (Cloudflare WARP) and a CI agent "
        "(AppVeyor build agent), installed under Program Files and started as services, each reach two or three "
        "addresses that DNS names under their vendors' domains. No profile names them: they must be hidden "
        "(one infrastructure) or ranked low (installed software, every address named) by mechanism.",
        events_of(laptop, build),
        (Expected("multi_stage_c2", AUTOMOX, SERVICES, reason=f"{low} (Automox, Inc.)"),
         Expected("multi_stage_c2", APPVEYOR, SERVICES, reason=f"{low} (Appveyor Systems Inc.)")),
        silenced_by="ranking: installed software, one infrastructure, every address named",
        hidden=(Hidden(WARP, "infrastructure"),), max_severity="low")
