"""What every export target shares: the tuned detection read from one Config, and the words about it.

Targets differ in syntax, field names and window machinery; what they detect comes from here, so a
changed threshold, window, home network or exclusion reaches every target the same way.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from stagehunt.config import Config, format_duration
from stagehunt.export.cidrs import ScopeNetworks, counted_networks, excluded_destinations

RULE_DATE = "2026-12-01"  # first publication of the exported rules; ids stay stable across tunings
TECHNIQUE = "T1104"
REFERENCES = (
    "https://attack.mitre.org/techniques/T1104/",
    "https://learn.microsoft.com/en-us/sysinternals/downloads/sysmon#event-id-3-network-connection",
)
FALSE_POSITIVES = (  # the seed's list, which stays true after the fixes
    "Configuration-management agents (Chef, Puppet, Ansible) that poll an orchestrator and report to a "
    "separate monitoring endpoint",
    "Download managers that fetch one file from several CDN edge addresses",
    "VPN or proxy clients that authenticate to one server and tunnel through another",
    "CI/CD and test agents that reach several external test endpoints",
)
HANDOFF_LIMIT = (
    "The parent/child handoff (parent_child_handoff: a descendant reaches an address its ancestor never "
    "did) is not exported: correlation rules join events only on equal field values and cannot require "
    "the child's addresses to differ from the parent's, nor walk process ancestry. Run `stagehunt hunt` "
    "for it."
)


@dataclass(frozen=True)
class ImageRules:
    """Image exclusions in forms rule languages can test, all meaning what exclusions.ImageMatcher means."""

    names: tuple[str, ...]  # file names: the image's last path component equals one (any case)
    paths: tuple[str, ...]  # full paths (both separator spellings), compared whole, any case
    patterns: tuple[str, ...]  # globs as anchored regexes over the lower-cased path (portable subset)

    def __bool__(self) -> bool:
        return bool(self.names or self.paths or self.patterns)


@dataclass(frozen=True)
class Spec:
    """The tuned multi_stage_c2 detection, ready for any target."""

    cfg: Config
    scope: ScopeNetworks
    excluded_v4: tuple[ipaddress.IPv4Network, ...]
    excluded_v6: tuple[ipaddress.IPv6Network, ...]
    images: ImageRules

    @property
    def min_ips(self) -> int:
        return self.cfg.detection.min_ips

    @property
    def strong_ips(self) -> int:
        return self.cfg.detection.strong_ips

    @property
    def window(self) -> int:
        return self.cfg.detection.window

    @property
    def window_text(self) -> str:
        return format_duration(self.cfg.detection.window)

    @property
    def sliding(self) -> bool:
        return self.cfg.detection.window_mode == "sliding"

    @property
    def per_process(self) -> bool:
        """group_by = "process": one group per process instance (Sysmon ProcessGuid)."""
        return self.cfg.detection.group_by == "process"

    @property
    def users(self) -> tuple[str, ...]:
        return self.cfg.exclusions.users

    @property
    def hosts(self) -> tuple[str, ...]:
        return self.cfg.exclusions.hosts

    @property
    def hashes(self) -> tuple[str, ...]:
        return self.cfg.exclusions.hashes

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.cfg.exclusions.ports)))

    @property
    def excluded_destinations(self) -> tuple[str, ...]:
        return tuple(str(n) for n in (*self.excluded_v4, *self.excluded_v6))


def build_spec(cfg: Config) -> Spec:
    v4, v6 = excluded_destinations(cfg.exclusions)
    return Spec(cfg, counted_networks(cfg.scope), v4, v6, image_rules(cfg.exclusions.all_images()))


# ---- image exclusions ----------------------------------------------------------------------------------
# Regexes use a subset that PCRE, RE2, Java and Lucene (ES|QL RLIKE) read alike: escaped punctuation,
# [^\\/] classes, plain (...) groups, ? and * quantifiers; anchors ^ and $ (stripped for Lucene, which
# anchors implicitly). They are matched against the lower-cased image path.

_SEP = r"[\\/]"
_NOT_SEP = r"[^\\/]"
_PUNCT = re.compile(r"([^A-Za-z0-9 _\-])")


def regex_escape(text: str) -> str:
    """Literal text as a portable regex; `\\` and `/` both become the separator class."""
    return "".join(_SEP if c in "\\/" else _PUNCT.sub(r"\\\1", c) for c in text)


def glob_regex(glob: str) -> str:
    """An exclusion glob as an anchored regex over the lower-cased image path (see exclusions.py)."""
    g = glob.lower()
    has_sep = "/" in g or "\\" in g
    out = []
    for part in re.split(r"(\*\*[\\/]|\*\*|\*|\?)", g):
        if part in ("**/", "**\\"):
            out.append(f"(.*{_SEP})?")
        elif part == "**":
            out.append(".*")
        elif part == "*":
            out.append(f"{_NOT_SEP}*")
        elif part == "?":
            out.append(_NOT_SEP)
        elif part:
            out.append(regex_escape(part))
    body = "".join(out)
    # A glob without a separator matches the file name: anchor it after a separator or the start.
    return f"^{body}$" if has_sep else f"^(.*{_SEP})?{body}$"


def image_rules(entries: tuple[str, ...]) -> ImageRules:
    names: dict[str, str] = {}
    paths: dict[str, str] = {}
    patterns: dict[str, str] = {}
    for entry in entries:
        has_sep = "/" in entry or "\\" in entry
        if "*" in entry or "?" in entry:
            patterns.setdefault(glob_regex(entry), entry)
        elif has_sep:
            for spelling in (entry, entry.replace("/", "\\"), entry.replace("\\", "/")):
                paths.setdefault(spelling.lower(), spelling)
        else:
            names.setdefault(entry.lower(), entry)
    return ImageRules(tuple(names.values()), tuple(paths.values()), tuple(patterns))


def lucene_regex(regex: str) -> str:
    """A glob_regex for Lucene (ES|QL RLIKE): no anchors (the whole value must match anyway)."""
    return regex.removeprefix("^").removesuffix("$")


# ---- words shared by every target ----------------------------------------------------------------------

def grouping_text(spec: Spec) -> str:
    if spec.per_process:
        return "one process instance (host + process guid)"
    return ("one group of host, user and image (the seed groups by command line too, but network events carry none; "
            "several instances of one image share a group)")


def scope_text(spec: Spec) -> str:
    s = spec.cfg.scope
    parts = ["global unicast addresses as Python's ipaddress classifies them (IPv4-mapped IPv6 unwrapped, "
             "multicast, CGNAT 100.64/10 and the documentation ranges never)"]
    if s.count_internal:
        parts.append("plus private and internal unicast (count_internal = true)")
    if s.home_networks:
        parts.append("minus home networks " + ", ".join(s.home_networks))
    if s.external_networks:
        parts.append("plus external networks " + ", ".join(s.external_networks))
    return "; ".join(parts)


def _count(items: tuple[str, ...], noun: str) -> str:
    return f"{len(items)} {noun}" + ("" if len(items) == 1 else "s")


def exclusion_text(spec: Spec) -> list[str]:
    lines = []
    if spec.images:
        i = spec.images
        lines.append(f"images (exact, any case, never substrings): {_count(i.names, 'file name')}"
                     + (f", {_count(i.paths, 'path spelling')}" if i.paths else "")
                     + (f", {_count(i.patterns, 'glob')}" if i.patterns else ""))
    for key, values in (("users", spec.users), ("hosts", spec.hosts), ("destinations", spec.excluded_destinations),
                        ("ports", tuple(map(str, spec.ports)))):
        if values:
            lines.append(f"{key}: {', '.join(values)}")
    if spec.hashes:
        lines.append(f"hashes ({len(spec.hashes)}) are NOT applied: network events carry no hashes; "
                     "`stagehunt hunt` takes them from the process-start event")
    return lines


def summary_lines(spec: Spec, window_semantics: str, grouping: str | None = None) -> list[str]:
    """The comment block every query target starts with (grouping: the target's own words for a group)."""
    d = spec.cfg.detection
    lines = [
        f"stagehunt export: multi_stage_c2 (MITRE ATT&CK {TECHNIQUE}, Multi-Stage Channels)",
        "Generated from the stagehunt configuration: re-export after changing it rather than editing here.",
        f"Fires when {grouping or grouping_text(spec)} reaches at least {d.min_ips} distinct counted destination "
        f"addresses within {spec.window_text} (strong indicator at {d.strong_ips}).",
        "Counted: outbound connections (Sysmon Initiated=true) to " + scope_text(spec) + ".",
    ]
    excl = exclusion_text(spec)
    if excl:
        lines.append("Excluded: " + "; ".join(excl) + ".")
    lines.append("Window: " + window_semantics)
    lines.append(HANDOFF_LIMIT)
    return lines


def wrap(text: str, width: int = 110) -> list[str]:
    """Split a long comment sentence on spaces so comment lines stay readable."""
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out


def comment_block(lines: list[str], prefix: str) -> str:
    return "\n".join(f"{prefix} {w}".rstrip() for line in lines for w in wrap(line)) + "\n"
