"""One typed, frozen configuration: shipped defaults, overridden by a TOML file, then by CLI flags.

Every value is validated where the config is built; a bad value is one clear error naming the
file, the key and what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from stagehunt.profiles import PROFILE_NAMES, profile_images

# The seed's exclusions (browsers, cloud sync and collaboration, Windows services, Defender) as exact
# image names, matched case-insensitively on the image's file name — never as substrings.
DEFAULT_EXCLUDED_IMAGES: tuple[str, ...] = (
    "chrome.exe", "msedge.exe", "MicrosoftEdge.exe", "MicrosoftEdgeCP.exe", "firefox.exe", "iexplore.exe",
    "opera.exe", "brave.exe", "OneDrive.exe", "Teams.exe", "ms-teams.exe", "OUTLOOK.EXE", "olk.exe",
    "thunderbird.exe", "svchost.exe", "MsMpEng.exe", "WaaSMedicAgent.exe",
)


# Parents whose children are "stages run by one shell" for the sibling_chain detection.
DEFAULT_CHAIN_PARENTS: tuple[str, ...] = (
    "sh", "bash", "dash", "zsh", "ksh", "busybox", "cmd.exe", "powershell.exe", "pwsh.exe", "pwsh",
    "wscript.exe", "cscript.exe", "mshta.exe",
)


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type or out of range."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float) -> int:
    """'24h', '30m', '90s', '2d' or a number of seconds -> seconds."""
    if isinstance(text, bool):
        raise ConfigError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        secs = int(text)
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ConfigError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
        secs = int(float(m.group(1)) * _UNIT[m.group(2)])
    if secs <= 0:
        raise ConfigError(f"duration must be positive: {text!r}")
    return secs


def format_duration(secs: int) -> str:
    """Seconds as the shortest exact duration text; hours up to a week read better than days."""
    units = (("h", 3600), ("m", 60)) if secs < 7 * 86400 else (("d", 86400), ("h", 3600), ("m", 60))
    for unit, n in units:
        if secs % n == 0:
            return f"{secs // n}{unit}"
    return f"{secs}s"


@dataclass(frozen=True)
class DetectionConfig:
    min_ips: int = 2  # distinct external IPs that make a finding
    strong_ips: int = 3  # distinct external IPs that make it a strong indicator
    window: int = 86400  # seconds
    window_mode: str = "sliding"  # sliding | tumbling (the seed's fixed timeslices)
    group_by: str = "process"  # process (per process instance) | seed (host, user, image, command line)
    handoff_depth: int = 3  # how many generations down a handoff may go
    chain_parents: tuple[str, ...] = DEFAULT_CHAIN_PARENTS  # shells whose children form sibling chains
    proxy_ports: tuple[int, ...] = (1080, 1081, 1913, 9050, 9150)  # SOCKS/Tor first stages (APT3: 1913)
    standard_ports: tuple[int, ...] = (80, 443, 53, 123)  # anything else is a non-standard C2 port


@dataclass(frozen=True)
class ScopeConfig:
    count_internal: bool = False  # also count private / internal destinations (lab C2 on RFC 1918)
    home_networks: tuple[str, ...] = ()  # CIDRs that are ours: never external
    external_networks: tuple[str, ...] = ()  # CIDRs always external, whatever ipaddress says


@dataclass(frozen=True)
class ExclusionConfig:
    use_defaults: bool = True  # the seed's list, DEFAULT_EXCLUDED_IMAGES
    profiles: tuple[str, ...] = PROFILE_NAMES  # shipped false-positive profiles (profiles.py); [] for none
    images: tuple[str, ...] = ()  # exact names, full paths, or globs (* ?) on the path; case-insensitive
    hashes: tuple[str, ...] = ()  # any hash value from the Hashes field (SHA256, SHA1, MD5, IMPHASH)
    users: tuple[str, ...] = ()  # exact, case-insensitive
    hosts: tuple[str, ...] = ()  # exact, case-insensitive
    destinations: tuple[str, ...] = ()  # CIDRs whose connections are ignored
    ports: tuple[int, ...] = ()  # destination ports whose connections are ignored

    def all_images(self) -> tuple[str, ...]:
        return (DEFAULT_EXCLUDED_IMAGES if self.use_defaults else ()) + profile_images(self.profiles) + self.images


@dataclass(frozen=True)
class ScoringConfig:
    """Weights of the score's named reasons (see scoring.py); the score is their sum, clamped to 0-100.
    Bands: high >= 70, medium >= 40, low below."""

    min_score: int = 0  # hide findings scoring below this
    suppress: bool = True  # hide service fan-out and one-infrastructure findings (kept with --include-suppressed)
    base_multi_stage_c2: int = 45
    base_sibling_chain: int = 50
    base_parent_child_handoff: int = 55
    base_staged_dropper: int = 60
    base_injected_stage: int = 60
    several_infrastructures: int = 10  # at least two distinct infrastructures
    many_infrastructures: int = 5  # at least strong_ips infrastructures
    direct_to_ip: int = 10  # an address no DNS answer or hostname named
    all_named: int = -5  # every address looked up by name first
    script_interpreter: int = 20  # powershell, cmd, mshta, rundll32, curl, bash...
    user_writable: int = 15  # Temp, AppData, Downloads, Users\Public, ProgramData, /tmp, /dev/shm
    renamed_binary: int = 15  # OriginalFileName differs from the image name
    installed_software: int = -20  # system or Program Files location with consistent metadata
    installed_software_unverified: int = -10  # installed location, metadata not logged
    office_or_script_lineage: int = 15  # an ancestor is an Office app or script host
    same_vendor: int = -25  # both stages installed software of one company (updaters, brokers)
    installed_pair: int = -15  # both stages installed software, company of the earlier one not logged
    nonstandard_port: int = 10
    proxy_port: int = 15
    common_in_fleet: int = -25  # same image, same infrastructure on many hosts
    unique_to_host: int = 10  # ... on this host only
    fleet_min_hosts: int = 5  # below this many hosts prevalence says nothing
    common_min_hosts: int = 3  # "many hosts": at least this many ...
    common_share: int = 20  # ... and at least this percent of the hosts running the image
    baseline: str = ""  # a DuckDB file remembering (image, address, host) across runs; "" for none


ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class EngineConfig:
    name: str = "duckdb"  # where the detections' statements run: "duckdb" (embedded) or "spark" (local Spark)
    memory_limit: str = "1GB"  # DuckDB spills to disk beyond this (peak RSS stays under 2 GB at 5 M events)
    threads: int = 0  # 0: all cores


@dataclass(frozen=True)
class Config:
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    scope: ScopeConfig = field(default_factory=ScopeConfig)
    exclusions: ExclusionConfig = field(default_factory=ExclusionConfig)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)

    def __post_init__(self) -> None:
        validate(self)

    def with_overrides(self, **sections: dict[str, Any]) -> Config:
        """A copy with some keys changed, e.g. with_overrides(detection={"min_ips": 3})."""
        kw = {}
        for name, values in sections.items():
            values = {k: v for k, v in values.items() if v is not None}
            kw[name] = _build(type(getattr(self, name)), {**_section_dict(getattr(self, name)), **values}, name)
        return replace(self, **kw)

    def to_toml(self) -> str:
        out = []
        for f in fields(self):
            sec = getattr(self, f.name)
            out.append(f"[{f.name}]")
            for k, v in _section_dict(sec).items():
                out.append(f"{k} = {_toml_value(format_duration(v) if k == 'window' else v)}")
            out.append("")
        return "\n".join(out)


def _section_dict(sec: Any) -> dict[str, Any]:
    return {f.name: getattr(sec, f.name) for f in fields(sec)}


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def _build(cls: type, raw: dict[str, Any], section: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"[{section}]: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(known)}")
    kw: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        where = f"[{section}] {name}"
        if name == "window":
            kw[name] = parse_duration(value) if not isinstance(value, int) or isinstance(value, bool) else value
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false, got {value!r}")
            kw[name] = value
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where}: expected an integer, got {value!r}")
            kw[name] = value
        elif isinstance(default, tuple):
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{where}: expected a list, got {value!r}")
            kw[name] = tuple(value)
        else:
            if not isinstance(value, str):
                raise ConfigError(f"{where}: expected a string, got {value!r}")
            kw[name] = value
    return cls(**kw)


def validate(cfg: Config) -> None:
    d = cfg.detection
    if d.min_ips < 2:
        raise ConfigError("[detection] min_ips: must be at least 2 (one address is not multi-stage)")
    if d.strong_ips < d.min_ips:
        raise ConfigError(f"[detection] strong_ips ({d.strong_ips}) must be at least min_ips ({d.min_ips}): raise "
                          "strong_ips (--strong-ips) with min_ips (--min-ips)")
    if d.window_mode not in ("sliding", "tumbling"):
        raise ConfigError(f"[detection] window_mode: {d.window_mode!r}; choose sliding or tumbling")
    if d.group_by not in ("process", "seed"):
        raise ConfigError(f"[detection] group_by: {d.group_by!r}; choose process or seed")
    if not 1 <= d.handoff_depth <= 10:
        raise ConfigError("[detection] handoff_depth: must be between 1 and 10")
    for key in ("proxy_ports", "standard_ports"):
        for p in getattr(d, key):
            if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 65535:
                raise ConfigError(f"[detection] {key}: {p!r} is not a port number (0-65535)")
    for key in ("home_networks", "external_networks"):
        for cidr in getattr(cfg.scope, key):
            _cidr(cidr, f"[scope] {key}")
    for cidr in cfg.exclusions.destinations:
        _cidr(cidr, "[exclusions] destinations")
    for p in cfg.exclusions.ports:
        if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 65535:
            raise ConfigError(f"[exclusions] ports: {p!r} is not a port number (0-65535)")
    for name in cfg.exclusions.profiles:
        if name not in PROFILE_NAMES:
            raise ConfigError(f"[exclusions] profiles: unknown profile {name!r}; known: {', '.join(PROFILE_NAMES)}")
    for key in ("images", "hashes", "users", "hosts"):
        for v in getattr(cfg.exclusions, key):
            if not isinstance(v, str) or not v:
                raise ConfigError(f"[exclusions] {key}: {v!r} must be a non-empty string")
    if not re.match(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", cfg.engine.memory_limit, re.I):
        raise ConfigError(f"[engine] memory_limit: {cfg.engine.memory_limit!r}; use e.g. 2GB or 512MB")
    if not 0 <= cfg.scoring.min_score <= 100:
        raise ConfigError("[scoring] min_score: must be between 0 and 100")
    if cfg.scoring.fleet_min_hosts < 1 or cfg.scoring.common_min_hosts < 1:
        raise ConfigError("[scoring] fleet_min_hosts and common_min_hosts: must be at least 1")
    if not 0 <= cfg.scoring.common_share <= 100:
        raise ConfigError("[scoring] common_share: a percentage, 0-100")
    if cfg.engine.name not in ENGINES:
        raise ConfigError(f"[engine] name: {cfg.engine.name!r}; choose {' or '.join(ENGINES)}")
    if cfg.engine.threads < 0:
        raise ConfigError("[engine] threads: must be 0 (all cores) or more")


def _cidr(text: Any, where: str) -> None:
    try:
        address = ipaddress.ip_interface(str(text).strip())
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a CIDR network (e.g. 10.0.0.0/8, 2001:db8::/32)") from None
    if address.ip != address.network.network_address:
        # 10.0.0.1/8 is a typo for 10.0.0.0/8 or for 10.0.0.1/32: widening it without a word could make a whole
        # network internal (or excluded) where the user meant one host
        raise ConfigError(f"{where}: {text!r} has host bits set; write {address.network} for the network or "
                          f"{address.ip}/{address.max_prefixlen} for the one address")


def load_config(path: str | Path | None = None) -> Config:
    """The shipped defaults, overridden by the TOML file at `path` if given."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except OSError as e:  # a folder, no permission
        raise ConfigError(f"{p}: cannot read the config file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text, as TOML must be (byte {e.start + 1})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    sections = {f.name: f.type for f in fields(Config)}
    unknown = set(raw) - set(sections)
    if unknown:
        raise ConfigError(f"{p}: unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(sections)}")
    not_tables = sorted(k for k, v in raw.items() if not isinstance(v, dict))
    if not_tables:  # `detection = 3` would otherwise be dropped without a word
        raise ConfigError(f"{p}: {', '.join(not_tables)} must be a section ([{not_tables[0]}] and its keys), "
                          f"not a value")
    try:
        return Config().with_overrides(**raw)
    except ConfigError as e:
        raise ConfigError(f"{p}: {e}") from None
