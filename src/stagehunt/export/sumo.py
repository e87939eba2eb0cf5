"""Sumo Logic Cloud SIEM: the corrected search over `sec_record` (target `sumo-query`).

What the seed's query got wrong and this one does instead:
  - event ids and field names are the CSE schema's (`Microsoft-Windows-Sysmon/Operational-3`, `dstPort`,
    `baseImage`), not `windows:sysmon:3`, `dstDevice_port`, `application_name`;
  - no filter on the *source* address (it dropped every outbound connection of an internal host);
  - destinations are tested numerically (ipv4ToNumber against the counted ranges) with an IPv6 branch
    (regular expressions that accept every spelling of an address; Sumo has no IPv6 CIDR operator), after
    unwrapping IPv4-mapped `::ffff:a.b.c.d`;
  - exclusions are exact and case-insensitive (toLowerCase + anchored regex), never `*chrome*` substrings;
  - network records carry no command line or parent: both come from the process-start records (event 1)
    of the same ProcessGuid, merged by a first aggregation, so grouping by command line works.
Pure Python: no pySigma needed.
"""

from __future__ import annotations

from stagehunt.export.cidrs import ipv6_regex, merge_ranges
from stagehunt.export.model import Spec, comment_block, regex_escape, summary_lines

EVENT_IDS = {  # Cloud SIEM's metadata_deviceEventId for Sysmon on Windows and Linux
    "start": ("Microsoft-Windows-Sysmon/Operational-1", "Linux-Sysmon/Operational-1"),
    "conn": ("Microsoft-Windows-Sysmon/Operational-3", "Linux-Sysmon/Operational-3"),
}


# ---- expression pieces shared with sumo_rules (Cloud SIEM rule expressions use the same functions) ----

def ipv4_ranges_test(number: str, ranges: list[tuple[int, int]]) -> str:
    """`number` (an ipv4ToNumber value) inside any inclusive range."""
    parts = [f"({number} >= {lo} and {number} <= {hi})" if lo != hi else f"{number} = {lo}" for lo, hi in ranges]
    return "(" + " or ".join(parts) + ")" if parts else "false"


def v4_ranges(nets: tuple) -> list[tuple[int, int]]:
    return merge_ranges((int(n.network_address), int(n.broadcast_address)) for n in nets)


def ipv6_any_regex(nets: tuple) -> str:
    """One case-insensitive regex matching any address text inside any of `nets` (IPv6)."""
    return "(?i)" + "|".join(ipv6_regex(n) for n in nets) if nets else ""


def image_regex(spec: Spec) -> str:
    """One anchored regex over the lower-cased image path for every image exclusion."""
    alts = []
    if spec.images.names:
        names = "|".join(regex_escape(n.lower()) for n in spec.images.names)
        alts.append(f"^(.*[\\\\/])?({names})$")
    alts += [f"^{regex_escape(p.lower())}$" for p in spec.images.paths]
    alts += list(spec.images.patterns)
    # Both spellings of a path give one regex (either separator matches either).
    return "|".join(f"({a})" for a in dict.fromkeys(alts))


def hash_regex(spec: Spec) -> str:
    """Regex over a lower-cased Sysmon Hashes value (`SHA1=..,MD5=..`) for the hash exclusions."""
    alts = []
    for entry in spec.hashes:
        algo, sep, value = entry.strip().lower().partition("=")
        alts.append(f"(^|,){algo}={value}(,|$)" if sep else f"={algo}(,|$)")
    return "|".join(alts)


def sumo_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def regex_literal(regex: str) -> str:
    """A regex as a Sumo `/.../` literal (its slashes escaped)."""
    return "/" + regex.replace("/", "\\/") + "/"


# ---- the search -----------------------------------------------------------------------------------------

def window_semantics(spec: Spec) -> str:
    w = spec.window_text
    if spec.sliding:
        return (f"sliding, by schedule. The query has no time buckets: each run counts its whole time range as one "
                f"window. Save it as a Scheduled Search over the last {w}, run e.g. hourly, and the {w} window "
                "slides in steps of the schedule. (The seed's `timeslice 24h` cut time at UTC midnight.)")
    return (f"fixed buckets (tumbling), as [detection] window_mode = tumbling asks: `timeslice {w}` on the "
            "connections; two stages either side of a bucket edge are missed. first_contact and last_contact "
            "span the process's whole range in the search.")


def _unwrap(field: str) -> list[str]:
    return [
        f"| toLowerCase({field}) as dst_ip",
        '| if(dst_ip matches /^::ffff:\\d{1,3}(\\.\\d{1,3}){3}$/, substring(dst_ip, 7), dst_ip) as dst_ip',
    ]


