"""The seed's false positives ("False Positives & Tuning") and browsers: benign software that reaches
several external addresses. Each must produce no finding with the shipped configuration, and each
names the exclusion that keeps it quiet: a profile (profiles.py) or the seed's defaults.
"""

from __future__ import annotations

from stagehunt.simulate.host import Machine, after
from stagehunt.simulate.model import BASE, SERVICES, Scenario, desktop, events_of

SYSTEMD = "/usr/lib/systemd/systemd"
CHEF_RUBY = "/opt/chef/embedded/bin/ruby"
IDM = r"C:\Program Files (x86)\Internet Download Manager\IDMan.exe"
PANGPS = r"C:\Program Files\Palo Alto Networks\GlobalProtect\PanGPS.exe"
RUNNER = r"C:\actions-runner\bin"
CHROME = r"C:\Program Files\Google\Chrome\Application\chrome.exe"
EDGE = r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe"
FIREFOX = r"C:\Program Files\Mozilla Firefox\firefox.exe"


def config_management() -> Scenario:
    t = after(BASE, 5 * 3600)
    m = Machine("app07", "172.31.22.140", linux=True)
    init = m.existing(SYSTEMD, 1, "/usr/lib/systemd/systemd --switched-root --system --deserialize 31", "root",
                      after(t, -86400 * 12), cwd="/")
    # /opt/chef/bin/chef-client is a Ruby script: the process that runs (and connects) is Chef's ruby
    cmd = f"{CHEF_RUBY} --disable-gems /opt/chef/bin/chef-client -c /etc/chef/client.rb -i 1800 -s 300"
    chef = m.start(t, init, CHEF_RUBY, 2231, cmd, user="root", cwd="/")
    for run in range(2):  # two runs, 30 minutes apart: converge against the server, then report
        r = after(t, 12 + 1800 * run)
        for k in range(3):
            m.connect(after(r, 0.4 * k), chef, "52.31.203.17", 443)  # Chef Infra Server
        m.connect(after(r, 41.7), chef, "18.202.45.110", 443)  # Chef Automate data collector
    return Scenario(
        "fp-config-management", "Configuration-management agent (Chef Infra Client)", "false-positive",
        "linux", "seed False Positives: deployment platforms (Chef, Puppet, Ansible)",
        "chef-client (run by Chef's embedded ruby) polls its Chef Infra Server and reports each run to a "
        "Chef Automate data collector: two external addresses from one process, every 30 minutes.",
        events_of(m), silenced_by="profile config-management")


def download_manager() -> Scenario:
    t = after(BASE, 6 * 3600)
    m = Machine("WKS-0533.acme.local", "10.20.14.61")
    shell = desktop(m, r"ACME\p.novak", after(t, -4000), 3868)
    idm = m.start(t, shell, IDM, 9356, f'"{IDM}"')
    edges = ["151.101.2.132", "23.215.0.138", "13.224.189.21", "104.18.32.68"]  # Fastly, Akamai, CloudFront, CF
    for k in range(8):  # eight segments of one large file, two per edge node
        m.connect(after(t, 20 + 0.3 * k), idm, edges[k % 4], 443)
    return Scenario(
        "fp-download-manager", "Multi-CDN download manager (Internet Download Manager)", "false-positive",
        "windows", "seed False Positives: multi-CDN content delivery",
        "IDMan.exe downloads one large file in eight segments from four CDN edge nodes at once.",
        events_of(m), silenced_by="profile download-managers")


def vpn_client() -> Scenario:
    t = after(BASE, 7 * 3600)
    m = Machine("LAP-0118.acme.local", "192.168.1.23")  # a laptop on a home network
    scm = m.existing(SERVICES, 712, SERVICES, r"NT AUTHORITY\SYSTEM", after(t, -3600))
    gp = m.start(t, scm, PANGPS, 4236, f'"{PANGPS}"', user=r"NT AUTHORITY\SYSTEM",
                 cwd="C:\\Windows\\system32\\", integrity="System")
    m.connect(after(t, 5), gp, "34.98.121.40", 443)  # portal: authentication, configuration
    m.connect(after(t, 8.5), gp, "35.227.194.51", 443)  # gateway (concentrator): SSL tunnel set-up
    m.connect(after(t, 9.1), gp, "35.227.194.51", 4501, protocol="udp")  # IPSec tunnel
    return Scenario(
        "fp-vpn-client", "VPN client (GlobalProtect)", "false-positive", "windows",
        "seed False Positives: VPN or proxy clients",
        "PanGPS.exe authenticates at the GlobalProtect portal, then tunnels through a separate gateway "
        "(TCP/443, then IPSec on UDP/4501).",
        events_of(m), silenced_by="profile vpn-clients")


