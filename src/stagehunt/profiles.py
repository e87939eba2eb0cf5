"""Shipped tuning profiles for the seed's false-positive classes: named lists of image exclusions.

Each profile lists the software of one class by exact image name (case-insensitive, never a
substring) or, where the software runs inside an interpreter it bundles, by that interpreter's full
install path: Puppet and Chef agents run as `ruby` and Salt's as `python3`, so the path
(`/opt/chef/embedded/bin/ruby`) names the agent while a bare `ruby` would hide every Ruby script.

Deliberately not listed, so that they stay visible by default:
  - generic interpreters and shells (java, python, ruby, node, powershell, pwsh, cmd, bash): first
    stages run in exactly these. Jenkins and TeamCity agents run as `java`, Ansible needs no agent
    on the managed host at all (its control node runs `python3` and reaches hosts over SSH). Exclude
    such hosts with `[exclusions] hosts`, or the orchestrator's network with `destinations`.
  - command-line downloaders (curl, wget, aria2c, axel): scripts and implants fetch stages with
    them (the seed's Linux test does). Add them under `[exclusions] images` if your users run them.
A name is cheap to fake: an implant called `PanGPS.exe` is hidden by the `vpn-clients` profile just as
one called `chrome.exe` is hidden by the seed's defaults. Where that matters, switch the profile off
and list full paths or hashes instead.

Profiles are switched on and off with `[exclusions] profiles` (default: all of them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    title: str  # the seed's false-positive class it answers
    images: tuple[str, ...]  # exact names, or full paths (see the module docstring)


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("config-management",
            "configuration-management agents polling an orchestrator and reporting to a monitoring endpoint",
            (
                # Puppet: the agent is a Ruby script run by Puppet's own ruby; PXP talks to the orchestrator
                r"C:\Program Files\Puppet Labs\Puppet\puppet\bin\ruby.exe", "/opt/puppetlabs/puppet/bin/ruby",
                "pxp-agent.exe", "pxp-agent",
                # Chef Infra Client (and its Cinc rebuild): chef-client is a Ruby script in the embedded ruby
                r"C:\opscode\chef\embedded\bin\ruby.exe", "/opt/chef/embedded/bin/ruby",
                "/opt/cinc/embedded/bin/ruby",
                # Salt: a native salt-minion.exe on Windows; the onedir python on Linux
                "salt-minion.exe", "/opt/saltstack/salt/bin/python3*",  # python3 -> python3.10: exe is the target
            )),
    Profile("download-managers", "download managers fetching one file from several CDN edge nodes",
            ("fdm.exe", "IDMan.exe", "JDownloader2.exe", "uget-gtk")),
    Profile("vpn-clients", "VPN clients: an authentication server, then a separate concentrator",
            (
                "PanGPS.exe", "PanGPA.exe", "PanGPS", "PanGPA",  # Palo Alto GlobalProtect
                "vpnagent.exe", "vpnui.exe", "csc_ui.exe", "vpnagentd",  # Cisco AnyConnect / Secure Client
                "FortiClient.exe", "FortiSSLVPNdaemon.exe", "FortiTray.exe",  # Fortinet
                "openvpn.exe", "openvpn-gui.exe", "openvpnserv.exe", "openvpn", "OpenVPNConnect.exe",
                "Pulse.exe", "PulseSecureService.exe",  # Pulse Secure / Ivanti
                "ZSATunnel.exe", "ZSATray.exe", "ZSAService.exe",  # Zscaler Client Connector
                "NordVPN.exe", "nordvpn-service.exe", "nordvpnd",
                "wireguard.exe", "tailscaled.exe", "tailscaled", "tailscale-ipn.exe",
            )),
    Profile("ci-agents", "CI/CD agents reaching several service and test endpoints",
            (
                "Runner.Listener.exe", "Runner.Worker.exe", "Runner.Listener", "Runner.Worker",  # GitHub Actions
                "Agent.Listener.exe", "Agent.Worker.exe", "Agent.Listener", "Agent.Worker",  # Azure Pipelines
                "gitlab-runner.exe", "gitlab-runner", "buildkite-agent.exe", "buildkite-agent",
                "circleci-launch-agent",
            )),
)}

PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def profile_images(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The image entries of the named profiles, in profile order. Raises KeyError on an unknown name."""
    return tuple(image for name in names for image in PROFILES[name].images)
