"""Exclusions: exact, case-insensitive matches on images, hashes, users, hosts, destinations and ports.

Never substrings: the seed's `*chrome*` also excluded `C:\\Users\\Public\\chrome_update.exe`. An image
entry is one of
  - a file name (no `\\` or `/`): equals the image's last path component, e.g. `chrome.exe` matches
    `C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe` but not `chrome_update.exe`;
  - a full path: equals the whole image path;
  - a glob (contains `*` or `?`): `?` is one character and `*` any run of characters, neither crossing a
    path separator; `**` crosses separators and `**/` stands for zero or more directories. With a
    separator the glob matches the full path (`C:\\Program Files\\*\\updater.exe`), without one the file
    name (`chrome*.exe`). `[` is literal.
All comparisons ignore case, and `\\` and `/` are the same separator (Windows and POSIX paths alike).

Every matcher answers for one value (`excludes`, or `excluded` given one string) or for many (`excluded`
given an iterable: the set of the excluded values). The engine passes the DISTINCT values of a run and
joins the result, so this Python runs once per value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import overload

from stagehunt.config import ExclusionConfig
from stagehunt.scope import IPNetwork, normalise_network, parse_ip

_GLOB_CHARS = frozenset("*?")


def _fold(text: str) -> str:
    """Case- and separator-insensitive form of a path or name."""
    return text.replace("\\", "/").lower()


def base_name(path: str) -> str:
    """The last path component, for `\\` and `/` paths alike."""
    return _fold(path).rsplit("/", 1)[-1]


def _glob_regex(glob: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", _fold(glob))
    out = []
    for p in parts:
        if p == "**/":  # zero or more whole directories, so `D:/**/agent.exe` also matches `D:/agent.exe`
            out.append("(?:.*/)?")
        elif p == "**":
            out.append(".*")
        elif p == "*":
            out.append("[^/]*")
        elif p == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(p))
    return re.compile("".join(out), re.DOTALL)


class _Matcher:
    """One value -> bool (`excludes`); many values -> the set of excluded ones (`excluded`)."""

    def excludes(self, value: object) -> bool:
        raise NotImplementedError

    @overload
    def excluded(self, values: str) -> bool: ...
    @overload
    def excluded(self, values: Iterable[str | None]) -> set[str]: ...

    def excluded(self, values: str | Iterable[str | None]) -> bool | set[str]:
        # A lone string is one value, not an iterable of characters.
        if isinstance(values, str):
            return self.excludes(values)
        return {v for v in set(values) if v is not None and self.excludes(v)}


class ImageMatcher(_Matcher):
    """Image exclusions built from ExclusionConfig.all_images()."""

    def __init__(self, entries: Iterable[str]):
        self.names: dict[str, str] = {}  # folded name -> entry as configured (for reasons)
        self.paths: dict[str, str] = {}
        self.name_globs: list[tuple[re.Pattern[str], str]] = []
        self.path_globs: list[tuple[re.Pattern[str], str]] = []
        for entry in entries:
            has_sep = "/" in entry or "\\" in entry
            if _GLOB_CHARS & set(entry):
                (self.path_globs if has_sep else self.name_globs).append((_glob_regex(entry), entry))
            else:
                (self.paths if has_sep else self.names).setdefault(_fold(entry), entry)

    def match(self, image: str | None) -> str | None:
        """The configured entry that excludes `image`, or None."""
        if not image:
            return None
        path = _fold(image)
        name = path.rsplit("/", 1)[-1]
        hit = self.names.get(name) or self.paths.get(path)
        if hit:
            return hit
        for rx, entry in self.name_globs:
            if rx.fullmatch(name):
                return entry
        for rx, entry in self.path_globs:
            if rx.fullmatch(path):
                return entry
        return None

    def excludes(self, value: object) -> bool:
        return isinstance(value, str) and self.match(value) is not None


_HASH_SPLIT = re.compile(r"[,;\s]+")


def parse_hashes(text: str) -> dict[str, str]:
    """Sysmon `SHA1=..,MD5=..,SHA256=..,IMPHASH=..` -> {algo: value}, lower case; a bare value gets algo ''."""
    out: dict[str, str] = {}
    for token in _HASH_SPLIT.split(text.strip()):
        algo, sep, value = token.partition("=")
        if not sep:
            algo, value = "", algo
        if value:
            out[algo.strip().lower()] = value.strip().lower()
    return out


class HashMatcher(_Matcher):
    """Excludes a Hashes string when any of its values is listed. An entry may be `VALUE` or `ALGO=VALUE`."""

    def __init__(self, entries: Iterable[str]):
        self.any_algo: set[str] = set()
        self.with_algo: set[tuple[str, str]] = set()
        for entry in entries:
            algo, sep, value = entry.strip().lower().partition("=")
            if sep:
                self.with_algo.add((algo.strip(), value.strip()))
            else:
                self.any_algo.add(algo)

    def excludes(self, value: object) -> bool:
        if not isinstance(value, str) or not (self.any_algo or self.with_algo):
            return False
        return any(v in self.any_algo or (a, v) in self.with_algo for a, v in parse_hashes(value).items())


class ExactMatcher(_Matcher):
    """Exact, case-insensitive equality (users, hosts)."""

    def __init__(self, entries: Iterable[str]):
        self.values = frozenset(e.lower() for e in entries)

    def excludes(self, value: object) -> bool:
        return isinstance(value, str) and value.lower() in self.values


class DestinationMatcher(_Matcher):
    """Destination addresses inside the configured CIDRs (IPv4-mapped IPv6 unwrapped first)."""

    def __init__(self, cfg: ExclusionConfig | Iterable[str]):
        cidrs = cfg.destinations if isinstance(cfg, ExclusionConfig) else cfg
        self.networks: tuple[IPNetwork, ...] = tuple(normalise_network(c) for c in cidrs)

    def excludes(self, value: object) -> bool:
        if not self.networks:
            return False
        a = parse_ip(value)
        return a is not None and any(a.version == n.version and a in n for n in self.networks)


class Exclusions:
    """Every exclusion of an ExclusionConfig, each decided on distinct values."""

    def __init__(self, cfg: ExclusionConfig):
        self.images = ImageMatcher(cfg.all_images())
        self.hashes = HashMatcher(cfg.hashes)
        self.users = ExactMatcher(cfg.users)
        self.hosts = ExactMatcher(cfg.hosts)
        self.destinations = DestinationMatcher(cfg)
        self.ports: frozenset[int] = frozenset(cfg.ports)

    def excluded_images(self, distinct_images: Iterable[str | None]) -> set[str]:
        return self.images.excluded(distinct_images)

    def excluded_hashes(self, distinct_hashes: Iterable[str | None]) -> set[str]:
        return self.hashes.excluded(distinct_hashes)

    def excluded_users(self, distinct_users: Iterable[str | None]) -> set[str]:
        return self.users.excluded(distinct_users)

    def excluded_hosts(self, distinct_hosts: Iterable[str | None]) -> set[str]:
        return self.hosts.excluded(distinct_hosts)

    def excluded_destinations(self, distinct_ips: Iterable[str | None]) -> set[str]:
        return self.destinations.excluded(distinct_ips)

    def excluded_ports(self, distinct_ports: Iterable[int | None]) -> set[int]:
        return {p for p in distinct_ports if p is not None and p in self.ports}
