"""Splunk SPL for Sysmon data (Splunk Add-on for Sysmon field names), via pySigma's Splunk backend.

The backend converts the base rule's outbound test and exclusions correctly (Splunk search values are
case-insensitive; its `rex` form for regexes works). stagehunt replaces the rest:
  - the destination scope: unwrapped IPv4-mapped addresses tested with cidrmatch against the
    short lists of networks that do not count (the backend matches `::ffff:a.b.c.d` against nothing);
  - the correlation: the backend's `bin _time span=...` is a tumbling window, so a sliding
    [detection] window_mode becomes `streamstats time_window=...`.
"""

from __future__ import annotations

from stagehunt.export import backends
from stagehunt.export.model import Spec, summary_lines, wrap

SOURCE = ('(source="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational" OR '
          'source="WinEventLog:Microsoft-Windows-Sysmon/Operational") EventCode=3')
UNWRAP = (r'| eval DestinationIp=if(match(DestinationIp, "(?i)^::ffff:\d{1,3}(\.\d{1,3}){3}$"), '
          r'substr(DestinationIp, 8), DestinationIp)')
IP = "DestinationIp"


def window_semantics(spec: Spec) -> str:
    w = spec.window_text
    if spec.sliding:
        return (f"sliding. `streamstats time_window={w}` counts, for every connection, the distinct addresses "
                f"of its group within {w} of it, as `stagehunt hunt` does; Splunk caps such a window at "
                "max_stream_window events (limits.conf, 10,000 by default). Schedule it (e.g. hourly) over "
                f"the last {w} plus the schedule interval.")
    return (f"fixed buckets (tumbling), as [detection] window_mode = tumbling asks: `bin _time span={w}` "
            "(the pySigma Splunk correlation form); two stages either side of a bucket edge are missed. "
            "Splunk aligns day-sized buckets to the search's time zone: run as a UTC user to match hunt.")


def scope_clause(spec: Spec) -> str:
    v4 = " OR ".join(f'cidrmatch("{n}", {IP})' for n in spec.scope.ipv4_gaps())
    v6 = " OR ".join(f'cidrmatch("{n}", {IP})' for n in spec.scope.ipv6_gaps())
    v4_test = f'cidrmatch("0.0.0.0/0", {IP})' + (f" AND NOT ({v4})" if v4 else "")
    v6_test = f'like({IP}, "%:%")' + (f" AND NOT ({v6})" if v6 else "")
    return f"| where ({v4_test}) OR ({v6_test})"


def group_fields(spec: Spec) -> str:
    return "Computer User Image" + (" ProcessGuid" if spec.per_process else "")


def aggregation(spec: Spec) -> list[str]:
    by = group_fields(spec)
    stats = (f"values({IP}) as ip_list values(DestinationPort) as port_list count as connection_count "
             "min(event_time) as first_contact max(event_time) as last_contact")
    # Grouping ignores case, as hunt's does (Windows names are case-insensitive).
    lines = ["| eval Computer=lower(Computer), User=lower(User), Image=lower(Image), event_time=_time"]
    if spec.sliding:
        lines += [f"| streamstats time_window={spec.window_text} dc({IP}) as window_ips by {by}",
                  f"| stats max(window_ips) as unique_external_ips {stats} by {by}"]
    else:
        lines += [f"| bin _time span={spec.window_text}",
                  f"| stats dc({IP}) as unique_external_ips {stats} by _time {by}"]
    lines += [
        f"| where unique_external_ips >= {spec.min_ips}",
        f'| eval strong_indicator=if(unique_external_ips >= {spec.strong_ips}, "true", "false"), '
        'duration_mins=round((last_contact - first_contact) / 60, 1), detection_type="multi_stage_c2", '
        'technique="T1104"',
        "| sort - unique_external_ips",
    ]
    return lines


def render(spec: Spec) -> str:
    backends.require("splunk")
    from sigma.backends.splunk import SplunkBackend
    from sigma.pipelines.splunk import splunk_windows_pipeline

    query = backends.convert(SplunkBackend(splunk_windows_pipeline()), backends.filter_rule(spec))
    first, *rest = query.split("\n")
    header = "\n".join(wrap_block([
        *summary_lines(spec, window_semantics(spec)),
        "Adjust the first line to your index and Sysmon source (Sysmon for Linux: "
        'source="Syslog:Linux-Sysmon/Operational" or your add-on\'s).',
    ]))
    body = [SOURCE, UNWRAP, scope_clause(spec), f"| search {first}", *rest, *aggregation(spec)]
    return f"```\n{header}\n```\n" + "\n".join(body) + "\n"


def wrap_block(lines: list[str]) -> list[str]:
    # SPL block comments are delimited by triple backticks, which must not occur inside.
    return [w.replace("```", "'''") for line in lines for w in wrap(line)]