def counted_test(spec: Spec) -> str:
    """Sumo search boolean: dst_ip (unwrapped, lower-case) is a counted, non-excluded destination."""
    v4 = ipv4_ranges_test("dst_num", spec.scope.ipv4_ranges())
    v6 = ipv6_any_regex(spec.scope.ipv6_gaps())
    test = f"(isValidIPv4(dst_ip) and {v4})"
    test += f" or (isValidIPv6(dst_ip) and !(dst_ip matches {regex_literal(v6)}))" if v6 else " or isValidIPv6(dst_ip)"
    parts = [f"({test})"]
    if spec.excluded_v4:
        parts.append(f"!(isValidIPv4(dst_ip) and {ipv4_ranges_test('dst_num', v4_ranges(spec.excluded_v4))})")
    if spec.excluded_v6:
        parts.append(f"!(dst_ip matches {regex_literal(ipv6_any_regex(spec.excluded_v6))})")
    if spec.ports:
        parts.append("!(" + " or ".join(f"dstPort = {p}" for p in spec.ports) + ")")
    return " and ".join(parts)


def exclusion_filter(spec: Spec) -> str | None:
    """Sumo search boolean over the per-process row: True when the process is excluded."""
    parts = []
    if spec.images:
        parts.append(f"image matches {regex_literal(image_regex(spec))}")
    if spec.users:
        parts.append("user in (" + ", ".join(sumo_string(u.lower()) for u in spec.users) + ")")
    if spec.hosts:
        parts.append("host in (" + ", ".join(sumo_string(h.lower()) for h in spec.hosts) + ")")
    if spec.hashes:
        parts.append(f"hashes matches {regex_literal('(?i)' + hash_regex(spec))}")
    return " or ".join(parts) if parts else None


def render(spec: Spec) -> str:
    ids = [*EVENT_IDS["start"], *EVENT_IDS["conn"]]
    scope = " or ".join(f"metadata_deviceEventId={sumo_string(i)}" for i in ids)
    slice_expr = "_timeslice" if not spec.sliding else '"all"'
    lines = [
        f"(_index=sec_record_endpoint or _index=sec_record_network) ({scope})",
        '| json field=fields "[\'EventData.ProcessGuid\']", "[\'EventData.Initiated\']", "[\'EventData.Hashes\']", '
        '"[\'Computer\']" as process_guid, initiated, raw_hashes, computer nodrop',
        '| if(metadata_deviceEventId matches "*-3", "conn", "start") as record',
        # The logging host: network records have no device_hostname; srcDevice_hostname is Sysmon's
        # SourceHostname, the local end of an outbound connection, kept as the last resort.
        "| if(!isBlank(device_hostname), device_hostname, if(!isBlank(computer), computer, srcDevice_hostname)) "
        "as host",
        "| toLowerCase(host) as host | toLowerCase(baseImage) as image | toLowerCase(user_username) as user",
        '| if(!isBlank(process_guid), process_guid, concat(host, "|", pid)) as process_key',
        *_unwrap("dstDevice_ip"),
        "| if(isValidIPv4(dst_ip), ipv4ToNumber(dst_ip), -1) as dst_num",
        f'| where record = "start" or (toLowerCase(initiated) = "true" and {counted_test(spec)})',
    ]
    if not spec.sliding:
        lines.append(f"| timeslice {spec.window_text}")
    lines += [
        # One row per process: its connections as "slice|ip|port" words, its context from event 1.
        f'| if(record = "conn", concat({slice_expr}, "|", dst_ip, "|", dstPort), "") as conn',
        '| if(record = "conn", _messagetime, 99999999999999) as conn_first',
        '| if(record = "conn", _messagetime, 0) as conn_last',
        '| if(record = "start", commandLine, "") as start_cmd',
        '| if(record = "start", parentBaseImage, "") as start_parent',
        '| if(record = "start", toLowerCase(raw_hashes), "") as start_hashes',
        "| stats values(conn) as conns, values(start_cmd) as command_line, values(start_parent) as parent_image, "
        "values(start_hashes) as hashes, min(conn_first) as first_contact, max(conn_last) as last_contact "
        "by host, process_key, image, user",
    ]
    excluded = exclusion_filter(spec)
    if excluded:
        lines.append(f"| where !({excluded})")
    group = "host, process_key, image, user, slice" if spec.per_process else "host, user, image, command_line, slice"
    lines += [
        # values() lists at most 100 distinct words per process, separated by new lines.
        '| parse regex field=conns "(?<conn>\\S+)" multi',
        '| parse field=conn "*|*|*" as slice, dst_ip, dst_port',
        "| stats count_distinct(dst_ip) as unique_external_ips, values(dst_ip) as ip_list, values(dst_port) as "
        "port_list, count_distinct(process_key) as processes, values(command_line) as command_lines, "
        "values(parent_image) as parent_images, min(first_contact) as first_contact, max(last_contact) as "
        f"last_contact by {group}",
        f"| where unique_external_ips >= {spec.min_ips}",
        f'| if(unique_external_ips >= {spec.strong_ips}, "true", "false") as strong_indicator',
        "| round((last_contact - first_contact) / 6000) / 10 as duration_mins",
        '| "multi_stage_c2" as detection_type',
        "| sort by unique_external_ips",
    ]
    return comment_block(summary_lines(spec, window_semantics(spec)), "//") + "\n".join(lines) + "\n"