def ci_agent() -> Scenario:
    t = after(BASE, 8 * 3600)
    m = Machine("BUILD-07.acme.local", "10.40.0.17")
    user = r"NT AUTHORITY\NETWORK SERVICE"
    svc = m.existing(rf"{RUNNER}\RunnerService.exe", 2964, rf'"{RUNNER}\RunnerService.exe"', user,
                     after(t, -7200), cwd=RUNNER + "\\")
    listener = m.start(t, svc, rf"{RUNNER}\Runner.Listener.exe", 3112, rf'"{RUNNER}\Runner.Listener.exe" run '
                       "--startuptype service", integrity="System")
    m.connect(after(t, 3), listener, "140.82.112.21", 443)  # job broker
    worker = m.start(after(t, 60), listener, rf"{RUNNER}\Runner.Worker.exe", 7440,
                     rf'"{RUNNER}\Runner.Worker.exe" spawnclient 1852 1860', integrity="System")
    for k, ip in enumerate(["20.42.73.31", "52.239.170.100", "185.199.108.154", "140.82.113.4"]):
        m.connect(after(t, 62 + 7 * k), worker, ip, 443)  # results, cache storage, actions, API
    return Scenario(
        "fp-ci-agent", "CI/CD agent (GitHub Actions self-hosted runner)", "false-positive", "windows",
        "seed False Positives: automated testing frameworks and CI/CD agents",
        "Runner.Listener.exe takes a job from the broker and starts Runner.Worker.exe, which reaches the "
        "results service, cache storage, action downloads and the API: four addresses in half a minute.",
        events_of(m), silenced_by="profile ci-agents")


def browsers() -> Scenario:
    t = after(BASE, 9 * 3600)
    m = Machine("WKS-0604.acme.local", "10.20.17.230")
    shell = desktop(m, r"ACME\a.moreau", after(t, -2000), 6200)
    chrome = m.start(t, shell, CHROME, 10244, f'"{CHROME}"')
    # Chrome and Edge connect from their network-service child, Firefox from its main process
    net = m.start(after(t, 0.4), chrome, CHROME, 10420, f'"{CHROME}" --type=utility '
                  "--utility-sub-type=network.mojom.NetworkService --lang=en-US --service-sandbox-type=none "
                  "--mojo-platform-channel-handle=2124 /prefetch:8")
    for k, ip in enumerate(["142.250.74.46", "172.217.16.142", "13.107.42.14"]):
        m.connect(after(t, 1 + 2 * k), net, ip, 443)
    edge = m.start(after(t, 300), shell, EDGE, 11872, f'"{EDGE}"')
    enet = m.start(after(t, 300.5), edge, EDGE, 11996, f'"{EDGE}" --type=utility '
                   "--utility-sub-type=network.mojom.NetworkService --lang=en-US --service-sandbox-type=none "
                   "--mojo-platform-channel-handle=2296 /prefetch:3")
    for k, ip in enumerate(["204.79.197.200", "13.107.21.200", "20.190.151.7"]):
        m.connect(after(t, 301 + 2 * k), enet, ip, 443)
    fx = m.start(after(t, 600), shell, FIREFOX, 12540, f'"{FIREFOX}"')
    for k, ip in enumerate(["34.107.221.82", "151.101.65.91", "44.240.11.63"]):
        m.connect(after(t, 601 + 2 * k), fx, ip, 443)
    return Scenario(
        "fp-browsers", "Web browsers (Chrome, Edge, Firefox)", "false-positive", "windows",
        "seed primary query: browsers are excluded",
        "chrome.exe and msedge.exe (from their network-service processes) and firefox.exe each reach "
        "three sites.",
        events_of(m), silenced_by="defaults")
