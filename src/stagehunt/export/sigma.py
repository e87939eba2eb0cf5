"""Sigma: a base rule (counted outbound Sysmon connections) plus a value_count correlation over it.

Pure Python: the YAML is written here so `export --target sigma` needs no extra; the tests parse it
with pySigma and run its validators. The other pySigma-based targets convert this same text.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from stagehunt.export.model import (
    FALSE_POSITIVES,
    HANDOFF_LIMIT,
    REFERENCES,
    RULE_DATE,
    Spec,
    exclusion_text,
    grouping_text,
    scope_text,
)

_NS = uuid.UUID("5f0c1a52-7d1e-4c53-9b1e-51a6e1104000")
BASE_ID = str(uuid.uuid5(_NS, "multi_stage_c2/base"))
CORRELATION_ID = str(uuid.uuid5(_NS, "multi_stage_c2/correlation"))
BASE_NAME = "stagehunt_t1104_counted_outbound_connection"
CORRELATION_NAME = "stagehunt_t1104_multi_stage_c2"
FILENAME = "stagehunt_t1104_multi_stage_c2.yml"
TAGS = ("attack.command-and-control", "attack.t1104")

# Sysmon EID 3 field names; group-by per [detection] group_by.
GROUP_PROCESS = ("Computer", "User", "Image", "ProcessGuid")
GROUP_SEED = ("Computer", "User", "Image")


def group_fields(spec: Spec) -> tuple[str, ...]:
    return GROUP_PROCESS if spec.per_process else GROUP_SEED


def literal(text: str) -> str:
    """A Sigma string that means exactly `text`: Sigma reads `\\`, `\\*` and `\\?` as escapes."""
    return re.sub(r"([*?])", r"\\\1", re.sub(r"\\(?=[\\*?]|$)", r"\\\\", text))


def detection(spec: Spec, text_guard: bool = True, scope: bool = True) -> dict[str, Any]:
    """The base rule's detection section.

    text_guard: keep `DestinationIp|contains: ':'` on the IPv6 list. Backends without CIDR support
    (the SQLite one) expand CIDRs into text prefixes such as `2*`, which would also match IPv4 text
    like 203.0.113.5; the guard confines the IPv6 prefixes to IPv6 text. Native-CIDR targets may drop it.
    """
    # A YAML boolean, not the string 'true': the ECS pipeline maps only the boolean to
    # network.direction: egress (the string becomes network.direction: "true", matching nothing).
    det: dict[str, Any] = {"outbound": {"Initiated": True}}
    if scope:
        det["scope_ipv4"] = {"DestinationIp|cidr": [str(n) for n in spec.scope.ipv4]}
        v6 = [str(n) for n in spec.scope.ipv6] + [f"::ffff:{n.network_address}/{n.prefixlen + 96}"
                                                  for n in spec.scope.ipv4]
        if v6:
            guard = {"DestinationIp|contains": ":"} if text_guard else {}
            det["scope_ipv6"] = guard | {"DestinationIp|cidr": v6}
    images = spec.images
    if images.names:
        # `\chrome.exe` as a suffix is the file name exactly (never `chrome_update.exe`); `/` for Linux
        # paths; the bare name for Sysmon-for-Linux short images such as `java`.
        det["filter_image_names"] = {"Image|endswith": [literal(s + n) for n in images.names for s in ("\\", "/")]}
        det["filter_image_bare_names"] = {"Image": [literal(n) for n in images.names]}
    if images.paths:
        det["filter_image_paths"] = {"Image": [literal(p) for p in images.paths]}
    if images.patterns:
        det["filter_image_globs"] = {"Image|re|i": list(images.patterns)}
    if spec.users:
        det["filter_users"] = {"User": [literal(u) for u in spec.users]}
    if spec.hosts:
        det["filter_hosts"] = {"Computer": [literal(h) for h in spec.hosts]}
    if spec.excluded_destinations:
        det["filter_destinations"] = {"DestinationIp|cidr": list(spec.excluded_destinations)}
    if spec.ports:
        det["filter_ports"] = {"DestinationPort": list(spec.ports)}
    filters = any(k.startswith("filter_") for k in det)
    det["condition"] = "outbound" + (" and 1 of scope_*" if scope else "") + (
        " and not 1 of filter_*" if filters else "")
    return det


def base_rule(spec: Spec, text_guard: bool = True, scope: bool = True) -> dict[str, Any]:
    description = (
        "Building block of the stagehunt multi_stage_c2 correlation: a Sysmon network connection "
        "(event 3) that the process initiated, to a destination stagehunt counts: " + scope_text(spec) + ". "
        "The address lists are computed from Python's ipaddress special-purpose registries, not typed. "
        "Exclusions are exact (file names compared whole, any case), never substrings."
    )
    return {
        "title": "Outbound connection to a counted destination (stagehunt T1104 building block)",
        "id": BASE_ID,
        "name": BASE_NAME,
        "status": "experimental",
        "description": description,
        "references": list(REFERENCES),
        "author": "stagehunt",
        "date": _Raw(RULE_DATE),
        "tags": list(TAGS),
        "logsource": {"category": "network_connection", "product": "windows"},
        "detection": detection(spec, text_guard, scope),
        "fields": ["Computer", "User", "Image", "ProcessGuid", "DestinationIp", "DestinationPort"],
        "falsepositives": ["Every outbound connection: this rule only feeds the correlation"],
        "level": "informational",
    }


def correlation_rule(spec: Spec) -> dict[str, Any]:
    d = spec.cfg.detection
    notes = [
        f"Fires when {grouping_text(spec)} reaches at least {d.min_ips} distinct counted destination addresses within "
        f"{spec.window_text}: a first stage calling home and a second stage talking to new infrastructure "
        f"(stagehunt multi_stage_c2; at {d.strong_ips} or more addresses stagehunt calls it a strong indicator).",
        "The timespan slides (Sigma correlation windows are not bound to clock boundaries)"
        + ("; the configured tumbling window_mode (fixed UTC buckets) cannot be expressed in Sigma."
           if not spec.sliding else "."),
    ]
    if not spec.per_process:
        notes.append("group_by = seed also groups by command line in stagehunt; Sysmon network events carry no "
                     "CommandLine, so this rule groups by host, user and image only.")
    excl = exclusion_text(spec)
    if excl:
        notes.append("Exclusions: " + "; ".join(excl) + ".")
    notes.append(HANDOFF_LIMIT)
    return {
        "title": "Multi-stage command and control: one process reaches several counted destinations (T1104)",
        "id": CORRELATION_ID,
        "name": CORRELATION_NAME,
        "status": "experimental",
        "description": " ".join(notes),
        "references": list(REFERENCES),
        "author": "stagehunt",
        "date": _Raw(RULE_DATE),
        "tags": list(TAGS),
        "correlation": {
            "type": "value_count",
            "rules": [BASE_NAME],
            "group-by": list(group_fields(spec)),
            "timespan": spec.window_text,
            "condition": {"gte": d.min_ips, "field": "DestinationIp"},
            "generate": False,
        },
        "falsepositives": list(FALSE_POSITIVES),
        "level": "high",
    }


def render(spec: Spec, text_guard: bool = True, scope: bool = True) -> str:
    """Both rules as one YAML stream (base first: the correlation refers to it by name).

    scope=False leaves out the destination lists: SIEM targets write them in their own compact form.
    """
    return dump(base_rule(spec, text_guard, scope)) + "---\n" + dump(correlation_rule(spec))


# ---- a small YAML writer (deterministic; single-quoted strings keep backslashes literal) ---------------

class _Raw(str):
    """Written unquoted (dates)."""


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, _Raw):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED:
        return s
    return "'" + s.replace("'", "''") + "'"


def dump(obj: dict[str, Any], indent: int = 0) -> str:
    pad = " " * indent
    out = []
    for key, value in obj.items():
        if isinstance(value, dict):
            out.append(f"{pad}{key}:\n" + dump(value, indent + 4))
        elif isinstance(value, list):
            out.append(f"{pad}{key}:\n" + "".join(f"{pad}    - {_scalar(x)}\n" for x in value))
        elif isinstance(value, str) and len(value) > 100 and not isinstance(value, _Raw):
            # Folded block: long descriptions stay readable; YAML joins the lines with spaces.
            from stagehunt.export.model import wrap

            body = "".join(f"{pad}    {line}\n" for line in wrap(value, 100))
            out.append(f"{pad}{key}: >-\n{body}")
        else:
            out.append(f"{pad}{key}: {_scalar(value)}\n")
    return "".join(out)
